from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinecon import FloatNotAllowedError, InvalidRateError, InvalidTypeError, Rate, Rounding
from coinecon.testing import strategies as cst


class TestRate:
    @pytest.mark.parametrize(
        ("value", "fraction"),
        [
            ("0.15", Fraction(3, 20)),
            ("15%", Fraction(3, 20)),
            (" 2.9 % ", Fraction(29, 1000)),
            ("1/3", Fraction(1, 3)),
            ("0.5/2", Fraction(1, 4)),
            (Decimal("0.07"), Fraction(7, 100)),
            (Fraction(2, 3), Fraction(2, 3)),
            (2, Fraction(2)),
            (Rate("0.5"), Fraction(1, 2)),
        ],
    )
    def test_forms(self, value: object, fraction: Fraction) -> None:
        assert Rate(value).fraction == fraction  # type: ignore[arg-type]

    def test_constructors(self) -> None:
        assert Rate.percent(15) == Rate("0.15")
        assert Rate.percent("2.9") == Rate("0.029")
        assert Rate.basis_points(250) == Rate("2.5%")
        assert Rate.zero().is_zero
        assert Rate.one() == Rate(1)

    @pytest.mark.parametrize("value", ["-0.1", "-5%", "1/0", "abc", "", "%", "1/x", Decimal("NaN")])
    def test_invalid(self, value: object) -> None:
        with pytest.raises(InvalidRateError):
            Rate(value)  # type: ignore[arg-type]

    def test_float_and_types(self) -> None:
        with pytest.raises(FloatNotAllowedError):
            Rate(0.15)  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowedError):
            Rate.percent(15.0)  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError):
            Rate(None)  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError):
            Rate(True)

    def test_absurd_precision_refused(self) -> None:
        with pytest.raises(InvalidRateError):
            Rate(Fraction(1, 10**40))

    @pytest.mark.parametrize(
        "value", [Decimal("1e10000000"), Decimal("1e-10000000"), Decimal("1" * 101)]
    )
    def test_a_huge_decimal_is_refused_quickly(self, value: Decimal) -> None:
        start = time.perf_counter()
        with pytest.raises(InvalidRateError, match=r"digits|exponent"):
            Rate(value)
        assert time.perf_counter() - start < 1

    def test_huge_values_are_refused_with_their_size(self) -> None:
        huge = 10**5000
        with pytest.raises(InvalidRateError, match="rate a 16610-bit number is too large"):
            Rate(huge)
        with pytest.raises(InvalidRateError, match="Fraction with 16610-bit parts"):
            Rate(Fraction(1, huge))
        with pytest.raises(InvalidRateError, match="negative, got a negative 16610-bit number"):
            Rate(-huge)
        with pytest.raises(InvalidRateError, match="too large"):
            Rate.percent(huge)

    def test_arithmetic_and_display(self) -> None:
        assert Rate("1/3") + Rate("1/6") == Rate("1/2")
        assert Rate("0.5") - Rate("0.2") == Rate("0.3")
        assert Rate("0.5") * Rate("0.5") == Rate("0.25")
        assert Rate("0.5") * 3 == Rate("1.5") == 3 * Rate("0.5")
        assert Rate("20%").complement() == Rate("0.8")
        with pytest.raises(InvalidRateError):
            Rate("1.2").complement()
        with pytest.raises(InvalidRateError):
            Rate("0.1") - Rate("0.2")
        assert Rate("0.1") < Rate("0.2") <= Rate("0.2") < Rate("1")
        assert Rate("2") > Rate("1") >= Rate("1")
        assert str(Rate("0.150")) == "0.15"
        assert str(Rate("1/3")) == "1/3"
        assert str(Rate(100)) == "100"
        assert repr(Rate("15%")) == "Rate('0.15')"
        assert Rate("15%").as_percent() == 15
        assert Rate("1/8").to_decimal() == Decimal("0.125")
        assert Rate("1/3").to_decimal() is None
        with pytest.raises(TypeError):
            Rate("0.1") + 1  # type: ignore[operator]
        with pytest.raises(TypeError):
            Rate("0.1") < 1  # type: ignore[operator]

    @given(cst.rates(max_value=100))
    def test_string_round_trip(self, rate: Rate) -> None:
        assert Rate(str(rate)) == rate
        assert eval(repr(rate), {"Rate": Rate}) == rate  # noqa: S307

    @given(st.floats())
    def test_never_from_float(self, value: float) -> None:
        with pytest.raises(FloatNotAllowedError):
            Rate(value)  # type: ignore[arg-type]


class TestRounding:
    @pytest.mark.parametrize(
        ("mode", "values"),
        [
            # For 2.5, -2.5, 2.4, -2.6, 3.5
            (Rounding.HALF_UP, (3, -3, 2, -3, 4)),
            (Rounding.HALF_DOWN, (2, -2, 2, -3, 3)),
            (Rounding.HALF_EVEN, (2, -2, 2, -3, 4)),
            (Rounding.DOWN, (2, -2, 2, -2, 3)),
            (Rounding.UP, (3, -3, 3, -3, 4)),
            (Rounding.CEILING, (3, -2, 3, -2, 4)),
            (Rounding.FLOOR, (2, -3, 2, -3, 3)),
        ],
    )
    def test_table(self, mode: Rounding, values: tuple[int, ...]) -> None:
        inputs = [
            Fraction(5, 2),
            Fraction(-5, 2),
            Fraction(12, 5),
            Fraction(-13, 5),
            Fraction(7, 2),
        ]
        assert tuple(mode.round(x) for x in inputs) == values

    @given(
        st.integers(-(10**12), 10**12), st.integers(-(10**6), 10**6).filter(bool), cst.roundings()
    )
    def test_matches_decimal_module(self, n: int, d: int, mode: Rounding) -> None:
        import decimal  # noqa: PLC0415

        names = {
            Rounding.HALF_UP: decimal.ROUND_HALF_UP,
            Rounding.HALF_DOWN: decimal.ROUND_HALF_DOWN,
            Rounding.HALF_EVEN: decimal.ROUND_HALF_EVEN,
            Rounding.DOWN: decimal.ROUND_DOWN,
            Rounding.UP: decimal.ROUND_UP,
            Rounding.CEILING: decimal.ROUND_CEILING,
            Rounding.FLOOR: decimal.ROUND_FLOOR,
        }
        context = decimal.Context(prec=60, rounding=names[mode])
        expected = int(context.divide(Decimal(n), Decimal(d)).quantize(Decimal(1), context=context))
        assert mode.divide(n, d) == expected
        assert mode.round(Fraction(n, d)) == expected
        assert mode.round(n) == n

    def test_division_by_zero(self) -> None:
        with pytest.raises(ZeroDivisionError):
            Rounding.HALF_UP.divide(1, 0)

    @pytest.mark.parametrize("value", [Decimal("2.5"), "2.5", True, None, Rate("1/2")])
    def test_round_refuses_what_is_not_an_int_or_a_fraction(self, value: object) -> None:
        with pytest.raises(InvalidTypeError, match="int or a Fraction"):
            Rounding.HALF_UP.round(value)  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowedError):
            Rounding.HALF_UP.round(2.5)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("numerator", "denominator"),
        [(Decimal(5), 2), (5, Decimal(2)), (Fraction(5), 2), (True, 2), (5, True), ("5", 2)],
    )
    def test_divide_refuses_what_is_not_an_int(
        self, numerator: object, denominator: object
    ) -> None:
        with pytest.raises(InvalidTypeError, match="must be an int"):
            Rounding.HALF_UP.divide(numerator, denominator)  # type: ignore[arg-type]

    def test_divide_refuses_floats(self) -> None:
        with pytest.raises(FloatNotAllowedError, match=r"numerator is the float 2\.5"):
            Rounding.HALF_UP.divide(2.5, 1)  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowedError, match="denominator"):
            Rounding.HALF_UP.divide(5, 2.0)  # type: ignore[arg-type]
