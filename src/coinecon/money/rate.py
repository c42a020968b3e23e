"""Exact, non-negative rates: percentages, fractions and factors.

A :class:`Rate` is an exact ratio used for discounts, fees, tax, revenue shares
and conversion rates. It is built from an ``int``, a ``Decimal``, a ``Fraction``
or a string (``"0.15"``, ``"15%"``, ``"1/3"``), never from a ``float``::

    >>> from coinecon import Rate
    >>> Rate("15%") == Rate("0.15") == Rate.percent(15) == Rate("3/20")
    True
    >>> Rate("1/3") + Rate("1/3")
    Rate('2/3')
    >>> Rate("20%").complement()
    Rate('0.8')
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import final

import attrs

from coinecon.errors import InvalidAmountError, InvalidRateError
from coinecon.money._exact import ExactNumber, shown, to_fraction

__all__ = ["Rate"]

# Rates with absurd numerators or denominators are refused: they cost time in
# every multiplication and no economy needs them.
_MAX_PART = 10**36


def _parse(value: object) -> Fraction:
    try:
        return _parse_exact(value)
    except InvalidAmountError as error:
        raise InvalidRateError(str(error).replace("amount", "rate")) from None


def _parse_exact(value: object) -> Fraction:
    if isinstance(value, Rate):
        return value.fraction
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            return to_fraction(text[:-1], "rate") / 100
        if "/" in text:
            top, _, bottom = text.partition("/")
            denominator = to_fraction(bottom, "rate denominator")
            if denominator == 0:
                raise InvalidRateError(f"rate {value!r} divides by zero")
            return to_fraction(top, "rate numerator") / denominator
    return to_fraction(value, "rate")


@final
@attrs.frozen(init=False, repr=False, order=False)
class Rate:
    """An exact, non-negative ratio.

    Args:
        value: an ``int``, ``Decimal``, ``Fraction``, another ``Rate``, or a
            string: a decimal (``"0.15"``), a percentage (``"15%"``) or a
            fraction (``"1/3"``).

    Raises:
        FloatNotAllowedError: for a ``float``.
        InvalidRateError: for a negative, malformed, absurdly large or absurdly
            precise value.

    Attributes:
        numerator: the numerator of the ratio in lowest terms.
        denominator: the (positive) denominator in lowest terms.
    """

    numerator: int
    denominator: int

    def __init__(self, value: Rate | ExactNumber) -> None:
        fraction = _parse(value)
        if fraction < 0:
            raise InvalidRateError(f"a rate must not be negative, got {shown(value)}")
        if fraction.numerator > _MAX_PART or fraction.denominator > _MAX_PART:
            raise InvalidRateError(
                f"rate {shown(value)} is too large or too precise to be a sensible rate: "
                f"its numerator and denominator must be at most 10**36"
            )
        self.__attrs_init__(fraction.numerator, fraction.denominator)

    @classmethod
    def percent(cls, value: ExactNumber) -> Rate:
        """A rate given in percent: ``Rate.percent("2.9")`` is 2.9 %."""
        return cls(to_fraction(value, "percent") / 100)

    @classmethod
    def basis_points(cls, value: ExactNumber) -> Rate:
        """A rate given in basis points (hundredths of a percent)."""
        return cls(to_fraction(value, "basis points") / 10_000)

    @classmethod
    def zero(cls) -> Rate:
        """The rate 0."""
        return cls(0)

    @classmethod
    def one(cls) -> Rate:
        """The rate 1 (100 %)."""
        return cls(1)

    @property
    def fraction(self) -> Fraction:
        """The rate as an exact :class:`fractions.Fraction`."""
        return Fraction(self.numerator, self.denominator)

    @property
    def is_zero(self) -> bool:
        """Whether the rate is 0."""
        return self.numerator == 0

    def as_percent(self) -> Fraction:
        """The rate in percent, exactly: ``Rate("0.15").as_percent() == 15``."""
        return self.fraction * 100

    def to_decimal(self) -> Decimal | None:
        """The rate as an exact ``Decimal``, or ``None`` if it has no finite
        decimal expansion (such as 1/3)."""
        denominator = self.denominator
        twos = fives = 0
        while denominator % 2 == 0:
            denominator //= 2
            twos += 1
        while denominator % 5 == 0:
            denominator //= 5
            fives += 1
        if denominator != 1:
            return None
        places = max(twos, fives)
        scaled = self.numerator * 10**places // self.denominator
        return Decimal(f"{scaled}e-{places}")

    def complement(self) -> Rate:
        """``1 - rate``, for a rate of at most 1 (a discount's remaining share).

        Raises:
            InvalidRateError: if the rate is above 1.
        """
        return Rate(1) - self

    def __str__(self) -> str:
        exact = self.to_decimal()
        if exact is None:
            return f"{self.numerator}/{self.denominator}"
        return format(exact.normalize(), "f")

    def __repr__(self) -> str:
        return f"Rate('{self}')"

    def __add__(self, other: Rate) -> Rate:
        if not isinstance(other, Rate):
            return NotImplemented
        return Rate(self.fraction + other.fraction)

    def __sub__(self, other: Rate) -> Rate:
        if not isinstance(other, Rate):
            return NotImplemented
        return Rate(self.fraction - other.fraction)

    def __mul__(self, other: Rate | int) -> Rate:
        if isinstance(other, Rate):
            return Rate(self.fraction * other.fraction)
        if type(other) is int:
            return Rate(self.fraction * other)
        return NotImplemented

    def __rmul__(self, other: int) -> Rate:
        if type(other) is int:
            return Rate(self.fraction * other)
        return NotImplemented

    def __lt__(self, other: Rate) -> bool:
        if not isinstance(other, Rate):
            return NotImplemented
        return self.fraction < other.fraction

    def __le__(self, other: Rate) -> bool:
        if not isinstance(other, Rate):
            return NotImplemented
        return self.fraction <= other.fraction

    def __gt__(self, other: Rate) -> bool:
        if not isinstance(other, Rate):
            return NotImplemented
        return self.fraction > other.fraction

    def __ge__(self, other: Rate) -> bool:
        if not isinstance(other, Rate):
            return NotImplemented
        return self.fraction >= other.fraction
