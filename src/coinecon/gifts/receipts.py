"""What a gift's sender gets back: the receipt, and the policy gifts follow."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from fractions import Fraction
from typing import Any, final

import attrs

from coinecon.errors import InvalidTypeError, ValidationError
from coinecon.ledger.idempotency import canonical_json
from coinecon.money.money import Money
from coinecon.money.rate import Rate
from coinecon.money.units import Unit, UnitAmount
from coinecon.regions import region

__all__ = ["GiftPolicy", "GiftReceipt"]

MAX_QUANTITY = 10_000
"""The most gifts one command sends, unless the policy says fewer."""


def _regions(value: Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Collection):
        raise InvalidTypeError(f"regions is a collection of region codes, got {value!r}")
    return frozenset(region(code) for code in value)


def _bool(_instance: object, attribute: Any, value: Any) -> None:
    if type(value) is not bool:
        raise InvalidTypeError(f"{attribute.name} is a bool, got {value!r}")


def _quantity(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or not 0 < value <= MAX_QUANTITY:
        raise ValidationError(f"max_quantity is an int from 1 to {MAX_QUANTITY:,}, got {value!r}")


MAX_TALLIES = 1024
"""The most tallies a creator's gifts are kept in."""


def _tallies(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or not 0 < value <= MAX_TALLIES:
        raise ValidationError(f"tallies is an int from 1 to {MAX_TALLIES:,}, got {value!r}")


@final
@attrs.frozen
class GiftPolicy:
    """Who may send gifts to whom.

    Attributes:
        regions: where gifting is offered, to senders and to creators
            (``None``, the default: everywhere).
        allow_self_gift: whether a holder may send a gift to themselves
            (refused by default: it would turn their own coins into their
            own earnings).
        creator_must_be_adult: whether a creator needs an age attestation
            that they are of age in their region to receive gifts (the
            default).
        max_quantity: the most gifts one command sends.
        tallies: in how many records each creator's carry, gift count and
            held earnings are kept (1, the default: one). A gift updates the
            tally its sender falls in (a stable hash of the sender), so all
            of one sender's gifts to a creator meet in one tally. On a store
            that locks rows (PostgreSQL), more tallies let the gifts of many
            senders to one popular creator commit side by side instead of
            one after another. Each tally carries its own fraction: what a
            creator is owed beyond their earnings is the sum of the
            tallies' carries (less than *tallies* units), still exact, and
            paid as later gifts to each tally complete a unit. Raise it
            when a creator becomes hot; never lower it (the tallies above the
            new count would no longer be read).
    """

    regions: frozenset[str] | None = attrs.field(default=None, converter=_regions)
    allow_self_gift: bool = attrs.field(default=False, validator=_bool)
    creator_must_be_adult: bool = attrs.field(default=True, validator=_bool)
    max_quantity: int = attrs.field(default=100, validator=_quantity)
    tallies: int = attrs.field(default=1, validator=_tallies)


def _ratio(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


@final
@attrs.frozen
class GiftReceipt:
    """What a gift cost its sender and earned its creator.

    Attributes:
        id: the gift's id (its ledger transaction's id).
        sender: who sent it.
        creator: who received it.
        gift: the gift's id.
        name: the gift's name when it was sent.
        quantity: how many were sent at once.
        price: the price of one, in coins, when it was sent.
        catalog_version: the catalog's version it was priced at.
        coins: what the sender paid (``price * quantity``).
        context: where it was sent (the host's stream or chat id).
        rate: the creator's share that applied.
        creator_share: the creator's exact share of the coins.
        platform_share: the platform's exact share, the rest.
        earned: the creator units credited to the creator by this gift.
        carry: what the creator is owed beyond, carried to their next gift.
        value: the money the coins were bought for, now recognised as
            revenue, per currency (coins given free are worth nothing).
        balance: the sender's coins after.
        sent_at: when.
    """

    id: str
    sender: str
    creator: str
    gift: str
    name: str
    quantity: int
    price: int
    catalog_version: int
    coins: UnitAmount
    context: str
    rate: Rate
    creator_share: Fraction
    platform_share: Fraction
    earned: UnitAmount
    carry: Fraction
    value: tuple[Money, ...]
    balance: UnitAmount
    sent_at: datetime

    def to_data(self) -> dict[str, Any]:
        """As JSON (exact fractions as ``"numerator/denominator"``, money
        in minor units by currency)."""
        return {
            "id": self.id,
            "sender": self.sender,
            "creator": self.creator,
            "gift": self.gift,
            "name": self.name,
            "quantity": self.quantity,
            "price": self.price,
            "catalog_version": self.catalog_version,
            "coins": self.coins.amount,
            "unit": self.coins.unit.code,
            "context": self.context,
            "rate": _ratio(self.rate.fraction),
            "creator_share": _ratio(self.creator_share),
            "platform_share": _ratio(self.platform_share),
            "earned": self.earned.amount,
            "creator_unit": self.earned.unit.code,
            "carry": _ratio(self.carry),
            "value": {money.currency.code: money.minor for money in self.value},
            "balance": self.balance.amount,
            "sent_at": self.sent_at,
        }

    def to_json(self) -> str:
        """As canonical JSON."""
        return canonical_json(self.to_data())

    @classmethod
    def from_data(cls, data: Mapping[str, Any], unit: Unit, creator_unit: Unit) -> GiftReceipt:
        """What :meth:`to_data` wrote, its coins in *unit* and earnings in
        *creator_unit*."""
        return cls(
            data["id"],
            data["sender"],
            data["creator"],
            data["gift"],
            data["name"],
            data["quantity"],
            data["price"],
            data["catalog_version"],
            unit(data["coins"]),
            data["context"],
            Rate(Fraction(data["rate"])),
            Fraction(data["creator_share"]),
            Fraction(data["platform_share"]),
            creator_unit(data["earned"]),
            Fraction(data["carry"]),
            tuple(Money.from_minor(minor, code) for code, minor in sorted(data["value"].items())),
            unit(data["balance"]),
            datetime.fromisoformat(data["sent_at"]),
        )
