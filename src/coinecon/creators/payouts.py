"""Payouts: the rules that turn what a creator is owed into money sent, and
the record of each payout.

A :class:`PayoutPolicy` says when earnings may be converted (after a holding
period), the least a payout may be, the most paid out per period, when
payouts may be asked for, and the fee a payout pays::

    >>> from datetime import timedelta
    >>> from coinecon import Fee, Money, Rate
    >>> from coinecon.recharge import Budget, BudgetPeriod
    >>> policy = PayoutPolicy(
    ...     holding=timedelta(days=7),
    ...     minimum=[Money("10.00", "USD")],
    ...     caps=[Budget(Money("1000.00", "USD"), BudgetPeriod.DAILY, "UTC")],
    ...     fee=Fee(Rate("1%"), fixed=Money("0.25", "USD")),
    ... )
    >>> policy.fee_on(Money("100.00", "USD"))
    Money('1.25', 'USD')
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any, final

import attrs
from dateutil.relativedelta import relativedelta

from coinecon.availability import ALWAYS, Availability
from coinecon.creators.payout_gateway import PayoutStatus
from coinecon.errors import InvalidTypeError, ValidationError
from coinecon.ledger.idempotency import canonical_json
from coinecon.money.money import Currency, Money
from coinecon.pricing.fees import Fee
from coinecon.recharge.limits import Budget
from coinecon.records import Record

__all__ = ["KIND", "OPEN_KIND", "Payout", "PayoutPolicy"]

KIND = "payout"
"""The record kind of payouts (owned by their creator)."""
OPEN_KIND = "open-payout"
"""The record kind that marks a payout the provider may still change."""


def _holding(_instance: object, _attribute: object, value: Any) -> None:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValidationError(f"a holding period is not negative, got {value}")
        return
    if not isinstance(value, relativedelta):
        raise InvalidTypeError(f"holding is a timedelta or relativedelta, got {value!r}")
    probe = datetime(2000, 1, 1, tzinfo=UTC)
    if probe + value < probe:
        raise ValidationError(f"a holding period is not negative, got {value}")


def _amounts(value: Any) -> tuple[Money, ...]:
    if isinstance(value, Money):
        value = [value]
    if isinstance(value, str) or not isinstance(value, list | tuple | frozenset | set):
        raise InvalidTypeError(f"amounts are a list of Money, one per currency, got {value!r}")
    amounts: dict[str, Money] = {}
    for money in value:
        if not isinstance(money, Money) or not money.is_positive:
            raise ValidationError(f"an amount here is positive Money, got {money!r}")
        if money.currency.code in amounts:
            raise ValidationError(f"two amounts in {money.currency.code}")
        amounts[money.currency.code] = money
    return tuple(amounts[code] for code in sorted(amounts))


def _caps(value: Any) -> tuple[Budget, ...]:
    if isinstance(value, Budget):
        value = [value]
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidTypeError(f"caps are a list of Budget values, one per currency, got {value!r}")
    caps: dict[str, Budget] = {}
    for cap in value:
        if not isinstance(cap, Budget):
            raise InvalidTypeError(f"a cap is a Budget (an amount per period), got {cap!r}")
        code = cap.amount.currency.code
        if code in caps:
            raise ValidationError(f"two caps in {code}")
        caps[code] = cap
    return tuple(caps[code] for code in sorted(caps))


def _instance(kind: type) -> Any:
    def check(_instance: object, attribute: Any, value: Any) -> None:
        if not isinstance(value, kind):
            raise InvalidTypeError(f"{attribute.name} must be a {kind.__name__}, got {value!r}")

    return check


@final
@attrs.frozen
class PayoutPolicy:
    """When and how creators are paid.

    Args:
        holding: how long after a gift its earnings are held (they may not
            be converted, and so not paid out, and a chargeback may claw them
            back, see ``clawback``). Earnings are released at the UTC
            midnight on or after the gift's time plus *holding*. Default:
            none.
        minimum: the least a payout may be, per currency.
        caps: the most paid out per period, per currency (a
            :class:`~coinecon.recharge.limits.Budget`: an amount per day,
            week or month in a time zone); payouts that did not fail count.
        schedule: when payouts may be asked for (default: always).
        fee: what a payout costs the creator, out of the amount paid out
            (default: nothing).
        clawback: whether a chargeback of coins already gifted takes back
            the earnings those gifts made that are still held (``True``), or
            the platform bears the loss (``False``, the default).
    """

    holding: timedelta | relativedelta = attrs.field(default=timedelta(0), validator=_holding)
    minimum: tuple[Money, ...] = attrs.field(default=(), converter=_amounts)
    caps: tuple[Budget, ...] = attrs.field(default=(), converter=_caps)
    schedule: Availability = attrs.field(default=ALWAYS, validator=_instance(Availability))
    fee: Fee = attrs.field(factory=Fee, validator=_instance(Fee))
    clawback: bool = attrs.field(default=False)

    def __attrs_post_init__(self) -> None:
        if type(self.clawback) is not bool:
            raise InvalidTypeError(f"clawback is a bool, got {self.clawback!r}")

    @property
    def holds(self) -> bool:
        """Whether earnings are held at all."""
        return self.holding != timedelta(0) and self.holding != relativedelta()

    def released_at(self, sent_at: datetime) -> datetime:
        """When the earnings of a gift sent at *sent_at* are released."""
        due = (sent_at + self.holding).astimezone(UTC)
        midnight = datetime.combine(due.date(), time(), tzinfo=UTC)
        return midnight if midnight == due else midnight + timedelta(days=1)

    def least(self, currency: Currency) -> Money | None:
        """The least payout in *currency*, if the policy sets one."""
        return next((m for m in self.minimum if m.currency == currency), None)

    def cap(self, currency: Currency) -> Budget | None:
        """The cap on payouts in *currency* per period, if the policy sets one."""
        return next((c for c in self.caps if c.amount.currency == currency), None)

    def fee_on(self, amount: Money) -> Money:
        """The fee a payout of *amount* pays."""
        return self.fee.amount(amount)


def _money(minor: int, currency: str) -> Money:
    return Money.from_minor(minor, currency)


@final
@attrs.frozen
class Payout:
    """One payout to a creator.

    Attributes:
        id: its id (the provider's idempotency key).
        creator: who is paid.
        amount: what it took from the creator's payable account.
        fee: what it cost them, out of *amount*.
        destination: the provider's token for where the money goes.
        status: where it stands.
        idempotency_key: the key of the request that made it.
        created_at: when it was asked for.
        updated_at: when it last changed.
        reference: the provider's id of the transfer, once it gave one.
        reason: why it failed or came back.
        transaction_id: the transaction that took the money out.
        returned_by: the transaction that gave it back, if one did.
        version: the version of its record as read (0: not stored yet);
            not part of its value.
    """

    id: str
    creator: str
    amount: Money
    fee: Money
    destination: str
    status: PayoutStatus
    idempotency_key: str
    created_at: datetime
    updated_at: datetime
    reference: str | None = None
    reason: str | None = None
    transaction_id: str | None = None
    returned_by: str | None = None
    version: int = attrs.field(default=0, eq=False)

    @property
    def net(self) -> Money:
        """What the creator receives, the amount less the fee."""
        return self.amount - self.fee

    def record(self) -> Record:
        """This payout as its record, at the version after the one read."""
        return Record(
            KIND,
            self.id,
            self.creator,
            self.created_at,
            self.version + 1,
            canonical_json(self.to_data()),
        )

    def to_data(self) -> dict[str, Any]:
        """As JSON (money in minor units)."""
        return {
            "creator": self.creator,
            "currency": self.amount.currency.code,
            "amount": self.amount.minor,
            "fee": self.fee.minor,
            "destination": self.destination,
            "status": self.status.value,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "reference": self.reference,
            "reason": self.reason,
            "transaction_id": self.transaction_id,
            "returned_by": self.returned_by,
        }

    @classmethod
    def from_record(cls, record: Record) -> Payout:
        """The payout its record holds."""
        data: Mapping[str, Any] = record.data
        currency = data["currency"]
        return cls(
            record.id,
            data["creator"],
            _money(data["amount"], currency),
            _money(data["fee"], currency),
            data["destination"],
            PayoutStatus(data["status"]),
            data["idempotency_key"],
            datetime.fromisoformat(data["created_at"]),
            datetime.fromisoformat(data["updated_at"]),
            data["reference"],
            data["reason"],
            data["transaction_id"],
            data["returned_by"],
            record.version,
        )
