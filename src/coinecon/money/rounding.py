"""Named rounding modes, applied with exact integer arithmetic.

Every place where coinecon rounds takes a :class:`Rounding`; there is no hidden
default. Rounding works on exact fractions, never on floats::

    >>> from fractions import Fraction
    >>> from coinecon import Rounding
    >>> Rounding.HALF_EVEN.round(Fraction(5, 2)), Rounding.HALF_UP.round(Fraction(5, 2))
    (2, 3)
    >>> Rounding.FLOOR.round(Fraction(-7, 2)), Rounding.DOWN.round(Fraction(-7, 2))
    (-4, -3)
"""

from __future__ import annotations

import enum
from fractions import Fraction
from typing import NoReturn

from coinecon.errors import FloatNotAllowedError, InvalidTypeError

__all__ = ["Rounding"]


class Rounding(enum.Enum):
    """How to round an exact value to a whole number of the smallest unit.

    The names follow the ``decimal`` module: *up* and *down* are away from and
    towards zero, *ceiling* and *floor* towards positive and negative infinity,
    and the *half* modes round to the nearest whole number and break exact ties
    as their name says.
    """

    HALF_UP = "half-up"
    """Round to nearest, ties away from zero (2.5 → 3, -2.5 → -3), as shoppers expect."""
    HALF_DOWN = "half-down"
    """Round to nearest, ties towards zero (2.5 → 2, -2.5 → -2)."""
    HALF_EVEN = "half-even"
    """Round to nearest, ties to the even neighbour (2.5 → 2, 3.5 → 4); this is
    banker's rounding, unbiased over many roundings."""
    DOWN = "down"
    """Round towards zero (truncate), so 2.9 → 2 and -2.9 → -2."""
    UP = "up"
    """Round away from zero, so 2.1 → 3 and -2.1 → -3."""
    CEILING = "ceiling"
    """Round towards positive infinity, so 2.1 → 3 and -2.9 → -2."""
    FLOOR = "floor"
    """Round towards negative infinity, so 2.9 → 2 and -2.1 → -3."""

    def round(self, value: Fraction | int) -> int:
        """Round an exact *value* to a whole number with this mode.

            >>> Rounding.HALF_UP.round(Fraction(-5, 2))
            -3

        Args:
            value: an ``int`` or a :class:`fractions.Fraction`.

        Returns:
            The rounded whole number.

        Raises:
            FloatNotAllowedError: for a ``float``.
            InvalidTypeError: for anything else that is not an ``int`` or a
                ``Fraction`` (a ``bool``, a ``Decimal``...).
        """
        if type(value) is int:
            return value
        if not isinstance(value, Fraction):
            _refuse(value, "the value to round", "an int or a Fraction")
        return self.divide(value.numerator, value.denominator)

    def divide(self, numerator: int, denominator: int) -> int:
        """Divide two integers exactly and round the quotient with this mode.

        This is the primitive every rounding in coinecon reduces to.

            >>> Rounding.HALF_UP.divide(199 * 15, 100)
            30
            >>> Rounding.DOWN.divide(-7, 2)
            -3

        Raises:
            ZeroDivisionError: if *denominator* is zero.
            FloatNotAllowedError: if either argument is a ``float``.
            InvalidTypeError: if either is anything else but an ``int`` (a
                ``bool``, a ``Decimal``, a ``Fraction``...).
        """
        if type(numerator) is not int:
            _refuse(numerator, "the numerator", "an int")
        if type(denominator) is not int:
            _refuse(denominator, "the denominator", "an int")
        if denominator == 0:
            raise ZeroDivisionError("rounding a division by zero")
        if denominator < 0:
            numerator, denominator = -numerator, -denominator
        floor, remainder = divmod(numerator, denominator)
        if remainder == 0:
            return floor
        ceiling = floor + 1
        if self is Rounding.FLOOR:
            return floor
        if self is Rounding.CEILING:
            return ceiling
        negative = numerator < 0
        if self is Rounding.DOWN:
            return ceiling if negative else floor
        if self is Rounding.UP:
            return floor if negative else ceiling
        twice = 2 * remainder
        if twice < denominator:
            return floor
        if twice > denominator:
            return ceiling
        # An exact tie between floor and ceiling.
        if self is Rounding.HALF_UP:
            return floor if negative else ceiling
        if self is Rounding.HALF_DOWN:
            return ceiling if negative else floor
        return floor if floor % 2 == 0 else ceiling


def _refuse(value: object, what: str, expected: str) -> NoReturn:
    if isinstance(value, float):
        raise FloatNotAllowedError(
            f"{what} is the float {value!r}; floats are inexact: round {expected} instead"
        )
    raise InvalidTypeError(f"{what} must be {expected}, not {type(value).__name__}")
