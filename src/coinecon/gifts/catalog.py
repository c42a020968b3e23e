"""The catalog: the gifts viewers send creators, and the store items holders
buy for their own use, at what price, when and where.

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
from typing import Any, TypeVar, final

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

__all__ = ["Gift", "GiftCatalog", "Offer", "StoreItem"]

_T = TypeVar("_T")

MAX_NAME = 200
"""The longest gift name, in characters."""
MAX_PRICE = 10**12
"""The highest gift price, in coins."""

DisplayValue = str | int | bool | None
"""A value of a gift's display metadata: JSON scalars, no floats."""


def _name(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ValidationError(
            f"a name is non-blank text of at most {MAX_NAME} characters, got {value!r}"
        )


def _price(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or not 0 < value <= MAX_PRICE:
        raise InvalidAmountError(
            f"a price is a whole number of coins from 1 to {MAX_PRICE:,}, got {value!r}"
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
        raise ValidationError(f"a min_age is None or an int from 1 to 99, got {value!r}")


class Offer:
    """What gifts and store items share: an id, a name, a price in coins,
    display metadata, when and where they are offered, and to whom (the
    base of :class:`Gift` and :class:`StoreItem`; not made on its own)."""

    __slots__ = ()

    id: str
    name: str
    price: int
    display: tuple[tuple[str, DisplayValue], ...]
    availability: Availability
    regions: frozenset[str]
    min_age: int | None

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.availability, Availability):
            raise InvalidTypeError(
                f"availability must be an Availability, got {self.availability!r}"
            )

    def offered_in(self, region_code: str) -> bool:
        """Whether holders in *region_code* are offered it."""
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

    @staticmethod
    def _fields(data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": data["id"],
            "name": data["name"],
            "price": data["price"],
            "display": data["display"],
            "availability": Availability.from_data(data["availability"]),
            "regions": data["regions"],
            "min_age": data["min_age"],
        }


@final
@attrs.frozen
class Gift(Offer):
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

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Gift:
        """What :meth:`~Offer.to_data` wrote."""
        return cls(**cls._fields(data))


def _bool(_instance: object, attribute: Any, value: Any) -> None:
    if type(value) is not bool:
        raise InvalidTypeError(f"{attribute.name} is a bool, got {value!r}")


@final
@attrs.frozen
class StoreItem(Offer):
    """Something holders buy with coins for their own use: a sticker, an
    emoticon, a badge. Only the platform earns from it.

    Args:
        id: its identifier.
        name: what people see.
        price: its price in coins (a whole number, at least 1).
        display: what the host shows with it.
        availability: when it is offered (default: always).
        regions: the regions of buyers it is offered to (empty: everywhere).
        min_age: the youngest buyer it is offered to (as for a gift).
        consumable: whether each use uses one up (a sticker sent in a chat),
            or it is kept once bought (a badge): bought once only.
    """

    id: str = attrs.field(validator=identifier("item id"))
    name: str = attrs.field(validator=_name)
    price: int = attrs.field(validator=_price)
    display: tuple[tuple[str, DisplayValue], ...] = attrs.field(factory=dict, converter=_display)
    availability: Availability = attrs.field(default=ALWAYS)
    regions: frozenset[str] = attrs.field(factory=frozenset, converter=_regions)
    min_age: int | None = attrs.field(default=None, validator=_min_age)
    consumable: bool = attrs.field(default=True, validator=_bool)

    def to_data(self) -> dict[str, Any]:
        """As JSON."""
        return {**super().to_data(), "consumable": self.consumable}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> StoreItem:
        """What :meth:`to_data` wrote."""
        return cls(**cls._fields(data), consumable=data["consumable"])


def _unique(value: Any, kind: type[_T], what: str) -> tuple[_T, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidTypeError(f"{what} is a collection of {kind.__name__} values, got {value!r}")
    found: dict[str, _T] = {}
    for offer in value:
        if not isinstance(offer, kind):
            raise InvalidTypeError(f"{what} holds {kind.__name__} values, got {offer!r}")
        key = offer.id  # type: ignore[attr-defined]
        if key in found:
            raise ValidationError(f"{what} holds {key!r} twice")
        found[key] = offer
    return tuple(found[key] for key in sorted(found))


def _gifts(value: Any) -> tuple[Gift, ...]:
    return _unique(value, Gift, "a catalog's gifts")


def _items(value: Any) -> tuple[StoreItem, ...]:
    return _unique(value, StoreItem, "a catalog's items")


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
        version: its version; every change (:meth:`with_gift`,
            :meth:`without`, :meth:`with_item`, :meth:`without_item`) makes
            the next one.
        items: the store items holders buy for their own use (ids unique
            among them), kept in id order.
    """

    gifts: tuple[Gift, ...] = attrs.field(converter=_gifts)
    version: int = attrs.field(default=1, validator=_version)
    items: tuple[StoreItem, ...] = attrs.field(default=(), converter=_items)

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
        return GiftCatalog([*others, gift], self.version + 1, self.items)

    def without(self, gift_id: str) -> GiftCatalog:
        """The next version, without the gift *gift_id*.

        Raises:
            NotFoundError: if the catalog has no such gift.
        """
        self.get(gift_id)
        return GiftCatalog([g for g in self.gifts if g.id != gift_id], self.version + 1, self.items)

    def item(self, item_id: str) -> StoreItem:
        """The store item with this id.

        Raises:
            NotFoundError: if the catalog has no such item.
        """
        for item in self.items:
            if item.id == item_id:
                return item
        raise NotFoundError(f"no item {item_id!r} in the catalog (version {self.version})")

    def items_offered(self, region_code: str, now: datetime) -> list[StoreItem]:
        """The store items offered to holders in *region_code* at *now*, by id."""
        code = region(region_code)
        return [i for i in self.items if i.offered_in(code) and i.is_available_at(now)]

    def with_item(self, item: StoreItem) -> GiftCatalog:
        """The next version, with *item* added or replacing the item of its id."""
        if not isinstance(item, StoreItem):
            raise InvalidTypeError(f"item must be a StoreItem, got {item!r}")
        others = [i for i in self.items if i.id != item.id]
        return GiftCatalog(self.gifts, self.version + 1, [*others, item])

    def without_item(self, item_id: str) -> GiftCatalog:
        """The next version, without the store item *item_id*.

        Raises:
            NotFoundError: if the catalog has no such item.
        """
        self.item(item_id)
        return GiftCatalog(self.gifts, self.version + 1, [i for i in self.items if i.id != item_id])
