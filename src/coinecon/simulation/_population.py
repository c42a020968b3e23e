"""The synthetic population a simulation drives an economy with, and its TOML form."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, final

import attrs

from coinecon.errors import ValidationError

__all__ = [
    "DEFAULT_POPULATION",
    "Payments",
    "Population",
    "Segment",
    "load_population",
    "loads_population",
]


LARGEST = 1_000_000
"""The largest number a population's shares, weights, rates and exponents
may give (a budget too, in major units): beyond it a typo, not a plan."""


def _share(value: Any, what: str) -> Fraction:
    """*value* (a percentage such as ``"5%"``, or a decimal string) as an exact fraction."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"{what} is a decimal or a percentage as text, got {value!r}")
    text = str(value).strip()
    scale = Fraction(1, 100) if text.endswith("%") else Fraction(1)
    try:
        number = Fraction(Decimal(text.removesuffix("%")))
    except (InvalidOperation, ValueError, OverflowError):  # not a number, NaN, Infinity
        raise ValidationError(f"{what} is a decimal or a percentage, got {value!r}") from None
    if number < 0:
        raise ValidationError(f"{what} is not negative, got {value!r}")
    if number * scale > LARGEST:
        raise ValidationError(f"{what} is at most {LARGEST:,}, got {value!r}")
    return number * scale


def _rate(value: Any, what: str) -> Fraction:
    rate = _share(value, what)
    if rate > 1:
        raise ValidationError(f"{what} is at most 100%, got {value!r}")
    return rate


def _weights(value: Any, what: str) -> tuple[tuple[str, Fraction], ...]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} maps names to weights, got {value!r}")
    weights = tuple(sorted((str(k), _share(v, f"{what}.{k}")) for k, v in value.items()))
    if weights and not sum(weight for _, weight in weights):
        raise ValidationError(f"{what} gives every name a weight of 0")
    return weights


@final
@attrs.frozen
class Segment:
    """A kind of viewer.

    Attributes:
        name: the segment's name (a label for whoever reads the file).
        share: its share of the viewers (the shares are normalised).
        arrival: the chance that one of them watches on a given day.
        gifts_per_visit: the mean number of gifts they send in a visit.
        purchase: the chance that they buy coins when they have too few for
            the gift they want (else they send nothing more that visit).
        budget: the most they pay at once, in major units of their
            region's currency.
        price_sensitivity: how strongly a lower price per coin draws them
            to a package (0: not at all; a package's weight is its base
            weight times its price per coin to the power of minus this).
        packages: base weights of the packages they consider (by SKU;
            empty: every package alike).
        promotions: how a promotion applied to their quote changes the
            chance they buy (by promotion id: a factor; 1 by default).
        gift_mix: weights of the gifts they send (by gift id; empty: every
            gift in the catalog alike).
        sticker_rate: the chance that a visit buys one store item (a
            consumable, chosen alike among those offered).
    """

    name: str
    share: Fraction
    arrival: Fraction
    gifts_per_visit: Fraction
    purchase: Fraction
    budget: Decimal
    price_sensitivity: Fraction = Fraction(1)
    packages: tuple[tuple[str, Fraction], ...] = ()
    promotions: tuple[tuple[str, Fraction], ...] = ()
    gift_mix: tuple[tuple[str, Fraction], ...] = ()
    sticker_rate: Fraction = Fraction(0)


@final
@attrs.frozen
class Payments:
    """What happens to charges, at these rates (each of the approved ones
    for refunds and chargebacks).

    Attributes:
        decline: declined at once.
        pending: pending, settled the next day.
        refund: refunded, 1 to 7 days later.
        chargeback: charged back, 7 to 30 days later.
    """

    decline: Fraction = Fraction(0)
    pending: Fraction = Fraction(0)
    refund: Fraction = Fraction(0)
    chargeback: Fraction = Fraction(0)


@final
@attrs.frozen
class Population:
    """The viewers and creators of a simulation.

    Attributes:
        viewers: how many viewers.
        creators: how many creators.
        zipf_exponent: creator popularity: the k-th most popular creator
            receives gifts in proportion to ``1 / k ** zipf_exponent``.
        regions: where viewers live (weights by region; each must be in the
            price book), creators too; empty: the price book's regions alike.
        payment_methods: how viewers pay (weights by payment method).
        storefront: where they buy.
        segments: the kinds of viewer.
        payments: what happens to their charges.
    """

    viewers: int
    creators: int
    zipf_exponent: Fraction
    regions: tuple[tuple[str, Fraction], ...]
    payment_methods: tuple[tuple[str, Fraction], ...]
    storefront: str
    segments: tuple[Segment, ...]
    payments: Payments = Payments()


_SEGMENT_KEYS = {
    "name",
    "share",
    "arrival",
    "gifts_per_visit",
    "purchase",
    "budget",
    "price_sensitivity",
    "packages",
    "promotions",
    "gift_mix",
    "sticker_rate",
}
_TOP_KEYS = {
    "viewers",
    "creators",
    "regions",
    "payment_methods",
    "storefront",
    "segments",
    "payments",
}


def _unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise ValidationError(
            f"{where}: unknown key {extra[0]!r} (expected one of {', '.join(sorted(known))})"
        )


def _count(value: Any, what: str) -> int:
    if type(value) is not int or value < 1:
        raise ValidationError(f"{what} is a positive int, got {value!r}")
    return value


def _segment(table: Any, n: int) -> Segment:
    where = f"segments[{n}]"
    if not isinstance(table, Mapping):
        raise ValidationError(f"{where} is a table, got {table!r}")
    _unknown(table, _SEGMENT_KEYS, where)
    try:
        budget = Decimal(str(table.get("budget", "")))
    except InvalidOperation:
        raise ValidationError(
            f"{where}.budget is a decimal amount, got {table.get('budget')!r}"
        ) from None
    if not isinstance(table.get("budget"), str) or not budget.is_finite() or budget <= 0:
        raise ValidationError(f'{where}.budget is a positive decimal as text, such as "5"')
    if budget > LARGEST:
        raise ValidationError(f"{where}.budget is at most {LARGEST:,}, got {table['budget']!r}")
    return Segment(
        name=str(table.get("name", f"segment-{n}")),
        share=_share(table.get("share", "1"), f"{where}.share"),
        arrival=_rate(table.get("arrival", "0"), f"{where}.arrival"),
        gifts_per_visit=_share(table.get("gifts_per_visit", "0"), f"{where}.gifts_per_visit"),
        purchase=_rate(table.get("purchase", "0"), f"{where}.purchase"),
        budget=budget,
        price_sensitivity=_share(table.get("price_sensitivity", "1"), f"{where}.price_sensitivity"),
        packages=_weights(table.get("packages", {}), f"{where}.packages"),
        promotions=_weights(table.get("promotions", {}), f"{where}.promotions"),
        gift_mix=_weights(table.get("gift_mix", {}), f"{where}.gift_mix"),
        sticker_rate=_rate(table.get("sticker_rate", "0"), f"{where}.sticker_rate"),
    )


def loads_population(text: str) -> Population:
    """The population the TOML *text* describes (see :mod:`coinecon.simulation`).

    Raises:
        ValidationError: the first problem found, with where it is.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValidationError(f"a population is TOML: {error}") from None
    _unknown(data, _TOP_KEYS, "population")
    creators = data.get("creators", {})
    if not isinstance(creators, Mapping):
        raise ValidationError(f"creators is a table, got {creators!r}")
    _unknown(creators, {"count", "zipf_exponent"}, "creators")
    payments = data.get("payments", {})
    if not isinstance(payments, Mapping):
        raise ValidationError(f"payments is a table, got {payments!r}")
    _unknown(payments, {"decline", "pending", "refund", "chargeback"}, "payments")
    segments = data.get("segments", [])
    if not isinstance(segments, list) or not segments:
        raise ValidationError("segments is an array of at least one table ([[segments]])")
    found = tuple(_segment(table, n) for n, table in enumerate(segments))
    if not sum(segment.share for segment in found):
        raise ValidationError("the segments' shares add up to 0")
    rates = {
        key: _rate(payments.get(key, "0"), f"payments.{key}")
        for key in ("decline", "pending", "refund", "chargeback")
    }
    if rates["decline"] + rates["pending"] > 1:
        raise ValidationError("payments: decline and pending add up to more than 100%")
    if rates["refund"] + rates["chargeback"] > 1:
        raise ValidationError("payments: refund and chargeback add up to more than 100%")
    regions = _weights(data.get("regions", {}), "regions")
    methods = _weights(data.get("payment_methods", {"card": "1"}), "payment_methods")
    if not methods:
        raise ValidationError("payment_methods names at least one")
    storefront = data.get("storefront", "web")
    if not isinstance(storefront, str):
        raise ValidationError(f"storefront is text, got {storefront!r}")
    return Population(
        viewers=_count(data.get("viewers"), "viewers"),
        creators=_count(creators.get("count", 1), "creators.count"),
        zipf_exponent=_share(creators.get("zipf_exponent", "1"), "creators.zipf_exponent"),
        regions=regions,
        payment_methods=methods,
        storefront=storefront,
        segments=found,
        payments=Payments(**rates),
    )


def load_population(path: str | Path) -> Population:
    """The population in the TOML file at *path* (see :func:`loads_population`)."""
    return loads_population(Path(path).read_text(encoding="utf-8"))


DEFAULT_POPULATION = """\
viewers = 1000
storefront = "web"
payment_methods = { card = "1" }

[creators]
count = 50
zipf_exponent = "1.1"

[payments]
decline = "3%"
pending = "2%"
refund = "0.5%"
chargeback = "0.3%"

[[segments]]
name = "casual"
share = "85%"
arrival = "20%"
gifts_per_visit = "1.5"
purchase = "40%"
budget = "10"
sticker_rate = "5%"

[[segments]]
name = "fans"
share = "15%"
arrival = "60%"
gifts_per_visit = "3"
purchase = "70%"
budget = "100"
price_sensitivity = "2"
sticker_rate = "20%"
"""
"""The population ``coinecon simulate`` uses without ``--population``: a
thousand viewers across the price book's regions, paying by ``card``, most
of them casual, some fans; every package and gift alike to them but for price."""
