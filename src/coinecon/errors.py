"""Every error coinecon raises, under one root: :class:`CoineconError`.

Each error also subclasses the standard exception it resembles, so a caller can
catch either the precise coinecon error or the familiar built-in one::

    >>> from coinecon import Money, CoineconError
    >>> try:
    ...     Money(1.5, "USD")
    ... except TypeError as error:
    ...     isinstance(error, CoineconError)
    True
"""

from __future__ import annotations

__all__ = [
    "AmountMismatchError",
    "AmountOutOfRangeError",
    "CoineconError",
    "CurrencyMismatchError",
    "FloatNotAllowedError",
    "InvalidAmountError",
    "InvalidCurrencyError",
    "InvalidRateError",
    "InvalidTypeError",
    "InvalidUnitError",
    "NaiveDatetimeError",
    "PrecisionError",
    "UnitMismatchError",
    "UnknownCurrencyError",
    "ValidationError",
]


class CoineconError(Exception):
    """The root of every error coinecon raises.

    Catch this to handle any failure that comes from the library itself.
    """


class ValidationError(CoineconError, ValueError):
    """An input value is malformed or out of its allowed range.

    The parent of every "bad value" error; catch it to handle any refused input.
    Nothing is changed when it is raised.
    """


class InvalidTypeError(CoineconError, TypeError):
    """A value of the wrong type was given (a ``bool`` for an amount, an object
    where a code was expected...)."""


class FloatNotAllowedError(InvalidTypeError):
    """A ``float`` was given where an exact amount, price or rate is required.

    Binary floating point cannot represent most decimal fractions (``0.1 + 0.2
    != 0.3``), so coinecon refuses floats everywhere. Pass an ``int``, a
    ``decimal.Decimal``, a ``fractions.Fraction`` or a decimal string instead.
    """


class InvalidAmountError(ValidationError):
    """An amount is malformed: not a number, NaN, infinite, or not a whole number
    where one is required."""


class AmountOutOfRangeError(InvalidAmountError):
    """An amount is too large in magnitude to be stored exactly.

    Amounts are limited to what a signed 64-bit integer holds in the smallest
    unit (see :data:`coinecon.money.MAX_MINOR_UNITS`), the range every storage
    adapter can keep without loss.
    """


class PrecisionError(InvalidAmountError):
    """An amount has more decimal places than its currency allows and no
    rounding was given."""


class InvalidCurrencyError(ValidationError):
    """A currency definition is malformed (bad code or exponent) or conflicts
    with one already registered."""


class UnknownCurrencyError(CoineconError, LookupError):
    """A currency code is not in the registry.

    Attributes:
        code: the code that was looked up.
    """

    def __init__(self, code: str) -> None:
        super().__init__(
            f"unknown currency code {code!r}: not an active ISO 4217 code and not "
            "registered with coinecon.register_currency()"
        )
        self.code = code


class InvalidUnitError(ValidationError):
    """A virtual unit definition is malformed (bad code)."""


class InvalidRateError(ValidationError):
    """A rate is malformed or out of its allowed range."""


class AmountMismatchError(CoineconError, TypeError):
    """Two amounts that cannot be combined were combined: money and a virtual
    unit, or amounts in different currencies or units."""


class CurrencyMismatchError(AmountMismatchError):
    """Money in two different currencies was added, subtracted or compared.

    Attributes:
        left: the currency code on the left of the operation.
        right: the currency code on the right.
    """

    def __init__(self, left: str, right: str, operation: str) -> None:
        super().__init__(f"cannot {operation} {left} and {right}: currencies differ")
        self.left = left
        self.right = right


class UnitMismatchError(AmountMismatchError):
    """Amounts of two different virtual units, or of a unit and money, were
    combined.

    Attributes:
        left: a description of the left operand's unit.
        right: a description of the right operand's unit or type.
    """

    def __init__(self, left: str, right: str, operation: str) -> None:
        super().__init__(f"cannot {operation} {left} and {right}: units differ")
        self.left = left
        self.right = right


class NaiveDatetimeError(ValidationError):
    """A ``datetime`` without a time zone was given.

    Naive datetimes are ambiguous (whose midnight?), so every time coinecon
    accepts must carry ``tzinfo``.
    """
