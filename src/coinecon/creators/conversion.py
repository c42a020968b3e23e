"""Conversion: what creators' earnings are worth in money.

A :class:`ConversionRate` says what one creator unit is worth per currency,
from instants (a rate may change at a date). One diamond at half a US cent
cannot make whole cents alone, and coinecon does not round money behind
anyone's back: by default a conversion takes only the units that make whole
minor units, and the rest stay earned for later::

    >>> rate = ConversionRate({"USD": "0.005"})
    >>> conversion = rate.convert(1001, "USD", at=None)
    >>> conversion.units, conversion.money, conversion.left
    (1000, Money('5.00', 'USD'), 1)

With a named :class:`~coinecon.money.rounding.Rounding`, every unit asked is
converted and the money is rounded with it::

    >>> ConversionRate({"USD": "0.005"}, rounding=Rounding.DOWN).convert(1001, "USD", at=None).money
    Money('5.00', 'USD')
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from math import ceil, floor
from typing import Any, final

import attrs

from coinecon._checks import stored_pairs
from coinecon.clock import require_aware
from coinecon.creators import _dated
from coinecon.errors import InvalidAmountError, InvalidTypeError, NotAvailableError
from coinecon.money._exact import to_fraction
from coinecon.money.money import Currency, Money
from coinecon.money.rounding import Rounding
from coinecon.money.units import Unit, UnitAmount

__all__ = ["Conversion", "ConversionRate", "ConversionReceipt"]

Rates = tuple[tuple[datetime | None, Fraction], ...]
"""Values of one creator unit (in major units) in order of the instant
they take effect (``None``: from the start)."""


def _value(value: Any) -> Fraction:
    worth = to_fraction(value, "a conversion rate")
    if worth <= 0:
        raise InvalidAmountError(f"a conversion rate is above zero, got {value!r}")
    return worth


def _rates(value: Any) -> tuple[tuple[Currency, Rates], ...]:
    value = stored_pairs(value)
    if not isinstance(value, Mapping) or not value:
        raise InvalidTypeError(
            f"rates maps currencies to what one creator unit is worth, got {value!r}"
        )
    pairs = []
    for code, worth in value.items():
        currency = Currency.of(code)
        pairs.append((currency, _dated.dates(worth, f"the {currency.code} rate", _value)))
    if len({currency.code for currency, _ in pairs}) != len(pairs):
        raise InvalidTypeError("rates names a currency twice")
    return tuple(sorted(pairs, key=lambda pair: pair[0].code))


def _rounding(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None and not isinstance(value, Rounding):
        raise InvalidTypeError(f"rounding is a Rounding or None, got {value!r}")


@final
@attrs.frozen
class Conversion:
    """What converting creator units into money gives.

    Attributes:
        units: the units converted.
        money: what they are worth (exactly, or rounded with the rate's
            rounding).
        left: the units asked for and not converted (too few to make a
            whole minor unit, when the rate converts exactly).
        rate: what one unit was worth, in major units.
    """

    units: int
    money: Money
    left: int
    rate: Fraction


@final
@attrs.frozen
class ConversionRate:
    """What one creator unit is worth in money.

    Args:
        rates: per currency (a code or a :class:`~coinecon.money.money.Currency`),
            what one unit is worth in its major unit (``"0.005"``, a
            ``Decimal`` or ``Fraction``; never a float), or ``(effective,
            worth)`` pairs that take effect at instants (``None``: from the
            start).
        rounding: ``None`` (the default): convert only the units that make
            whole minor units, leave the rest earned; a
            :class:`~coinecon.money.rounding.Rounding`: convert every unit
            and round the money with it.
    """

    rates: tuple[tuple[Currency, Rates], ...] = attrs.field(converter=_rates)
    rounding: Rounding | None = attrs.field(default=None, validator=_rounding)

    def worth(self, currency: Currency | str, at: datetime | None) -> Fraction:
        """What one unit is worth in *currency*'s major unit at *at*
        (``None``: by the latest rate).

        Raises:
            NotAvailableError: no rate in *currency* (at *at*).
        """
        wanted = Currency.of(currency)
        when = None if at is None else require_aware(at, "at")
        for code, rates in self.rates:
            if code == wanted:
                found = _dated.in_effect(rates, when)
                if found is not None:
                    return found
                break
        moment = "" if at is None else f" at {at.isoformat()}"
        raise NotAvailableError(f"no conversion rate into {wanted.code}{moment}")

    def convert(self, units: int, currency: Currency | str, at: datetime | None) -> Conversion:
        """Convert *units* into *currency* at *at*'s rate.

        Raises:
            InvalidAmountError: *units* not a positive int.
            NotAvailableError: no rate in *currency* (at *at*).
        """
        if type(units) is not int or units <= 0:
            raise InvalidAmountError(f"units to convert are a positive int, got {units!r}")
        wanted = Currency.of(currency)
        worth = self.worth(wanted, at)
        per_unit = worth * wanted.scale  # minor units a unit is worth
        if self.rounding is None:
            # Whole minor units come from multiples of the denominator only.
            step = per_unit.denominator
            converted = units - units % step
            minor = converted * per_unit.numerator // step
        else:
            converted = units
            minor = self.rounding.round(units * per_unit)
        return Conversion(converted, Money.from_minor(minor, wanted), units - converted, worth)

    def fewest(self, currency: Currency | str, at: datetime | None) -> int:
        """The fewest units a conversion into *currency* takes to give one
        minor unit: converting exactly, the denominator of a unit's worth in
        minor units; with a rounding, the fewest that round to one."""
        wanted = Currency.of(currency)
        per_unit = self.worth(wanted, at) * wanted.scale
        rounding = self.rounding
        if rounding is None:
            return per_unit.denominator  # a Fraction is reduced
        if rounding in (Rounding.UP, Rounding.CEILING):
            return 1
        if rounding in (Rounding.DOWN, Rounding.FLOOR):
            return max(1, ceil(1 / per_unit))
        if rounding is Rounding.HALF_UP:
            return max(1, ceil(Fraction(1, 2) / per_unit))
        return floor(Fraction(1, 2) / per_unit) + 1  # HALF_DOWN, HALF_EVEN: past a half


@final
@attrs.frozen
class ConversionReceipt:
    """What :meth:`CoinEconomy.convert <coinecon.economy.CoinEconomy.convert>`
    did.

    Attributes:
        id: the conversion's id (its ledger transaction's id).
        creator: whose earnings.
        units: the creator units converted.
        money: what they were worth, now owed to the creator.
        left: the units asked for and not converted (too few to make a
            whole minor unit).
        rate: what one unit was worth, in major units.
        earnings: the creator's earnings after.
        payable: what the platform owes the creator in that currency after.
        converted_at: when.
    """

    id: str
    creator: str
    units: UnitAmount
    money: Money
    left: UnitAmount
    rate: Fraction
    earnings: UnitAmount
    payable: Money
    converted_at: datetime

    def to_data(self) -> dict[str, Any]:
        """As JSON (money in minor units, the rate as ``"n/d"``)."""
        return {
            "id": self.id,
            "creator": self.creator,
            "units": self.units.amount,
            "unit": self.units.unit.code,
            "money": self.money.minor,
            "currency": self.money.currency.code,
            "left": self.left.amount,
            "rate": f"{self.rate.numerator}/{self.rate.denominator}",
            "earnings": self.earnings.amount,
            "payable": self.payable.minor,
            "converted_at": self.converted_at,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], unit: Unit) -> ConversionReceipt:
        """What :meth:`to_data` wrote, its units in *unit*."""
        currency = data["currency"]
        return cls(
            data["id"],
            data["creator"],
            unit(data["units"]),
            Money.from_minor(data["money"], currency),
            unit(data["left"]),
            Fraction(data["rate"]),
            unit(data["earnings"]),
            Money.from_minor(data["payable"], currency),
            datetime.fromisoformat(data["converted_at"]),
        )
