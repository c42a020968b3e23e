"""Checks shared by the pricing values: codes, whole numbers, prices."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from coinecon.errors import (
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidPriceBookError,
    InvalidPriceError,
    InvalidRegionError,
    InvalidTypeError,
)
from coinecon.money._exact import ExactNumber
from coinecon.money.money import Currency, Money
from coinecon.money.rate import Rate
from coinecon.regions import region

__all__ = [
    "as_mapping",
    "by_currency",
    "find_price",
    "identifier",
    "instances",
    "items",
    "money",
    "name",
    "names",
    "prices_by_storefront",
    "region_code",
    "to_rate",
    "unique",
    "whole",
]

_T = TypeVar("_T")

_IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def whole(value: object, what: str, *, minimum: int) -> int:
    """Return *value* if it is an ``int`` of at least *minimum*.

    Raises:
        FloatNotAllowedError: for a ``float``.
        InvalidTypeError: for a ``bool`` or any other non-``int``.
        InvalidAmountError: below *minimum*.
    """
    if isinstance(value, float):
        raise FloatNotAllowedError(f"{what} must be a whole number, got the float {value!r}")
    if type(value) is not int:
        raise InvalidTypeError(f"{what} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise InvalidAmountError(f"{what} must be at least {minimum}, got {value}")
    return value


def identifier(value: object, what: str) -> str:
    """Return *value* if it is a valid SKU or promotion id (lower-case letters,
    digits, ``_``, ``.`` and ``-``, up to 64 characters)."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidPriceBookError(
            f"{what} must be 1 to 64 lower-case letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit, got {value!r}"
        )
    return value


def name(value: object, what: str) -> str:
    """Return *value* if it is a valid storefront, payment method or group name
    (a lower-case letter, then up to 31 lower-case letters, digits, ``_`` or ``-``)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidPriceBookError(
            f"{what} must be a lower-case letter then up to 31 lower-case letters, "
            f"digits, '_' or '-', got {value!r}"
        )
    return value


def items(values: object, what: str) -> tuple[object, ...]:
    """Return the items of the collection *values* as a tuple.

    Raises:
        InvalidTypeError: for a string, a mapping or anything not iterable.
    """
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise InvalidTypeError(
            f"{what} must be a list, tuple or set, got {type(values).__name__} ({values!r:.80})"
        )
    return tuple(values)


def names(values: Iterable[str], what: str) -> frozenset[str]:
    """Return *values* as a frozen set of valid names (see :func:`name`)."""
    plural = what.removeprefix("a ") + "s"
    return frozenset(name(value, what) for value in items(values, plural))


def to_rate(value: Rate | ExactNumber) -> Rate:
    """Return *value* as a :class:`~coinecon.money.rate.Rate` (a converter for rate fields).

    Raises:
        FloatNotAllowedError: for a ``float``.
        InvalidRateError: for a negative or malformed rate.
        InvalidTypeError: for a ``bool`` or another type.
    """
    return Rate(value)


def optional_rate(value: Rate | ExactNumber | None) -> Rate | None:
    """Like :func:`to_rate`, letting ``None`` through."""
    return None if value is None else Rate(value)


def region_code(value: object) -> str:
    """Return *value* if it is an assigned ISO 3166-1 alpha-2 code
    (:func:`coinecon.regions.region`): a book that names ``UK`` would never
    sell to buyers from ``GB``."""
    try:
        return region(value)
    except InvalidRegionError as error:
        raise InvalidPriceBookError(str(error)) from None


def money(value: object, what: str) -> Money:
    """Return *value* if it is :class:`~coinecon.money.money.Money`.

    Raises:
        FloatNotAllowedError: for a ``float``.
        InvalidPriceError: for anything else that is not money.
    """
    if isinstance(value, float):
        raise FloatNotAllowedError(f"{what} must be Money, got the float {value!r}")
    if not isinstance(value, Money):
        raise InvalidPriceError(f"{what} must be Money, got {type(value).__name__} ({value!r})")
    return value


def by_currency(values: Money | Iterable[Money], what: str, *, positive: bool) -> tuple[Money, ...]:
    """Return amounts of money, at most one per currency, sorted by currency code.

    Args:
        values: one :class:`~coinecon.money.money.Money` or several.
        what: how to name them in an error message.
        positive: whether each must be above zero (else at least zero).

    Raises:
        InvalidPriceError: for a non-money value, a duplicate currency, or an
            amount out of range.
    """
    given: object = values
    amounts = (
        tuple(given) if isinstance(given, Iterable) and not isinstance(given, str) else (given,)
    )
    seen: dict[Currency, Money] = {}
    for item in amounts:
        amount = money(item, what)
        if amount.currency in seen:
            raise InvalidPriceError(f"{what} has two amounts in {amount.currency.code}")
        if positive and not amount.is_positive:
            raise InvalidPriceError(f"{what} must be above zero, got {amount}")
        if amount.is_negative:
            raise InvalidPriceError(f"{what} must not be negative, got {amount}")
        seen[amount.currency] = amount
    return tuple(sorted(seen.values(), key=lambda m: m.currency.code))


def instances(
    values: object,
    kind: type[_T],
    what: str,
    error: type[ValueError] = InvalidPriceBookError,
) -> tuple[_T, ...]:
    """Return the collection *values* as a tuple of *kind*.

    Raises:
        InvalidTypeError: if *values* is not a collection (see :func:`items`).
        InvalidPriceBookError: (or *error*) for a value of another type, naming *what*.
    """
    given = items(values, what)
    checked = tuple(v for v in given if isinstance(v, kind))
    if len(checked) != len(given):
        raise error(f"{what} must be {kind.__name__} values")
    return checked


def unique(
    values: Iterable[object], kind: type[_T], what: str, key: Callable[[_T], Hashable], label: str
) -> tuple[_T, ...]:
    """Return *values* as a tuple of *kind*, no two with the same *key*.

    Raises:
        InvalidTypeError: if *values* is not a collection.
        InvalidPriceBookError: for a value of another type (naming *what*) or
            two values with one key (naming the first such *label*).
    """
    checked = instances(values, kind, what)
    counts = Counter(key(item) for item in checked)
    for repeated in sorted((k for k, n in counts.items() if n > 1), key=repr):
        raise InvalidPriceBookError(f"{label} {repeated!r} is used twice")
    return checked


def find_price(
    prices: tuple[tuple[str, Money], ...], currency: Currency | str, storefront: str
) -> Money | None:
    """Return the price in *currency* on *storefront* from sorted ``(storefront,
    price)`` pairs, or ``None`` if there is none.

    Raises:
        UnknownCurrencyError: for a currency code that is not registered.
    """
    code = Currency.of(currency).code
    for shop, price in prices:
        if shop == storefront and price.currency.code == code:
            return price
    return None


def as_mapping(value: object, what: str) -> Mapping[Any, Any]:
    """Return *value* as a mapping: a mapping itself, or the ``(key, value)``
    pairs a value object stores it as (so ``attrs.evolve`` round-trips).
    Pairs with the same key are gathered into a list.

    Raises:
        InvalidTypeError: for anything else.
    """
    if isinstance(value, Mapping):
        return value
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        gathered: dict[Any, Any] = {}
        for key, item in value:
            if key in gathered:
                previous = gathered[key]
                gathered[key] = (
                    [*previous, item] if isinstance(previous, list) else [previous, item]
                )
            else:
                gathered[key] = item
        return gathered
    raise InvalidTypeError(f"{what} must be a mapping, got {type(value).__name__}")


def prices_by_storefront(
    prices: Mapping[str, Money | Iterable[Money]], what: str
) -> tuple[tuple[str, Money], ...]:
    """Return ``{storefront: price or prices}`` as sorted ``(storefront, price)``
    pairs, each price above zero and at most one per currency and storefront.

    Raises:
        InvalidPriceBookError: for a bad storefront name or no price at all.
        InvalidPriceError: for a price that is not positive money or a duplicate.
    """
    prices = as_mapping(prices, f"{what} prices (storefront to Money)")
    pairs = [
        (name(storefront, "storefront"), price)
        for storefront, given in prices.items()
        for price in by_currency(given, f"{what} price on {storefront}", positive=True)
    ]
    if not pairs:
        raise InvalidPriceBookError(f"{what} has no price")
    return tuple(sorted(pairs, key=lambda pair: (pair[0], pair[1].currency.code)))
