"""The payout provider port: sending creators their money, and what follows.

A :class:`PayoutGateway` sends a payout to a creator's destination (an opaque
token from the provider: a bank account or a wallet on its side; bank details
never enter the library) and answers at once: sent (on its way), settled
(arrived already), or failed with a reason. What happens later arrives as
:class:`PayoutEvent` values, which the host passes to
:meth:`CoinEconomy.handle_payout_event
<coinecon.economy.CoinEconomy.handle_payout_event>` from its webhook: the
payout was sent, settled, failed, or reversed after it was sent. Events may
come twice, late or out of order; each is handled once, by its id.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Protocol, final, runtime_checkable

import attrs

from coinecon._checks import aware, identifier, instance_of, optional_identifier
from coinecon.errors import InvalidAmountError, ValidationError
from coinecon.money.money import Money

__all__ = [
    "PayoutEvent",
    "PayoutEventType",
    "PayoutGateway",
    "PayoutOutcome",
    "PayoutRequest",
    "PayoutStatus",
]

_MAX_REASON = 1000


class PayoutStatus(enum.Enum):
    """Where a payout stands."""

    REQUESTED = "requested"
    """Recorded, its money out of the creator's payable account; the
    provider has not answered yet (or could not be reached)."""
    SENT = "sent"
    """The provider took it; the money is on its way."""
    SETTLED = "settled"
    """The money arrived."""
    FAILED = "failed"
    """The provider refused it or it failed on the way; the money is back
    in the creator's payable account."""
    REVERSED = "reversed"
    """It came back after it was sent; the money is back in the creator's
    payable account."""

    @property
    def open(self) -> bool:
        """Whether the provider may still say something that changes it."""
        return self in (PayoutStatus.REQUESTED, PayoutStatus.SENT)

    @property
    def returned(self) -> bool:
        """Whether its money went back to the creator's payable account."""
        return self in (PayoutStatus.FAILED, PayoutStatus.REVERSED)


def _positive_money(_instance: object, attribute: Any, value: Any) -> None:
    if not isinstance(value, Money) or not value.is_positive:
        raise InvalidAmountError(
            f"a payout's {attribute.name} must be positive Money, got {value!r}"
        )


def _reason(_instance: object, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > _MAX_REASON):
        raise ValidationError(
            f"{attribute.name} is text of at most {_MAX_REASON} characters, got {value!r:.60}"
        )


@final
@attrs.frozen
class PayoutRequest:
    """What the economy asks a payout provider to send.

    Attributes:
        payout_id: the payout's id; the provider's idempotency key, so that
            asking twice never pays twice.
        creator: who is paid.
        destination: the provider's opaque token for where the money goes.
        amount: what is sent (the payout less its fee).
        description: a short text for the creator's statement.
    """

    payout_id: str = attrs.field(validator=identifier("payout id"))
    creator: str = attrs.field(validator=identifier("creator"))
    destination: str = attrs.field(validator=identifier("destination"))
    amount: Money = attrs.field(validator=_positive_money)
    description: str = attrs.field(validator=instance_of(str))


_ANSWERS = (PayoutStatus.SENT, PayoutStatus.SETTLED, PayoutStatus.FAILED)


@final
@attrs.frozen
class PayoutOutcome:
    """A provider's answer about a payout.

    Attributes:
        status: ``SENT``, ``SETTLED`` or ``FAILED``.
        reference: the provider's own id of the transfer, if it gave one.
        reason: why it failed (at most 1,000 characters); required for a
            failure, refused otherwise.
    """

    status: PayoutStatus = attrs.field(validator=instance_of(PayoutStatus))
    reference: str | None = attrs.field(
        default=None, validator=optional_identifier("provider reference")
    )
    reason: str | None = attrs.field(default=None, validator=_reason)

    def __attrs_post_init__(self) -> None:
        if self.status not in _ANSWERS:
            raise ValidationError(
                f"a provider answers sent, settled or failed, not {self.status.value}"
            )
        if (self.status is PayoutStatus.FAILED) != bool(self.reason):
            raise ValidationError("a failed payout says why, and only a failed one")


class PayoutEventType(enum.Enum):
    """What a provider event reports about a payout."""

    SENT = "sent"
    """The provider sent it (after an answer that said nothing yet)."""
    SETTLED = "settled"
    """The money arrived."""
    FAILED = "failed"
    """It failed; the money goes back to the creator's payable account."""
    REVERSED = "reversed"
    """It came back after it was sent or settled (a closed account); the
    money goes back to the creator's payable account."""


@final
@attrs.frozen
class PayoutEvent:
    """One event from a payout provider.

    Attributes:
        id: the provider's event id: an event seen again is a no-op.
        type: what happened.
        payout_id: the payout it is about.
        occurred_at: when it happened at the provider.
        reason: the provider's reason, if any.
    """

    id: str = attrs.field(validator=identifier("event id"))
    type: PayoutEventType = attrs.field(validator=instance_of(PayoutEventType))
    payout_id: str = attrs.field(validator=identifier("payout id"))
    occurred_at: datetime = attrs.field(validator=aware("occurred_at"))
    reason: str | None = attrs.field(default=None, validator=_reason)


@runtime_checkable
class PayoutGateway(Protocol):
    """A payout provider, as the economy uses it.

    :class:`~coinecon.adapters.fake_payouts.FakePayoutGateway` is a
    scriptable one for tests, docs and demos; a host wraps its provider's
    SDK in a class with these two methods.
    """

    def send(self, request: PayoutRequest) -> PayoutOutcome:
        """Send *request.amount* to *request.destination*.

        Must be idempotent by ``request.payout_id``: asked again, the
        provider answers about the same payout and never pays twice. May
        raise, or time out: the payout then waits for an event or
        :meth:`CoinEconomy.reconcile_payouts
        <coinecon.economy.CoinEconomy.reconcile_payouts>`.
        """
        ...

    def lookup(self, payout_id: str) -> PayoutOutcome | None:
        """What became of the payout *payout_id* now, or ``None`` if the
        provider never received it."""
        ...
