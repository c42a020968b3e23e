"""Exact money and virtual units: the value types everything else is made of.

* ``coinecon.money.money``: :class:`Money` and :class:`Currency` (with the
  ISO 4217 table), the range every amount lives in;
* ``coinecon.money.units``: :class:`Unit` and :class:`UnitAmount`, the
  virtual currencies of an economy (coins, diamonds);
* ``coinecon.money.rate``: :class:`Rate`, an exact ratio;
* ``coinecon.money.rounding``: :class:`Rounding`, every rounding by name.

Every name is importable from here and from ``coinecon`` itself::

    >>> from coinecon.money import Money, Unit
    >>> Money("1.99", "USD") + Money("0.01", "USD")
    Money('2.00', 'USD')
    >>> Unit("COIN")(5)
    UnitAmount(5, 'COIN')
"""

from coinecon.money.money import (
    MAX_MINOR_UNITS,
    Currency,
    Money,
    currencies,
    get_currency,
    register_currency,
)
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding
from coinecon.money.units import Unit, UnitAmount

__all__ = [
    "MAX_MINOR_UNITS",
    "Currency",
    "Money",
    "Rate",
    "Rounding",
    "Unit",
    "UnitAmount",
    "currencies",
    "get_currency",
    "register_currency",
]
