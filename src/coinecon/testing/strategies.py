"""Hypothesis strategies for coinecon's values, for our tests and yours.

>>> from hypothesis import given
>>> from coinecon.testing import strategies as cst
>>> @given(cst.money(currency="USD"))
... def test_money_round_trips(money):
...     assert Money(money.amount, money.currency) == money
>>> test_money_round_trips()
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import strategies as st

from coinecon.money.money import MAX_MINOR_UNITS, Currency, Money
from coinecon.money.money import currencies as known_currencies
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding
from coinecon.money.units import Unit, UnitAmount

__all__ = [
    "currencies",
    "currency_codes",
    "exact_numbers",
    "money",
    "rates",
    "ratios",
    "roundings",
    "unit_amounts",
    "units",
]

# Amounts drawn by default stay far below the 64-bit limit so that sums of many
# of them do not overflow; pass max_minor to test the edges.
_DEFAULT_MAX_MINOR = 10**15


def currencies() -> st.SearchStrategy[Currency]:
    """Any known currency (the ISO 4217 list and host registrations)."""
    return st.sampled_from(known_currencies())


def currency_codes() -> st.SearchStrategy[str]:
    """Codes of known currencies."""
    return currencies().map(lambda c: c.code)


def money(
    *,
    currency: Currency | str | None = None,
    min_minor: int = -_DEFAULT_MAX_MINOR,
    max_minor: int = _DEFAULT_MAX_MINOR,
) -> st.SearchStrategy[Money]:
    """Money in *currency* (or any currency), between the given minor amounts.

    Args:
        currency: a fixed currency, or ``None`` for any known one.
        min_minor: the smallest amount, in minor units.
        max_minor: the largest amount, in minor units.
    """
    min_minor = max(min_minor, -MAX_MINOR_UNITS)
    max_minor = min(max_minor, MAX_MINOR_UNITS)
    currency_strategy = currencies() if currency is None else st.just(Currency.of(currency))
    return st.builds(
        Money.from_minor, st.integers(min_value=min_minor, max_value=max_minor), currency_strategy
    )


def units() -> st.SearchStrategy[Unit]:
    """Virtual units with valid codes (``COIN``, ``DIAMOND``, random others)."""
    return st.one_of(
        st.sampled_from([Unit("COIN", "Coins"), Unit("DIAMOND", "Diamonds"), Unit("BEAN")]),
        st.from_regex(r"[A-Z][A-Z0-9_]{0,31}", fullmatch=True).map(Unit),
    )


def unit_amounts(
    unit: Unit | None = None,
    *,
    min_value: int = -_DEFAULT_MAX_MINOR,
    max_value: int = _DEFAULT_MAX_MINOR,
) -> st.SearchStrategy[UnitAmount]:
    """Whole amounts of *unit* (or of any unit)."""
    unit_strategy = units() if unit is None else st.just(unit)
    return st.builds(
        UnitAmount, st.integers(min_value=min_value, max_value=max_value), unit_strategy
    )


def rates(
    *, min_value: Fraction | int = 0, max_value: Fraction | int = 1
) -> st.SearchStrategy[Rate]:
    """Exact rates between *min_value* and *max_value* (inclusive), including
    non-terminating ones such as 1/3."""
    return st.fractions(
        min_value=Fraction(min_value), max_value=Fraction(max_value), max_denominator=10**6
    ).map(Rate)


def ratios(*, min_size: int = 1, max_size: int = 8) -> st.SearchStrategy[list[int | Rate]]:
    """Lists of non-negative allocation ratios with at least one positive."""
    ratio: st.SearchStrategy[int | Rate] = st.one_of(
        st.integers(min_value=0, max_value=1000), rates(max_value=10)
    )
    return st.lists(ratio, min_size=min_size, max_size=max_size).filter(
        lambda rs: any((r.numerator if isinstance(r, Rate) else r) > 0 for r in rs)
    )


def roundings() -> st.SearchStrategy[Rounding]:
    """Any rounding mode."""
    return st.sampled_from(Rounding)


def exact_numbers() -> st.SearchStrategy[int | Decimal | str]:
    """Exact numbers in every accepted form: ``int``, ``Decimal``, decimal strings."""
    decimals = st.decimals(
        min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=4
    )
    return st.one_of(st.integers(-(10**9), 10**9), decimals, decimals.map(str))
