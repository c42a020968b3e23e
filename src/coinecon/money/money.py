"""Exact money: :class:`Currency` and :class:`Money`.

A :class:`Money` holds an integer count of its currency's minor units (cents for
USD, yen for JPY, fils for KWD). It is built from an ``int``, a ``Decimal``, a
``Fraction`` or a decimal string, never from a ``float``::

    >>> from coinecon import Money
    >>> price = Money("1.99", "USD")
    >>> price
    Money('1.99', 'USD')
    >>> price.minor
    199
    >>> str(price * 3)
    '5.97 USD'
    >>> sum([Money("0.10", "USD"), Money("0.20", "USD")]) == Money("0.30", "USD")
    True

The full list of active ISO 4217 currencies ships with the package; a host can
register more with :func:`register_currency`.
"""

from __future__ import annotations

import csv
import re
import threading
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from typing import Any, NoReturn, final

import attrs

from coinecon._checks import instance_of
from coinecon.errors import (
    AmountOutOfRangeError,
    CoineconError,
    CurrencyMismatchError,
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidTypeError,
    PrecisionError,
    UnitMismatchError,
    UnknownCurrencyError,
)
from coinecon.money._exact import ExactNumber, shown, shown_int, to_fraction, whole_factor
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding

__all__ = [
    "MAX_MINOR_UNITS",
    "Currency",
    "Money",
    "currencies",
    "get_currency",
    "register_currency",
]

MAX_MINOR_UNITS = 2**63 - 1
"""The largest magnitude, in minor units, that a :class:`Money` may hold.

It is what a signed 64-bit integer column keeps exactly, in SQLite and
PostgreSQL alike. Anything larger is refused with
:class:`~coinecon.errors.AmountOutOfRangeError`.
"""

_MAX_EXPONENT = 18
_CODE = re.compile(r"[A-Z][A-Z0-9]{2,11}")


def _check_code(_instance: object, _attribute: object, code: Any) -> None:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise InvalidCurrencyError(
            f"currency code must be 3 to 12 upper-case letters or digits starting "
            f"with a letter, got {code!r}"
        )


def _check_exponent(_instance: object, _attribute: object, exponent: Any) -> None:
    if isinstance(exponent, bool) or not isinstance(exponent, int):
        raise InvalidCurrencyError(f"currency exponent must be an int, got {exponent!r}")
    if not 0 <= exponent <= _MAX_EXPONENT:
        raise InvalidCurrencyError(
            f"currency exponent must be between 0 and {_MAX_EXPONENT}, got {exponent}"
        )


@final
@attrs.frozen(repr=False, cache_hash=True)
class Currency:
    """A real currency: its ISO 4217 code and the number of decimal places of
    its minor unit.

    Look one up by code with :meth:`Currency.of` (or pass the code wherever a
    currency is expected); calling a currency makes money in it::

        >>> from coinecon import Currency
        >>> usd = Currency.of("USD")
        >>> usd.exponent, Currency.of("JPY").exponent, Currency.of("KWD").exponent
        (2, 0, 3)
        >>> usd("4.99")
        Money('4.99', 'USD')

    Attributes:
        code: the ISO 4217 alphabetic code (or a host-registered code).
        exponent: decimal places of the minor unit (USD 2, JPY 0, CLF 4).
        name: the currency's English name, for display.
        numeric: the ISO 4217 numeric code, or ``""`` for host currencies.
    """

    code: str = attrs.field(validator=_check_code)
    exponent: int = attrs.field(validator=_check_exponent)
    name: str = attrs.field(default="", validator=instance_of(str), eq=False)
    numeric: str = attrs.field(default="", validator=instance_of(str), eq=False)

    @classmethod
    def of(cls, currency: Currency | str) -> Currency:
        """Return the registered currency with this code (or *currency* itself).

        Raises:
            UnknownCurrencyError: if the code is neither ISO 4217 nor registered.
            InvalidTypeError: if *currency* is neither a code nor a currency.
        """
        if isinstance(currency, Currency):
            return currency
        return _REGISTRY.get(currency)

    @property
    def scale(self) -> int:
        """How many minor units make one major unit (``10 ** exponent``)."""
        return int(10**self.exponent)

    def __call__(self, amount: ExactNumber, *, rounding: Rounding | None = None) -> Money:
        """Make money in this currency: ``usd("1.99")`` is ``Money("1.99", usd)``."""
        return Money(amount, self, rounding=rounding)

    def zero(self) -> Money:
        """Return no money in this currency."""
        return Money.from_minor(0, self)

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"Currency.of({self.code!r})"


class _Registry:
    """The currencies coinecon knows: active ISO 4217 plus host registrations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_code: dict[str, Currency] | None = None

    def _loaded(self) -> dict[str, Currency]:
        by_code = self._by_code
        if by_code is None:
            with self._lock:
                if self._by_code is None:
                    self._by_code = _load_iso4217()
                by_code = self._by_code
        return by_code

    def get(self, code: object) -> Currency:
        if not isinstance(code, str):
            raise InvalidTypeError(
                f"a currency must be a Currency or a code string, not {type(code).__name__}"
            )
        found = self._loaded().get(code)
        if found is None:
            raise UnknownCurrencyError(code)
        return found

    def register(self, currency: Currency) -> Currency:
        by_code = self._loaded()
        with self._lock:
            known = by_code.get(currency.code)
            if known is not None:
                if known.exponent != currency.exponent:
                    raise InvalidCurrencyError(
                        f"currency {currency.code} is already registered with exponent "
                        f"{known.exponent}; cannot register it again with {currency.exponent}"
                    )
                return known
            by_code[currency.code] = currency
            return currency

    def all(self) -> tuple[Currency, ...]:
        return tuple(sorted(self._loaded().values(), key=lambda c: c.code))


def _load_iso4217() -> dict[str, Currency]:
    text = resources.files("coinecon").joinpath("data/iso4217.csv").read_text("utf-8")
    return {
        row["code"]: Currency(
            row["code"], int(row["exponent"]), name=row["name"], numeric=row["numeric"]
        )
        for row in csv.DictReader(text.splitlines())
    }


_REGISTRY = _Registry()


def get_currency(code: str) -> Currency:
    """Return the currency registered under *code*.

        >>> get_currency("CLF").exponent
        4

    Raises:
        UnknownCurrencyError: if no such currency is known.
    """
    return _REGISTRY.get(code)


def register_currency(code: str, exponent: int, name: str = "") -> Currency:
    """Make a currency known by code, in addition to the ISO 4217 list.

    Registering the same code again with the same exponent is harmless and
    returns the currency already known; a different exponent is refused,
    because existing amounts would change their meaning::

        >>> register_currency("XGC", 2, "Example game credits")
        Currency.of('XGC')
        >>> Money("2.50", "XGC")
        Money('2.50', 'XGC')

    Raises:
        InvalidCurrencyError: for a malformed code or exponent, or a conflicting
            registration.
    """
    return _REGISTRY.register(Currency(code, exponent, name=name))


def currencies() -> tuple[Currency, ...]:
    """Every currency known (ISO 4217 and registered), sorted by code."""
    return _REGISTRY.all()


def check_range(
    value: int,
    what: str = "amount in minor units",
    error: type[CoineconError] = AmountOutOfRangeError,
) -> int:
    """Return the ``int`` *value* if it is within :data:`MAX_MINOR_UNITS` in
    magnitude; raise *error* otherwise.

    The one range check of every amount (money, unit amounts, postings). The
    message names the value, or only its size in bits if it is huge::

        >>> check_range(-5)
        -5
        >>> check_range(2**70, "fee")
        Traceback (most recent call last):
        ...
        coinecon.errors.AmountOutOfRangeError: fee is out of range: 1180591620717411303424, ...
        >>> check_range(-(10**5000), "fee")
        Traceback (most recent call last):
        ...
        coinecon.errors.AmountOutOfRangeError: fee is out of range: a negative 16610-bit number, ...

    Args:
        value: the amount, in the smallest unit.
        what: how to name it in the message.
        error: the error to raise (:class:`~coinecon.errors.AmountOutOfRangeError`
            unless the caller's contract names another).
    """
    if -MAX_MINOR_UNITS <= value <= MAX_MINOR_UNITS:
        return value
    raise error(
        f"{what} is out of range: {shown_int(value)}, at most {MAX_MINOR_UNITS} in magnitude"
    )


@final
@attrs.frozen(init=False, repr=False, eq=True, order=False)
class Money:
    """An exact amount of one currency, held as an integer of minor units.

    Args:
        amount: the amount in major units (``"1.99"`` dollars): an ``int``,
            ``Decimal``, ``Fraction`` or decimal string. A ``float`` is refused
            with :class:`~coinecon.errors.FloatNotAllowedError`.
        currency: a :class:`Currency` or its code.
        rounding: how to round an amount with more decimal places than the
            currency has. Without it such an amount raises
            :class:`~coinecon.errors.PrecisionError`.

    Arithmetic stays within one currency; mixing currencies raises
    :class:`~coinecon.errors.CurrencyMismatchError`::

        >>> Money(5, "USD") - Money("0.01", "USD")
        Money('4.99', 'USD')
        >>> Money("1.005", "USD", rounding=Rounding.HALF_EVEN)
        Money('1.00', 'USD')
        >>> Money(1, "USD") + Money(1, "EUR")
        Traceback (most recent call last):
        ...
        coinecon.errors.CurrencyMismatchError: cannot add USD and EUR: currencies differ

    Attributes:
        minor: the amount as a whole number of minor units.
        currency: the currency.
    """

    minor: int
    currency: Currency

    def __init__(
        self,
        amount: ExactNumber,
        currency: Currency | str,
        *,
        rounding: Rounding | None = None,
    ) -> None:
        cur = Currency.of(currency)
        exact = to_fraction(amount, "money amount") * cur.scale
        if rounding is not None:
            _rounding(rounding)
        if exact.denominator != 1:
            if rounding is None:
                raise PrecisionError(
                    f"{shown(amount, form=str)} has more decimal places than {cur.code} allows "
                    f"({cur.exponent}); pass rounding=Rounding.<MODE> to round it"
                )
            minor = rounding.round(exact)
        else:
            minor = exact.numerator
        self.__attrs_init__(check_range(minor), cur)

    @classmethod
    def from_minor(cls, minor: int, currency: Currency | str) -> Money:
        """Build money from a whole number of minor units.

            >>> Money.from_minor(199, "USD")
            Money('1.99', 'USD')

        Raises:
            InvalidTypeError: if *minor* is not an ``int`` (floats included).
            AmountOutOfRangeError: beyond :data:`MAX_MINOR_UNITS`.
        """
        if type(minor) is not int:
            if isinstance(minor, float):
                raise FloatNotAllowedError(f"minor units must be an int, got the float {minor!r}")
            raise InvalidTypeError(f"minor units must be an int, got {type(minor).__name__}")
        money = object.__new__(cls)
        money.__attrs_init__(check_range(minor), Currency.of(currency))
        return money

    @classmethod
    def _unchecked(cls, minor: int, currency: Currency) -> Money:
        """Money of *minor* units of *currency*, for callers that computed an
        ``int`` within :data:`MAX_MINOR_UNITS` themselves."""
        money = object.__new__(cls)
        money.__attrs_init__(minor, currency)
        return money

    @classmethod
    def zero(cls, currency: Currency | str) -> Money:
        """Return no money in *currency*."""
        return cls.from_minor(0, currency)

    # -- views -------------------------------------------------------------

    @property
    def amount(self) -> Decimal:
        """The exact amount in major units, with the currency's decimal places.

        >>> Money("2.5", "USD").amount
        Decimal('2.50')
        """
        return Decimal(f"{self.minor}e-{self.currency.exponent}")

    def to_decimal(self) -> Decimal:
        """Return :attr:`amount`: the exact amount as a ``Decimal``."""
        return self.amount

    @property
    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return self.minor == 0

    @property
    def is_positive(self) -> bool:
        """Whether the amount is greater than zero."""
        return self.minor > 0

    @property
    def is_negative(self) -> bool:
        """Whether the amount is less than zero."""
        return self.minor < 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency.code}"

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency.code}')"

    def __bool__(self) -> bool:
        return self.minor != 0

    # -- arithmetic --------------------------------------------------------

    def _same(self, other: object, operation: str) -> int:
        if not isinstance(other, Money):
            _refuse_mix(self, other, operation)
        if other.currency != self.currency:
            raise CurrencyMismatchError(self.currency.code, other.currency.code, operation)
        return other.minor

    def _new(self, minor: int) -> Money:
        money = object.__new__(Money)
        money.__attrs_init__(check_range(minor), self.currency)
        return money

    def __add__(self, other: Money) -> Money:
        return self._new(self.minor + self._same(other, "add"))

    def __radd__(self, other: int) -> Money:
        # Only 0 is accepted, so that sum() works without a start value.
        if type(other) is int and other == 0:
            return self
        return _refuse_mix(self, other, "add")

    def __sub__(self, other: Money) -> Money:
        return self._new(self.minor - self._same(other, "subtract"))

    def __neg__(self) -> Money:
        return self._new(-self.minor)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return self._new(abs(self.minor))

    def __mul__(self, factor: int) -> Money:
        whole = whole_factor(factor, "money")
        if whole is None:
            return NotImplemented
        return self._new(self.minor * whole)

    __rmul__ = __mul__

    def times(self, factor: Rate | ExactNumber, *, rounding: Rounding) -> Money:
        """Multiply by an exact factor and round the result with *rounding*.

            >>> Money("1.99", "USD").times(Rate.percent(15), rounding=Rounding.HALF_UP)
            Money('0.30', 'USD')

        Args:
            factor: a :class:`~coinecon.money.rate.Rate` or anything
                :class:`~coinecon.money.rate.Rate` accepts.
            rounding: the named rounding for the result (required).
        """
        rate = factor if isinstance(factor, Rate) else Rate(factor)
        rounded = _rounding(rounding).divide(self.minor * rate.numerator, rate.denominator)
        return self._new(rounded)

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same(other, "compare")

    def __le__(self, other: Money) -> bool:
        return self.minor <= self._same(other, "compare")

    def __gt__(self, other: Money) -> bool:
        return self.minor > self._same(other, "compare")

    def __ge__(self, other: Money) -> bool:
        return self.minor >= self._same(other, "compare")

    # -- allocation --------------------------------------------------------

    def allocate(
        self, ratios: Sequence[int | Fraction | Decimal | Rate | str]
    ) -> tuple[Money, ...]:
        """Split into parts proportional to *ratios* that sum exactly to the whole.

        Each part is the exact share rounded towards zero; the minor units left
        over go one each to the parts with the largest remainders (the largest
        remainder method). Ties go to the earlier position, so the result never
        depends on anything but the ratios and their order. Every part is within
        one minor unit of its exact share, and a zero ratio always gets zero::

            >>> Money("0.05", "USD").allocate([1, 1])
            (Money('0.03', 'USD'), Money('0.02', 'USD'))
            >>> Money(100, "USD").allocate([Rate("1/3"), Rate("2/3")])
            (Money('33.33', 'USD'), Money('66.67', 'USD'))

        Args:
            ratios: non-negative ints, ``Fraction``, ``Decimal``, decimal strings
                or :class:`~coinecon.money.rate.Rate` values, not all zero.

        Raises:
            InvalidAmountError: for an empty list, a negative ratio or all zeros.
            FloatNotAllowedError: for a float ratio.
        """
        return tuple(self._new(part) for part in allocate_integer(self.minor, ratios))

    def split(self, parts: int) -> tuple[Money, ...]:
        """Split into *parts* near-equal parts that sum exactly to the whole.

        >>> Money("10.00", "USD").split(3)
        (Money('3.34', 'USD'), Money('3.33', 'USD'), Money('3.33', 'USD'))
        """
        if type(parts) is not int or parts < 1:
            raise InvalidAmountError(f"parts must be a positive int, got {shown(parts)}")
        return self.allocate([1] * parts)


def allocate_integer(
    total: int, ratios: Iterable[int | Fraction | Decimal | Rate | str]
) -> list[int]:
    """Split the whole number *total* in proportion to *ratios* exactly.

    The primitive behind :meth:`Money.allocate`, also used for virtual units.
    See there for the rule.
    """
    exact = [_ratio(r) for r in ratios]
    if not exact:
        raise InvalidAmountError("allocate needs at least one ratio")
    whole = sum(exact, Fraction(0))
    if whole == 0:
        raise InvalidAmountError("allocate needs at least one positive ratio")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = [magnitude * r / whole for r in exact]
    parts = [share.numerator // share.denominator for share in shares]
    left = magnitude - sum(parts)
    if left:
        by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
        for i in by_remainder[:left]:
            parts[i] += 1
    return [sign * part for part in parts]


def _ratio(ratio: object) -> Fraction:
    value = ratio.fraction if isinstance(ratio, Rate) else to_fraction(ratio, "ratio")
    if value < 0:
        raise InvalidAmountError(f"ratios must not be negative, got {shown(ratio)}")
    return value


def _rounding(rounding: object) -> Rounding:
    if not isinstance(rounding, Rounding):
        raise InvalidTypeError(f"rounding must be a Rounding member, got {rounding!r}")
    return rounding


_UNIT_AMOUNTS: list[type[Any]] = []
"""The virtual-unit amount types, registered by :mod:`coinecon.money.units`
(which imports this module, never the other way round)."""


def register_unit_amount(cls: type[Any]) -> None:
    """Tell money arithmetic that *cls* is a virtual-unit amount (with a
    ``unit.code``), so mixing the two says so instead of naming a foreign type."""
    _UNIT_AMOUNTS.append(cls)


def _refuse_mix(money: Money, other: object, operation: str) -> NoReturn:
    if isinstance(other, tuple(_UNIT_AMOUNTS)):
        unit_amount: Any = other
        raise UnitMismatchError(money.currency.code, unit_amount.unit.code, operation)
    if isinstance(other, float):
        raise FloatNotAllowedError(f"cannot {operation} money and the float {other!r}")
    raise InvalidTypeError(
        f"cannot {operation} money and {type(other).__name__} ({shown(other)}); "
        f"use Money(..., {money.currency.code!r})"
    )
