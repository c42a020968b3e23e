"""coinecon: exact, typed, property-tested virtual coin economies.

The public names are re-exported here; the modules they live in are
:mod:`coinecon.money`, :mod:`coinecon.units`, :mod:`coinecon.rate`,
:mod:`coinecon.rounding`, :mod:`coinecon.clock` and :mod:`coinecon.errors`.
"""

from coinecon.clock import Clock, ManualClock, SystemClock
from coinecon.errors import (
    AmountMismatchError,
    AmountOutOfRangeError,
    CoineconError,
    CurrencyMismatchError,
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidRateError,
    InvalidTypeError,
    InvalidUnitError,
    NaiveDatetimeError,
    PrecisionError,
    UnitMismatchError,
    UnknownCurrencyError,
    ValidationError,
)
from coinecon.money import Currency, Money, currencies, get_currency, register_currency
from coinecon.rate import Rate
from coinecon.rounding import Rounding
from coinecon.units import Unit, UnitAmount

__all__ = [
    "AmountMismatchError",
    "AmountOutOfRangeError",
    "Clock",
    "CoineconError",
    "Currency",
    "CurrencyMismatchError",
    "FloatNotAllowedError",
    "InvalidAmountError",
    "InvalidCurrencyError",
    "InvalidRateError",
    "InvalidTypeError",
    "InvalidUnitError",
    "ManualClock",
    "Money",
    "NaiveDatetimeError",
    "PrecisionError",
    "Rate",
    "Rounding",
    "SystemClock",
    "Unit",
    "UnitAmount",
    "UnitMismatchError",
    "UnknownCurrencyError",
    "ValidationError",
    "currencies",
    "get_currency",
    "register_currency",
]
