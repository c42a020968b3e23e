"""Economy definition files: loading gives the Python API's objects, every
problem is reported at once with its key path, and writing a definition back
round-trips exactly (a property)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from coinecon import (
    CoinPackage,
    ConversionRate,
    Fee,
    FeeSchedule,
    Gift,
    GiftCatalog,
    GiftPolicy,
    Money,
    PaymentMethodFee,
    PayoutPolicy,
    PriceBook,
    Promotion,
    PromotionKind,
    Rate,
    RevenueShare,
    Rounding,
    StoreItem,
    TaxMode,
    TaxRule,
    Unit,
)
from coinecon.availability import Availability
from coinecon.definitions import DefinitionError, EconomyDefinition, dumps, load, loads
from coinecon.errors import ValidationError
from coinecon.recharge import Budget, BudgetPeriod, EligibilityPolicy, LimitPolicy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "economy.toml"
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
HEAD = '[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\n'


def test_the_example_loads_into_what_the_python_api_makes() -> None:
    definition = load(EXAMPLE)
    book = definition.price_book
    assert book.unit == Unit("COIN", "Coins")
    assert [p.coins for p in book.packages] == [100, 500, 1000, 5000, 10000]
    assert book.check() == ()
    assert definition.creator_unit == Unit("DIAMOND", "Diamonds")
    assert definition.revenue_share is not None
    assert definition.revenue_share.rate_for("star", T0) == Rate("60%")
    assert definition.payout_policy is not None
    assert definition.payout_policy.holding == relativedelta(days=7)
    assert definition.catalog is not None
    assert definition.catalog.get("lion").min_age == 18
    assert loads(dumps(definition)) == definition


def test_a_minimal_file_needs_only_a_unit_and_regions() -> None:
    definition = loads('[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\n')
    assert definition.price_book.regions[0][0] == "US"
    assert definition.catalog is None
    assert definition.economy_settings() == {"price_book": definition.price_book}


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('[regions]\nUS = "USD"\n', "unit", "missing"),
        ('[unit]\ncode = "COIN"\n', "regions", "missing"),
        ('colour = 1\n[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\n', "colour", "unknown key"),
        (
            '[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\n[fees]\nservice_fee = { rate = 0.5 }\n',
            "fees",
            "TOML floats are inexact",
        ),
        (
            '[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\n[limits]\npurchases_per_hour = 0\n',
            "limits",
            "positive int",
        ),
        (
            'packages = 3\n[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\n',
            "packages",
            "array of tables",
        ),
        (
            HEAD + '[[promotions]]\nid = "p"\nkind = "gift"\n',
            "promotions[0]",
            "is not one of",
        ),
        (
            HEAD
            + '[[promotions]]\nid = "p"\nkind = "percent-off"\nrate = "10%"\n'
            + "start = 2026-01-01T00:00:00\n",
            "promotions[0]",
            "offset date-time",
        ),
        ("[unit\n", "(top)", "not valid TOML"),
        (
            HEAD + '[[packages]]\nsku = "a"\ncoins = 1\nprices = { web = [] }\n',
            "packages[0]",
            "no price",
        ),
        ('[unit]\ncode = "COIN"\n[regions]\nUS = "USD"\nUK = "GBP"\n', "regions.UK", "is 'GB'"),
        (HEAD + "[payouts]\nholding = { days = 1.5 }\n", "payouts", "whole number"),
        (
            HEAD + '[fees]\npayment_methods = [{ method = "card", colour = 1 }]\n',
            "fees",
            "unknown key 'colour'",
        ),
        (HEAD + "[limits]\nbudgets = 3\n", "limits.budgets", "unknown key"),
        (
            HEAD
            + '[catalog]\ngifts = [{ id = "rose", name = "Rose", price = 1, availability = 3 }]\n',
            "catalog.gifts[0]",
            "must be a table",
        ),
    ],
)
def test_each_problem_says_where(text: str, where: str, message: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        loads(text, source="shop.toml")
    found = [p for p in refused.value.problems if p.where == where]
    assert found, refused.value.problems
    assert message in found[0].message
    assert str(found[0]).startswith(f"shop.toml: {where}: ")


def test_every_problem_is_reported_at_once() -> None:
    text = """
[unit]
code = ""
[regions]
US = "USD"
[[packages]]
sku = "a"
coins = 1
prices = { web = ["1 USD"] }
extra = 1
[[packages]]
sku = "b"
coins = -5
prices = { web = ["1 USD"] }
[revenue_share]
default = "200%"
[payouts]
holding = { fortnights = 1 }
"""
    with pytest.raises(DefinitionError) as refused:
        loads(text)
    wheres = [p.where for p in refused.value.problems]
    assert wheres == ["unit", "packages[0].extra", "packages[1]", "revenue_share", "payouts"]
    assert "5 problems in the definition" in str(refused.value)


def test_repeated_ids_and_bad_regions_are_reported_with_the_other_problems() -> None:
    text = """
[unit]
code = "COIN"
[regions]
US = "USD"
FR = "XXX1"
[[packages]]
sku = "a"
coins = 1
prices = { web = ["1 USD"] }
[[packages]]
sku = "a"
coins = -2
prices = { web = ["x"] }
[catalog]
gifts = [{ id = "rose", name = "Rose", price = 1 }, { id = "rose", name = "Red", price = 2 }]
"""
    with pytest.raises(DefinitionError) as refused:
        loads(text)
    problems = {p.where: p.message for p in refused.value.problems}
    assert "unknown currency code 'XXX1'" in problems["regions.FR"]
    assert problems["packages[1].sku"] == "'a' repeats packages[0].sku"
    assert "money is text" in problems["packages[1].prices.web[0]"]
    assert "at least 1" in problems["packages[1]"]
    assert problems["catalog.gifts[1].id"] == "'rose' repeats catalog.gifts[0].id"
    # only the problems found, each once, and no Python internals
    assert not any("__init__" in p.message for p in refused.value.problems)


def test_a_file_that_is_not_utf8_is_a_definition_problem(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_bytes(b'[unit]\ncode = "CO\xffIN"\n')
    with pytest.raises(DefinitionError) as refused:
        load(path)
    (problem,) = refused.value.problems
    assert (problem.source, problem.where) == (str(path), "(top)")
    assert problem.message == "not UTF-8 text: byte 17 cannot be decoded"


def test_text_a_toml_writer_might_mangle_round_trips() -> None:
    odd = ZoneInfo("Asia/Kolkata")
    book = PriceBook(
        regions={"US": "USD"},
        packages=[CoinPackage("a", 10, {"web": [Money("1", "USD")]})],
        promotions=[
            Promotion(
                "p",
                PromotionKind.PERCENT_OFF,
                rate=Rate("10%"),
                start=datetime(1890, 1, 1, tzinfo=odd),  # an offset with seconds (LMT)
                end=datetime(2030, 1, 1, tzinfo=odd),
            )
        ],
        unit=Unit("COIN", "Münzen \x7f \u2028"),
    )
    catalog = GiftCatalog(
        [Gift("rose", "Rosé 🌹", 1, display={"ключ": "значение", 'a"b': "\x00\t"})]
    )
    definition = EconomyDefinition(price_book=book, catalog=catalog)
    text = dumps(definition)
    assert text.isascii()
    assert "\x7f" not in text
    assert loads(text) == definition
    assert dumps(loads(text)) == text
    lone = EconomyDefinition(price_book=attrs.evolve(book, unit=Unit("COIN", "\ud800")))
    with pytest.raises(ValidationError, match="lone surrogate"):
        dumps(lone)


# -- round trips ---------------------------------------------------------------------------------

codes = st.sampled_from(["USD", "EUR", "JPY"])
regions = st.dictionaries(st.sampled_from(["US", "FR", "JP", "DE"]), codes, min_size=1, max_size=3)
money = st.builds(Money.from_minor, st.integers(1, 10**6), codes)
rates = st.fractions(0, 1, max_denominator=400).map(Rate)
skus = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@st.composite
def packages(draw: st.DrawFn) -> list[CoinPackage]:
    found = []
    for sku in draw(st.lists(skus, unique=True, max_size=4)):
        prices = {
            storefront: draw(
                st.lists(money, min_size=1, max_size=2, unique_by=lambda m: m.currency)
            )
            for storefront in draw(st.sets(st.sampled_from(["web", "ios"]), min_size=1))
        }
        found.append(
            CoinPackage(sku, draw(st.integers(1, 10**6)), prices, draw(st.integers(0, 99)))
        )
    return found


fees = st.builds(
    lambda rate, fixed, rounding: Fee(rate, fixed=fixed, rounding=rounding),
    rates.filter(lambda r: r < Rate(1)),
    st.lists(money, max_size=2, unique_by=lambda m: m.currency),
    st.sampled_from(list(Rounding)),
)
windows: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    st.builds(lambda days: {"start": T0, "end": T0 + timedelta(days=days)}, st.integers(1, 90)),
    st.just(
        {
            "start": T0,
            "rrule": "FREQ=WEEKLY;BYDAY=FR",
            "duration": timedelta(hours=4),
            "timezone": "Europe/Berlin",
        }
    ),
)


@st.composite
def definitions(draw: st.DrawFn) -> EconomyDefinition:
    book_regions = draw(regions)
    promotions = [
        Promotion(f"promo-{n}", PromotionKind.PERCENT_OFF, rate=Rate("10%"), **draw(windows))
        for n in range(draw(st.integers(0, 2)))
    ]
    book = PriceBook(
        regions=book_regions,
        packages=draw(packages()),
        promotions=promotions,
        fees=FeeSchedule(
            payment_methods=[PaymentMethodFee("card", draw(fees))],
            taxes=[
                TaxRule(code, draw(rates), TaxMode.EXCLUSIVE) for code in sorted(book_regions)[:1]
            ],
            store_commissions={"ios": Rate("30%")} if draw(st.booleans()) else {},
        ),
        unit=Unit("COIN", draw(st.sampled_from(["", "Coins"]))),
        rules=draw(
            st.dictionaries(
                st.sampled_from(["P002", "F003", "R002"]),
                st.sampled_from(["error", "warning", "off"]),
            )
        ),
    )
    catalog = GiftCatalog(
        [
            Gift(f"g{n}", f"Gift {n}", n + 1, availability=Availability(**draw(windows)))
            for n in range(draw(st.integers(0, 3)))
        ],
        version=draw(st.integers(1, 9)),
        items=[StoreItem("wave", "Wave", 3, consumable=draw(st.booleans()))],
    )
    holding = draw(
        st.one_of(
            st.builds(lambda d: timedelta(seconds=d), st.integers(0, 10**6)),
            st.builds(
                lambda m, d: relativedelta(months=m, days=d), st.integers(0, 3), st.integers(1, 9)
            ),
        )
    )
    return EconomyDefinition(
        price_book=book,
        catalog=draw(st.none() | st.just(catalog)),
        creator_unit=draw(st.none() | st.just(Unit("DIAMOND"))),
        revenue_share=draw(
            st.none()
            | st.builds(
                lambda d, c: RevenueShare(d, changes=[(T0, c)], creators={"star": [(None, c)]}),
                rates,
                rates,
            )
        ),
        conversion_rate=draw(
            st.none()
            | st.builds(
                lambda w, r: ConversionRate({"USD": w}, rounding=r),
                st.fractions(Fraction(1, 10**4), 10, max_denominator=10**4),
                st.none() | st.sampled_from(list(Rounding)),
            )
        ),
        payout_policy=draw(
            st.none()
            | st.just(
                PayoutPolicy(
                    holding=holding,
                    minimum=[Money("10", "USD")],
                    caps=[Budget(Money("1000", "USD"), BudgetPeriod.DAILY, "UTC")],
                    fee=Fee(Rate("1%"), fixed=[Money("0.25", "USD")]),
                    clawback=draw(st.booleans()),
                )
            )
        ),
        gift_policy=draw(
            st.none() | st.just(GiftPolicy(regions={"US"}, max_quantity=7, tallies=3))
        ),
        eligibility=draw(
            st.none() | st.just(EligibilityPolicy(regions={"US"}, age_of_majority={"KR": 19}))
        ),
        limits=draw(st.none() | st.just(LimitPolicy(purchases_per_hour=5))),
    )


@settings(max_examples=80)
@given(definitions())
def test_writing_a_definition_back_round_trips_exactly(definition: EconomyDefinition) -> None:
    text = dumps(definition)
    again = loads(text)
    assert again == definition
    assert dumps(again) == text
