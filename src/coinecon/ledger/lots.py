"""Lots: where a wallet's coins came from, what they cost, and when they expire.

A wallet's balance is held in lots, one per credit: purchased coins (with the
money paid for them), bonus coins, promotional coins (which may expire) and
adjustments. A spend consumes lots in a stated :class:`SpendOrder` and records
a :class:`LotConsumption` for each lot it touched, so that revenue can be
recognised and a later chargeback can find its coins::

    >>> from datetime import datetime, timezone
    >>> from coinecon import Money, Unit
    >>> from coinecon.ledger.journal import AccountKey
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> wallet = AccountKey.wallet("alice", Unit("COIN"))
    >>> bought = Lot.new("lot-1", wallet, LotOrigin.PURCHASE, 100, t0, "tx-1",
    ...                  value=Money("0.99", "USD"))
    >>> bonus = Lot.new("lot-2", wallet, LotOrigin.BONUS, 10, t0, "tx-1")
    >>> [(c.lot_id, c.amount, c.value) for c in plan_spend([bought, bonus], 50)]
    [('lot-2', 10, None), ('lot-1', 40, Money('0.39', 'USD'))]
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, final

import attrs

from coinecon._checks import aware, identifier, instance_of, optional_aware, optional_instance_of
from coinecon.clock import require_aware
from coinecon.errors import InsufficientFunds, InvalidAmountError, InvalidTypeError
from coinecon.ledger.journal import AccountKey, AccountKind
from coinecon.money._exact import shown
from coinecon.money.money import Money, check_range

_new = object.__new__

__all__ = [
    "MERGE_WINDOW",
    "Lot",
    "LotConsumption",
    "LotOrigin",
    "SpendOrder",
    "covering",
    "merge_candidate",
    "plan_spend",
    "take_from_lots",
]


class LotOrigin(enum.Enum):
    """Where a lot's coins came from."""

    PURCHASE = "purchase"
    """Bought with money; the lot carries the money paid."""
    BONUS = "bonus"
    """Bonus coins that came with a package."""
    PROMOTION = "promotion"
    """Coins granted by a promotion; often expire."""
    ADJUSTMENT = "adjustment"
    """Coins credited by support staff."""


def _positive(_instance: object, attribute: Any, value: Any) -> None:
    if type(value) is not int:
        raise InvalidTypeError(f"lot {attribute.name} must be an int, got {value!r}")
    if value <= 0:
        raise InvalidAmountError(f"lot {attribute.name} must be positive, got {value}")
    check_range(value, f"lot {attribute.name}")


def _value(value: object) -> None:
    if value is not None and not isinstance(value, Money):
        raise InvalidTypeError(f"a consumption's value must be Money or None, got {value!r}")
    _not_negative(value, "a consumption's value")


def _not_negative(value: Money | None, what: str) -> None:
    if value is not None and value.minor < 0:
        raise InvalidAmountError(f"{what} must not be negative, got {value}")


def _check_lot(lot: Lot) -> None:
    for name in ("remaining", "value_recognised"):
        if type(getattr(lot, name)) is not int:
            raise InvalidTypeError(f"lot {name} must be an int, got {getattr(lot, name)!r}")
    if lot.account.kind is not AccountKind.WALLET:
        raise InvalidTypeError(f"lots belong to wallets, not to {lot.account}")
    if not 0 <= lot.remaining <= lot.amount:
        raise InvalidAmountError(f"lot remaining {lot.remaining} is outside 0..{lot.amount}")
    _not_negative(lot.value, "a lot's value")
    value_minor = 0 if lot.value is None else lot.value.minor
    if not 0 <= lot.value_recognised <= value_minor:
        raise InvalidAmountError(
            f"lot value recognised {lot.value_recognised} is outside 0..{value_minor}"
        )
    if lot.expires_at is not None and lot.expires_at <= lot.created_at:
        raise InvalidAmountError("a lot must expire after it was created")


def _in_utc(value: Any) -> Any:
    """An aware time as the same instant in UTC; anything else as it is, for
    the validator to judge. Two times of one zone compare by their wall
    clocks (an hour apart across a clock change may compare equal), so the
    times a lot keeps are UTC, and compare by instant with any other."""
    if type(value) is datetime and value.tzinfo is not UTC and value.utcoffset() is not None:
        return value.astimezone(UTC)
    return value


@final
@attrs.frozen
class Lot:
    """A slice of a wallet's coins with its origin, money value and expiry.

    Attributes:
        id: unique lot id.
        account: the wallet holding the coins.
        origin: where the coins came from.
        amount: coins credited.
        remaining: coins not yet spent or expired.
        created_at: when the lot was credited.
        transaction_id: the transaction that credited it.
        value: the money paid for the whole lot, for purchased coins.
        value_recognised: minor units of :attr:`value` already recognised as
            revenue (spent or expired coins).
        expires_at: when the remaining coins expire, if they do.
    """

    id: str = attrs.field(validator=identifier("lot id"))
    account: AccountKey = attrs.field(validator=instance_of(AccountKey))
    origin: LotOrigin = attrs.field(validator=instance_of(LotOrigin))
    amount: int = attrs.field(validator=_positive)
    remaining: int
    created_at: datetime = attrs.field(converter=_in_utc, validator=aware("created_at"))
    transaction_id: str = attrs.field(validator=identifier("transaction id"))
    value: Money | None = attrs.field(default=None, validator=optional_instance_of(Money))
    value_recognised: int = 0
    expires_at: datetime | None = attrs.field(
        default=None, converter=_in_utc, validator=optional_aware("expires_at")
    )

    def __attrs_post_init__(self) -> None:
        _check_lot(self)

    @classmethod
    def new(
        cls,
        id: str,  # noqa: A002 (the domain's name for it)
        account: AccountKey,
        origin: LotOrigin,
        amount: int,
        created_at: datetime,
        transaction_id: str,
        *,
        value: Money | None = None,
        expires_at: datetime | None = None,
    ) -> Lot:
        """A fresh, untouched lot."""
        return cls(
            id=id,
            account=account,
            origin=origin,
            amount=amount,
            remaining=amount,
            created_at=created_at,
            transaction_id=transaction_id,
            value=value,
            expires_at=expires_at,
        )

    @property
    def consumed(self) -> int:
        """Coins spent or expired from this lot."""
        return self.amount - self.remaining

    @property
    def remaining_value(self) -> Money | None:
        """The part of :attr:`value` not yet recognised (deferred revenue)."""
        if self.value is None:
            return None
        return Money.from_minor(self.value.minor - self.value_recognised, self.value.currency)

    def is_expired(self, now: datetime) -> bool:
        """Whether the lot has lapsed at *now*: it expires, at or before *now*.

        A lapsed lot's remaining coins are out of the wallet's balance and are
        never spent, from that instant on, even before
        :meth:`Wallets.expire() <coinecon.ledger.wallets.Wallets.expire>` (or
        the next command on the wallet) records their expiry.

        Raises:
            NaiveDatetimeError: if *now* has no time zone.
            InvalidTypeError: if *now* is not a ``datetime``.
        """
        if type(now) is not datetime or now.tzinfo is not UTC:  # UTC: the usual case
            require_aware(now, "now")
        return self.expires_at is not None and self.expires_at <= now

    def take(self, coins: int) -> tuple[Lot, LotConsumption]:
        """Consume *coins* from the lot; return the lot after and the record.

        The money value consumed is the value of all coins consumed so far,
        rounded down (:attr:`Rounding.FLOOR <coinecon.money.rounding.Rounding.FLOOR>`),
        minus what was already recognised. Consuming a whole lot, in any number
        of steps, therefore recognises exactly its value.
        """
        if type(coins) is not int or not 0 < coins <= self.remaining:
            raise InvalidAmountError(
                f"cannot take {shown(coins)} coins from a lot of {self.remaining}"
            )
        remaining = self.remaining - coins
        recognised = self.value_recognised
        part = None
        value = self.value
        if value is not None:
            # Floor division of ints is Rounding.FLOOR. The total is within
            # 0..value, so the part is in range; it is negative only if the lot
            # says it recognised more than its consumed coins are worth.
            total = value.minor * (self.amount - remaining) // self.amount
            part = Money._unchecked(total - recognised, value.currency)  # noqa: SLF001
            if total < recognised:
                raise InvalidAmountError(f"a consumption's value must not be negative, got {part}")
            recognised = total
        return self._with(remaining, recognised), _consumption(self.id, coins, part)

    def _with(self, remaining: int, recognised: int) -> Lot:
        """This lot with *remaining* coins and *recognised* value, unchecked:
        only :meth:`take` calls it, with values it computed within bounds."""
        after = _new(Lot)
        (
            set_id,
            set_account,
            set_origin,
            set_amount,
            set_remaining,
            set_created_at,
            set_transaction_id,
            set_value,
            set_value_recognised,
            set_expires_at,
        ) = _LOT_SETTERS
        set_id(after, self.id)
        set_account(after, self.account)
        set_origin(after, self.origin)
        set_amount(after, self.amount)
        set_remaining(after, remaining)
        set_created_at(after, self.created_at)
        set_transaction_id(after, self.transaction_id)
        set_value(after, self.value)
        set_value_recognised(after, recognised)
        set_expires_at(after, self.expires_at)
        return after


# Each slot's own setter: several times faster than object.__setattr__, which
# looks the slot up on every call. For the values this module computed itself.
_LOT_SETTERS = tuple(
    Lot.__dict__[name].__set__
    for name in (
        "id",
        "account",
        "origin",
        "amount",
        "remaining",
        "created_at",
        "transaction_id",
        "value",
        "value_recognised",
        "expires_at",
    )
)


@final
@attrs.frozen
class LotConsumption:
    """The coins one transaction took from one lot.

    Attributes:
        lot_id: the lot.
        amount: coins taken.
        value: the money value of those coins (purchased lots), else ``None``.
    """

    lot_id: str = attrs.field(validator=identifier("lot id"))
    amount: int = attrs.field(validator=_positive)
    value: Money | None = attrs.field(default=None, validator=lambda _i, _a, v: _value(v))


def _consumption(lot_id: str, amount: int, value: Money | None) -> LotConsumption:
    """A :class:`LotConsumption` of what :meth:`Lot.take` computed, unchecked:
    its lot's id, a positive amount and a non-negative value."""
    consumption = _new(LotConsumption)
    _set_consumed_lot(consumption, lot_id)
    _set_consumed_amount(consumption, amount)
    _set_consumed_value(consumption, value)
    return consumption


_set_consumed_lot, _set_consumed_amount, _set_consumed_value = (
    LotConsumption.__dict__[name].__set__ for name in ("lot_id", "amount", "value")
)


class SpendOrder(enum.Enum):
    """The order in which a spend consumes a wallet's lots. Ties always fall
    back to the oldest lot first, then the lot id."""

    EXPIRING_FIRST = "expiring-first"
    """Lots that expire, soonest first; then bonus, promotion and adjustment
    lots; then purchased lots; oldest first within each. Protects the buyer
    from losing coins and spends paid coins last (the default)."""
    OLDEST_FIRST = "oldest-first"
    """Strictly oldest first, whatever the origin."""
    PURCHASED_FIRST = "purchased-first"
    """Purchased lots first (recognising revenue early), then the others in
    the ``EXPIRING_FIRST`` order."""

    def sort(self, lots: Iterable[Lot]) -> list[Lot]:
        """Return *lots* in the order this policy consumes them."""
        lots = list(lots)
        if len(lots) < 2:
            return lots
        return sorted(lots, key=self.key)

    def key(self, lot: Lot) -> tuple[Any, ...]:
        """The sort key of *lot* in this order.

        Lots sorted by it are in the order a spend takes them. Stores keep an
        index in this order (the SQLite adapter indexes the same
        expressions), so that a spend reads a wallet's lots only until its
        amount is covered::

            >>> from datetime import datetime, timedelta, timezone
            >>> from coinecon import Unit
            >>> from coinecon.ledger.journal import AccountKey
            >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
            >>> wallet = AccountKey.wallet("alice", Unit("COIN"))
            >>> promo = Lot.new("p", wallet, LotOrigin.PROMOTION, 5, t0, "tx-1",
            ...                 expires_at=t0 + timedelta(days=1))
            >>> SpendOrder.OLDEST_FIRST.key(promo)[-1], SpendOrder.EXPIRING_FIRST.key(promo)[:2]
            ('p', (0, 0))

        ``OLDEST_FIRST``: ``(created_at, id)``. The others:
        ``(group, subgroup, expires_at or created_at, created_at, id)``, where
        for ``EXPIRING_FIRST`` the group is 0 for a lot that expires and the
        subgroup 1 for a purchased lot that does not; for
        ``PURCHASED_FIRST`` the group is 0 for a purchased lot and the
        subgroup 0 for a lot that expires.
        """
        expires = lot.expires_at
        created = lot.created_at
        if self is SpendOrder.OLDEST_FIRST:
            return (created, lot.id)
        paid = lot.origin is LotOrigin.PURCHASE
        if self is SpendOrder.EXPIRING_FIRST:
            # Expiring lots by expiry whatever their origin; then the
            # lasting ones, bonus and the like before purchased.
            group = 0 if expires is not None else 1
            subgroup = 1 if paid and expires is None else 0
        else:
            group = 0 if paid else 1
            subgroup = 0 if expires is not None else 1
        return (group, subgroup, created if expires is None else expires, created, lot.id)


MERGE_WINDOW = 8
"""How many of a wallet's newest lasting free lots (that neither expire nor
were bought) a credit looks among for a lot to merge into
(:meth:`LotRepository.mergeable <coinecon.ports.LotRepository.mergeable>`)."""


def merge_candidate(lots: Iterable[Lot], origin: LotOrigin) -> Lot | None:
    """What :meth:`LotRepository.mergeable <coinecon.ports.LotRepository.mergeable>`
    returns from *lots*, the open lots of one wallet: among the newest
    :data:`MERGE_WINDOW` of those that neither expire nor were bought (by
    creation time, then id), the newest of *origin*, or ``None``."""
    free = [
        lot
        for lot in lots
        if lot.remaining > 0 and lot.expires_at is None and lot.origin is not LotOrigin.PURCHASE
    ]
    free.sort(key=_newest, reverse=True)
    return next((lot for lot in free[:MERGE_WINDOW] if lot.origin is origin), None)


def _newest(lot: Lot) -> tuple[datetime, str]:
    return lot.created_at, lot.id


def covering(lots: Iterable[Lot], coins: int, now: datetime) -> list[Lot]:
    """The first of *lots* (in spend order) whose remaining coins reach *coins*.

    It passes over the lots that have lapsed at *now* or hold nothing, and
    returns all of them when they hold fewer. It reads *lots* no further: a
    store gives it a cursor over an index in spend order, and a spend of one
    coin reads one lot however many the wallet holds::

        >>> from datetime import datetime, timezone
        >>> from coinecon import Unit
        >>> from coinecon.ledger.journal import AccountKey
        >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> wallet = AccountKey.wallet("alice", Unit("COIN"))
        >>> lots = (Lot.new(f"lot-{n}", wallet, LotOrigin.BONUS, 10, t0, "tx") for n in range(5))
        >>> [lot.id for lot in covering(lots, 15, t0)]
        ['lot-0', 'lot-1']
    """
    found: list[Lot] = []
    total = 0
    for lot in lots:
        remaining = lot.remaining
        expires = lot.expires_at
        if remaining <= 0 or (expires is not None and expires <= now):
            continue
        found.append(lot)
        total += remaining
        if total >= coins:
            break
    return found


def plan_spend(
    lots: Sequence[Lot],
    coins: int,
    order: SpendOrder = SpendOrder.EXPIRING_FIRST,
    *,
    now: datetime | None = None,
) -> list[LotConsumption]:
    """Decide which lots a spend of *coins* consumes, in *order*.

    Lots with nothing remaining are skipped, and so, given *now*, are lots
    that have lapsed at *now* (:meth:`Lot.is_expired`: their expiry is at or
    before *now*): lapsed coins are never spent. The plan is returned; the
    caller applies it with :meth:`Lot.take`::

        >>> from datetime import datetime, timedelta, timezone
        >>> from coinecon import Unit
        >>> from coinecon.ledger.journal import AccountKey
        >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> wallet = AccountKey.wallet("alice", Unit("COIN"))
        >>> promo = Lot.new("promo", wallet, LotOrigin.PROMOTION, 30, t0, "tx-1",
        ...                 expires_at=t0 + timedelta(days=1))
        >>> bonus = Lot.new("bonus", wallet, LotOrigin.BONUS, 30, t0, "tx-2")
        >>> [c.lot_id for c in plan_spend([promo, bonus], 10)]
        ['promo']
        >>> [c.lot_id for c in plan_spend([promo, bonus], 10, now=t0 + timedelta(days=1))]
        ['bonus']

    Raises:
        InsufficientFunds: if the lots (those not lapsed, given *now*) hold
            fewer than *coins*.
        NaiveDatetimeError: if *now* has no time zone.
    """
    return [consumption for _lot, consumption in take_from_lots(lots, coins, order, now=now)]


def take_from_lots(
    lots: Sequence[Lot],
    coins: int,
    order: SpendOrder = SpendOrder.EXPIRING_FIRST,
    *,
    now: datetime | None = None,
) -> list[tuple[Lot, LotConsumption]]:
    """Like :func:`plan_spend`, but return each consumed lot as it is after."""
    if type(coins) is not int or coins <= 0:
        raise InvalidAmountError(f"coins to spend must be a positive int, got {coins!r}")
    if not isinstance(order, SpendOrder):
        raise InvalidTypeError(f"order must be a SpendOrder, got {type(order).__name__} {order!r}")
    if now is None:
        unspent = [lot for lot in lots if lot.remaining > 0]
    else:
        if type(now) is not datetime or now.tzinfo is not UTC:  # UTC: the usual case
            require_aware(now, "now")
        # A lapsed lot is out of reach even before the sweep records its expiry.
        unspent = [
            lot
            for lot in lots
            if lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > now)
        ]
    if len(unspent) == 1 and unspent[0].remaining >= coins:  # the usual case: one lot to take
        return [unspent[0].take(coins)]
    available = sum([lot.remaining for lot in unspent])
    if available < coins:
        account = lots[0].account if lots else None
        raise InsufficientFunds(
            f"insufficient funds: lots hold {available}, {coins - available} short of {coins}",
            account=account,
            balance=available,
            requested=coins,
        )
    taken: list[tuple[Lot, LotConsumption]] = []
    left = coins
    for lot in order.sort(unspent):
        if left == 0:
            break
        after, consumption = lot.take(min(left, lot.remaining))
        taken.append((after, consumption))
        left -= consumption.amount
    return taken
