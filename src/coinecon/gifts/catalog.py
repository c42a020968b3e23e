"""The gift catalog: what viewers can send creators, at what price, when and where.

A catalog is a versioned value. Changing it (a new gift, a new price, a gift
withdrawn) makes the next version; a receipt keeps the price it was sent at
and the version it came from::

    >>> rose = Gift("rose", "Rose", price=1, display={"animation": "rose.webp"})
    >>> lion = Gift("lion", "Lion", price=29_999, regions={"US", "GB"}, min_age=18)
    >>> catalog = GiftCatalog([rose, lion])
    >>> catalog.version, catalog.get("rose").price
    (1, 1)
    >>> dearer = catalog.with_gift(attrs.evolve(rose, price=2))
    >>> dearer.version, dearer.get("rose").price, catalog.get("rose").price
    (2, 2, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, final

import attrs

from coinecon._checks import identifier
from coinecon.availability import ALWAYS, Availability
from coinecon.errors import (
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidTypeError,
    NotFoundError,
    ValidationError,
)
from coinecon.regions import region

__all__ = ["Gift", "GiftCatalog"]

MAX_NAME = 200
"""The longest gift name, in characters."""
MAX_PRICE = 10**12
"""The highest gift price, in coins."""

DisplayValue = str | int | bool | None
"""A value of a gift's display metadata: JSON scalars, no floats."""


def _name(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ValidationError(
            f"a gift's name is non-blank text of at most {MAX_NAME} characters, got {value!r}"
        )


def _price(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or not 0 < value <= MAX_PRICE:
        raise InvalidAmountError(
            f"a gift's price is a whole number of coins from 1 to {MAX_PRICE:,}, got {value!r}"
        )


def _display(value: Any) -> tuple[tuple[str, DisplayValue], ...]:
    if isinstance(value, tuple) and all(
        isinstance(pair, tuple) and len(pair) == 2 for pair in value
    ):  # as a gift keeps it (attrs.evolve passes it back)
        value = dict(value)
    if not isinstance(value, Mapping):
        raise InvalidTypeError(f"display must map names to values, got {value!r}")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidTypeError(f"a display key is non-empty text, got {key!r}")
        if isinstance(item, float):
            raise FloatNotAllowedError(f"display {key!r} is a float ({item!r}); use text or an int")
        if item is not None and type(item) not in (str, int, bool):
            raise InvalidTypeError(
                f"display {key!r} must be text, an int, a bool or None, got {item!r}"
            )
        pairs.append((key, item))
    return tuple(sorted(pairs))


def _regions(value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidTypeError(f"regions is a collection of region codes, got {value!r}")
    return frozenset(region(code) for code in value)


def _min_age(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None and (type(value) is not int or not 0 < value < 100):
        raise ValidationError(f"a gift's min_age is None or an int from 1 to 99, got {value!r}")


@final
@attrs.frozen
class Gift:
    """A gift viewers can send.

    Args:
        id: its identifier.
        name: what people see.
        price: its price in coins (a whole number, at least 1).
        display: what the host shows with it (``{"animation": "lion.webp",
            "kind": "sticker"}``): text, ints, bools or ``None``.
        availability: when it is offered (default: always).
        regions: the regions of senders it is offered to (empty: everywhere).
        min_age: the youngest sender it is offered to, known from the sender's
            age attestation: one attested of age at 18 may send a gift of
            ``min_age`` 18 or less; ``None``: any sender.
    """

    id: str = attrs.field(validator=identifier("gift id"))
    name: str = attrs.field(validator=_name)
    price: int = attrs.field(validator=_price)
    display: tuple[tuple[str, DisplayValue], ...] = attrs.field(factory=dict, converter=_display)
    availability: Availability = attrs.field(default=ALWAYS)
    regions: frozenset[str] = attrs.field(factory=frozenset, converter=_regions)
    min_age: int | None = attrs.field(default=None, validator=_min_age)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.availability, Availability):
            raise InvalidTypeError(
                f"availability must be an Availability, got {self.availability!r}"
            )

    def offered_in(self, region_code: str) -> bool:
        """Whether senders in *region_code* are offered it."""
        return not self.regions or region_code in self.regions

    def is_available_at(self, now: datetime) -> bool:
        """Whether it is offered at *now*."""
        return self.availability.is_open_at(now)

    def to_data(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "id": self.id,
            "name": self.name,
            "price": self.price,
            "display": dict(self.display),
            "availability": self.availability.to_data(),
            "regions": sorted(self.regions),
            "min_age": self.min_age,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Gift:
        """What :meth:`to_data` wrote."""
        return cls(
            data["id"],
            data["name"],
            data["price"],
            data["display"],
            Availability.from_data(data["availability"]),
            data["regions"],
            data["min_age"],
        )


def _gifts(value: Any) -> tuple[Gift, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidTypeError(f"gifts is a collection of Gift values, got {value!r}")
    gifts: dict[str, Gift] = {}
    for gift in value:
        if not isinstance(gift, Gift):
            raise InvalidTypeError(f"a catalog holds Gift values, got {gift!r}")
        if gift.id in gifts:
            raise ValidationError(f"gift {gift.id!r} is in the catalog twice")
        gifts[gift.id] = gift
    return tuple(gifts[key] for key in sorted(gifts))


def _version(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or value < 1:
        raise ValidationError(f"a catalog's version is an int from 1, got {value!r}")


@final
@attrs.frozen
class GiftCatalog:
    """The gifts on offer, at one version.

    Prices are in the coins of the economy that offers the catalog.

    Args:
        gifts: the gifts (ids unique), kept in id order.
        version: its version; :meth:`with_gift` and :meth:`without` make the
            next one.
    """

    gifts: tuple[Gift, ...] = attrs.field(converter=_gifts)
    version: int = attrs.field(default=1, validator=_version)

    def get(self, gift_id: str) -> Gift:
        """The gift with this id.

        Raises:
            NotFoundError: if the catalog has no such gift.
        """
        for gift in self.gifts:
            if gift.id == gift_id:
                return gift
        raise NotFoundError(f"no gift {gift_id!r} in the catalog (version {self.version})")

    def __contains__(self, gift_id: object) -> bool:
        return any(gift.id == gift_id for gift in self.gifts)

    def offered(self, region_code: str, now: datetime) -> list[Gift]:
        """The gifts offered to senders in *region_code* at *now*, by id."""
        code = region(region_code)
        return [g for g in self.gifts if g.offered_in(code) and g.is_available_at(now)]

    def with_gift(self, gift: Gift) -> GiftCatalog:
        """The next version, with *gift* added or replacing the gift of its id."""
        if not isinstance(gift, Gift):
            raise InvalidTypeError(f"gift must be a Gift, got {gift!r}")
        others = [g for g in self.gifts if g.id != gift.id]
        return GiftCatalog([*others, gift], self.version + 1)

    def without(self, gift_id: str) -> GiftCatalog:
        """The next version, without the gift *gift_id*.

        Raises:
            NotFoundError: if the catalog has no such gift.
        """
        self.get(gift_id)
        return GiftCatalog([g for g in self.gifts if g.id != gift_id], self.version + 1)
