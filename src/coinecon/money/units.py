"""Virtual units: the coins of the economy, and whole-number amounts of them.

A :class:`Unit` is a virtual currency the economy declares (``COIN`` that people
buy, ``DIAMOND`` that creators earn...). A :class:`UnitAmount` is a whole number
of one unit. Amounts of different units never mix, and neither do units and
money::

    >>> from coinecon import Unit
    >>> COIN = Unit("COIN", "Coins")
    >>> COIN(500) + COIN(50)
    UnitAmount(550, 'COIN')
    >>> Unit("DIAMOND")(1) + COIN(1)
    Traceback (most recent call last):
    ...
    coinecon.errors.UnitMismatchError: cannot add DIAMOND and COIN: units differ
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, NoReturn, final

import attrs

from coinecon._checks import instance_of
from coinecon.errors import (
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidTypeError,
    InvalidUnitError,
    UnitMismatchError,
)
from coinecon.money._exact import ExactNumber, shown, to_fraction, whole_factor
from coinecon.money.money import (
    MAX_MINOR_UNITS,
    Money,
    _rounding,
    allocate_integer,
    check_range,
    register_unit_amount,
)
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding

__all__ = ["Unit", "UnitAmount"]

_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,31}")


def _check_code(_instance: object, _attribute: object, code: Any) -> None:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InvalidUnitError(
            "a unit code must be 1 to 32 upper-case letters, digits or underscores "
            f"starting with a letter, got {code!r}"
        )


@final
@attrs.frozen(repr=False, cache_hash=True)
class Unit:
    """A virtual currency of the economy, such as ``COIN`` or ``DIAMOND``.

    Two units are the same unit when their codes are equal; the name is for
    display only. Calling a unit makes an amount of it: ``COIN(100)``.

    Attributes:
        code: upper-case identifier, unique within an economy.
        name: human-readable name for display.
    """

    code: str = attrs.field(validator=_check_code)
    name: str = attrs.field(default="", validator=instance_of(str), eq=False)

    def __call__(self, amount: int | ExactNumber) -> UnitAmount:
        """Make an amount of this unit: ``COIN(100)``."""
        return UnitAmount(amount, self)

    def zero(self) -> UnitAmount:
        """Return no amount of this unit."""
        return UnitAmount(0, self)

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"Unit({self.code!r})"


def _whole(amount: object) -> int:
    if type(amount) is int:
        return amount
    exact = to_fraction(amount, "unit amount")
    if exact.denominator != 1:
        raise InvalidAmountError(f"a unit amount must be a whole number, got {shown(amount)}")
    return exact.numerator


@final
@attrs.frozen(init=False, repr=False, order=False)
class UnitAmount:
    """A whole number of one virtual :class:`Unit`.

    Args:
        amount: a whole number: an ``int``, or a ``Decimal`` or string with no
            fractional part. Floats are refused.
        unit: the unit.

    Attributes:
        amount: the whole number of units.
        unit: the unit.
    """

    amount: int
    unit: Unit

    def __init__(self, amount: int | ExactNumber, unit: Unit) -> None:
        if not isinstance(unit, Unit):
            raise InvalidTypeError(f"unit must be a Unit, got {type(unit).__name__}")
        whole = _whole(amount)
        if abs(whole) > MAX_MINOR_UNITS:  # inline: this runs for every amount built
            check_range(whole, "unit amount")
        self.__attrs_init__(whole, unit)

    @classmethod
    def _unchecked(cls, amount: int, unit: Unit) -> UnitAmount:
        """An amount of *unit*, for callers that hold an ``int`` within
        :data:`~coinecon.money.money.MAX_MINOR_UNITS` and a :class:`Unit` already
        (a balance the ledger rules checked)."""
        value = object.__new__(cls)
        _set_amount(value, amount)
        _set_unit(value, unit)
        return value

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.code}"

    def __repr__(self) -> str:
        return f"UnitAmount({self.amount}, {self.unit.code!r})"

    def __bool__(self) -> bool:
        return self.amount != 0

    @property
    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return self.amount == 0

    @property
    def is_positive(self) -> bool:
        """Whether the amount is greater than zero."""
        return self.amount > 0

    @property
    def is_negative(self) -> bool:
        """Whether the amount is less than zero."""
        return self.amount < 0

    def _same(self, other: object, operation: str) -> int:
        if isinstance(other, UnitAmount):
            if other.unit != self.unit:
                raise UnitMismatchError(self.unit.code, other.unit.code, operation)
            return other.amount
        return _refuse_mix(self, other, operation)

    def __add__(self, other: UnitAmount) -> UnitAmount:
        return UnitAmount(self.amount + self._same(other, "add"), self.unit)

    def __radd__(self, other: int) -> UnitAmount:
        # Only 0 is accepted, so that sum() works without a start value.
        if type(other) is int and other == 0:
            return self
        return _refuse_mix(self, other, "add")

    def __sub__(self, other: UnitAmount) -> UnitAmount:
        return UnitAmount(self.amount - self._same(other, "subtract"), self.unit)

    def __neg__(self) -> UnitAmount:
        return UnitAmount(-self.amount, self.unit)

    def __pos__(self) -> UnitAmount:
        return self

    def __abs__(self) -> UnitAmount:
        return UnitAmount(abs(self.amount), self.unit)

    def __mul__(self, factor: int) -> UnitAmount:
        whole = whole_factor(factor, "a unit amount")
        if whole is None:
            return NotImplemented
        return UnitAmount(self.amount * whole, self.unit)

    __rmul__ = __mul__

    def times(self, factor: Rate | ExactNumber, *, rounding: Rounding) -> UnitAmount:
        """Multiply by an exact factor, rounding to a whole number with *rounding*.

        >>> Unit("COIN")(1000).times(Rate("12.5%"), rounding=Rounding.DOWN)
        UnitAmount(125, 'COIN')
        """
        rate = factor if isinstance(factor, Rate) else Rate(factor)
        value = _rounding(rounding).divide(self.amount * rate.numerator, rate.denominator)
        return UnitAmount(value, self.unit)

    def __lt__(self, other: UnitAmount) -> bool:
        return self.amount < self._same(other, "compare")

    def __le__(self, other: UnitAmount) -> bool:
        return self.amount <= self._same(other, "compare")

    def __gt__(self, other: UnitAmount) -> bool:
        return self.amount > self._same(other, "compare")

    def __ge__(self, other: UnitAmount) -> bool:
        return self.amount >= self._same(other, "compare")

    def allocate(
        self, ratios: Sequence[int | Fraction | Decimal | Rate | str]
    ) -> tuple[UnitAmount, ...]:
        """Split into parts proportional to *ratios* that sum exactly to the
        whole, with the same rule as :meth:`~coinecon.money.money.Money.allocate`.

            >>> Unit("DIAMOND")(10).allocate([Rate("0.5"), Rate("0.5")])
            (UnitAmount(5, 'DIAMOND'), UnitAmount(5, 'DIAMOND'))
        """
        return tuple(UnitAmount(part, self.unit) for part in allocate_integer(self.amount, ratios))

    def split(self, parts: int) -> tuple[UnitAmount, ...]:
        """Split into *parts* near-equal parts that sum exactly to the whole."""
        if type(parts) is not int or parts < 1:
            raise InvalidAmountError(f"parts must be a positive int, got {shown(parts)}")
        return self.allocate([1] * parts)


register_unit_amount(UnitAmount)

# Each slot's own setter: several times faster than object.__setattr__, which
# looks the slot up on every call (UnitAmount._unchecked runs for every command).
_set_amount, _set_unit = (UnitAmount.__dict__[name].__set__ for name in ("amount", "unit"))


def _refuse_mix(amount: UnitAmount, other: object, operation: str) -> NoReturn:
    if isinstance(other, Money):
        raise UnitMismatchError(amount.unit.code, f"money ({other.currency.code})", operation)
    if isinstance(other, float):
        raise FloatNotAllowedError(f"cannot {operation} a unit amount and the float {other!r}")
    raise InvalidTypeError(
        f"cannot {operation} {amount.unit.code} and {type(other).__name__} ({shown(other)}); "
        f"use {amount.unit.code}(...) to make an amount"
    )
