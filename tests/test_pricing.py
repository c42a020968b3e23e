from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from coinecon import Money, Rate, Rounding, Unit
from coinecon.errors import (
    CoineconError,
    CurrencyMismatchError,
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidPriceBookError,
    InvalidPriceError,
    InvalidPromotionError,
    InvalidQuoteError,
    InvalidTypeError,
    NaiveDatetimeError,
    NotAvailableError,
    PriceBookInvalidError,
    PricingProblemError,
    UnknownCurrencyError,
    ValidationError,
)
from coinecon.pricing import (
    BorneBy,
    BuyerHistory,
    CoinPackage,
    CustomAmounts,
    Fee,
    FeeSchedule,
    LineKind,
    PaymentMethodFee,
    PriceBook,
    PricePoints,
    Problem,
    Promotion,
    PromotionKind,
    Quote,
    QuoteLine,
    Severity,
    StackingPolicy,
    TaxMode,
    TaxRule,
    Tier,
    TierMode,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 25, 12, tzinfo=UTC)
NEW = BuyerHistory(first_purchase=True)
RETURNING = BuyerHistory(first_purchase=False)
QUARTER = timedelta(minutes=15)


def usd(amount: str) -> Money:
    return Money(amount, "USD")


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


LADDER = [
    (100, 0, "0.99", "1.29"),
    (500, 25, "4.99", "5.99"),
    (1000, 100, "9.99", "11.99"),
    (5000, 750, "49.99", "59.99"),
    (10000, 2000, "99.99", "114.99"),
]


def ladder() -> list[CoinPackage]:
    return [
        CoinPackage(
            f"coins_{coins}",
            coins,
            {"web": [usd(web), eur(web)], "ios": [usd(ios), eur(ios)]},
            bonus_coins=bonus,
        )
        for coins, bonus, web, ios in LADDER
    ]


def custom(mode: TierMode = TierMode.GRADUATED, *, points: bool = True) -> CustomAmounts:
    return CustomAmounts(
        100,
        100_000,
        {"web": [usd("0.99"), eur("0.99")], "ios": [usd("1.29"), eur("1.29")]},
        per=100,
        tiers=[Tier(1, 999), Tier(1000, 4999, Rate("5%")), Tier(5000, None, Rate("10%"))],
        mode=mode,
        price_points=[PricePoints(usd("1"), usd("0.99")), PricePoints(eur("1"), eur("0.99"))]
        if points
        else [],
    )


def promotions() -> list[Promotion]:
    return [
        Promotion(
            "spring20",
            PromotionKind.PERCENT_OFF,
            rate=Rate("20%"),
            start=datetime(2026, 3, 20, tzinfo=UTC),
            end=datetime(2026, 4, 20, tzinfo=UTC),
            stacking_group="price",
        ),
        Promotion(
            "weekend",
            PromotionKind.BONUS_COINS,
            bonus_coins=50,
            start=datetime(2026, 1, 3, tzinfo=BERLIN),
            rrule="FREQ=WEEKLY;BYDAY=SA",
            duration=timedelta(hours=48),
            timezone="Europe/Berlin",
            min_coins=500,
            stacking_group="bonus",
        ),
        Promotion(
            "big-spender",
            PromotionKind.BONUS_PERCENT,
            rate=Rate("10%"),
            min_coins=5000,
            stacking_group="bonus",
        ),
        Promotion(
            "welcome",
            PromotionKind.FIRST_PURCHASE_BONUS,
            bonus_coins=100,
            max_redemptions_per_account=1,
            stacking_group="welcome",
        ),
    ]


def fees() -> FeeSchedule:
    return FeeSchedule(
        payment_methods=[
            PaymentMethodFee(
                "card", Fee(Rate("2.9%"), fixed=[usd("0.30"), eur("0.25")]), storefronts={"web"}
            ),
            PaymentMethodFee(
                "paypal",
                Fee(Rate("3.49%"), fixed=[usd("0.49"), eur("0.39")]),
                borne_by=BorneBy.BUYER,
                storefronts={"web"},
            ),
            PaymentMethodFee("app_store", storefronts={"ios"}),
        ],
        service_fee=Fee(fixed=[usd("0.10"), eur("0.10")]),
        store_commissions={"ios": Rate("30%")},
        taxes=[
            TaxRule("DE", Rate("19%"), TaxMode.INCLUSIVE, label="VAT"),
            TaxRule("US", Rate("8.875%"), TaxMode.EXCLUSIVE, label="sales tax"),
        ],
    )


def book(**changes: Any) -> PriceBook:
    base = PriceBook(
        {"US": "USD", "DE": "EUR"},
        ladder(),
        custom(),
        promotions(),
        fees(),
        stacking=StackingPolicy.STACK_GROUPS,
    )
    return attrs.evolve(base, **changes)


def quote(the_book: PriceBook | None = None, **request: Any) -> Quote:
    arguments: dict[str, object] = {
        "account": "acct-1",
        "region": "US",
        "storefront": "web",
        "payment_method": "card",
        "now": NOW,
        "history": RETURNING,
        "validity": QUARTER,
    }
    arguments.update(request)
    if "coins" not in arguments and "sku" not in arguments:
        arguments["sku"] = "coins_1000"
    return (the_book or book()).quote(**arguments)  # type: ignore[arg-type]


# -- the example book --------------------------------------------------------


def test_example_book_is_clean() -> None:
    assert book().check() == ()
    book().validate()


def test_package_quote_breakdown() -> None:
    q = quote(history=NEW)
    assert [(line.kind, line.amount) for line in q.buyer_lines] == [
        (LineKind.LIST_PRICE, usd("9.99")),
        (LineKind.PROMOTION, usd("-2.00")),
        (LineKind.SERVICE_FEE, usd("0.10")),
        (LineKind.TAX, usd("0.71")),
    ]
    assert q.total == usd("8.80")
    assert [(line.kind, line.amount) for line in q.platform_lines] == [
        (LineKind.PROCESSOR_FEE, usd("-0.56")),
        (LineKind.TAX_REMITTED, usd("-0.71")),
    ]
    assert q.net_revenue == usd("7.53")
    assert q.coins == Unit("COIN")(1000)
    assert q.bonus_coins == Unit("COIN")(200)
    assert q.total_coins == Unit("COIN")(1200)
    assert q.promotions == ("spring20", "welcome")
    assert q.price == usd("7.99")
    assert [line.kind for line in q.discounts] == [LineKind.PROMOTION]
    assert not q.tax_included
    assert q.expires_at == NOW + QUARTER


def test_inclusive_tax_and_store_commission() -> None:
    q = quote(
        region="DE",
        storefront="ios",
        payment_method="app_store",
        coins=1500,
        now=datetime(2026, 3, 7, 12, tzinfo=UTC),
    )
    assert q.list_price == eur("19.99")
    assert q.total == eur("20.09")
    assert q.tax == eur("3.19")
    assert q.tax_included
    assert LineKind.TAX not in {line.kind for line in q.buyer_lines}
    commission = next(line for line in q.platform_lines if line.kind is LineKind.STORE_COMMISSION)
    assert commission.amount == eur("-5.07")
    assert q.net_revenue == eur("11.83")
    assert q.promotions == ("weekend",)
    assert q.bonus_coins.amount == 50


def test_tier_discount_line() -> None:
    the_book = book(custom=custom(points=False))
    q = quote(the_book, coins=1500)
    # 999 coins at 0.0099 and 501 at 0.0099 * 95 %, exactly 19.026855 -> 19.03... for ios;
    # on the web: 9.8901 + 4.711905 = 14.602005 -> 14.60; the list is 14.85.
    assert q.list_price == usd("14.85")
    tier = next(line for line in q.buyer_lines if line.kind is LineKind.TIER_DISCOUNT)
    assert tier.amount == usd("-0.25")
    assert tier.borne_by is BorneBy.PLATFORM


def test_buyer_borne_payment_fee() -> None:
    q = quote(payment_method="paypal", sku="coins_100", now=datetime(2026, 3, 18, tzinfo=UTC))
    # 0.99 + 0.10 service + 0.09 tax = 1.18; paypal 3.49 % of it is 0.04, plus 0.49
    surcharge = next(line for line in q.buyer_lines if line.kind is LineKind.PAYMENT_FEE)
    assert surcharge.amount == usd("0.53")
    assert q.total == usd("1.71")
    processing = next(line for line in q.platform_lines if line.kind is LineKind.PROCESSOR_FEE)
    assert processing.amount == usd("-0.53")
    assert processing.borne_by is BorneBy.BUYER
    assert q.net_revenue == usd("1.71") - usd("0.53") - usd("0.09")


# -- availability --------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"region": "JP"}, "region JP"),
        ({"storefront": "android", "payment_method": "card"}, "android"),
        ({"sku": "coins_42"}, "coins_42"),
        ({"payment_method": "crypto"}, "crypto"),
        ({"payment_method": "app_store"}, "app_store"),
        ({"coins": 50}, "50 coins"),
        ({"coins": 100_001}, "100001 coins"),
    ],
)
def test_not_available_names_what_was_asked(request_: dict[str, Any], message: str) -> None:
    with pytest.raises(NotAvailableError, match=message) as caught:
        quote(**request_)
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, CoineconError)


def test_currency_not_priced_is_not_available() -> None:
    the_book = book(regions={"US": "USD", "DE": "EUR", "GB": "GBP"})
    with pytest.raises(NotAvailableError, match="GBP"):
        quote(the_book, region="GB")
    with pytest.raises(NotAvailableError, match="GBP"):
        quote(the_book, region="GB", coins=500)
    assert (
        Problem(
            Severity.WARNING, "region GB", "sells in GBP, but nothing has a GBP price", code="R002"
        )
        in the_book.check()
    )


def test_packages_only_book_refuses_custom_amounts() -> None:
    with pytest.raises(NotAvailableError, match="custom amounts"):
        quote(book(custom=None), coins=500)


def test_missing_fee_currency_is_not_available() -> None:
    the_book = book(
        regions={"US": "USD", "DE": "EUR", "CH": "CHF"},
        packages=[CoinPackage("coins_100", 100, {"web": [usd("0.99"), Money("0.99", "CHF")]})],
    )
    with pytest.raises(NotAvailableError, match="CHF"):
        quote(the_book, region="CH", sku="coins_100")
    where = {p.where for p in the_book.check() if p.severity is Severity.ERROR}
    assert {"payment method card", "payment method paypal", "service fee"} <= where


# -- bad input -------------------------------------------------------------------


def test_request_validation() -> None:
    with pytest.raises(NaiveDatetimeError):
        quote(now=datetime(2026, 3, 25))  # noqa: DTZ001
    with pytest.raises(InvalidQuoteError):
        quote(coins=500, sku="coins_500")
    with pytest.raises(InvalidQuoteError):
        book().quote(
            account="a",
            region="US",
            storefront="web",
            payment_method="card",
            now=NOW,
            history=NEW,
            validity=QUARTER,
        )
    with pytest.raises(InvalidQuoteError):
        quote(validity=timedelta(0))
    with pytest.raises(InvalidQuoteError):
        quote(account="")
    with pytest.raises(InvalidTypeError):
        quote(history={"first_purchase": True})
    with pytest.raises(FloatNotAllowedError):
        quote(coins=500.0)
    with pytest.raises(InvalidTypeError):
        quote(coins=True)
    with pytest.raises(InvalidAmountError):
        quote(coins=-5)
    with pytest.raises(InvalidPriceBookError):
        quote(region="us")


def test_package_validation() -> None:
    with pytest.raises(InvalidAmountError):
        CoinPackage("coins_0", 0, {"web": usd("0.99")})
    with pytest.raises(InvalidAmountError):
        CoinPackage("coins_100", -100, {"web": usd("0.99")})
    with pytest.raises(FloatNotAllowedError):
        CoinPackage("coins_100", 100.0, {"web": usd("0.99")})  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        CoinPackage("coins_100", 100, {"web": usd("0.99")}, bonus_coins=False)
    with pytest.raises(InvalidPriceError, match="above zero"):
        CoinPackage("coins_100", 100, {"web": usd("0")})
    with pytest.raises(InvalidPriceError):
        CoinPackage("coins_100", 100, {"web": usd("-0.99")})
    with pytest.raises(FloatNotAllowedError):
        CoinPackage("coins_100", 100, {"web": 0.99})  # type: ignore[dict-item]
    with pytest.raises(InvalidPriceError, match="two amounts"):
        CoinPackage("coins_100", 100, {"web": [usd("0.99"), usd("1.99")]})
    with pytest.raises(InvalidPriceBookError):
        CoinPackage("Coins 100", 100, {"web": usd("0.99")})
    with pytest.raises(InvalidPriceBookError):
        CoinPackage("coins_100", 100, {"Web Shop": usd("0.99")})
    with pytest.raises(InvalidPriceBookError, match="no price"):
        CoinPackage("coins_100", 100, {})
    with pytest.raises(UnknownCurrencyError):
        Money("0.99", "ABC")


def test_book_validation() -> None:
    with pytest.raises(InvalidPriceBookError, match=r"SKU .coins_100. is used twice"):
        book(packages=[*ladder(), ladder()[0]])
    with pytest.raises(InvalidPriceBookError, match="used twice"):
        book(promotions=[*promotions(), promotions()[0]])
    with pytest.raises(InvalidPriceBookError):
        book(regions={"USA": "USD"})
    with pytest.raises(UnknownCurrencyError):
        book(regions={"US": "XXY"})
    with pytest.raises(InvalidPriceBookError, match="max_coins"):
        CustomAmounts(500, 100, {"web": usd("0.99")})
    with pytest.raises(InvalidPriceBookError):
        Tier(100, 50)
    with pytest.raises(InvalidPriceBookError, match="below 100%"):
        Tier(1, None, Rate(1))
    with pytest.raises(InvalidPriceError):
        PricePoints(usd("1"), usd("1"))
    with pytest.raises(InvalidPriceError):
        PricePoints(usd("1"), eur("0.99"))
    with pytest.raises(InvalidPriceBookError, match="minimum"):
        Fee(minimum=usd("2"), maximum=usd("1"))
    with pytest.raises(InvalidPriceBookError, match=r"payment method .card. is used twice"):
        FeeSchedule(payment_methods=[PaymentMethodFee("card"), PaymentMethodFee("card")])
    with pytest.raises(InvalidPriceBookError, match=r"tax region .DE. is used twice"):
        FeeSchedule(
            taxes=[
                TaxRule("DE", Rate("19%"), TaxMode.INCLUSIVE),
                TaxRule("DE", Rate("7%"), TaxMode.INCLUSIVE),
            ]
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"rrule": "FREQ=SOMETIMES"},
        {"rrule": "FREQ=WEEKLY;BYDAY=XX"},
        {"rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"},
        {"rrule": "FREQ=MINUTELY"},
        {"rrule": "FREQ=HOURLY;BYMINUTE=0,30"},
        {"rrule": "freq=hourly;byminute=0,30"},
        {"rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0,15,30,45"},
        {"rrule": "FREQ=HOURLY;BYMINUTE=0;BYSECOND=0,1"},
        {
            "rrule": "FREQ=HOURLY;BYMINUTE="
            + ",".join(map(str, range(60)))
            + ";BYSECOND="
            + ",".join(map(str, range(60)))
        },
        {"duration": None},
        {"duration": timedelta(0)},
        {"start": None},
        {"timezone": "Mars/Olympus_Mons"},
    ],
)
def test_bad_recurrence_refused(changes: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "rrule": "FREQ=WEEKLY;BYDAY=SA",
        "start": datetime(2026, 1, 3, tzinfo=BERLIN),
        "duration": timedelta(hours=48),
        "timezone": "Europe/Berlin",
        **changes,
    }
    with pytest.raises(InvalidPromotionError) as caught:
        Promotion("weekend", PromotionKind.BONUS_COINS, bonus_coins=50, **arguments)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


def recurring(rrule: str) -> Promotion:
    return Promotion(
        "hours",
        PromotionKind.BONUS_COINS,
        bonus_coins=5,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        rrule=rrule,
        duration=timedelta(minutes=30),
    )


@pytest.mark.parametrize(
    "rrule",
    [
        "FREQ=HOURLY;BYMINUTE=0,30",
        "FREQ=HOURLY;BYSECOND=0,30",
        "FREQ=WEEKLY;BYDAY=SA;BYHOUR=10;BYMINUTE=0,1",
    ],
)
def test_recurrence_more_often_than_hourly_refused(rrule: str) -> None:
    with pytest.raises(InvalidPromotionError, match="at most hourly"):
        recurring(rrule)


def test_recurrence_at_most_hourly_accepted() -> None:
    # Several hours a day, each at one minute and second, is at most hourly.
    shifts = recurring("FREQ=DAILY;BYHOUR=9,10,11;BYMINUTE=0;BYSECOND=0")
    assert shifts.is_active_at(datetime(2026, 1, 5, 10, 29, tzinfo=UTC))
    assert not shifts.is_active_at(datetime(2026, 1, 5, 10, 30, tzinfo=UTC))
    assert not shifts.is_active_at(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    assert recurring("FREQ=HOURLY;BYMINUTE=15,15").is_active_at(
        datetime(2026, 1, 5, 7, 44, tzinfo=UTC)
    )


def test_floats_refused_everywhere() -> None:
    with pytest.raises(FloatNotAllowedError):
        Tier(1, None, 0.05)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        Promotion("p", PromotionKind.PERCENT_OFF, rate=0.2)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        Fee(0.029)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        TaxRule("DE", 0.19, TaxMode.INCLUSIVE)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        FeeSchedule(store_commissions={"ios": 0.3})  # type: ignore[dict-item]
    with pytest.raises(FloatNotAllowedError):
        PricePoints(1.0, usd("0.99"))  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        PricePoints(usd("1"), 0.99)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        CustomAmounts(1, 100, {"web": usd("0.99")}, per=1.0)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        Fee(fixed=0.30)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        BuyerHistory(first_purchase=False, redemptions={"p": 1.0})  # type: ignore[dict-item]
    # Exact strings are welcome where a rate is expected.
    assert TaxRule("DE", "19%", TaxMode.INCLUSIVE).rate == Rate("0.19")


def test_bad_offers_refused() -> None:
    with pytest.raises(InvalidPromotionError):
        Promotion("p", PromotionKind.PERCENT_OFF, rate=Rate(1))
    with pytest.raises(InvalidPromotionError):
        Promotion("p", PromotionKind.PERCENT_OFF, rate=Rate(0))
    with pytest.raises(InvalidPromotionError):
        Promotion("p", PromotionKind.PERCENT_OFF)
    with pytest.raises(InvalidPromotionError):
        Promotion("p", PromotionKind.PERCENT_OFF, rate=Rate("10%"), bonus_coins=5)
    with pytest.raises(InvalidPromotionError):
        Promotion("p", PromotionKind.BONUS_COINS)
    with pytest.raises(InvalidPromotionError):
        Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5, rate=Rate("10%"))
    with pytest.raises(InvalidPromotionError):
        Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5, duration=timedelta(hours=1))
    with pytest.raises(FloatNotAllowedError):
        Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5.0)  # type: ignore[arg-type]
    with pytest.raises(NaiveDatetimeError):
        Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5, start=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(InvalidTypeError):
        Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5, first_purchase_only=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5, regions="US")
    with pytest.raises(InvalidTypeError):
        BuyerHistory(first_purchase=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError):
        BuyerHistory(first_purchase=False, redemptions={"p": -1})


# -- promotions -------------------------------------------------------------------


def test_recurring_window_follows_the_zone_across_dst() -> None:
    friday = Promotion(
        "friday",
        PromotionKind.PERCENT_OFF,
        rate=Rate("10%"),
        start=datetime(2026, 1, 2, 18, tzinfo=BERLIN),
        rrule="RRULE:FREQ=WEEKLY;BYDAY=FR",
        duration=timedelta(hours=4),
        timezone=BERLIN,
    )
    winter = datetime(2026, 1, 9, 17, 30, tzinfo=UTC)  # 18:30 in Berlin
    summer = datetime(2026, 7, 3, 16, 30, tzinfo=UTC)  # 18:30 in Berlin
    assert friday.is_active_at(winter)
    assert friday.is_active_at(summer)
    assert not friday.is_active_at(datetime(2026, 7, 3, 15, 59, tzinfo=UTC))
    assert not friday.is_active_at(datetime(2026, 7, 3, 20, 0, tzinfo=UTC))
    assert friday.is_active_at(datetime(2026, 7, 3, 19, 59, tzinfo=UTC))
    assert not friday.is_active_at(datetime(2026, 1, 1, 18, 30, tzinfo=BERLIN))
    with pytest.raises(NaiveDatetimeError):
        friday.is_active_at(datetime(2026, 1, 9, 18))  # noqa: DTZ001


def test_fixed_window_is_half_open() -> None:
    spring = promotions()[0]
    assert spring.start is not None and spring.end is not None
    assert spring.is_active_at(spring.start)
    assert not spring.is_active_at(spring.end)
    assert spring.is_active_at(spring.end - timedelta(microseconds=1))
    assert not spring.is_active_at(spring.start - timedelta(microseconds=1))


def test_eligibility_rules() -> None:
    welcome, big = promotions()[3], promotions()[2]
    facts = {"region": "US", "storefront": "web", "coins": 5000, "now": NOW}
    assert welcome.is_eligible(history=NEW, **facts)  # type: ignore[arg-type]
    assert not welcome.is_eligible(history=RETURNING, **facts)  # type: ignore[arg-type]
    used = BuyerHistory(first_purchase=True, redemptions={"welcome": 1})
    assert not welcome.is_eligible(history=used, **facts)  # type: ignore[arg-type]
    assert big.is_eligible(history=RETURNING, **facts)  # type: ignore[arg-type]
    assert not big.is_eligible(history=RETURNING, **{**facts, "coins": 4999})  # type: ignore[arg-type]
    only_de = attrs.evolve(big, regions={"DE"}, storefronts={"ios"})
    assert not only_de.is_eligible(history=RETURNING, **facts)  # type: ignore[arg-type]
    assert only_de.is_eligible(
        history=RETURNING,
        **{**facts, "region": "DE", "storefront": "ios"},  # type: ignore[arg-type]
    )


def test_best_single_picks_most_value_and_breaks_ties_by_id() -> None:
    single = book(stacking=StackingPolicy.BEST_SINGLE)
    # spring20 saves 2.00 on 1100 coins; welcome gives 100 coins: 7.99/1100 < 9.99/1200
    assert quote(single, history=NEW).promotions == ("spring20",)
    twins = [
        Promotion("b-bonus", PromotionKind.BONUS_COINS, bonus_coins=100),
        Promotion("a-bonus", PromotionKind.BONUS_COINS, bonus_coins=100),
    ]
    assert quote(book(stacking=StackingPolicy.BEST_SINGLE, promotions=twins)).promotions == (
        "a-bonus",
    )
    assert quote(book(stacking=StackingPolicy.STACK_GROUPS, promotions=twins)).promotions == (
        "a-bonus",
    )


def test_stack_groups_compounds_percent_offs() -> None:
    offers = [
        Promotion("half", PromotionKind.PERCENT_OFF, rate=Rate("50%"), stacking_group="a"),
        Promotion("more", PromotionKind.PERCENT_OFF, rate=Rate("50%"), stacking_group="b"),
        Promotion("most", PromotionKind.PERCENT_OFF, rate=Rate("99%"), stacking_group="c"),
    ]
    q = quote(book(promotions=offers), sku="coins_100")
    assert q.promotions == ("half", "more", "most")
    # 0.99 -> 0.49 (0.495 rounds half up to 0.50 off) -> 0.24 (0.245 -> 0.25 off) -> 0.00
    assert q.price == usd("0")
    assert all(line.amount <= usd("0") for line in q.discounts)


def test_percent_bonus_rounds_down() -> None:
    q = quote(sku="coins_5000", now=datetime(2026, 3, 18, tzinfo=UTC))
    assert q.promotions == ("big-spender",)
    assert q.bonus_coins.amount == 750 + 500
    odd = book(
        promotions=[Promotion("third", PromotionKind.BONUS_PERCENT, rate=Rate("1/3"))],
        custom=custom(points=False),
    )
    assert quote(odd, coins=1000).bonus_coins.amount == 333


# -- the quote value ---------------------------------------------------------------


def test_quote_validity_and_fingerprint() -> None:
    q = quote()
    assert q.is_valid_at(NOW)
    assert q.is_valid_at(NOW + QUARTER - timedelta(microseconds=1))
    assert not q.is_valid_at(NOW + QUARTER)
    assert not q.is_valid_at(NOW - timedelta(seconds=1))
    with pytest.raises(NaiveDatetimeError):
        q.is_valid_at(datetime(2026, 3, 25))  # noqa: DTZ001
    assert re.fullmatch("[0-9a-f]{64}", q.fingerprint)
    assert q.fingerprint == hashlib.sha256(q.canonical().encode("utf-8")).hexdigest()
    same_instant = quote(now=NOW.astimezone(BERLIN))
    assert same_instant == q
    assert same_instant.fingerprint == q.fingerprint
    for change in [
        {"account": "acct-2"},
        {"created_at": NOW - timedelta(seconds=1)},
        {"expires_at": NOW + timedelta(hours=1)},
        {"payment_method": "paypal"},
        {"promotions": ("other",)},
        {"coins": Unit("COIN")(1001)},
        {"bonus_coins": Unit("COIN")(1)},
        {"sku": None},
    ]:
        assert attrs.evolve(q, **change).fingerprint != q.fingerprint, change  # type: ignore[arg-type]
    # The list price and the tax must agree with the lines, so change them together.
    assert with_list_price(q, usd("1.00")).fingerprint != q.fingerprint
    assert with_tax(q, usd("0")).fingerprint != q.fingerprint


def test_a_quotes_sku_is_text_or_none() -> None:
    q = quote(sku="coins_100")
    assert attrs.evolve(q, sku=None).sku is None
    with pytest.raises(InvalidTypeError, match="sku must be a str, got int 100"):
        attrs.evolve(q, sku=100)  # type: ignore[arg-type]


def with_list_price(q: Quote, amount: Money) -> Quote:
    """*q* with another list price, its list-price line and totals changed to match."""
    delta = amount - q.list_price
    lines = [
        attrs.evolve(line, amount=amount) if line.kind is LineKind.LIST_PRICE else line
        for line in q.buyer_lines
    ]
    return attrs.evolve(
        q,
        list_price=amount,
        buyer_lines=lines,
        total=q.total + delta,
        net_revenue=q.net_revenue + delta,
    )


def with_tax(q: Quote, amount: Money) -> Quote:
    """*q* (with tax added on top) with another tax, its lines and total changed to match."""
    delta = amount - q.tax

    def shift(lines: tuple[QuoteLine, ...], kind: LineKind, by: Money) -> list[QuoteLine]:
        return [attrs.evolve(i, amount=i.amount + by) if i.kind is kind else i for i in lines]

    return attrs.evolve(
        q,
        tax=amount,
        buyer_lines=shift(q.buyer_lines, LineKind.TAX, delta),
        platform_lines=shift(q.platform_lines, LineKind.TAX_REMITTED, -delta),
        total=q.total + delta,
    )


# A quote whose canonical form has non-ASCII text; pinned, so the serialisation
# (escapes, key order, separators) and the fingerprint stay byte for byte the same.
PINNED_CANONICAL = (
    '{"account":"zo\\u00eb \\u00fc \\u65e5\\u672c \\"quoted\\"","bonus_coins":0,'
    '"buyer_lines":[["list-price","1500 coins",1999,"buyer"],'
    '["promotion","promotion spring20",-400,"platform"],'
    '["service-fee","service fee",10,"buyer"]],"coins":1500,'
    '"created_at":"2026-03-25T12:00:00+00:00","currency":["EUR",2],'
    '"expires_at":"2026-03-25T12:15:00+00:00","list_price":1999,"net_revenue":948,'
    '"payment_method":"app_store","platform_lines":'
    '[["store-commission","ios store commission",-406,"platform"],'
    '["tax-remitted","MwSt. \\u00fc \\u20ac 19% remitted",-255,"buyer"]],'
    '"promotions":["spring20"],"region":"DE","sku":null,"storefront":"ios","tax":255,'
    '"tax_included":true,"total":1609,"unit":"COIN","version":"coinecon.quote.v1"}'
)


def test_canonical_form_and_fingerprint_are_pinned() -> None:
    vat = TaxRule("DE", Rate("19%"), TaxMode.INCLUSIVE, label="MwSt. \u00fc \u20ac")
    the_book = book(fees=attrs.evolve(fees(), taxes=[vat]))
    q = quote(
        the_book,
        account='zo\u00eb \u00fc \u65e5\u672c "quoted"',
        region="DE",
        storefront="ios",
        payment_method="app_store",
        coins=1500,
    )
    assert q.canonical() == PINNED_CANONICAL
    assert q.canonical() == json.dumps(q._document(), sort_keys=True, separators=(",", ":"))
    assert q.fingerprint == "6ae8744e2e75f96065318b5ba4b37a888ff0916a804e36c4700aea31f11aa112"
    assert quote(history=NEW).fingerprint == (
        "9996278296213f7c4c52a9ab0bf0915656cc4f43262d9ee6dbe49cb123f4a1e2"
    )


def test_quote_that_does_not_add_up_cannot_exist() -> None:
    q = quote()
    with pytest.raises(InvalidQuoteError, match="buyer lines"):
        attrs.evolve(q, total=q.total + usd("0.01"))
    with pytest.raises(InvalidQuoteError, match="net revenue"):
        attrs.evolve(q, net_revenue=q.net_revenue + usd("0.01"))
    with pytest.raises(InvalidQuoteError, match="expire"):
        attrs.evolve(q, expires_at=q.created_at)
    with pytest.raises(InvalidQuoteError, match="USD"):
        attrs.evolve(q, tax=eur("0"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        q.total = usd("0")  # type: ignore[misc]


def test_quote_totals_must_match_its_lines() -> None:
    q = quote(history=NEW)  # sales tax added on top; promotions spring20 and welcome
    assert with_list_price(q, usd("1.00")).list_price == usd("1.00")
    assert with_tax(q, usd("0.72")).tax == usd("0.72")
    with pytest.raises(InvalidQuoteError, match="list price"):
        attrs.evolve(q, list_price=usd("1.00"))
    with pytest.raises(InvalidQuoteError, match="tax"):
        attrs.evolve(q, tax=usd("0.72"))
    with pytest.raises(InvalidQuoteError, match="tax"):
        attrs.evolve(q, tax=usd("0"))
    with pytest.raises(InvalidQuoteError, match="tax"):
        attrs.evolve(q, tax_included=True)
    with pytest.raises(InvalidTypeError, match="promotions"):
        attrs.evolve(q, promotions="xyz")
    with pytest.raises(CoineconError):
        attrs.evolve(q, tax=usd("0"), list_price=usd("1.00"), tax_included=True, promotions="xyz")
    with pytest.raises(InvalidQuoteError, match="sorted"):
        attrs.evolve(q, promotions=("welcome", "spring20"))
    with pytest.raises(InvalidQuoteError, match="sorted"):
        attrs.evolve(q, promotions=("spring20", "spring20"))
    with pytest.raises(InvalidQuoteError, match="promotion id"):
        attrs.evolve(q, promotions=("Spring 20",))
    with pytest.raises(InvalidQuoteError, match="wrong side"):
        attrs.evolve(q, platform_lines=(*q.platform_lines, attrs.evolve(q.buyer_lines[0])))
    with pytest.raises(InvalidQuoteError, match="list price"):
        attrs.evolve(
            q,
            buyer_lines=(*q.buyer_lines, attrs.evolve(q.buyer_lines[0], amount=usd("0"))),
        )
    with pytest.raises(InvalidIdentifierError):
        attrs.evolve(q, account="a\nb")
    with pytest.raises(InvalidQuoteError, match="QuoteLine"):
        attrs.evolve(q, buyer_lines=[*q.buyer_lines, "tip"])  # type: ignore[list-item]
    with pytest.raises(InvalidTypeError):
        attrs.evolve(q, buyer_lines=5)  # type: ignore[arg-type]
    # An included tax has no line on the buyer's side, only the one remitted.
    inclusive = quote(region="DE", storefront="ios", payment_method="app_store", coins=1500)
    assert inclusive.tax_included and inclusive.tax.is_positive
    with pytest.raises(InvalidQuoteError, match="tax"):
        attrs.evolve(inclusive, tax_included=False)


# -- fees and tax -----------------------------------------------------------------


def test_fee_bounds() -> None:
    fee = Fee(Rate("10%"), minimum=[usd("0.50")], maximum=[usd("2.00")])
    assert fee.amount(usd("1.00")) == usd("0.50")
    assert fee.amount(usd("10.00")) == usd("1.00")
    assert fee.amount(usd("100.00")) == usd("2.00")
    with pytest.raises(NotAvailableError, match="EUR"):
        fee.amount(eur("10.00"))
    assert Fee(Rate("10%")).amount(eur("10.00")) == eur("1.00")


@pytest.mark.parametrize(
    ("price", "rate", "tax"),
    [("9.99", "19%", "1.60"), ("119.00", "19%", "19.00"), ("0.01", "19%", "0.00")],
)
def test_inclusive_tax_splits_exactly(price: str, rate: str, tax: str) -> None:
    rule = TaxRule("DE", Rate(rate), TaxMode.INCLUSIVE)
    assert rule.tax_on(eur(price)) == eur(tax)


def test_tax_rounding_is_stated() -> None:
    half_up = TaxRule("US", Rate("5%"), TaxMode.EXCLUSIVE)
    down = attrs.evolve(half_up, rounding=Rounding.DOWN)
    assert half_up.tax_on(usd("0.10")) == usd("0.01")
    assert down.tax_on(usd("0.10")) == usd("0.00")


# -- check ---------------------------------------------------------------------------


def errors_of(the_book: PriceBook) -> list[Problem]:
    return [p for p in the_book.check() if p.severity is Severity.ERROR]


def test_check_reports_every_ladder_problem() -> None:
    naive = [
        CoinPackage(f"coins_{coins}", coins, {"web": usd(web)})
        for coins, web in [(100, "0.99"), (500, "4.99"), (1000, "9.99"), (2000, "9.49")]
    ]
    problems = [p for p in book(packages=naive, custom=None).check() if p.code in {"P001", "P002"}]
    # 4.99 / 500 is more per coin than 0.99 / 100: a warning by default (P002)
    rises = {p.where for p in problems if p.code == "P002"}
    assert {"package coins_500, USD/web", "package coins_1000, USD/web"} <= rises
    assert all(p.severity is Severity.WARNING for p in problems if p.code == "P002")
    # a smaller package dearer than a bigger one: an error (P001)
    drops = [p for p in errors_of(book(packages=naive, custom=None)) if p.code == "P001"]
    assert any("more than package coins_2000" in p.message for p in drops)
    assert len(problems) >= 4


def test_check_reports_tier_gaps_overlaps_and_rises() -> None:
    broken = CustomAmounts(
        100,
        10_000,
        {"web": usd("0.99")},
        per=100,
        tiers=[Tier(1, 999), Tier(900, 4999, Rate("5%")), Tier(6000, 8000, Rate("10%"))],
    )
    messages = [p.message for p in errors_of(book(custom=broken))]
    assert "tiers 1-999 coins and 900-4999 coins overlap at 900-999 coins" in messages
    assert "no tier covers 5000-5999 coins" in messages
    assert "no tier covers 8001-10000 coins" in messages
    with pytest.raises(PricingProblemError, match="overlap"):
        quote(book(custom=broken), coins=950)
    with pytest.raises(PricingProblemError, match="no tier covers"):
        quote(book(custom=broken), coins=5500)
    rising = attrs.evolve(broken, tiers=[Tier(1, 999, Rate("10%")), Tier(1000, None)])
    problems = errors_of(book(custom=rising))
    assert [(p.where, p.message) for p in problems] == [
        (
            "custom amounts, tier 1000+ coins",
            (
                "the per-coin price rises with quantity: its discount 0 is below the 0.1 of "
                "tier 1-999 coins"
            ),
        )
    ]


def test_check_reports_volume_cliffs_per_market() -> None:
    volume = custom(TierMode.VOLUME, points=False)
    problems = errors_of(book(custom=volume))
    wheres = {p.where for p in problems}
    assert "custom amounts, USD/web, 1000 coins" in wheres
    assert "custom amounts, EUR/ios, 5000 coins" in wheres
    assert any("drops from 9.89 USD for 999 coins to 9.41 USD" in p.message for p in problems)


def test_check_reports_unrepresentable_and_warnings() -> None:
    tiny = CustomAmounts(1, 1000, {"web": usd("0.01")}, per=1000)
    problems = book(custom=tiny).check()
    assert any(
        p.where == "custom amounts, USD/web" and "not representable" in p.message for p in problems
    )
    expensive = [*ladder(), CoinPackage("coins_1500", 1500, {"web": usd("19.99")})]
    warnings = [p for p in book(packages=expensive).check() if p.severity is Severity.WARNING]
    assert any(p.where == "package coins_1500, USD/web" for p in warnings)


def test_check_reports_a_volume_tier_that_rounds_to_nothing() -> None:
    # 1 coin costs 0.005, rounded to 0.01; from 2 coins 90 % off: 2 * 0.005 * 10 % = 0.001.
    tiny = CustomAmounts(
        1,
        10,
        {"web": Money.from_minor(1, "USD")},
        per=2,
        tiers=[Tier(1, 1), Tier(2, None, Rate("90%"))],
        mode=TierMode.VOLUME,
    )
    the_book = PriceBook({"US": "USD"}, custom=tiny, fees=FeeSchedule([PaymentMethodFee("card")]))
    assert the_book.coin_price(region="US", storefront="web", coins=1) == usd("0.01")
    with pytest.raises(PricingProblemError, match="minor unit"):
        the_book.coin_price(region="US", storefront="web", coins=2)
    assert errors_of(the_book) == [
        Problem(
            Severity.ERROR,
            "custom amounts, USD/web",
            "2 coins cost less than one minor unit of USD: the price is not representable",
            code="C004",
        ),
        # A price that rounds to nothing is a drop from the quantity before it.
        Problem(
            Severity.ERROR,
            "custom amounts, USD/web, 2 coins",
            "the total drops from 0.01 USD for 1 coins to 0.00 USD for 2 coins",
            code="C005",
        ),
    ]
    with pytest.raises(PriceBookInvalidError):
        the_book.validate()
    # A later tier start is checked too; tiers starting outside the range are not.
    three = attrs.evolve(
        tiny,
        max_coins=20,
        tiers=[Tier(1, 9), Tier(10, 29, Rate("95%")), Tier(30, None, Rate("99%"))],
    )
    assert [p.message for p in errors_of(attrs.evolve(the_book, custom=three))] == [
        "10 coins cost less than one minor unit of USD: the price is not representable",
        "the total drops from 0.05 USD for 9 coins to 0.00 USD for 10 coins",
    ]


def test_check_reports_promotion_contradictions() -> None:
    broken = [
        Promotion(
            "backwards",
            PromotionKind.BONUS_COINS,
            bonus_coins=5,
            start=datetime(2026, 5, 1, tzinfo=UTC),
            end=datetime(2026, 4, 1, tzinfo=UTC),
        ),
        Promotion(
            "no-friday",
            PromotionKind.BONUS_COINS,
            bonus_coins=5,
            start=datetime(2026, 1, 3, tzinfo=UTC),  # a Saturday
            end=datetime(2026, 1, 8, tzinfo=UTC),
            rrule="FREQ=WEEKLY;BYDAY=FR",
            duration=timedelta(hours=1),
        ),
        Promotion("grouped", PromotionKind.BONUS_COINS, bonus_coins=5, stacking_group="x"),
        Promotion("huge", PromotionKind.BONUS_COINS, bonus_coins=5, min_coins=10**9),
        Promotion("abroad", PromotionKind.BONUS_COINS, bonus_coins=5, regions={"FR"}),
    ]
    problems = book(promotions=broken, stacking=StackingPolicy.BEST_SINGLE).check()
    found = {(p.severity, p.where) for p in problems}
    assert found == {
        (Severity.ERROR, "promotion backwards"),
        (Severity.ERROR, "promotion no-friday"),
        (Severity.WARNING, "promotion grouped"),
        (Severity.ERROR, "promotion huge"),
        (Severity.WARNING, "promotion abroad"),
    }


def test_validate_raises_every_error_at_once() -> None:
    broken = book(custom=custom(TierMode.VOLUME, points=False), fees=FeeSchedule())
    with pytest.raises(PriceBookInvalidError) as caught:
        broken.validate()
    group = caught.value
    assert isinstance(group, ExceptionGroup)
    assert isinstance(group, ValueError)
    assert len(group.exceptions) == len(errors_of(broken)) > 4
    assert all(isinstance(e, PricingProblemError) for e in group.exceptions)
    assert "fee schedule" in {
        e.where for e in group.exceptions if isinstance(e, PricingProblemError)
    }
    matched, rest = group.split(lambda e: "USD" in str(e))
    assert isinstance(matched, PriceBookInvalidError)
    assert rest is not None


def test_check_never_raises_on_an_empty_book() -> None:
    empty = PriceBook({})
    assert {p.where for p in empty.check()} == {"regions", "fee schedule"}
    assert str(empty.check()[0]).startswith("error[R001]: regions")


def test_price_points_round_up() -> None:
    points = PricePoints(Money(100, "JPY"), Money(80, "JPY"))
    assert points.apply(Money(80, "JPY")) == Money(80, "JPY")
    assert points.apply(Money(81, "JPY")) == Money(180, "JPY")
    assert points.apply(Money(1, "JPY")) == Money(80, "JPY")
    assert points.currency.code == "JPY"


def test_money_amounts_reject_decimals_only_through_money() -> None:
    # Prices are Money, so a price with too many places is refused where it is made.
    with pytest.raises(ValidationError):
        Money(Decimal("0.999"), "USD")


def test_price_points_refuse_another_currency() -> None:
    points = PricePoints(usd("1"), usd("0.99"))
    with pytest.raises(CurrencyMismatchError, match="EUR and USD"):
        points.apply(eur("14.12"))
    with pytest.raises(InvalidPriceError):
        points.apply(5)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        points.apply(14.12)  # type: ignore[arg-type]
    with pytest.raises(InvalidPriceBookError, match="price point currency 'USD' is used twice"):
        attrs.evolve(custom(), price_points=[points, PricePoints(usd("5"), usd("4.99"))])


def test_fees_and_taxes_refuse_what_is_not_money() -> None:
    rule = TaxRule("DE", Rate("19%"), TaxMode.INCLUSIVE)
    with pytest.raises(InvalidPriceError):
        Fee(Rate("2%")).amount(5)  # type: ignore[arg-type]
    with pytest.raises(FloatNotAllowedError):
        Fee(Rate("2%")).amount(9.99)  # type: ignore[arg-type]
    with pytest.raises(InvalidPriceError):
        rule.tax_on("9.99")  # type: ignore[arg-type]
    with pytest.raises(InvalidPriceError):
        attrs.evolve(rule, mode=TaxMode.EXCLUSIVE).tax_on(None)  # type: ignore[arg-type]


def test_promotion_inputs_are_checked() -> None:
    welcome = promotions()[3]
    facts: dict[str, Any] = {
        "region": "US",
        "storefront": "web",
        "coins": 5,
        "history": NEW,
        "now": NOW,
    }
    assert welcome.is_eligible(**facts)
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"coins": "5"}, InvalidTypeError),
        ({"coins": 0}, InvalidAmountError),
        ({"history": {}}, InvalidTypeError),
        ({"region": ["US"]}, InvalidPriceBookError),
        ({"storefront": None}, InvalidPriceBookError),
        ({"now": datetime(2026, 3, 25)}, NaiveDatetimeError),  # noqa: DTZ001
        # Checked even where the promotion would not apply anyway.
        ({"region": "DE", "now": datetime(2026, 3, 25)}, NaiveDatetimeError),  # noqa: DTZ001
    ]
    for change, error in cases:
        with pytest.raises(error):
            welcome.is_eligible(**{**facts, **change})
    with pytest.raises(InvalidTypeError):
        welcome.bonus_for("5")  # type: ignore[arg-type]
    half = Promotion("half", PromotionKind.PERCENT_OFF, rate=Rate("50%"))
    assert half.price_cut(usd("0.99"), rounding=Rounding.HALF_UP) == usd("0.50")
    assert welcome.price_cut(usd("0.99"), rounding=Rounding.HALF_UP) == usd("0")
    with pytest.raises(InvalidPriceError):
        half.price_cut(99, rounding=Rounding.HALF_UP)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        half.price_cut(usd("0.99"), rounding="half-up")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: book(packages=5),
        lambda: book(promotions=None),
        lambda: book(packages="coins_100"),
        lambda: attrs.evolve(custom(), tiers=5),  # type: ignore[arg-type]
        lambda: attrs.evolve(custom(), price_points=5),  # type: ignore[arg-type]
        lambda: FeeSchedule(payment_methods=5),  # type: ignore[arg-type]
        lambda: FeeSchedule(taxes=5),  # type: ignore[arg-type]
        lambda: PaymentMethodFee("card", storefronts=5),  # type: ignore[arg-type]
        lambda: Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5, regions=5),  # type: ignore[arg-type]
        lambda: Promotion("p", PromotionKind.BONUS_COINS, bonus_coins=5, storefronts=5),  # type: ignore[arg-type]
    ],
)
def test_collections_that_are_not_collections_are_typed_errors(make: Any) -> None:
    with pytest.raises(InvalidTypeError, match="list, tuple or set"):
        make()


@pytest.mark.parametrize("account", ["a\nb", "x" * 201, "x" * 5000, 5, "tab\there"])
def test_quote_refuses_an_unusable_account(account: object) -> None:
    with pytest.raises(InvalidQuoteError, match="account"):
        quote(account=account)


def test_quote_accepts_any_printable_account() -> None:
    assert quote(account="x" * 200).account == "x" * 200
    assert quote(account="Zoë O'Brien").account == "Zoë O'Brien"


def test_discount_rounding_is_the_books() -> None:
    half = [Promotion("half", PromotionKind.PERCENT_OFF, rate=Rate("50%"))]
    # 0.99 less 50 %: a cut of 0.495, rounded half up to 0.50 or down to 0.49.
    default = quote(book(promotions=half), sku="coins_100")
    assert default.price == usd("0.49")
    assert [line.amount for line in default.discounts] == [usd("-0.50")]
    down = quote(book(promotions=half, discount_rounding=Rounding.DOWN), sku="coins_100")
    assert down.price == usd("0.50")
    assert [line.amount for line in down.discounts] == [usd("-0.49")]


def test_a_book_sells_its_own_unit() -> None:
    gems = book(unit=Unit("GEM"))
    q = quote(gems, history=NEW)
    assert q.coins == Unit("GEM")(1000)
    assert q.bonus_coins == Unit("GEM")(200)
    assert q.total_coins == Unit("GEM")(1200)
    assert q.fingerprint != quote(history=NEW).fingerprint
    with pytest.raises(InvalidTypeError):
        book(unit="GEM")


def test_warnings_do_not_fail_validate() -> None:
    the_book = book(regions={"US": "USD", "DE": "EUR", "FR": "EUR"})
    problems = the_book.check()
    assert problems == (
        Problem(
            Severity.WARNING, "region FR", "has no tax rule: no tax is charged there", code="F003"
        ),
    )
    the_book.validate()  # does not raise
