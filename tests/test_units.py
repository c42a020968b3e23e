from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinecon import (
    AmountOutOfRangeError,
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidTypeError,
    InvalidUnitError,
    Money,
    Rate,
    Rounding,
    Unit,
    UnitAmount,
    UnitMismatchError,
)
from coinecon.testing import strategies as cst

COIN = Unit("COIN", "Coins")
DIAMOND = Unit("DIAMOND", "Diamonds")


def test_construction_forms() -> None:
    assert COIN(100).amount == 100
    assert COIN("100").amount == 100
    assert COIN(Decimal("100.00")).amount == 100
    assert UnitAmount(5, COIN) == COIN(5)
    assert COIN.zero() == COIN(0)
    assert str(COIN(5)) == "5 COIN"
    assert repr(COIN(5)) == "UnitAmount(5, 'COIN')"
    assert repr(COIN) == "Unit('COIN')"
    assert str(COIN) == "COIN"
    assert Unit("COIN", "Other name") == COIN


@pytest.mark.parametrize("amount", ["1.5", Decimal("0.1"), "abc"])
def test_whole_numbers_only(amount: object) -> None:
    with pytest.raises(InvalidAmountError):
        COIN(amount)  # type: ignore[arg-type]


def test_float_and_types_refused() -> None:
    with pytest.raises(FloatNotAllowedError):
        COIN(1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        COIN(True)
    with pytest.raises(InvalidTypeError):
        UnitAmount(1, "COIN")  # type: ignore[arg-type]
    with pytest.raises(AmountOutOfRangeError):
        COIN(2**63)


def test_huge_amounts_are_refused_with_their_size() -> None:
    huge = 10**5000
    for amount in (huge, -huge):
        with pytest.raises(AmountOutOfRangeError, match=r"unit amount .*16610-bit number"):
            COIN(amount)
    with pytest.raises(AmountOutOfRangeError, match=r"bit number"):
        COIN(1) * huge
    with pytest.raises(AmountOutOfRangeError, match=str(2**63)):
        COIN(2**63)
    with pytest.raises(InvalidAmountError, match="whole number, got a Fraction with"):
        COIN(Fraction(huge + 1, 3))
    with pytest.raises(InvalidAmountError, match="positive int"):
        COIN(5).split(-huge)
    with pytest.raises(InvalidTypeError, match="bit number"):
        COIN(5) + huge  # type: ignore[operator]
    with pytest.raises(InvalidAmountError, match="exponent"):
        COIN(Decimal("1e10000000"))


@pytest.mark.parametrize("code", ["coin", "", "1COIN", "CO IN", "C" * 33, "COIN'; DROP", 5])
def test_invalid_codes(code: object) -> None:
    with pytest.raises(InvalidUnitError):
        Unit(code)  # type: ignore[arg-type]


def test_mixing_refused() -> None:
    with pytest.raises(UnitMismatchError, match="DIAMOND and COIN"):
        DIAMOND(1) + COIN(1)
    with pytest.raises(UnitMismatchError):
        DIAMOND(1) < COIN(1)
    with pytest.raises(UnitMismatchError):
        COIN(1) - Money(1, "USD")  # type: ignore[operator]
    with pytest.raises(InvalidTypeError):
        COIN(1) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        5 - COIN(1)  # type: ignore[operator]
    with pytest.raises(FloatNotAllowedError):
        COIN(1) * 1.5  # type: ignore[operator]
    with pytest.raises(InvalidTypeError, match="times"):
        COIN(1) * Rate("0.5")  # type: ignore[operator]


def test_arithmetic() -> None:
    assert sum([COIN(1), COIN(2), COIN(3)]) == COIN(6)
    assert COIN(3) * 2 == 2 * COIN(3) == COIN(6)
    assert -COIN(3) == COIN(-3)
    assert abs(COIN(-3)) == +COIN(3)
    assert COIN(1) < COIN(2) <= COIN(2) and COIN(3) > COIN(2) >= COIN(2)
    assert COIN(1000).times(Rate("12.5%"), rounding=Rounding.DOWN) == COIN(125)
    assert COIN(10).times("1/3", rounding=Rounding.UP) == COIN(4)
    assert not COIN(0)
    assert COIN(0).is_zero
    assert COIN(1).is_positive
    assert COIN(-1).is_negative
    with pytest.raises(InvalidTypeError):
        COIN(1).times(Rate("0.5"), rounding="down")  # type: ignore[arg-type]


@given(cst.unit_amounts(COIN), cst.ratios())
def test_allocate_sums_exactly(amount: UnitAmount, ratios: list[int | Rate]) -> None:
    parts = amount.allocate(ratios)
    assert sum(parts, COIN.zero()) == amount


@given(cst.unit_amounts(COIN), st.integers(1, 30))
def test_split_sums_exactly(amount: UnitAmount, n: int) -> None:
    parts = amount.split(n)
    assert sum(parts, COIN.zero()) == amount
    assert max(p.amount for p in parts) - min(p.amount for p in parts) <= 1


def test_bad_split() -> None:
    with pytest.raises(InvalidAmountError):
        COIN(1).split(0)


@given(cst.unit_amounts(), cst.unit_amounts())
def test_mismatch_always_raises(a: UnitAmount, b: UnitAmount) -> None:
    if a.unit == b.unit:
        assert (a + b).amount == a.amount + b.amount
    else:
        with pytest.raises(UnitMismatchError):
            a + b


@given(cst.unit_amounts(), cst.money())
def test_units_and_money_never_mix(amount: UnitAmount, money: Money) -> None:
    with pytest.raises(UnitMismatchError):
        amount + money  # type: ignore[operator]
    with pytest.raises(UnitMismatchError):
        money + amount  # type: ignore[operator]


@given(cst.unit_amounts(COIN), cst.unit_amounts(COIN), cst.unit_amounts(COIN))
def test_laws(a: UnitAmount, b: UnitAmount, c: UnitAmount) -> None:
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert (a - b) + b == a
    assert a + COIN.zero() == a
