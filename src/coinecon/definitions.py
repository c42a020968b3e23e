"""Economy definition files: what a host configures rather than codes, in TOML.

A definition file describes the coins' unit, the price book (regions,
packages, custom amounts and tiers, promotions, fees and taxes), the gift
catalog and store items, the revenue share, the conversion rate, the payout
policy, the gift policy, eligibility and limits. :func:`loads` (or
:func:`load`) reads one with the standard library's ``tomllib`` into the same
objects the Python API makes, reporting every problem at once, each with its
file and key path; :func:`dumps` writes a definition back, and loading what
it wrote gives an equal definition::

    >>> text = '''
    ... [unit]
    ... code = "COIN"
    ... name = "Coins"
    ...
    ... [regions]
    ... US = "USD"
    ...
    ... [[packages]]
    ... sku = "coins_100"
    ... coins = 100
    ... prices = { web = ["0.99 USD"] }
    ... '''
    >>> definition = loads(text)
    >>> [(p.sku, p.coins, str(p.prices[0][1])) for p in definition.price_book.packages]
    [('coins_100', 100, '0.99 USD')]
    >>> loads(dumps(definition)) == definition
    True

Money is written as text, ``"0.99 USD"``; rates as text, ``"2.9%"`` or a
fraction ``"1/3"``; times as TOML offset date-times; a duration as whole
seconds; a holding period as ``{ days = 7 }`` (``relativedelta`` fields).
``docs/definitions.md`` documents every key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, final

import attrs
from dateutil.relativedelta import relativedelta

from coinecon.availability import Availability
from coinecon.creators.conversion import ConversionRate
from coinecon.creators.payouts import PayoutPolicy
from coinecon.creators.share import RevenueShare
from coinecon.errors import CoineconError, ValidationError
from coinecon.gifts.catalog import Gift, GiftCatalog, StoreItem
from coinecon.gifts.receipts import GiftPolicy
from coinecon.money.money import Currency, Money
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding
from coinecon.money.units import Unit
from coinecon.pricing import (
    BorneBy,
    CoinPackage,
    CustomAmounts,
    Fee,
    FeeSchedule,
    PaymentMethodFee,
    PriceBook,
    PricePoints,
    Promotion,
    PromotionKind,
    StackingPolicy,
    TaxMode,
    TaxRule,
    Tier,
    TierMode,
)
from coinecon.pricing.problems import rule_overrides
from coinecon.recharge.eligibility import EligibilityPolicy
from coinecon.recharge.limits import Budget, BudgetPeriod, LimitPolicy
from coinecon.regions import region

__all__ = ["DefinitionError", "DefinitionProblem", "EconomyDefinition", "dumps", "load", "loads"]

_T = TypeVar("_T")
_HOLDING_FIELDS = (
    "years",
    "months",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "microseconds",
    # absolute: "the 1st of the month", as relativedelta takes them
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "microsecond",
)


@final
@attrs.frozen
class DefinitionProblem:
    """One problem in a definition file.

    Attributes:
        source: the file (or ``"<string>"``).
        where: the key path (``packages[2].prices.web[0]``), or ``line L,
            column C`` for a file that is not valid TOML.
        message: what is wrong there.
    """

    source: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.where}: {self.message}"


class DefinitionError(ValidationError):
    """A definition file with problems; :attr:`problems` lists every one.

    Attributes:
        problems: every problem found, in the order of the file.
    """

    def __init__(self, problems: list[DefinitionProblem]) -> None:
        count = len(problems)
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the definition:\n{lines}")
        self.problems = tuple(problems)


@final
@attrs.frozen
class EconomyDefinition:
    """An economy as a definition file describes it.

    Attributes:
        price_book: what coins cost (its unit is the coins').
        catalog: the gifts and store items (``None``: the file has none).
        creator_unit: the unit creators earn (``None``: the economy's default).
        revenue_share: what creators earn of gifts (``None``: the default).
        conversion_rate: what creators' earnings are worth (``None``: none).
        payout_policy: how creators are paid (``None``: the default).
        gift_policy: who may send gifts to whom (``None``: the default).
        eligibility: who may buy coins (``None``: the default).
        limits: the platform's purchase limits (``None``: none).
    """

    price_book: PriceBook
    catalog: GiftCatalog | None = None
    creator_unit: Unit | None = None
    revenue_share: RevenueShare | None = None
    conversion_rate: ConversionRate | None = None
    payout_policy: PayoutPolicy | None = None
    gift_policy: GiftPolicy | None = None
    eligibility: EligibilityPolicy | None = None
    limits: LimitPolicy | None = None

    def economy_settings(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~coinecon.economy.CoinEconomy`
        this definition gives (the store, providers and clock are the host's)."""
        settings: dict[str, Any] = {"price_book": self.price_book}
        for name in (
            "catalog",
            "creator_unit",
            "revenue_share",
            "conversion_rate",
            "payout_policy",
            "gift_policy",
            "eligibility",
            "limits",
        ):
            value = getattr(self, name)
            if value is not None:
                settings[name] = value
        return settings


# -- reading -------------------------------------------------------------------------------


class _Noted(Exception):
    """Raised by a part whose problems were noted one by one."""


class _Reader:
    """Reads a parsed TOML document, noting every problem with its key path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[DefinitionProblem] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(DefinitionProblem(self.source, where or "(top)", message))

    def build(self, where: str, make: Callable[[], _T]) -> _T | None:
        """*make()*, or ``None`` with its error noted at *where*."""
        try:
            return make()
        except _Noted:
            pass  # its problems are noted already, each where it is
        except CoineconError as error:
            self.problem(where, str(error).splitlines()[0])
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
            self.problem(where, str(error))
        return None

    def unique(self, entries: list[tuple[str, dict[str, Any]]], key: str) -> None:
        """Note every entry whose *key* repeats an earlier entry's, where it is
        (so that a repeat is reported even when other parts fail)."""
        first: dict[Any, str] = {}
        for where, table in entries:
            value = table.get(key)
            if value is None or isinstance(value, dict | list):
                continue
            if value in first:
                self.problem(_join(where, key), f"{value!r} repeats {first[value]}")
            else:
                first[value] = _join(where, key)

    def table(self, parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(_join(where, key), f"must be a table, got {_kind(value)}")
            return None
        return value

    def tables(
        self, parent: Mapping[str, Any], key: str, where: str
    ) -> list[tuple[str, dict[str, Any]]]:
        value = parent.get(key, [])
        path = _join(where, key)
        if not isinstance(value, list):
            self.problem(path, f"must be an array of tables, got {_kind(value)}")
            return []
        found = []
        for n, item in enumerate(value):
            if isinstance(item, dict):
                found.append((f"{path}[{n}]", item))
            else:
                self.problem(f"{path}[{n}]", f"must be a table, got {_kind(item)}")
        return found

    def unknown(self, table: Mapping[str, Any], where: str, known: set[str]) -> None:
        for key in table:
            if key not in known:
                self.problem(
                    _join(where, key), f"unknown key (expected one of {', '.join(sorted(known))})"
                )


def _g(table: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """*table*'s *key* (a TOML value: anything), or *default*."""
    return table.get(key, default)


def _known(table: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    """The entries of *table* under *known* keys (the others are noted already)."""
    return {key: value for key, value in table.items() if key in known}


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: object) -> str:
    return {dict: "a table", list: "an array", str: "text", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _keys(table: Any, allowed: set[str], what: str) -> Mapping[str, Any]:
    """*table*, refused unless it is a table of only *allowed* keys."""
    if not isinstance(table, dict):
        raise ValidationError(f"{what} must be a table, got {_kind(table)}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown key {unknown[0]!r} in {what} (expected one of {', '.join(sorted(allowed))})"
        )
    return table


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValidationError(f"{what} must be an array, got {_kind(value)}")
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a table, got {_kind(value)}")
    return value


def _region(code: str, currency: Any) -> tuple[str, Currency]:
    return region(code), Currency.of(currency)


def _money(value: Any) -> Money:
    if not isinstance(value, str) or value.count(" ") != 1:
        raise ValidationError(f'money is text such as "0.99 USD", got {value!r}')
    amount, code = value.split(" ")
    return Money(amount, code)


def _monies(value: Any) -> list[Money]:
    if not isinstance(value, list):
        raise ValidationError(f'amounts are an array of money such as ["0.99 USD"], got {value!r}')
    return [_money(item) for item in value]


def _rate(value: Any) -> Rate:
    if isinstance(value, float):
        raise ValidationError(
            f'a rate is text such as "2.9%" (TOML floats are inexact), got {value}'
        )
    return Rate(value)


def _enum(kind: type[Any], value: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in kind)
        raise ValidationError(f"{value!r} is not one of {choices}") from None


def _aware(value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"a time is a TOML offset date-time (with a time zone), got {value!r}"
        )
    return value


def _seconds(value: Any) -> timedelta:
    if type(value) is not int or value <= 0:
        raise ValidationError(f"a duration is a whole number of seconds above 0, got {value!r}")
    return timedelta(seconds=value)


def _window(table: Any, what: str | None = None) -> dict[str, Any]:
    """The window keys of a table (a promotion's, a gift's, a schedule's);
    with *what*, a table of nothing else."""
    if what is not None:
        table = _keys(table, _WINDOW_KEYS, what)
    found: dict[str, Any] = {}
    if "start" in table:
        found["start"] = _aware(table["start"])
    if "end" in table:
        found["end"] = _aware(table["end"])
    if "rrule" in table:
        found["rrule"] = table["rrule"]
    if "duration_seconds" in table:
        found["duration"] = _seconds(table["duration_seconds"])
    if "timezone" in table:
        found["timezone"] = table["timezone"]
    return found


_WINDOW_KEYS = {"start", "end", "rrule", "duration_seconds", "timezone"}


def loads(text: str, *, source: str = "<string>") -> EconomyDefinition:
    """The economy the TOML *text* defines.

    Raises:
        DefinitionError: every problem found, each with *source* and where.
    """
    reader = _Reader(source)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reader.problem("", f"not valid TOML: {error}")
        raise DefinitionError(reader.problems) from None
    definition = _read(reader, document)
    if reader.problems or definition is None:
        raise DefinitionError(reader.problems)
    return definition


def load(path: str | Path) -> EconomyDefinition:
    """The economy the TOML file at *path* defines (see :func:`loads`).

    Raises:
        DefinitionError: every problem found.
        OSError: the file cannot be read.
    """
    file = Path(path)
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        problem = DefinitionProblem(
            str(file), "(top)", f"not UTF-8 text: byte {error.start} cannot be decoded"
        )
        raise DefinitionError([problem]) from None
    return loads(text, source=str(file))


_TOP = {
    "rules",
    "unit",
    "regions",
    "packages",
    "custom",
    "promotions",
    "stacking",
    "discount_rounding",
    "fees",
    "creator_unit",
    "catalog",
    "revenue_share",
    "conversion",
    "payouts",
    "gift_policy",
    "eligibility",
    "limits",
}


def _read(reader: _Reader, doc: Mapping[str, Any]) -> EconomyDefinition | None:
    reader.unknown(doc, "", _TOP)
    book = _read_book(reader, doc)
    creator = reader.table(doc, "creator_unit", "")
    fields: dict[str, Any] = {
        "creator_unit": None
        if creator is None
        else reader.build(
            "creator_unit",
            lambda: Unit(
                _keys(creator, {"code", "name"}, "creator_unit")["code"], _g(creator, "name", "")
            ),
        ),
        "catalog": _read_catalog(reader, doc),
        "revenue_share": _read_share(reader, doc),
        "conversion_rate": _read_conversion(reader, doc),
        "payout_policy": _read_payouts(reader, doc),
        "gift_policy": _read_gift_policy(reader, doc),
        "eligibility": _read_eligibility(reader, doc),
        "limits": _read_limits(reader, doc),
    }
    if book is None:
        return None
    return EconomyDefinition(price_book=book, **fields)


def _read_book(reader: _Reader, doc: Mapping[str, Any]) -> PriceBook | None:
    unit_table = reader.table(doc, "unit", "")
    unit = None
    if unit_table is None:
        reader.problem("unit", 'missing: the coins\' unit, such as [unit] code = "COIN"')
    else:
        reader.unknown(unit_table, "unit", {"code", "name"})
        unit = reader.build(
            "unit", lambda: Unit(_g(unit_table, "code"), _g(unit_table, "name", ""))
        )
    regions = reader.table(doc, "regions", "")
    if regions is None:
        reader.problem("regions", 'missing: where the book sells, such as [regions] US = "USD"')
    else:
        # Each region on its own, so that every bad one is reported where it is.
        for code, currency in regions.items():
            if reader.build(f"regions.{code}", partial(_region, code, currency)) is None:
                regions = None
    packages = []
    package_tables = reader.tables(doc, "packages", "")
    reader.unique(package_tables, "sku")
    for where, table in package_tables:
        packages.append(reader.build(where, partial(_package, reader, table, where)))
    custom_table = reader.table(doc, "custom", "")
    custom = (
        None
        if custom_table is None
        else reader.build("custom", lambda: _custom(reader, custom_table))
    )
    promotions = []
    promotion_tables = reader.tables(doc, "promotions", "")
    reader.unique(promotion_tables, "id")
    for where, table in promotion_tables:
        promotions.append(reader.build(where, partial(_promotion, reader, table, where)))
    fees_table = reader.table(doc, "fees", "")
    fees = (
        FeeSchedule()
        if fees_table is None
        else reader.build("fees", lambda: _fees(reader, fees_table))
    )
    stacking = reader.build(
        "stacking", lambda: _enum(StackingPolicy, _g(doc, "stacking", "best-single"))
    )
    rules_table = reader.table(doc, "rules", "")
    rules = (
        () if rules_table is None else reader.build("rules", lambda: rule_overrides(rules_table))
    )
    rounding = reader.build(
        "discount_rounding", lambda: _enum(Rounding, _g(doc, "discount_rounding", "half-up"))
    )
    parts = [unit, regions, fees, stacking, rounding, rules, *packages, *promotions]
    if reader.problems or any(part is None for part in parts) or (custom_table and custom is None):
        return None
    assert unit is not None  # noqa: S101 (checked just above)
    assert regions is not None  # noqa: S101
    assert fees is not None  # noqa: S101
    assert isinstance(stacking, StackingPolicy)  # noqa: S101
    assert isinstance(rounding, Rounding)  # noqa: S101
    return reader.build(
        "(book)",
        lambda: PriceBook(
            regions=dict(regions),
            packages=[package for package in packages if package is not None],
            custom=custom,
            promotions=[promotion for promotion in promotions if promotion is not None],
            fees=fees,
            stacking=stacking,
            unit=unit,
            discount_rounding=rounding,
            rules=rules,
        ),
    )


def _package(reader: _Reader, table: Mapping[str, Any], where: str) -> CoinPackage:
    reader.unknown(table, where, {"sku", "coins", "prices", "bonus_coins"})
    prices = _g(table, "prices")
    if not isinstance(prices, dict):
        raise ValidationError(
            'prices is a table of storefronts to money, such as { web = ["0.99 USD"] }'
        )
    # Each price on its own, so that every malformed one is reported where it is.
    parsed: dict[str, list[Money]] = {}
    complete = True
    for storefront, amounts in prices.items():
        path = f"{where}.prices.{storefront}"
        if not isinstance(amounts, list):
            reader.problem(path, f'must be an array of money such as ["0.99 USD"], got {amounts!r}')
            complete = False
            continue
        found = [reader.build(f"{path}[{n}]", partial(_money, a)) for n, a in enumerate(amounts)]
        complete = complete and all(money is not None for money in found)
        parsed[storefront] = [money for money in found if money is not None]
    package = reader.build(
        where,
        lambda: CoinPackage(
            _g(table, "sku"),
            _g(table, "coins"),
            parsed
            if complete
            # A malformed price is noted already; check the other fields all the same.
            else {storefront: found for storefront, found in parsed.items() if found}
            or {"web": [Money("1", "USD")]},
            bonus_coins=_g(table, "bonus_coins", 0),
        ),
    )
    if package is None or not complete:
        raise _Noted
    return package


def _custom(reader: _Reader, table: Mapping[str, Any]) -> CustomAmounts:
    reader.unknown(
        table,
        "custom",
        {
            "min_coins",
            "max_coins",
            "base_prices",
            "per",
            "tiers",
            "mode",
            "rounding",
            "price_points",
        },
    )
    base = _g(table, "base_prices")
    if not isinstance(base, dict):
        raise ValidationError("base_prices is a table of storefronts to money")
    tiers = [
        Tier(t["min_coins"], _g(t, "max_coins"), _rate(_g(t, "discount", "0")))
        for t in (
            _keys(t, {"min_coins", "max_coins", "discount"}, "a tier")
            for t in _list(_g(table, "tiers", []), "tiers")
        )
    ]
    points = [
        PricePoints(_money(p["step"]), _money(p["ending"])) for p in _g(table, "price_points", [])
    ]
    return CustomAmounts(
        _g(table, "min_coins"),
        _g(table, "max_coins"),
        {storefront: _monies(amounts) for storefront, amounts in base.items()},
        per=_g(table, "per", 1),
        tiers=tiers,
        mode=_enum(TierMode, _g(table, "mode", "volume")),
        rounding=_enum(Rounding, _g(table, "rounding", "half-up")),
        price_points=points,
    )


_PROMOTION_KEYS = {
    "id",
    "kind",
    "rate",
    "bonus_coins",
    "bonus_rounding",
    "regions",
    "storefronts",
    "first_purchase_only",
    "min_coins",
    "max_redemptions_per_account",
    "stacking_group",
} | _WINDOW_KEYS


def _promotion(reader: _Reader, table: Mapping[str, Any], where: str) -> Promotion:
    reader.unknown(table, where, _PROMOTION_KEYS)
    return Promotion(
        _g(table, "id"),
        _enum(PromotionKind, _g(table, "kind")),
        rate=None if "rate" not in table else _rate(table["rate"]),
        bonus_coins=_g(table, "bonus_coins"),
        bonus_rounding=_enum(Rounding, _g(table, "bonus_rounding", "down")),
        regions=_g(table, "regions", []),
        storefronts=_g(table, "storefronts", []),
        first_purchase_only=_g(table, "first_purchase_only", default=False),
        min_coins=_g(table, "min_coins", 0),
        max_redemptions_per_account=_g(table, "max_redemptions_per_account"),
        stacking_group=_g(table, "stacking_group"),
        **_window(table),
    )


def _fee(table: Any) -> Fee:
    table = _keys(table, {"rate", "fixed", "minimum", "maximum", "rounding"}, "a fee")
    return Fee(
        _rate(_g(table, "rate", "0")),
        fixed=_monies(_g(table, "fixed", [])),
        minimum=_monies(_g(table, "minimum", [])),
        maximum=_monies(_g(table, "maximum", [])),
        rounding=_enum(Rounding, _g(table, "rounding", "half-up")),
    )


def _fees(reader: _Reader, table: Mapping[str, Any]) -> FeeSchedule:
    reader.unknown(
        table,
        "fees",
        {"payment_methods", "service_fee", "store_commissions", "commission_rounding", "taxes"},
    )
    methods = [
        PaymentMethodFee(
            method["method"],
            _fee(_g(method, "fee", {})),
            borne_by=_enum(BorneBy, _g(method, "borne_by", "platform")),
            storefronts=_g(method, "storefronts", []),
        )
        for method in (
            _keys(m, {"method", "fee", "borne_by", "storefronts"}, "a payment method")
            for m in _list(_g(table, "payment_methods", []), "payment_methods")
        )
    ]
    taxes = [
        TaxRule(
            tax["region"],
            _rate(tax["rate"]),
            _enum(TaxMode, tax["mode"]),
            rounding=_enum(Rounding, _g(tax, "rounding", "half-up")),
            label=_g(tax, "label", "tax"),
        )
        for tax in (
            _keys(t, {"region", "rate", "mode", "rounding", "label"}, "a tax rule")
            for t in _list(_g(table, "taxes", []), "taxes")
        )
    ]
    service = _g(table, "service_fee")
    return FeeSchedule(
        payment_methods=methods,
        service_fee=None if service is None else _fee(service),
        store_commissions={
            k: _rate(v)
            for k, v in _mapping(_g(table, "store_commissions", {}), "store_commissions").items()
        },
        commission_rounding=_enum(Rounding, _g(table, "commission_rounding", "half-up")),
        taxes=taxes,
    )


def _offer_fields(table: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": _g(table, "id"),
        "name": _g(table, "name"),
        "price": _g(table, "price"),
        "display": _g(table, "display", {}),
        "availability": Availability(**_window(_g(table, "availability", {}), "availability")),
        "regions": _g(table, "regions", []),
        "min_age": _g(table, "min_age"),
    }


def _read_catalog(reader: _Reader, doc: Mapping[str, Any]) -> GiftCatalog | None:
    table = reader.table(doc, "catalog", "")
    if table is None:
        return None
    reader.unknown(table, "catalog", {"version", "gifts", "items"})
    offer_keys = {"id", "name", "price", "display", "availability", "regions", "min_age"}
    gifts: list[Gift | None] = []
    gift_tables = reader.tables(table, "gifts", "catalog")
    reader.unique(gift_tables, "id")
    for where, gift in gift_tables:
        reader.unknown(gift, where, offer_keys)
        gifts.append(reader.build(where, partial(_gift, gift)))
    items: list[StoreItem | None] = []
    item_tables = reader.tables(table, "items", "catalog")
    reader.unique(item_tables, "id")
    for where, item in item_tables:
        reader.unknown(item, where, offer_keys | {"consumable"})
        items.append(reader.build(where, partial(_item, item)))
    if any(offer is None for offer in [*gifts, *items]):
        return None
    return reader.build(
        "catalog", lambda: GiftCatalog(gifts, version=_g(table, "version", 1), items=items)
    )


def _gift(table: Mapping[str, Any]) -> Gift:
    return Gift(**_offer_fields(table))


def _item(table: Mapping[str, Any]) -> StoreItem:
    return StoreItem(**_offer_fields(table), consumable=_g(table, "consumable", default=True))


def _dated(value: Any) -> Any:
    """A rate, or ``[{ effective = time, rate = "..." }, ...]`` as the
    ``(effective, rate)`` pairs the Python API takes."""
    if isinstance(value, list):
        return [
            (None if "effective" not in entry else _aware(entry["effective"]), _rate(entry["rate"]))
            for entry in value
        ]
    return _rate(value)


def _read_share(reader: _Reader, doc: Mapping[str, Any]) -> RevenueShare | None:
    table = reader.table(doc, "revenue_share", "")
    if table is None:
        return None
    reader.unknown(table, "revenue_share", {"default", "changes", "creators"})
    return reader.build(
        "revenue_share",
        lambda: RevenueShare(
            _rate(_g(table, "default")),
            changes=_dated(_g(table, "changes", [])),
            creators={
                name: _dated(rates)
                for name, rates in _mapping(_g(table, "creators", {}), "creators").items()
            },
        ),
    )


def _read_conversion(reader: _Reader, doc: Mapping[str, Any]) -> ConversionRate | None:
    table = reader.table(doc, "conversion", "")
    if table is None:
        return None
    reader.unknown(table, "conversion", {"rates", "rounding"})

    def worth(value: Any) -> Any:
        if isinstance(value, list):
            return [
                (None if "effective" not in e else _aware(e["effective"]), _exact(e["worth"]))
                for e in value
            ]
        return _exact(value)

    rounding = _g(table, "rounding")
    return reader.build(
        "conversion",
        lambda: ConversionRate(
            {
                code: worth(value)
                for code, value in _mapping(_g(table, "rates", {}), "rates").items()
            },
            rounding=None if rounding is None else _enum(Rounding, rounding),
        ),
    )


def _exact(value: Any) -> Any:
    """A worth as the API takes it: an int, a decimal string, or ``"n/d"``."""
    if isinstance(value, float):
        raise ValidationError(f'write {value} as text, "{value}": TOML floats are inexact')
    if isinstance(value, str) and "/" in value:
        top, _, bottom = value.partition("/")
        if not (top.strip().isdigit() and bottom.strip().isdigit() and int(bottom)):
            raise ValidationError(f'a fraction is "numerator/denominator", got {value!r}')
        return Fraction(int(top), int(bottom))
    return value


def _read_payouts(reader: _Reader, doc: Mapping[str, Any]) -> PayoutPolicy | None:
    table = reader.table(doc, "payouts", "")
    if table is None:
        return None
    reader.unknown(
        table,
        "payouts",
        {"holding", "holding_seconds", "minimum", "caps", "schedule", "fee", "clawback"},
    )

    def make() -> PayoutPolicy:
        holding = _keys(_g(table, "holding", {}), set(_HOLDING_FIELDS), "holding")
        for field, amount in holding.items():
            if type(amount) is not int:
                raise ValidationError(f"holding's {field} is a whole number, got {amount!r}")
        seconds = _g(table, "holding_seconds")
        if seconds is not None and (type(seconds) is not int or seconds < 0 or "holding" in table):
            raise ValidationError(
                "holding_seconds is a whole number of seconds from 0, instead of holding"
            )
        caps_tables = [
            _keys(c, {"amount", "period", "time_zone"}, "a cap")
            for c in _list(_g(table, "caps", []), "caps")
        ]
        caps = [
            Budget(
                _money(cap["amount"]),
                _enum(BudgetPeriod, cap["period"]),
                _g(cap, "time_zone", "UTC"),
            )
            for cap in caps_tables
        ]
        return PayoutPolicy(
            holding=relativedelta(**holding)
            if "holding" in table
            else timedelta(seconds=seconds or 0),
            minimum=_monies(_g(table, "minimum", [])),
            caps=caps,
            schedule=Availability(**_window(_g(table, "schedule", {}), "schedule")),
            fee=_fee(_g(table, "fee", {})),
            clawback=_g(table, "clawback", default=False),
        )

    return reader.build("payouts", make)


def _read_gift_policy(reader: _Reader, doc: Mapping[str, Any]) -> GiftPolicy | None:
    table = reader.table(doc, "gift_policy", "")
    if table is None:
        return None
    known = {"regions", "allow_self_gift", "creator_must_be_adult", "max_quantity", "tallies"}
    reader.unknown(table, "gift_policy", known)
    return reader.build("gift_policy", lambda: GiftPolicy(**_known(table, known)))


def _read_eligibility(reader: _Reader, doc: Mapping[str, Any]) -> EligibilityPolicy | None:
    table = reader.table(doc, "eligibility", "")
    if table is None:
        return None
    known = {"regions", "age_of_majority", "require_age"}
    reader.unknown(table, "eligibility", known)
    return reader.build("eligibility", lambda: EligibilityPolicy(**_known(table, known)))


def _read_limits(reader: _Reader, doc: Mapping[str, Any]) -> LimitPolicy | None:
    table = reader.table(doc, "limits", "")
    if table is None:
        return None
    known = {"purchases_per_hour", "max_wallet_balance"}
    reader.unknown(table, "limits", known)
    return reader.build("limits", lambda: LimitPolicy(**_known(table, known)))


# -- writing -------------------------------------------------------------------------------


def _text(value: str) -> str:
    r"""*value* as a TOML basic string, ASCII only: JSON's escapes are TOML's
    too, except for characters beyond U+FFFF (JSON writes a surrogate pair,
    TOML wants ``\UXXXXXXXX``) and DEL (which JSON leaves as it is)."""
    return "".join(
        char if " " <= char < "\x7f" and char not in '"\\' else _escape(char) for char in value
    ).join('""')


def _escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:
        return f"\\U{code:08x}"
    if code == 0x7F:
        return "\\u007f"
    if 0xD800 <= code <= 0xDFFF:
        raise ValidationError(f"a lone surrogate ({char!r}) cannot be written in TOML")
    return json.dumps(char, ensure_ascii=True)[1:-1]


_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _value(value: Any) -> str:
    """*value* as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, datetime):
        # In UTC: TOML offsets are whole minutes, some zones' were not. The
        # instant is the same, and times compare as instants.
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise ValidationError(f"cannot write {value!r} in a definition file")


def _key(key: str) -> str:
    """*key* bare if TOML allows it (ASCII letters, digits, ``-`` and ``_``), else quoted."""
    return key if key and set(key) <= _BARE else _text(key)


def _whole_seconds(duration: timedelta, what: str) -> int:
    seconds = int(duration.total_seconds())
    if duration != timedelta(seconds=seconds):
        raise ValidationError(f"{what} of {duration} is not whole seconds: a file cannot hold it")
    return seconds


def _rate_text(rate: Rate) -> str:
    exact = rate.to_decimal()
    if exact is None:
        return f"{rate.numerator}/{rate.denominator}"
    return f"{format((exact * 100).normalize(), 'f')}%"


def _worth_text(value: Fraction) -> str:
    decimal = Rate(value).to_decimal()
    if decimal is None:
        return f"{value.numerator}/{value.denominator}"
    return format(Decimal(decimal).normalize(), "f")


def _window_data(window: Availability) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if window.start is not None:
        data["start"] = window.start
    if window.end is not None:
        data["end"] = window.end
    if window.rrule is not None:
        data["rrule"] = window.rrule
    if window.duration is not None:
        data["duration_seconds"] = _whole_seconds(window.duration, "a window's duration")
    if window.timezone is not UTC:
        data["timezone"] = window.to_data()["timezone"]
    return data


def _fee_data(fee: Fee) -> dict[str, Any]:
    data: dict[str, Any] = {"rate": _rate_text(fee.rate)}
    for name in ("fixed", "minimum", "maximum"):
        amounts = getattr(fee, name)
        if amounts:
            data[name] = [str(m) for m in amounts]
    data["rounding"] = fee.rounding.value
    return data


def _prices(pairs: tuple[tuple[str, Money], ...]) -> dict[str, list[str]]:
    prices: dict[str, list[str]] = {}
    for storefront, money in pairs:
        prices.setdefault(storefront, []).append(str(money))
    return prices


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def table(self, header: str, data: Mapping[str, Any]) -> None:
        self.lines.append(f"\n[{header}]" if self.lines else f"[{header}]")
        for key, value in data.items():
            self.lines.append(f"{_key(key)} = {_value(value)}")

    def array(self, header: str, data: Mapping[str, Any]) -> None:
        self.lines.append(f"\n[[{header}]]")
        for key, value in data.items():
            self.lines.append(f"{_key(key)} = {_value(value)}")


def dumps(definition: EconomyDefinition) -> str:
    """*definition* as TOML text that :func:`loads` reads back equal."""
    book = definition.price_book
    out = _Writer()
    # Keys of the top level come before any table.
    out.lines.append(f"stacking = {_value(book.stacking.value)}")
    out.lines.append(f"discount_rounding = {_value(book.discount_rounding.value)}")
    out.table("unit", {"code": book.unit.code, "name": book.unit.name})
    if book.rules:
        out.table("rules", dict(book.rules))
    out.table("regions", {code: currency.code for code, currency in book.regions})
    for package in book.packages:
        data: dict[str, Any] = {"sku": package.sku, "coins": package.coins}
        if package.bonus_coins:
            data["bonus_coins"] = package.bonus_coins
        data["prices"] = _prices(package.prices)
        out.array("packages", data)
    if book.custom is not None:
        custom = book.custom
        out.table(
            "custom",
            {
                "min_coins": custom.min_coins,
                "max_coins": custom.max_coins,
                "base_prices": _prices(custom.base_prices),
                "per": custom.per,
                "mode": custom.mode.value,
                "rounding": custom.rounding.value,
                "tiers": [
                    {"min_coins": t.min_coins, "discount": _rate_text(t.discount)}
                    | ({} if t.max_coins is None else {"max_coins": t.max_coins})
                    for t in custom.tiers
                ],
                "price_points": [
                    {"step": str(p.step), "ending": str(p.ending)} for p in custom.price_points
                ],
            },
        )
    for promotion in book.promotions:
        out.array("promotions", _promotion_data(promotion))
    fees = book.fees
    fee_data: dict[str, Any] = {
        "commission_rounding": fees.commission_rounding.value,
        "store_commissions": {k: _rate_text(v) for k, v in fees.store_commissions},
    }
    if fees.service_fee is not None:
        fee_data["service_fee"] = _fee_data(fees.service_fee)
    fee_data["payment_methods"] = [
        {
            "method": m.method,
            "fee": _fee_data(m.fee),
            "borne_by": m.borne_by.value,
            "storefronts": sorted(m.storefronts),
        }
        for m in fees.payment_methods
    ]
    fee_data["taxes"] = [
        {
            "region": t.region,
            "rate": _rate_text(t.rate),
            "mode": t.mode.value,
            "rounding": t.rounding.value,
            "label": t.label,
        }
        for t in fees.taxes
    ]
    out.table("fees", fee_data)
    _write_rest(out, definition)
    return "\n".join(out.lines) + "\n"


def _promotion_data(promotion: Promotion) -> dict[str, Any]:
    data: dict[str, Any] = {"id": promotion.id, "kind": promotion.kind.value}
    if promotion.rate is not None:
        data["rate"] = _rate_text(promotion.rate)
    if promotion.bonus_coins is not None:
        data["bonus_coins"] = promotion.bonus_coins
    data["bonus_rounding"] = promotion.bonus_rounding.value
    data.update(_window_data(promotion.window))
    data["regions"] = sorted(promotion.regions)
    data["storefronts"] = sorted(promotion.storefronts)
    data["first_purchase_only"] = promotion.first_purchase_only
    data["min_coins"] = promotion.min_coins
    if promotion.max_redemptions_per_account is not None:
        data["max_redemptions_per_account"] = promotion.max_redemptions_per_account
    if promotion.stacking_group is not None:
        data["stacking_group"] = promotion.stacking_group
    return data


def _offer_data(offer: Gift | StoreItem) -> dict[str, Any]:
    data: dict[str, Any] = {"id": offer.id, "name": offer.name, "price": offer.price}
    if any(v is None for _, v in offer.display):
        raise ValidationError(
            f"{offer.id}'s display has a None value, which TOML cannot hold: leave the key out"
        )
    display = dict(offer.display)
    if display:
        data["display"] = display
    window = _window_data(offer.availability)
    if window:
        data["availability"] = window
    if offer.regions:
        data["regions"] = sorted(offer.regions)
    if offer.min_age is not None:
        data["min_age"] = offer.min_age
    return data


def _dated_data(schedule: Any) -> Any:
    return [
        ({} if when is None else {"effective": when}) | {"rate": _rate_text(rate)}
        for when, rate in schedule
    ]


def _write_rest(out: _Writer, definition: EconomyDefinition) -> None:
    if definition.creator_unit is not None:
        unit = definition.creator_unit
        out.table("creator_unit", {"code": unit.code, "name": unit.name})
    catalog = definition.catalog
    if catalog is not None:
        out.table("catalog", {"version": catalog.version})
        for gift in catalog.gifts:
            out.array("catalog.gifts", _offer_data(gift))
        for item in catalog.items:
            out.array("catalog.items", _offer_data(item) | {"consumable": item.consumable})
    share = definition.revenue_share
    if share is not None:
        out.table(
            "revenue_share",
            {
                "default": _rate_text(share.default),
                "changes": _dated_data(share.changes),
                "creators": {name: _dated_data(rates) for name, rates in share.creators},
            },
        )
    rate = definition.conversion_rate
    if rate is not None:
        data: dict[str, Any] = {
            "rates": {
                currency.code: [
                    ({} if when is None else {"effective": when}) | {"worth": _worth_text(worth)}
                    for when, worth in worths
                ]
                for currency, worths in rate.rates
            }
        }
        if rate.rounding is not None:
            data["rounding"] = rate.rounding.value
        out.table("conversion", data)
    policy = definition.payout_policy
    if policy is not None:
        holding = policy.holding
        kept: dict[str, Any]
        if isinstance(holding, timedelta):
            kept = {"holding_seconds": _whole_seconds(holding, "a holding period")}
        else:
            if holding.weekday is not None:
                raise ValidationError("a holding period with a weekday cannot be written")
            kept = {
                "holding": {
                    f: getattr(holding, f)
                    for f in _HOLDING_FIELDS
                    if f != "weeks" and getattr(holding, f) not in (0, None)
                }
            }
        out.table(
            "payouts",
            {
                **kept,
                "minimum": [str(m) for m in policy.minimum],
                "caps": [
                    {"amount": str(c.amount), "period": c.period.value, "time_zone": c.time_zone}
                    for c in policy.caps
                ],
                "schedule": _window_data(policy.schedule),
                "fee": _fee_data(policy.fee),
                "clawback": policy.clawback,
            },
        )
    gift_policy = definition.gift_policy
    if gift_policy is not None:
        data = {
            "allow_self_gift": gift_policy.allow_self_gift,
            "creator_must_be_adult": gift_policy.creator_must_be_adult,
            "max_quantity": gift_policy.max_quantity,
            "tallies": gift_policy.tallies,
        }
        if gift_policy.regions is not None:
            data["regions"] = sorted(gift_policy.regions)
        out.table("gift_policy", data)
    eligibility = definition.eligibility
    if eligibility is not None:
        data = {
            "age_of_majority": dict(eligibility.age_of_majority),
            "require_age": eligibility.require_age,
        }
        if eligibility.regions is not None:
            data["regions"] = sorted(eligibility.regions)
        out.table("eligibility", data)
    limits = definition.limits
    if limits is not None:
        data = {}
        if limits.purchases_per_hour is not None:
            data["purchases_per_hour"] = limits.purchases_per_hour
        if limits.max_wallet_balance is not None:
            data["max_wallet_balance"] = limits.max_wallet_balance
        out.table("limits", data)
