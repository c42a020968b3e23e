"""The payment provider port: charges, and the events that follow them.

A :class:`PaymentGateway` charges a payment method for a purchase and answers
at once: approved, declined with a reason, or pending. What happens later
arrives as :class:`PaymentEvent` values, which the host passes to
:meth:`CoinEconomy.handle_payment_event
<coinecon.economy.CoinEconomy.handle_payment_event>` from its webhook: the
payment settled or failed, was refunded (whole or in part), charged back, or
the chargeback reversed. Events may come twice, late or out of order; the
economy handles each once, by its id, in any order.

A payment method is an opaque token from the provider (``"pm_1Nx..."``):
card data never enters the library.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Protocol, final, runtime_checkable

import attrs

from coinecon._checks import (
    aware,
    identifier,
    instance_of,
    optional_identifier,
    optional_instance_of,
)
from coinecon.errors import InvalidAmountError, ValidationError
from coinecon.money.money import Money

__all__ = [
    "ChargeOutcome",
    "ChargeRequest",
    "ChargeStatus",
    "PaymentEvent",
    "PaymentEventType",
    "PaymentGateway",
]


class ChargeStatus(enum.Enum):
    """What a provider answered to a charge."""

    APPROVED = "approved"
    """The money is taken, and the coins are credited at once."""
    DECLINED = "declined"
    """The charge was refused, and nothing is credited; the outcome says why."""
    PENDING = "pending"
    """The provider will say later (a bank transfer, a 3-D Secure check).
    Nothing is credited until a ``SETTLED`` event."""


def _positive_money(_instance: object, attribute: Any, value: Any) -> None:
    if not isinstance(value, Money) or not value.is_positive:
        raise InvalidAmountError(
            f"a charge's {attribute.name} must be positive Money, got {value!r}"
        )


@final
@attrs.frozen
class ChargeRequest:
    """What the economy asks a provider to charge.

    Attributes:
        charge_id: the purchase's id; the provider's idempotency key, so that
            asking twice never charges twice.
        holder: who pays.
        amount: the exact total of the quote.
        payment_method: the provider's opaque token.
        description: a short text for the buyer's statement.
    """

    charge_id: str = attrs.field(validator=identifier("charge id"))
    holder: str = attrs.field(validator=identifier("holder"))
    amount: Money = attrs.field(validator=_positive_money)
    payment_method: str = attrs.field(validator=identifier("payment method"))
    description: str = attrs.field(validator=instance_of(str))


def _plain(value: Any) -> Any:
    """A ``str`` subclass (a ``StrEnum`` member) as plain text; anything else as is."""
    return str(value) if isinstance(value, str) else value


def _reason(_instance: object, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > _MAX_REASON):
        raise ValidationError(
            f"{attribute.name} is text of at most {_MAX_REASON} characters, got {value!r:.60}"
        )


_MAX_REASON = 1000


@final
@attrs.frozen
class ChargeOutcome:
    """A provider's answer to a charge.

    Attributes:
        status: approved, declined or pending.
        reference: the provider's own id of the payment, if it gave one (an
            identifier: printable, at most 200 characters).
        reason: why it was declined (``"insufficient_funds"``, at most 1,000
            characters); required for a decline, refused otherwise.
    """

    status: ChargeStatus = attrs.field(validator=instance_of(ChargeStatus))
    reference: str | None = attrs.field(
        default=None, converter=_plain, validator=optional_identifier("provider reference")
    )
    reason: str | None = attrs.field(default=None, converter=_plain, validator=_reason)

    def __attrs_post_init__(self) -> None:
        if (self.status is ChargeStatus.DECLINED) != bool(self.reason):
            raise ValidationError("a declined charge says why, and only a declined one")


class PaymentEventType(enum.Enum):
    """What a provider event reports about a charge."""

    SETTLED = "settled"
    """A pending charge went through, and its coins are credited."""
    FAILED = "failed"
    """A pending charge did not go through, and nothing is credited."""
    REFUNDED = "refunded"
    """The provider gave the money back, in whole or in part. The
    purchase's coins go back in proportion, and coins already spent become
    a debt."""
    CHARGED_BACK = "charged-back"
    """The buyer's bank took the money back, in whole or in part, as a refund does."""
    CHARGEBACK_REVERSED = "chargeback-reversed"
    """A chargeback was won, and what it took is restored."""


_MONEY_EVENTS = frozenset(
    {
        PaymentEventType.REFUNDED,
        PaymentEventType.CHARGED_BACK,
        PaymentEventType.CHARGEBACK_REVERSED,
    }
)


@final
@attrs.frozen
class PaymentEvent:
    """One event from a payment provider.

    Attributes:
        id: the provider's event id: an event seen again is a no-op.
        type: what happened.
        charge_id: the charge (purchase) it is about.
        occurred_at: when it happened at the provider.
        amount: the money refunded, charged back or restored; required for
            those types, refused for the others.
        reason: the provider's reason, if any (``"fraudulent"``; at most 1,000
            characters).
    """

    id: str = attrs.field(validator=identifier("event id"))
    type: PaymentEventType = attrs.field(validator=instance_of(PaymentEventType))
    charge_id: str = attrs.field(validator=identifier("charge id"))
    occurred_at: datetime = attrs.field(validator=aware("occurred_at"))
    amount: Money | None = attrs.field(default=None, validator=optional_instance_of(Money))
    reason: str | None = attrs.field(default=None, converter=_plain, validator=_reason)

    def __attrs_post_init__(self) -> None:
        if self.type in _MONEY_EVENTS:
            if self.amount is None or not self.amount.is_positive:
                raise InvalidAmountError(f"a {self.type.value} event needs a positive amount")
        elif self.amount is not None:
            raise ValidationError(f"a {self.type.value} event carries no amount")


@runtime_checkable
class PaymentGateway(Protocol):
    """A payment provider, as the economy uses it.

    :class:`~coinecon.adapters.fake_payments.FakePaymentGateway` is a
    scriptable one for tests, docs and demos; a host wraps its provider's
    SDK in a class with these two methods.
    """

    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        """Charge *request.amount* to *request.payment_method*.

        Must be idempotent by ``request.charge_id``: asked again (after a
        time-out, say), the provider answers about the same charge and never
        takes the money twice. May raise, or time out: the purchase then
        waits for an event or :meth:`CoinEconomy.reconcile
        <coinecon.economy.CoinEconomy.reconcile>`.
        """
        ...

    def lookup(self, charge_id: str) -> ChargeOutcome | None:
        """What became of the charge *charge_id*: its outcome now (a pending
        charge that settled since is approved), or ``None`` if the provider
        never received it."""
        ...
