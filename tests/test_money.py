from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from coinecon import (
    AmountOutOfRangeError,
    BalanceLimitExceeded,
    CoineconError,
    Currency,
    CurrencyMismatchError,
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidTypeError,
    Money,
    PrecisionError,
    Rate,
    Rounding,
    Unit,
    UnitMismatchError,
    UnknownCurrencyError,
    currencies,
    get_currency,
    register_currency,
)
from coinecon.ledger.journal import AccountKey, Posting
from coinecon.money.money import MAX_MINOR_UNITS
from coinecon.testing import strategies as cst

USD = Currency.of("USD")


class TestConstruction:
    @pytest.mark.parametrize(
        ("amount", "code", "minor"),
        [
            ("1.99", "USD", 199),
            (Decimal("1.99"), "USD", 199),
            (5, "USD", 500),
            ("780", "JPY", 780),
            ("1.495", "KWD", 1495),
            ("1.2345", "CLF", 12345),
            (Fraction(1, 4), "USD", 25),
            ("-0.01", "EUR", -1),
            ("  2.50 ", "EUR", 250),
            ("1e2", "USD", 10000),
        ],
    )
    def test_minor_units(self, amount: object, code: str, minor: int) -> None:
        assert Money(amount, code).minor == minor  # type: ignore[arg-type]

    @pytest.mark.parametrize("amount", [1.5, 0.1, float("nan"), float("inf")])
    def test_float_refused_with_reason(self, amount: float) -> None:
        with pytest.raises(FloatNotAllowedError, match="float"):
            Money(amount, "USD")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            Money(amount, "USD")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "amount", [Decimal("NaN"), Decimal("Infinity"), "nan", "-inf", "abc", "", "1,5", "1..2"]
    )
    def test_not_finite_or_malformed_refused(self, amount: object) -> None:
        with pytest.raises(InvalidAmountError):
            Money(amount, "USD")  # type: ignore[arg-type]

    @pytest.mark.parametrize("amount", [True, None, [1], b"1"])
    def test_wrong_types_refused(self, amount: object) -> None:
        with pytest.raises(InvalidTypeError):
            Money(amount, "USD")  # type: ignore[arg-type]

    def test_absurd_magnitudes_refused(self) -> None:
        with pytest.raises(AmountOutOfRangeError):
            Money(10**30, "USD")
        with pytest.raises(InvalidAmountError):
            Money("1e999999", "USD")
        with pytest.raises(InvalidAmountError):
            Money("1" * 500, "USD")
        assert Money.from_minor(MAX_MINOR_UNITS, "USD").minor == MAX_MINOR_UNITS
        with pytest.raises(AmountOutOfRangeError):
            Money.from_minor(MAX_MINOR_UNITS + 1, "USD")
        with pytest.raises(AmountOutOfRangeError):
            Money.from_minor(MAX_MINOR_UNITS, "USD") + Money.from_minor(1, "USD")

    def test_too_many_decimals_needs_rounding(self) -> None:
        with pytest.raises(PrecisionError, match="USD"):
            Money("1.005", "USD")
        with pytest.raises(PrecisionError):
            Money("0.5", "JPY")
        assert Money("1.005", "USD", rounding=Rounding.HALF_UP).minor == 101
        assert Money("1.005", "USD", rounding=Rounding.HALF_EVEN).minor == 100
        assert Money("1.005", "USD", rounding=Rounding.DOWN).minor == 100
        with pytest.raises(InvalidTypeError):
            Money("1.005", "USD", rounding="half-up")  # type: ignore[arg-type]

    def test_from_minor_requires_int(self) -> None:
        with pytest.raises(FloatNotAllowedError):
            Money.from_minor(1.0, "USD")  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError):
            Money.from_minor(True, "USD")
        with pytest.raises(InvalidTypeError):
            Money.from_minor("100", "USD")  # type: ignore[arg-type]

    def test_unknown_currency_names_the_code(self) -> None:
        with pytest.raises(UnknownCurrencyError, match="'ZZZ'") as info:
            Money(1, "ZZZ")
        assert info.value.code == "ZZZ"
        assert isinstance(info.value, LookupError)
        with pytest.raises(InvalidTypeError):
            Money(1, 840)  # type: ignore[arg-type]

    def test_immutable(self) -> None:
        money = Money(1, "USD")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            money.minor = 5  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            money.currency = Currency.of("EUR")  # type: ignore[misc]

    def test_pickle_and_hash(self) -> None:
        money = Money("3.21", "EUR")
        assert pickle.loads(pickle.dumps(money)) == money  # noqa: S301
        assert {money, Money("3.21", "EUR")} == {money}


class TestSizeGuards:
    """Huge input is refused quickly with a typed error, never a bare
    ``ValueError`` from Python's 4300-digit limit on writing an int."""

    HUGE = 10**5000

    @pytest.mark.parametrize(
        "amount",
        [
            Decimal("1e10000000"),
            Decimal("-1e10000000"),
            Decimal("1e-10000000"),
            Decimal("1" * 101),
            Decimal("1" * 101 + "e-99"),
        ],
    )
    def test_a_decimal_has_the_caps_of_a_decimal_string(self, amount: Decimal) -> None:
        start = time.perf_counter()
        with pytest.raises(InvalidAmountError, match=r"digits|exponent"):
            Money(amount, "USD", rounding=Rounding.HALF_EVEN)
        assert time.perf_counter() - start < 1

    def test_a_decimal_within_the_caps_is_accepted(self) -> None:
        assert Money(Decimal("1" * 16), "USD").minor == int("1" * 16) * 100
        fine = Decimal("0." + "1" * 99)  # 100 digits
        assert Money(fine, "USD", rounding=Rounding.DOWN).minor == 11
        assert Money(Decimal("1e-100"), "USD", rounding=Rounding.UP).minor == 1

    def test_out_of_range_messages_give_the_size_of_a_huge_value(self) -> None:
        huge = self.HUGE
        operations: list[Callable[[], object]] = [
            lambda: Money(huge, "USD"),
            lambda: Money(-huge, "USD"),
            lambda: Money.from_minor(huge, "USD"),
            lambda: Money(1, "USD") * huge,
            lambda: huge * Money(1, "USD"),
            lambda: Money(Fraction(huge, 3), "USD", rounding=Rounding.DOWN),
        ]
        for operation in operations:
            with pytest.raises(AmountOutOfRangeError, match=r"a (negative )?\d+-bit number"):
                operation()
        with pytest.raises(AmountOutOfRangeError, match=str(MAX_MINOR_UNITS + 1)):
            Money.from_minor(MAX_MINOR_UNITS + 1, "USD")

    def test_other_messages_survive_a_huge_value(self) -> None:
        huge, money = self.HUGE, Money(1, "USD")
        with pytest.raises(PrecisionError, match="Fraction with 16610-bit parts"):
            Money(Fraction(huge + 1, 3), "USD")
        with pytest.raises(InvalidAmountError, match="ratios must not be negative"):
            money.allocate([-huge])
        with pytest.raises(InvalidAmountError, match="positive int"):
            money.split(-huge)
        with pytest.raises(InvalidTypeError, match="bit number"):
            money + huge  # type: ignore[operator]
        assert Money(Fraction(1, 3), "USD", rounding=Rounding.DOWN).minor == 33
        with pytest.raises(PrecisionError, match=r"^1/3 has more decimal places"):
            Money(Fraction(1, 3), "USD")

    def test_a_posting_beyond_the_range_is_a_balance_limit_error(self) -> None:
        wallet = AccountKey.wallet("alice", Unit("COIN"))
        for amount in (self.HUGE, -self.HUGE):
            with pytest.raises(BalanceLimitExceeded, match=r"posting amount .*bit number"):
                Posting(wallet, amount)
        with pytest.raises(BalanceLimitExceeded, match=str(-MAX_MINOR_UNITS - 1)):
            Posting(wallet, -MAX_MINOR_UNITS - 1)
        assert Posting(wallet, -MAX_MINOR_UNITS).amount == -MAX_MINOR_UNITS

    def test_a_bad_rounding_is_refused_even_when_none_is_needed(self) -> None:
        for amount in (1, "1.00", Decimal(2)):
            with pytest.raises(InvalidTypeError, match="rounding must be a Rounding"):
                Money(amount, "USD", rounding="bogus")  # type: ignore[arg-type]
        assert Money(1, "USD", rounding=Rounding.UP).minor == 100


class TestCurrency:
    def test_iso_list_shipped(self) -> None:
        codes = {c.code for c in currencies()}
        assert {"USD", "EUR", "JPY", "KWD", "CLF", "GBP", "BRL", "INR", "XOF"} <= codes
        assert len(codes) > 150
        assert get_currency("JPY").exponent == 0
        assert get_currency("KWD").exponent == 3
        assert get_currency("CLF").exponent == 4
        assert get_currency("USD").numeric == "840"

    def test_register(self) -> None:
        test_credits = register_currency("XTCREDIT", 3, "Test credits")
        assert Money("1.234", "XTCREDIT").currency == test_credits
        assert register_currency("XTCREDIT", 3) is test_credits
        with pytest.raises(InvalidCurrencyError, match="already registered"):
            register_currency("XTCREDIT", 2)
        with pytest.raises(InvalidCurrencyError, match="already registered"):
            register_currency("USD", 3)

    @pytest.mark.parametrize(
        ("code", "exponent"),
        [
            ("us", 2),
            ("U", 2),
            ("USD'--", 2),
            ("X" * 13, 2),
            ("ABC", -1),
            ("ABC", 19),
            ("ABC", True),
        ],
    )
    def test_invalid_definitions(self, code: str, exponent: int) -> None:
        with pytest.raises(InvalidCurrencyError):
            Currency(code, exponent)

    def test_call_and_repr(self) -> None:
        assert USD("4.99") == Money("4.99", "USD")
        assert USD.zero() == Money.zero("USD")
        assert repr(USD) == "Currency.of('USD')"
        assert str(USD) == "USD"
        assert USD.scale == 100


class TestArithmetic:
    def test_mixing_currencies_raises(self) -> None:
        usd, eur = Money(1, "USD"), Money(1, "EUR")
        operations: list[Callable[[], object]] = [
            lambda: usd + eur,
            lambda: usd - eur,
            lambda: usd < eur,
            lambda: usd <= eur,
            lambda: usd > eur,
            lambda: usd >= eur,
            lambda: sum([usd, eur]),
        ]
        for operation in operations:
            with pytest.raises(CurrencyMismatchError, match="USD and EUR") as info:
                operation()
            assert isinstance(info.value, TypeError)
            assert isinstance(info.value, CoineconError)
            assert (info.value.left, info.value.right) == ("USD", "EUR")
        assert usd != eur

    def test_money_and_units_never_mix(self) -> None:
        coin = Unit("COIN")
        with pytest.raises(UnitMismatchError):
            Money(1, "USD") + coin(1)  # type: ignore[operator]
        with pytest.raises(UnitMismatchError):
            coin(1) + Money(1, "USD")  # type: ignore[operator]
        with pytest.raises(UnitMismatchError):
            Money(1, "USD") < coin(1)  # type: ignore[operator]

    def test_other_types_refused(self) -> None:
        money = Money(1, "USD")
        with pytest.raises(InvalidTypeError):
            money + 1  # type: ignore[operator]
        with pytest.raises(InvalidTypeError):
            1 + money  # runtime-only: sum() needs int + Money to type-check
        with pytest.raises(TypeError):
            1 - money  # type: ignore[operator]
        with pytest.raises(FloatNotAllowedError):
            money + 1.0  # type: ignore[operator]
        with pytest.raises(FloatNotAllowedError):
            money * 1.5  # type: ignore[operator]
        with pytest.raises(InvalidTypeError, match="times"):
            money * Rate("0.5")  # type: ignore[operator]
        with pytest.raises(InvalidTypeError, match="times"):
            money * Decimal("0.5")  # type: ignore[operator]
        with pytest.raises(TypeError):
            money * "2"  # type: ignore[operator]
        with pytest.raises(TypeError):
            money / 2  # type: ignore[operator]

    def test_sum_and_multiply(self) -> None:
        parts = [Money("0.10", "USD"), Money("0.20", "USD"), Money("0.70", "USD")]
        assert sum(parts) == Money(1, "USD")
        assert Money("0.33", "USD") * 3 == Money("0.99", "USD")
        assert 3 * Money("0.33", "USD") == Money("0.99", "USD")
        assert -Money(1, "USD") == Money(-1, "USD")
        assert abs(Money(-1, "USD")) == Money(1, "USD")
        assert +Money(1, "USD") == Money(1, "USD")

    def test_times_needs_explicit_rounding(self) -> None:
        price = Money("9.99", "USD")
        assert price.times(Rate("15%"), rounding=Rounding.HALF_UP) == Money("1.50", "USD")
        assert price.times("0.15", rounding=Rounding.DOWN) == Money("1.49", "USD")
        assert price.times(Rate("1/3"), rounding=Rounding.CEILING) == Money("3.33", "USD")
        with pytest.raises(FloatNotAllowedError):
            price.times(0.15, rounding=Rounding.DOWN)  # type: ignore[arg-type]

    def test_views(self) -> None:
        money = Money("2.5", "USD")
        assert money.amount == Decimal("2.50")
        assert str(money.amount) == "2.50"
        assert money.to_decimal() == Decimal("2.5")
        assert str(money) == "2.50 USD"
        assert repr(money) == "Money('2.50', 'USD')"
        assert str(Money(780, "JPY")) == "780 JPY"
        assert str(Money("-0.05", "USD")) == "-0.05 USD"
        assert str(Money(0, "KWD")) == "0.000 KWD"
        assert money.is_positive
        assert not money.is_zero
        assert not money.is_negative
        assert Money("-1", "USD").is_negative
        assert Money(0, "USD").is_zero
        assert not Money(0, "USD")
        assert Money(1, "USD")


class TestAllocation:
    def test_examples(self) -> None:
        assert Money("0.05", "USD").allocate([1, 1]) == (Money("0.03", "USD"), Money("0.02", "USD"))
        assert Money("-0.05", "USD").allocate([1, 1]) == (
            Money("-0.03", "USD"),
            Money("-0.02", "USD"),
        )
        assert Money(1, "USD").allocate([0, 1]) == (Money(0, "USD"), Money(1, "USD"))
        # Ties go to the earlier position, whatever the ratios' order.
        assert Money("0.02", "USD").allocate([1, 1, 1]) == tuple(
            Money(x, "USD") for x in ("0.01", "0.01", "0")
        )
        # 0.10 * 0.7/3.7 = 0.0189..., 0.10 * 3/3.7 = 0.0810...: the leftover
        # cent goes to the larger remainder.
        assert Money("0.10", "USD").allocate([Rate("0.7"), 3]) == (
            Money("0.02", "USD"),
            Money("0.08", "USD"),
        )
        assert Money("10", "USD").split(3) == (
            Money("3.34", "USD"),
            Money("3.33", "USD"),
            Money("3.33", "USD"),
        )

    @pytest.mark.parametrize("ratios", [[], [0, 0], [-1, 2], [Decimal(-1)]])
    def test_bad_ratios(self, ratios: list[int]) -> None:
        with pytest.raises(InvalidAmountError):
            Money(1, "USD").allocate(ratios)

    def test_float_ratio(self) -> None:
        with pytest.raises(FloatNotAllowedError):
            Money(1, "USD").allocate([0.5, 0.5])  # type: ignore[list-item]

    @pytest.mark.parametrize("parts", [0, -1, True, 1.0])
    def test_bad_split(self, parts: int) -> None:
        with pytest.raises(InvalidAmountError):
            Money(1, "USD").split(parts)

    @given(cst.money(), cst.ratios())
    def test_allocate_sums_exactly_and_is_fair(
        self, money: Money, ratios: list[int | Rate]
    ) -> None:
        parts = money.allocate(ratios)
        assert len(parts) == len(ratios)
        assert sum(parts, Money.zero(money.currency)) == money
        exact = [Fraction(r.fraction if isinstance(r, Rate) else r) for r in ratios]
        whole = sum(exact)
        for part, ratio in zip(parts, exact, strict=True):
            share = money.minor * ratio / whole
            assert abs(part.minor - share) < 1
            assert part.currency == money.currency
            if ratio == 0:
                assert part.is_zero

    @given(cst.money(), st.integers(min_value=1, max_value=50))
    def test_split_sums_exactly(self, money: Money, n: int) -> None:
        parts = money.split(n)
        assert sum(parts, Money.zero(money.currency)) == money
        assert max(p.minor for p in parts) - min(p.minor for p in parts) <= 1

    @given(cst.money(min_minor=0), cst.ratios(min_size=2))
    def test_allocate_is_deterministic_and_position_tied(
        self, money: Money, ratios: list[int | Rate]
    ) -> None:
        parts = money.allocate(ratios)
        assert parts == money.allocate(list(ratios))
        # Moving a ratio moves its part, except for the leftover minor units,
        # which follow position: a part differs by at most one minor unit.
        moved_back = money.allocate(ratios[::-1])[::-1]
        assert all(abs(a.minor - b.minor) <= 1 for a, b in zip(parts, moved_back, strict=True))

    def test_allocate_gives_the_leftover_to_the_first_of_equals(self) -> None:
        assert Money("0.02", "USD").allocate([1, 1, 1]) == (
            Money("0.01", "USD"),
            Money("0.01", "USD"),
            Money("0", "USD"),
        )


class TestProperties:
    @given(cst.money())
    def test_decimal_round_trip(self, money: Money) -> None:
        assert Money(money.amount, money.currency) == money
        assert Money(money.to_decimal(), money.currency.code) == money

    @given(cst.money())
    def test_string_round_trip(self, money: Money) -> None:
        text, code = str(money).split(" ")
        assert Money(text, code) == money
        assert eval(repr(money), {"Money": Money}) == money  # noqa: S307

    @given(cst.money(currency="USD"), cst.money(currency="USD"), cst.money(currency="USD"))
    def test_addition_laws(self, a: Money, b: Money, c: Money) -> None:
        zero = Money.zero("USD")
        assert a + b == b + a
        assert (a + b) + c == a + (b + c)
        assert a + zero == a
        assert a - a == zero
        assert a + (-a) == zero
        assert (a - b) + b == a
        assert -(-a) == a  # noqa: B002
        assert (a < b) == (a.minor < b.minor)
        assert (a <= b) == (not a > b)

    @given(
        cst.money(currency="EUR", min_minor=-(10**9), max_minor=10**9),
        st.integers(-1000, 1000),
        st.integers(-1000, 1000),
    )
    def test_multiplication_laws(self, a: Money, m: int, n: int) -> None:
        assert a * (m + n) == a * m + a * n
        assert (a * m) * n == a * (m * n)
        assert a * 0 == Money.zero("EUR")
        assert a * 1 == a

    @given(
        cst.money(min_minor=-(10**12), max_minor=10**12), cst.rates(max_value=5), cst.roundings()
    )
    def test_times_is_within_one_minor_unit(
        self, money: Money, rate: Rate, rounding: Rounding
    ) -> None:
        result = money.times(rate, rounding=rounding)
        exact = money.minor * rate.fraction
        assert abs(result.minor - exact) < 1
        assert result.currency == money.currency

    @given(cst.money(currency="USD"), cst.money(currency="EUR"))
    def test_mismatch_always_raises(self, usd: Money, eur: Money) -> None:
        with pytest.raises(CurrencyMismatchError):
            usd + eur
        with pytest.raises(CurrencyMismatchError):
            eur - usd
        with pytest.raises(CurrencyMismatchError):
            usd < eur

    @given(st.floats(allow_nan=True, allow_infinity=True), cst.currencies())
    def test_no_constructor_accepts_a_float(self, value: float, currency: Currency) -> None:
        with pytest.raises(FloatNotAllowedError):
            Money(value, currency)  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowedError):
            Money.from_minor(value, currency)  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowedError):
            Money(1, currency).times(value, rounding=Rounding.DOWN)  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowedError):
            Money(1, currency) * value  # type: ignore[operator]

    @given(cst.exact_numbers(), cst.currencies(), cst.roundings())
    def test_constructor_rounding_is_within_one_minor_unit(
        self, value: int | Decimal | str, currency: Currency, rounding: Rounding
    ) -> None:
        exact = Fraction(Decimal(value)) if isinstance(value, str) else Fraction(value)
        assume(abs(exact * currency.scale) < MAX_MINOR_UNITS)
        money = Money(value, currency, rounding=rounding)
        assert abs(money.minor - exact * currency.scale) < 1
