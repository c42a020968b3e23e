"""Turning caller input into exact numbers, and refusing what cannot be exact."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TypeAlias

from coinecon.errors import FloatNotAllowedError, InvalidAmountError, InvalidTypeError

__all__ = ["ExactNumber", "shown", "shown_int", "to_fraction", "whole_factor"]

ExactNumber: TypeAlias = int | Decimal | Fraction | str
"""What coinecon accepts as an exact number: never a ``float``."""

# A decimal string longer than this is refused before parsing, and a decimal
# (parsed or given) with more digits or a larger exponent is refused before it
# becomes a fraction: no real amount or rate needs it, and converting huge
# exponents or digit runs costs seconds.
_MAX_TEXT = 100

# An int of more bits than this is described by its size in error messages.
_MAX_SHOWN_BITS = 128


def to_fraction(value: object, what: str) -> Fraction:
    """Return *value* as an exact :class:`Fraction`, or raise a typed error.

    Args:
        value: an ``int``, ``Decimal``, ``Fraction`` or a decimal string.
        what: how to name the value in an error message ("amount", "rate"...).

    Raises:
        FloatNotAllowedError: for a ``float``.
        InvalidAmountError: for NaN, infinities, malformed strings, and
            decimals with absurdly many digits or an absurd exponent.
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
        return _decimal_fraction(value, what, parsed=False)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TEXT:
            raise InvalidAmountError(f"{what} string is too long ({len(text)} characters)")
        try:
            parsed = Decimal(text)
        except InvalidOperation:
            raise InvalidAmountError(f"{what} {value!r} is not a decimal number") from None
        return _decimal_fraction(parsed, what, parsed=True)
    raise InvalidTypeError(
        f"{what} must be an int, a Decimal or a decimal string, not {type(value).__name__}"
    )


def _decimal_fraction(number: Decimal, what: str, *, parsed: bool) -> Fraction:
    """*number* as a :class:`Fraction`, once it is known to be finite and of a
    sensible size: the same caps for a ``Decimal`` as for a decimal string,
    checked before the conversion, which takes seconds for huge exponents or
    digit runs. A *parsed* number comes from a string of at most ``_MAX_TEXT``
    characters, so its digits need no count."""
    if not number.is_finite():
        raise InvalidAmountError(f"{what} must be finite, got {number}")
    if abs(number.adjusted()) > _MAX_TEXT:
        raise InvalidAmountError(
            f"{what} has an absurd exponent (10**{number.adjusted()}); "
            f"at most {_MAX_TEXT} in magnitude is accepted"
        )
    if not parsed and len(number.as_tuple().digits) > _MAX_TEXT:
        raise InvalidAmountError(
            f"{what} has {len(number.as_tuple().digits)} digits; at most {_MAX_TEXT} are accepted"
        )
    return Fraction(number)


def shown(value: object, *, form: Callable[[object], str] = repr) -> str:
    """``form(value)`` (``repr`` unless told) for an error message, or a
    description of its size for an ``int`` or ``Fraction`` too large to print
    sensibly (Python refuses to write an ``int`` of more than 4300 digits)."""
    if isinstance(value, Fraction):
        bits = max(value.numerator.bit_length(), value.denominator.bit_length())
        if bits > _MAX_SHOWN_BITS:
            return f"a Fraction with {bits}-bit parts"
    elif isinstance(value, int) and not isinstance(value, bool):
        return shown_int(value)
    return form(value)


def shown_int(value: int) -> str:
    """*value* as text, or its size in bits if it is too large to print."""
    bits = value.bit_length()
    if bits > _MAX_SHOWN_BITS:
        return f"a {'negative ' if value < 0 else ''}{bits}-bit number"
    return str(value)


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
