"""The price-book checker at its boundaries: equal prices, exactly
proportional prices, tier starts at the ends of the range, limits met
exactly (found by ``python3 tasks.py mutate``).

Each test asserts the exact tuple of problems ``check()`` returns, so that a
problem reported where there is none fails as surely as one missed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coinecon import Money, Rate
from coinecon.pricing import (
    CoinPackage,
    CustomAmounts,
    FeeSchedule,
    PaymentMethodFee,
    PriceBook,
    Problem,
    Promotion,
    PromotionKind,
    Severity,
    TaxMode,
    TaxRule,
    Tier,
    TierMode,
)

ERROR, WARNING = Severity.ERROR, Severity.WARNING


def usd(amount: str) -> Money:
    return Money(amount, "USD")


def shop(**parts: Any) -> PriceBook:
    """A book that sells in the US only, with one payment method and a tax
    rule: clean unless *parts* make it otherwise."""
    fees = FeeSchedule([PaymentMethodFee("card")], taxes=[TaxRule("US", "5%", TaxMode.EXCLUSIVE)])
    return PriceBook({"US": "USD"}, fees=fees, **parts)


def package(coins: int, price: str) -> CoinPackage:
    return CoinPackage(f"coins_{coins}", coins, {"web": usd(price)})


PACKAGES = [package(100, "0.99")]


def test_the_helper_book_is_clean() -> None:
    assert shop(packages=PACKAGES).check() == ()


class TestPackages:
    def test_more_coins_at_the_same_price_is_no_problem(self) -> None:
        assert shop(packages=[package(100, "0.99"), package(200, "0.99")]).check() == ()

    def test_exactly_proportional_prices_are_no_problem(self) -> None:
        ladder = [package(100, "1.00"), package(200, "2.00"), package(1000, "10.00")]
        assert shop(packages=ladder).check() == ()

    def test_a_cent_more_per_coin_is_one_problem(self) -> None:
        ladder = [package(100, "1.00"), package(200, "2.01")]
        assert shop(packages=ladder).check() == (
            Problem(
                WARNING,
                "package coins_200, USD/web",
                "costs more per coin (2.01 USD for 200 coins) than package coins_100 "
                "(1.00 USD for 100 coins)",
                code="P002",
            ),
        )

    def test_fewer_coins_for_more_money_is_both_problems(self) -> None:
        ladder = [package(100, "1.01"), package(200, "1.00")]
        assert shop(packages=ladder).check() == (
            Problem(
                ERROR,
                "package coins_100, USD/web",
                "costs 1.01 USD for 100 coins, more than package coins_200 at 1.00 USD "
                "for 200 coins",
                code="P001",
            ),
        )


class TestTiers:
    def test_a_graduated_price_below_a_minor_unit_is_reported(self) -> None:
        # Graduated tiers price from the first coin: one coin at a hundredth
        # of a cent is not representable.
        custom = CustomAmounts(
            1, 100, {"web": usd("0.01")}, per=1000, tiers=[Tier(1, None)], mode=TierMode.GRADUATED
        )
        assert shop(custom=custom).check() == (
            Problem(
                ERROR,
                "custom amounts, USD/web",
                "1 coins cost less than one minor unit of USD: the price is not representable",
                code="C004",
            ),
        )

    def test_equal_discounts_in_consecutive_tiers_are_no_problem(self) -> None:
        custom = CustomAmounts(
            1,
            2000,
            {"web": usd("1.00")},
            per=100,
            tiers=[Tier(1, 999, Rate("5%")), Tier(1000, None, Rate("5%"))],
            mode=TierMode.GRADUATED,
        )
        assert shop(custom=custom).check() == ()

    def test_a_graduated_gap_at_one_coin_is_reported_not_raised(self) -> None:
        custom = CustomAmounts(
            5, 100, {"web": usd("1.00")}, tiers=[Tier(2, None)], mode=TierMode.GRADUATED
        )
        assert shop(custom=custom).check() == (
            Problem(ERROR, "custom amounts, tiers", "no tier covers 1-1 coins", code="C001"),
        )

    def test_an_unchanged_total_at_a_volume_tier_start_is_no_drop(self) -> None:
        # 99 coins cost 99.00; 100 coins at 1 % off cost 99.00 too.
        custom = CustomAmounts(
            1,
            200,
            {"web": usd("1.00")},
            tiers=[Tier(1, 99), Tier(100, None, Rate("1%"))],
            mode=TierMode.VOLUME,
        )
        assert shop(custom=custom).check() == ()

    def test_a_drop_at_the_largest_quantity_is_reported(self) -> None:
        # 1 coin costs half a cent; 9 coins 0.05; 10 coins at 95 % off 0.0025.
        custom = CustomAmounts(
            1,
            10,
            {"web": Money.from_minor(1, "USD")},
            per=2,
            tiers=[Tier(1, 9), Tier(10, None, Rate("95%"))],
            mode=TierMode.VOLUME,
        )
        assert shop(custom=custom).check() == (
            Problem(
                ERROR,
                "custom amounts, USD/web",
                "10 coins cost less than one minor unit of USD: the price is not representable",
                code="C004",
            ),
            Problem(
                ERROR,
                "custom amounts, USD/web, 10 coins",
                "the total drops from 0.05 USD for 9 coins to 0.00 USD for 10 coins",
                code="C005",
            ),
        )

    def test_a_tier_starting_at_the_smallest_quantity_is_checked_once(self) -> None:
        # The quantity below min_coins is not sold: nothing drops from it.
        custom = CustomAmounts(
            2,
            10,
            {"web": Money.from_minor(1, "USD")},
            per=2,
            tiers=[Tier(1, 1), Tier(2, None, Rate("90%"))],
            mode=TierMode.VOLUME,
        )
        assert shop(custom=custom).check() == (
            Problem(
                ERROR,
                "custom amounts, USD/web",
                "2 coins cost less than one minor unit of USD: the price is not representable",
                code="C004",
            ),
        )


class TestPackagesAgainstCustom:
    def test_packages_at_both_ends_of_the_range_are_compared_with_the_discounted_price(
        self,
    ) -> None:
        custom = CustomAmounts(
            100,
            1000,
            {"web": usd("1.00")},
            per=100,
            tiers=[Tier(100, None, Rate("10%"))],
            mode=TierMode.VOLUME,
        )
        packages = [package(100, "0.95"), package(1000, "9.50"), package(1100, "10.45")]
        assert shop(custom=custom, packages=packages).check() == (
            Problem(
                WARNING,
                "package coins_100, USD/web",
                "costs 0.95 USD for 100 coins; the same custom amount costs 0.90 USD",
                code="P003",
            ),
            Problem(
                WARNING,
                "package coins_1000, USD/web",
                "costs 9.50 USD for 1000 coins; the same custom amount costs 9.00 USD",
                code="P003",
            ),
        )


class TestPromotions:
    def test_a_book_that_sells_nothing_still_allows_a_promotion_from_zero_coins(self) -> None:
        unpriced = Problem(
            WARNING, "region US", "sells in USD, but nothing has a USD price", code="R002"
        )
        free = Promotion("free", PromotionKind.BONUS_COINS, bonus_coins=5)
        assert shop(promotions=[free]).check() == (unpriced,)
        one = Promotion("one", PromotionKind.BONUS_COINS, bonus_coins=5, min_coins=1)
        assert shop(promotions=[one]).check() == (
            unpriced,
            Problem(
                ERROR,
                "promotion one",
                "needs at least 1 coins, but the book sells at most 0: it never applies",
                code="M006",
            ),
        )

    def test_a_minimum_equal_to_the_largest_package_is_reachable(self) -> None:
        promotion = Promotion("big", PromotionKind.BONUS_COINS, bonus_coins=5, min_coins=500)
        packages = [CoinPackage("coins_500", 500, {"web": usd("4.99")}, bonus_coins=50)]
        assert shop(packages=packages, promotions=[promotion]).check() == ()
        above = Promotion("bigger", PromotionKind.BONUS_COINS, bonus_coins=5, min_coins=501)
        assert shop(packages=packages, promotions=[above]).check() == (
            Problem(
                ERROR,
                "promotion bigger",
                "needs at least 501 coins, but the book sells at most 500: it never applies",
                code="M006",
            ),
        )

    def test_windows_open_at_one_end_and_empty_windows(self) -> None:
        may = datetime(2026, 5, 1, tzinfo=UTC)
        until = Promotion("until", PromotionKind.BONUS_COINS, bonus_coins=5, end=may)
        since = Promotion("since", PromotionKind.BONUS_COINS, bonus_coins=5, start=may)
        assert shop(packages=PACKAGES, promotions=[until, since]).check() == ()
        empty = Promotion("empty", PromotionKind.BONUS_COINS, bonus_coins=5, start=may, end=may)
        assert shop(packages=PACKAGES, promotions=[empty]).check() == (
            Problem(
                ERROR,
                "promotion empty",
                f"its window [{may}, {may}) is empty: it never applies",
                code="M001",
            ),
        )

    def test_first_purchase_limits(self) -> None:
        def welcome(limit: int | None) -> Promotion:
            return Promotion(
                "welcome",
                PromotionKind.FIRST_PURCHASE_BONUS,
                bonus_coins=100,
                max_redemptions_per_account=limit,
            )

        assert shop(packages=PACKAGES, promotions=[welcome(None)]).check() == ()
        assert shop(packages=PACKAGES, promotions=[welcome(1)]).check() == ()
        assert shop(packages=PACKAGES, promotions=[welcome(2)]).check() == (
            Problem(
                WARNING,
                "promotion welcome",
                "applies to first purchases only, so a limit of 2 redemptions per account "
                "can never be reached",
                code="M004",
            ),
        )


def _problems(*ladder: CoinPackage) -> list[str]:
    return [f"{p.where}: {p.message}" for p in shop(packages=list(ladder)).check()]


def _dearer(
    few: str, few_coins: int, few_price: str, many: str, many_coins: int, price: str
) -> str:
    return (
        f"package {few}, USD/web: costs {few_price} USD for {few_coins} coins, more than "
        f"package {many} at {price} USD for {many_coins} coins"
    )


def _per_coin(
    many: str, many_coins: int, price: str, few: str, few_coins: int, few_price: str
) -> str:
    return (
        f"package {many}, USD/web: costs more per coin ({price} USD for {many_coins} coins) "
        f"than package {few} ({few_price} USD for {few_coins} coins)"
    )


class TestTheWorstPair:
    """Beyond neighbouring sizes, each market's worst pair is reported: the
    biggest drop in price and the biggest rise per coin, the first of equals."""

    def test_the_biggest_drop_not_the_last(self) -> None:
        assert _problems(
            package(100, "5.00"), package(200, "4.90"), package(300, "1.00"), package(400, "4.95")
        ) == [
            _dearer("coins_100", 100, "5.00", "coins_200", 200, "4.90"),
            _dearer("coins_200", 200, "4.90", "coins_300", 300, "1.00"),
            _per_coin("coins_400", 400, "4.95", "coins_300", 300, "1.00"),
            _dearer("coins_100", 100, "5.00", "coins_300", 300, "1.00"),
        ]

    def test_the_first_of_two_equal_drops(self) -> None:
        problems = _problems(
            package(100, "5.00"),
            package(200, "4.90"),
            package(300, "1.00"),
            package(400, "4.95"),
            package(500, "1.00"),
        )
        assert problems[-1] == _dearer("coins_100", 100, "5.00", "coins_300", 300, "1.00")
        assert len(problems) == 5

    def test_a_drop_of_one_cent(self) -> None:
        # b and a cost the same: b, the dearer by its SKU's order, is the worst.
        assert _problems(
            CoinPackage("b", 100, {"web": usd("5.00")}),
            CoinPackage("a", 200, {"web": usd("5.00")}),
            CoinPackage("c", 300, {"web": usd("4.99")}),
        ) == [
            _dearer("a", 200, "5.00", "c", 300, "4.99"),
            _dearer("b", 100, "5.00", "c", 300, "4.99"),
        ]

    def test_a_small_rise_per_coin(self) -> None:
        assert _problems(package(100, "0.90"), package(200, "1.90"), package(300, "2.97")) == [
            _per_coin("coins_200", 200, "1.90", "coins_100", 100, "0.90"),
            _per_coin("coins_300", 300, "2.97", "coins_200", 200, "1.90"),
            _per_coin("coins_300", 300, "2.97", "coins_100", 100, "0.90"),
        ]

    def test_the_first_of_two_equal_rises(self) -> None:
        assert _problems(
            package(100, "1.00"), package(200, "1.00"), package(300, "3.00"), package(400, "4.00")
        ) == [_per_coin("coins_300", 300, "3.00", "coins_200", 200, "1.00")]

    def test_the_first_of_two_equally_cheap_per_coin(self) -> None:
        assert _problems(package(100, "0.50"), package(200, "1.00"), package(300, "3.00")) == [
            _per_coin("coins_300", 300, "3.00", "coins_200", 200, "1.00"),
            _per_coin("coins_300", 300, "3.00", "coins_100", 100, "0.50"),
        ]
