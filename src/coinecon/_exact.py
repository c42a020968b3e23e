"""Turning caller input into exact numbers, and refusing what cannot be exact."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TypeAlias

from coinecon.errors import FloatNotAllowedError, InvalidAmountError, InvalidTypeError

__all__ = ["ExactNumber", "to_fraction", "whole_factor"]

ExactNumber: TypeAlias = int | Decimal | Fraction | str
"""What coinecon accepts as an exact number: never a ``float``."""

# A decimal string longer than this is refused before parsing: no real amount or
# rate needs it, and parsing huge exponents or digit runs costs time.
_MAX_TEXT = 100


def to_fraction(value: object, what: str, *, allow_fraction: bool = True) -> Fraction:
    """Return *value* as an exact :class:`Fraction`, or raise a typed error.

    Args:
        value: an ``int``, ``Decimal``, ``Fraction`` (if *allow_fraction*) or a
            decimal string.
        what: how to name the value in an error message ("amount", "rate"...).
        allow_fraction: whether a ``Fraction`` is accepted.

    Raises:
        FloatNotAllowedError: for a ``float``.
        InvalidAmountError: for NaN, infinities and malformed strings.
        InvalidTypeError: for a ``bool`` or any other type.
    """
    if isinstance(value, bool):
        raise InvalidTypeError(f"{what} must be a number, not a bool ({value!r})")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        raise FloatNotAllowedError(
            f"{what} {value!r} is a float; floats are inexact and refused. "
            f"Pass an int, a Decimal or a string such as {_suggest(value)!r} instead"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmountError(f"{what} must be finite, got {value}")
        return Fraction(value)
    if isinstance(value, Fraction):
        if not allow_fraction:
            raise InvalidTypeError(
                f"{what} must be an int, a Decimal or a decimal string, not a Fraction"
            )
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TEXT:
            raise InvalidAmountError(f"{what} string is too long ({len(text)} characters)")
        try:
            parsed = Decimal(text)
        except InvalidOperation:
            raise InvalidAmountError(f"{what} {value!r} is not a decimal number") from None
        if not parsed.is_finite():
            raise InvalidAmountError(f"{what} must be finite, got {value!r}")
        if abs(parsed.adjusted()) > _MAX_TEXT:
            raise InvalidAmountError(f"{what} {value!r} has an absurd exponent")
        return Fraction(parsed)
    raise InvalidTypeError(
        f"{what} must be an int, a Decimal or a decimal string, not {type(value).__name__}"
    )


def _suggest(value: float) -> str:
    return repr(value) if value != value else str(Decimal(repr(value)))  # noqa: PLR0124 (NaN check)


def whole_factor(factor: object, what: str) -> int | None:
    """Return *factor* if it is an ``int`` multiplier for *what*, ``None`` for a
    type that is simply not a number (so the caller returns ``NotImplemented``).

    Raises:
        FloatNotAllowedError: for a ``float``.
        InvalidTypeError: for an exact fractional factor, which needs a rounding.
    """
    if type(factor) is int:
        return factor
    if isinstance(factor, float):
        raise FloatNotAllowedError(
            f"cannot multiply {what} by the float {factor!r}; use an int, or "
            f".times(Rate(...), rounding=Rounding.<MODE>) for a fractional factor"
        )
    if isinstance(factor, (Decimal, Fraction)) or type(factor).__name__ == "Rate":
        raise InvalidTypeError(
            f"multiplying {what} by a fractional factor needs an explicit rounding: "
            f"use .times(rate, rounding=Rounding.<MODE>)"
        )
    return None
