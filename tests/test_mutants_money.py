"""Money, units, rates and rounding at their edges: the cases a rewrite could
get wrong without other tests noticing (found by ``python3 tasks.py mutate``).

Each test pins one boundary exactly: the largest amount, the largest
exponent, zero as neither positive nor negative, equal values under ``<``
and ``>=``, and the exact error (type and message) of each refusal.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from coinecon import (
    AmountOutOfRangeError,
    Currency,
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidRateError,
    InvalidTypeError,
    Money,
    Rate,
    Rounding,
    Unit,
    UnitAmount,
)
from coinecon.money.money import MAX_MINOR_UNITS, check_range

USD = Currency.of("USD")
COIN = Unit("COIN")


class TestMoneyEdges:
    def test_the_largest_amount_is_2_to_the_63_minus_1_either_way(self) -> None:
        assert MAX_MINOR_UNITS == 2**63 - 1
        assert Money.from_minor(2**63 - 1, USD).minor == 2**63 - 1
        assert Money.from_minor(-(2**63) + 1, USD).minor == -(2**63) + 1
        assert check_range(-(2**63) + 1) == -(2**63) + 1
        assert check_range(2**63 - 1) == 2**63 - 1
        with pytest.raises(AmountOutOfRangeError):
            check_range(2**63)
        with pytest.raises(AmountOutOfRangeError):
            check_range(-(2**63))

    def test_an_exponent_of_18_is_the_largest_allowed(self) -> None:
        assert Currency("XAA", 18).exponent == 18
        assert Currency("XAB", 0).exponent == 0
        with pytest.raises(InvalidCurrencyError, match="between 0 and 18, got 19"):
            Currency("XAC", 19)
        with pytest.raises(InvalidCurrencyError, match="between 0 and 18, got -1"):
            Currency("XAD", -1)

    def test_unchecked_money_is_the_money_asked_for(self) -> None:
        assert Money._unchecked(199, USD) == Money("1.99", USD)

    @pytest.mark.parametrize(
        ("minor", "positive", "negative", "zero"),
        [(-1, False, True, False), (0, False, False, True), (1, True, False, False)],
    )
    def test_sign_predicates_around_zero(
        self, minor: int, positive: bool, negative: bool, zero: bool
    ) -> None:
        money = Money.from_minor(minor, USD)
        assert (money.is_positive, money.is_negative, money.is_zero) == (positive, negative, zero)
        assert bool(money) is not zero

    def test_comparisons_of_equal_money(self) -> None:
        one, same, more = Money("1.00", USD), Money("1.00", USD), Money("1.01", USD)
        assert (one < same, one <= same, one > same, one >= same) == (False, True, False, True)
        assert (one < more, one <= more, one > more, one >= more) == (True, True, False, False)
        assert (more < one, more <= one, more > one, more >= one) == (False, False, True, True)

    def test_only_the_int_0_starts_a_sum(self) -> None:
        assert 0 + Money("1.00", USD) == Money("1.00", USD)
        with pytest.raises(FloatNotAllowedError):
            _ = 0.0 + Money("1.00", USD)  # type: ignore[operator]
        with pytest.raises(FloatNotAllowedError):
            sum([Money("1.00", USD)], 0.0)
        with pytest.raises(InvalidTypeError):
            _ = 1 + Money("1.00", USD)
        with pytest.raises(InvalidTypeError):
            _ = False + Money("1.00", USD)

    def test_split_needs_at_least_one_part(self) -> None:
        assert Money("0.01", USD).split(1) == (Money("0.01", USD),)
        with pytest.raises(InvalidAmountError, match="parts must be a positive int, got 0"):
            Money("1.00", USD).split(0)

    def test_allocate_names_an_empty_list(self) -> None:
        with pytest.raises(InvalidAmountError, match=r"allocate needs at least one ratio$"):
            Money("1.00", USD).allocate([])
        with pytest.raises(InvalidAmountError, match="at least one positive ratio"):
            Money("1.00", USD).allocate([0, 0])

    def test_allocating_nothing_gives_zeros(self) -> None:
        assert Money.zero(USD).allocate([1, 2]) == (Money.zero(USD), Money.zero(USD))
        assert Money("-0.03", USD).allocate([1, 1]) == (Money("-0.02", USD), Money("-0.01", USD))


class TestUnitAmountEdges:
    def test_unchecked_amount_is_the_amount_asked_for(self) -> None:
        assert UnitAmount._unchecked(5, COIN) == COIN(5)

    def test_the_largest_amount_either_way(self) -> None:
        assert COIN(2**63 - 1).amount == 2**63 - 1
        assert COIN(-(2**63) + 1).amount == -(2**63) + 1
        with pytest.raises(AmountOutOfRangeError):
            COIN(2**63)

    @pytest.mark.parametrize(
        ("amount", "positive", "negative", "zero"),
        [(-1, False, True, False), (0, False, False, True), (1, True, False, False)],
    )
    def test_sign_predicates_around_zero(
        self, amount: int, positive: bool, negative: bool, zero: bool
    ) -> None:
        value = COIN(amount)
        assert (value.is_positive, value.is_negative, value.is_zero) == (positive, negative, zero)
        assert bool(value) is not zero

    def test_only_the_int_0_starts_a_sum(self) -> None:
        assert 0 + COIN(5) == COIN(5)
        assert sum([COIN(5), COIN(6)]) == COIN(11)
        with pytest.raises(FloatNotAllowedError):
            _ = 0.0 + COIN(5)  # type: ignore[operator]
        with pytest.raises(InvalidTypeError):
            _ = 1 + COIN(5)

    def test_split_needs_at_least_one_part(self) -> None:
        assert COIN(1).split(1) == (COIN(1),)
        with pytest.raises(InvalidAmountError, match="parts must be a positive int, got 0"):
            COIN(5).split(0)

    @pytest.mark.parametrize("factor", ["2", Decimal("2.5"), None])
    def test_multiplying_by_a_non_number_is_a_type_error(self, factor: Any) -> None:
        with pytest.raises(TypeError):
            _ = COIN(5) * factor
        with pytest.raises(TypeError):
            _ = factor * COIN(5)
        with pytest.raises(TypeError):
            _ = Money("1.00", USD) * factor

    def test_comparisons_of_equal_amounts(self) -> None:
        one, same = COIN(1), COIN(1)
        assert (one < same, one <= same, one > same, one >= same) == (False, True, False, True)
        assert (COIN(2) > one, COIN(2) >= one, COIN(2) < one, COIN(2) <= one) == (
            True,
            True,
            False,
            False,
        )


class TestRateEdges:
    def test_parts_up_to_10_to_the_36_are_allowed(self) -> None:
        assert Rate(10**36).numerator == 10**36
        assert Rate(Fraction(1, 10**36)).denominator == 10**36
        with pytest.raises(InvalidRateError, match="too large or too precise"):
            Rate(10**36 + 1)
        with pytest.raises(InvalidRateError, match="too large or too precise"):
            Rate(Fraction(1, 10**36 + 1))

    @pytest.mark.parametrize(
        ("rate", "text"),
        [("0.15", "0.15"), ("0.5", "0.5"), ("1", "1"), ("0.0625", "0.0625"), ("0.008", "0.008")],
    )
    def test_to_decimal_has_exactly_the_places_needed(self, rate: str, text: str) -> None:
        exact = Rate(rate).to_decimal()
        assert exact is not None
        assert str(exact) == text
        assert exact == Decimal(text)

    @pytest.mark.parametrize(
        "operation",
        [
            operator.add,
            operator.sub,
            operator.mul,
            operator.lt,
            operator.le,
            operator.gt,
            operator.ge,
        ],
    )
    def test_foreign_operands_are_a_type_error(
        self, operation: Callable[[Any, Any], object]
    ) -> None:
        with pytest.raises(TypeError):
            operation(Rate("0.5"), Decimal("0.5"))
        with pytest.raises(TypeError):
            operation(Decimal("0.5"), Rate("0.5"))

    def test_comparisons_of_equal_rates(self) -> None:
        one, same, more = Rate("0.1"), Rate("10%"), Rate("0.2")
        assert (one < same, one <= same, one > same, one >= same) == (False, True, False, True)
        assert (one < more, one <= more, one > more, one >= more) == (True, True, False, False)
        assert 3 * one == Rate("0.3") == one * 3


class TestRoundingEdges:
    def test_division_by_zero_says_so(self) -> None:
        with pytest.raises(ZeroDivisionError, match="rounding a division by zero"):
            Rounding.HALF_UP.divide(1, 0)

    @pytest.mark.parametrize("mode", list(Rounding))
    def test_negative_denominators_and_zero(self, mode: Rounding) -> None:
        assert mode.divide(0, -3) == 0
        assert mode.divide(6, -3) == -2
        assert mode.divide(7, -2) == mode.divide(-7, 2)
