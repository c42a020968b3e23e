from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from typing import Any

import attrs
from hypothesis import assume, event, given
from hypothesis import strategies as st

from coinecon import Currency, Money, Rate, Rounding
from coinecon.errors import PricingProblemError
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
    Promotion,
    PromotionKind,
    Quote,
    Severity,
    StackingPolicy,
    TaxMode,
    TaxRule,
    Tier,
    TierMode,
)
from coinecon.testing import strategies as cst

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
REGIONS = {"US": "USD", "DE": "EUR", "JP": "JPY"}
CODES = sorted(set(REGIONS.values()))
STOREFRONTS = ["web", "ios"]

# Rates strictly between 0 and 1, with small denominators so that ties happen.
open_rates = st.fractions(
    min_value=Fraction(1, 100), max_value=Fraction(99, 100), max_denominator=100
).map(Rate)
# Tier discounts up to 39/40, so that a deep tier can round a price to nothing.
discounts = st.fractions(min_value=0, max_value=Fraction(39, 40), max_denominator=40).map(Rate)


def amounts(min_minor: int, max_minor: int) -> st.SearchStrategy[list[Money]]:
    """One amount in each of CODES."""
    minors = st.lists(st.integers(min_minor, max_minor), min_size=len(CODES), max_size=len(CODES))
    return minors.map(lambda ms: [Money.from_minor(m, c) for m, c in zip(ms, CODES, strict=True)])


@st.composite
def fees(draw: st.DrawFn) -> Fee:
    minimum = draw(st.none() | amounts(0, 50))
    maximum = draw(st.none() | amounts(50, 5000))
    return Fee(
        draw(cst.rates(max_value=Fraction(1, 5))),
        fixed=draw(st.just([]) | amounts(0, 99)),
        minimum=minimum or [],
        maximum=maximum or [],
        rounding=draw(cst.roundings()),
    )


@st.composite
def fee_schedules(draw: st.DrawFn) -> FeeSchedule:
    return FeeSchedule(
        payment_methods=[
            PaymentMethodFee("card", draw(fees()), borne_by=draw(st.sampled_from(BorneBy))),
            PaymentMethodFee("wallet", draw(fees()), borne_by=draw(st.sampled_from(BorneBy))),
        ],
        service_fee=draw(st.none() | fees()),
        store_commissions={"ios": draw(cst.rates(max_value=Fraction(3, 10)))},
        commission_rounding=draw(cst.roundings()),
        taxes=[
            TaxRule(
                region,
                draw(cst.rates(max_value=Fraction(1, 4))),
                draw(st.sampled_from(TaxMode)),
                rounding=draw(cst.roundings()),
            )
            for region in sorted(REGIONS)
            if draw(st.booleans())
        ],
    )


@st.composite
def packages(draw: st.DrawFn) -> list[CoinPackage]:
    counts = draw(st.lists(st.integers(1, 20_000), min_size=1, max_size=5, unique=True))
    return [
        CoinPackage(
            f"p{coins}",
            coins,
            {shop: draw(amounts(1, 20_000)) for shop in STOREFRONTS},
            bonus_coins=draw(st.integers(0, 500)),
        )
        for coins in counts
    ]


@st.composite
def tier_lists(draw: st.DrawFn, max_coins: int) -> list[Tier]:
    """Tiers that usually tile 1..max_coins, sometimes with a gap, an overlap or a
    discount that falls, so that both clean and broken books are drawn."""
    cuts = sorted(draw(st.sets(st.integers(2, max(2, max_coins)), max_size=3)))
    starts = [1, *cuts]
    ends: list[int | None] = [c - 1 for c in cuts] + [None]
    rates = sorted(draw(st.lists(discounts, min_size=len(starts), max_size=len(starts))))
    if draw(st.booleans()):
        rates = draw(st.permutations(rates))
    tiers = [Tier(s, e, r) for s, e, r in zip(starts, ends, rates, strict=True)]
    if len(tiers) > 1 and draw(st.integers(0, 3)) == 0:
        i = draw(st.integers(0, len(tiers) - 2))
        first = tiers[i]
        assert first.max_coins is not None
        shift = draw(st.sampled_from([-1, 1, 2]))
        if first.max_coins + shift >= first.min_coins:
            tiers[i] = attrs.evolve(first, max_coins=first.max_coins + shift)
    return tiers


@st.composite
def customs(draw: st.DrawFn, currency: str = "USD") -> CustomAmounts:
    low = draw(st.integers(1, 50))
    high = draw(st.integers(low, 1500))
    code = Currency.of(currency)
    points = draw(
        st.none()
        | st.integers(2, 200).flatmap(
            lambda step: st.integers(0, step - 1).map(
                lambda end: PricePoints(Money.from_minor(step, code), Money.from_minor(end, code))
            )
        )
    )
    return CustomAmounts(
        low,
        high,
        # Small base prices too, where a deep discount can round a price to nothing.
        {"web": Money.from_minor(draw(st.integers(1, 50) | st.integers(1, 5000)), code)},
        per=draw(st.sampled_from([1, 10, 100, 1000])),
        tiers=draw(tier_lists(high)) if draw(st.integers(0, 3)) else [],
        mode=draw(st.sampled_from(TierMode)),
        rounding=draw(cst.roundings()),
        price_points=[] if points is None else [points],
    )


@st.composite
def promotions(draw: st.DrawFn) -> list[Promotion]:
    result = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(PromotionKind))
        uses_rate = kind in {PromotionKind.PERCENT_OFF, PromotionKind.BONUS_PERCENT}
        start = draw(st.none() | st.integers(-30, 30).map(lambda d: NOW + timedelta(days=d)))
        end = draw(st.none() | st.integers(-30, 30).map(lambda d: NOW + timedelta(days=d)))
        result.append(
            Promotion(
                f"promo-{i}",
                kind,
                rate=draw(open_rates) if uses_rate else None,
                bonus_coins=None if uses_rate else draw(st.integers(1, 1000)),
                start=start,
                end=end,
                regions=draw(st.sets(st.sampled_from(sorted(REGIONS)))),
                first_purchase_only=draw(st.booleans()),
                min_coins=draw(st.integers(0, 5000)),
                max_redemptions_per_account=draw(st.none() | st.integers(1, 3)),
                stacking_group=draw(st.sampled_from([None, "a", "b"])),
            )
        )
    return result


@st.composite
def books(draw: st.DrawFn) -> PriceBook:
    return PriceBook(
        REGIONS,
        draw(packages()),
        draw(st.none() | customs()),
        draw(promotions()),
        draw(fee_schedules()),
        stacking=draw(st.sampled_from(StackingPolicy)),
        discount_rounding=draw(cst.roundings()),
    )


@st.composite
def requests(draw: st.DrawFn, book: PriceBook) -> dict[str, Any]:
    ids = [p.id for p in book.promotions]
    custom = book.custom
    if custom is not None and draw(st.booleans()):
        # A custom amount: USD on the web is where customs() sells.
        coins = draw(st.integers(custom.min_coins, custom.max_coins))
        where: dict[str, Any] = {"coins": coins, "region": "US", "storefront": "web"}
    else:
        where = {
            "sku": draw(st.sampled_from([p.sku for p in book.packages])),
            "region": draw(st.sampled_from(sorted(REGIONS))),
            "storefront": draw(st.sampled_from(STOREFRONTS)),
        }
    return {
        **where,
        "account": draw(st.sampled_from(["acct-1", "acct-2"])),
        "payment_method": draw(st.sampled_from(["card", "wallet"])),
        "now": NOW + timedelta(hours=draw(st.integers(-24 * 40, 24 * 40))),
        "history": BuyerHistory(
            first_purchase=draw(st.booleans()),
            redemptions={i: draw(st.integers(0, 3)) for i in ids if draw(st.booleans())},
        ),
        "validity": timedelta(minutes=draw(st.integers(1, 60))),
    }


def quote_or_reject(book: PriceBook, request: dict[str, Any]) -> Quote:
    """Quote, or reject the example where a randomly drawn book's tiers cannot
    price the quantity (a reported problem, tested on its own below)."""
    try:
        return book.quote(**request)
    except PricingProblemError:
        assume(False)
        raise


def kinds(quote: Quote, *wanted: LineKind) -> Money:
    lines = (*quote.buyer_lines, *quote.platform_lines)
    return sum((line.amount for line in lines if line.kind in wanted), quote.currency.zero())


@given(st.data())
def test_quote_components_add_up(data: st.DataObject) -> None:
    book = data.draw(books())
    quote = quote_or_reject(book, data.draw(requests(book)))
    zero = quote.currency.zero()
    assert sum((line.amount for line in quote.buyer_lines), zero) == quote.total
    assert quote.total + sum((line.amount for line in quote.platform_lines), zero) == (
        quote.net_revenue
    )
    added_tax = zero if quote.tax_included else quote.tax
    assert quote.total == (
        quote.price
        + kinds(quote, LineKind.SERVICE_FEE)
        + added_tax
        + kinds(quote, LineKind.PAYMENT_FEE)
    )
    assert quote.net_revenue == (
        quote.total + kinds(quote, LineKind.PROCESSOR_FEE, LineKind.STORE_COMMISSION) - quote.tax
    )
    assert -kinds(quote, LineKind.TAX_REMITTED) == quote.tax
    assert quote.price == quote.list_price + sum((d.amount for d in quote.discounts), zero)
    assert all(line.amount.currency == quote.currency for line in quote.buyer_lines)
    # The tax is the region's rule applied to the price, in it or on top of it.
    rule = book.fees.tax_rule(quote.region)
    assert quote.tax == (zero if rule is None else rule.tax_on(quote.price))
    assert quote.tax_included == (rule is not None and rule.mode is TaxMode.INCLUSIVE)


@given(st.data())
def test_promotions_never_raise_a_price(data: st.DataObject) -> None:
    book = data.draw(books())
    request = data.draw(requests(book))
    with_offers = quote_or_reject(book, request)
    without = attrs.evolve(book, promotions=()).quote(**request)
    assert without.promotions == ()
    assert with_offers.coins == without.coins
    assert with_offers.price <= without.price
    assert not with_offers.price.is_negative
    assert with_offers.total_coins >= without.total_coins
    assert all(not line.amount.is_positive for line in with_offers.discounts)


@given(st.data())
def test_quoting_is_deterministic_for_a_given_clock(data: st.DataObject) -> None:
    book = data.draw(books())
    request = data.draw(requests(book))
    first = quote_or_reject(book, request)
    again = attrs.evolve(book).quote(**request)
    assert first == again
    assert first.fingerprint == again.fingerprint
    assert first.canonical() == again.canonical()
    assert first.is_valid_at(request["now"])
    assert not first.is_valid_at(first.expires_at)


@given(
    st.sampled_from(["EUR", "JPY", "KWD"]).flatmap(lambda c: cst.money(currency=c, min_minor=1)),
    cst.rates(max_value=1),
    cst.roundings(),
)
def test_inclusive_tax_splits_exactly_into_net_plus_tax(
    price: Money, rate: Rate, rounding: Rounding
) -> None:
    tax = TaxRule("DE", rate, TaxMode.INCLUSIVE, rounding=rounding).tax_on(price)
    exact_net = Fraction(price.minor) / (1 + rate.fraction)
    net = Money.from_minor(rounding.round(exact_net), price.currency)  # computed apart
    assert tax.currency == price.currency
    assert tax == price - net
    assert abs(net.minor - exact_net) < 1
    assert not tax.is_negative
    assert tax <= price


def model_price(custom: CustomAmounts, coins: int) -> Money | None:
    """An independent, coin-by-coin model of a custom amount's price; ``None``
    where the tiers do not price the quantity unambiguously."""
    base = custom.base_prices[0][1]
    unit = Fraction(base.minor, custom.per)

    def discount(coin: int) -> Fraction | None:
        if not custom.tiers:
            return Fraction(0)
        matching = [t for t in custom.tiers if t.contains(coin)]
        return matching[0].discount.fraction if len(matching) == 1 else None

    if custom.mode is TierMode.VOLUME:
        found = discount(coins)
        if found is None:
            return None
        exact = coins * unit * (1 - found)
    else:
        each = [discount(coin) for coin in range(1, coins + 1)]
        if any(d is None for d in each):
            return None
        exact = sum((unit * (1 - d) for d in each if d is not None), Fraction(0))
    money = Money.from_minor(custom.rounding.round(exact), base.currency)
    for points in custom.price_points:
        if money.is_positive:
            money = points.apply(money)
    return money


@given(st.data())
def test_random_tiers_pass_check_or_are_reported(data: st.DataObject) -> None:
    custom = data.draw(customs())
    book = PriceBook({"US": "USD"}, custom=custom, fees=FeeSchedule([PaymentMethodFee("card")]))
    errors = [p for p in book.check() if p.severity is Severity.ERROR]
    event("check found errors" if errors else "check passed")
    # Random quantities, and the edges of every tier, where prices can jump.
    drawn = data.draw(st.lists(st.integers(custom.min_coins, custom.max_coins), max_size=4))
    edges = [t.min_coins + d for t in custom.tiers for d in (-1, 0)]
    edges += [t.max_coins + d for t in custom.tiers if t.max_coins is not None for d in (0, 1)]
    quantities = sorted(
        {custom.min_coins, custom.max_coins, *drawn, *edges}
        & set(range(custom.min_coins, custom.max_coins + 1))
    )
    base = custom.base_prices[0][1]
    priced: list[tuple[int, Money]] = []
    for coins in quantities:
        expected = model_price(custom, coins)
        try:
            price = book.coin_price(region="US", storefront="web", coins=coins)
        except PricingProblemError as error:
            assert errors, f"{coins} coins cannot be priced, and check() found nothing"
            assert expected is None or not expected.is_positive
            # check() names the cause: a price below the minor unit, or the
            # tiers (a quantity in a gap or overlap; one also hides a rounding).
            tiers = any(p.where == "custom amounts, tiers" for p in errors)
            if "minor unit" in error.message:
                assert tiers or any("not representable" in p.message for p in errors), (
                    f"{coins} coins cost nothing once rounded, and check() did not say so"
                )
            else:
                assert tiers, f"the tiers cannot price {coins} coins, and check() did not say so"
            continue
        assert price == expected, f"{coins} coins mis-priced"
        priced.append((coins, price))
    where = {p.where for p in errors}
    for (few, cheap), (many, dear) in pairwise(priced):
        if cheap > dear:
            drops = {f"custom amounts, USD/web, {b} coins" for b in range(few + 1, many + 1)}
            assert where & (drops | {"custom amounts, tiers"}), (
                f"{few} coins cost more than {many}, and check() did not say so: {where}"
            )
        if custom.exact_total(few, base) / few < custom.exact_total(many, base) / many:
            assert any(w.startswith("custom amounts, tier") for w in where), (
                f"{many} coins cost more per coin than {few}, and check() did not say so"
            )
        if not errors:
            assert cheap <= dear


@given(
    st.integers(1, 20),
    st.sampled_from([1, 10, 100]),
    st.integers(1, 20),
    st.integers(1, 200),
    discounts,
    cst.roundings(),
)
def test_a_volume_tier_below_the_minor_unit_is_reported(
    base: int, per: int, low: int, span: int, discount: Rate, rounding: Rounding
) -> None:
    """A deep discount where a tier starts can round that tier's prices to
    nothing, though the smallest quantity costs something: check() says so."""
    start = low + span
    custom = CustomAmounts(
        low,
        start + 10,
        {"web": Money.from_minor(base, "USD")},
        per=per,
        tiers=[Tier(1, start - 1), Tier(start, None, discount)],
        mode=TierMode.VOLUME,
        rounding=rounding,
    )
    book = PriceBook({"US": "USD"}, custom=custom, fees=FeeSchedule([PaymentMethodFee("card")]))
    messages = {p.message for p in book.check() if p.severity is Severity.ERROR}
    for coins in (low, start):
        try:
            book.coin_price(region="US", storefront="web", coins=coins)
        except PricingProblemError:
            event(f"{'first tier' if coins == low else 'second tier'} below the minor unit")
            assert (
                f"{coins} coins cost less than one minor unit of USD: the price is not "
                "representable" in messages
            )
        else:
            assert not any(m.startswith(f"{coins} coins cost less") for m in messages)


@given(packages(), st.data())
def test_checked_packages_are_monotone(ladder: list[CoinPackage], data: st.DataObject) -> None:
    book = PriceBook(REGIONS, ladder, fees=FeeSchedule([PaymentMethodFee("card")]))
    # A total that drops is an error (P001), a rise per coin a warning (P002):
    # clean means neither.
    clean = not [p for p in book.check() if p.code in {"P001", "P002"}]
    code = data.draw(st.sampled_from(CODES))
    shop = data.draw(st.sampled_from(STOREFRONTS))
    for a in ladder:
        for b in ladder:
            if a.delivered_coins >= b.delivered_coins:
                continue
            pa, pb = a.price(code, shop), b.price(code, shop)
            monotone = pa <= pb and pa.minor * b.delivered_coins >= pb.minor * a.delivered_coins
            if clean:
                assert monotone
            elif not monotone:
                # Neighbouring sizes and the worst pair are reported: a pair out
                # of order shows as a problem in its market.
                wheres = {p.where for p in book.check()}
                assert any(
                    w.startswith("package ") and w.endswith(f", {code}/{shop}") for w in wheres
                )


@given(packages())
def test_package_problems_grow_with_the_packages_not_their_pairs(
    ladder: list[CoinPackage],
) -> None:
    """At most two problems per pair of neighbouring sizes and two for the
    worst pairs, in each market."""
    book = PriceBook(REGIONS, ladder, fees=FeeSchedule([PaymentMethodFee("card")]))
    markets = {(price.currency.code, shop) for p in ladder for shop, price in p.prices}
    found = [p for p in book.check() if p.where.startswith("package ") and "costs" in p.message]
    sizes = len({p.delivered_coins for p in ladder})
    assert len(found) <= len(markets) * (2 * max(sizes - 1, 0) + 2)
