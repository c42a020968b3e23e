"""Custom amounts: any number of coins in a range, priced per coin with tiers."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any, final

import attrs

from coinecon._checks import instance_of
from coinecon.errors import (
    CurrencyMismatchError,
    FloatNotAllowedError,
    InvalidPriceBookError,
    InvalidPriceError,
    NotAvailableError,
)
from coinecon.errors import PricingProblemError as _ProblemError
from coinecon.money.money import Currency, Money
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding
from coinecon.pricing import _validate

__all__ = ["CustomAmounts", "PricePoints", "Tier", "TierMode"]


class TierMode(enum.Enum):
    """How discount tiers price a custom amount."""

    VOLUME = "volume"
    """The whole quantity is priced at the tier it reaches."""
    GRADUATED = "graduated"
    """Each band of the quantity is priced at its own tier, like tax brackets."""


def _tier_min(value: int) -> int:
    return _validate.whole(value, "a tier's min_coins", minimum=1)


def _tier_max(value: int | None) -> int | None:
    return None if value is None else _validate.whole(value, "a tier's max_coins", minimum=1)


def _discount(_instance: object, _attribute: object, value: Rate) -> None:
    if value >= Rate(1):
        raise InvalidPriceBookError(f"a tier's discount must be below 100%, got {value}")


@final
@attrs.frozen
class Tier:
    """A band of quantities, from ``min_coins`` to ``max_coins``
    (inclusive), priced at the base price less :attr:`discount`.

        >>> from coinecon import Rate
        >>> tier = Tier(1000, 4999, Rate("5%"))
        >>> str(tier), tier.contains(999), tier.contains(1000)
        ('1000-4999 coins', False, True)

    Attributes:
        min_coins: the first quantity of the band.
        max_coins: the last quantity of the band, or ``None`` for no end.
        discount: the discount off the base per-coin price, below 100%.
    """

    min_coins: int = attrs.field(converter=_tier_min)
    max_coins: int | None = attrs.field(converter=_tier_max)
    discount: Rate = attrs.field(default=Rate(0), converter=_validate.to_rate, validator=_discount)

    def __attrs_post_init__(self) -> None:
        if self.max_coins is not None and self.max_coins < self.min_coins:
            raise InvalidPriceBookError(
                f"a tier's max_coins ({self.max_coins}) is below its min_coins ({self.min_coins})"
            )

    def contains(self, coins: int) -> bool:
        """Whether *coins* falls in this band."""
        return self.min_coins <= coins and (self.max_coins is None or coins <= self.max_coins)

    def __str__(self) -> str:
        if self.max_coins is None:
            return f"{self.min_coins}+ coins"
        return f"{self.min_coins}-{self.max_coins} coins"


def _step(_instance: object, _attribute: object, value: Any) -> None:
    if isinstance(value, float):
        raise FloatNotAllowedError(f"a price point step must be Money, got the float {value!r}")
    if not isinstance(value, Money) or not value.is_positive:
        raise InvalidPriceError(f"a price point step must be positive Money, got {value!r}")


@final
@attrs.frozen
class PricePoints:
    """Allowed price endings for custom amounts in one currency.

    A computed total moves **up** to the next allowed price: the smallest
    ``ending + k * step`` (``k`` = 0, 1, 2…) at or above it. Moving always in the
    same direction keeps a monotone price list monotone::

        >>> from coinecon import Money
        >>> points = PricePoints(Money(1, "USD"), Money("0.99", "USD"))
        >>> points.apply(Money("14.12", "USD")), points.apply(Money("14.99", "USD"))
        (Money('14.99', 'USD'), Money('14.99', 'USD'))
        >>> PricePoints(Money(100, "JPY"), Money(80, "JPY")).apply(Money(1234, "JPY"))
        Money('1280', 'JPY')

    Attributes:
        step: the distance between two allowed prices.
        ending: the remainder every allowed price leaves after whole steps, at
            least zero and below *step*, in the same currency.
    """

    step: Money = attrs.field(validator=_step)
    ending: Money = attrs.field()

    @ending.validator
    def _check_ending(self, _attribute: object, value: Any) -> None:
        if isinstance(value, float):
            raise FloatNotAllowedError(f"a price point ending must be Money, got {value!r}")
        if not isinstance(value, Money) or value.currency != self.step.currency:
            raise InvalidPriceError(
                f"a price point ending must be Money in {self.step.currency.code}, got {value!r}"
            )
        if value.is_negative or value >= self.step:
            raise InvalidPriceError(
                f"a price point ending must be at least zero and below the step "
                f"{self.step}, got {value}"
            )

    @property
    def currency(self) -> Currency:
        """The currency these price points are for."""
        return self.step.currency

    def apply(self, price: Money) -> Money:
        """Return the smallest allowed price at or above *price*.

        Raises:
            CurrencyMismatchError: if *price* is not in :attr:`currency`.
            InvalidPriceError: if *price* is not :class:`~coinecon.money.money.Money`
                (:class:`~coinecon.errors.FloatNotAllowedError` for a float).
        """
        price = _validate.money(price, "the price to move to a price point")
        if price.currency != self.currency:
            raise CurrencyMismatchError(
                price.currency.code, self.currency.code, "apply price points in"
            )
        step, ending = self.step.minor, self.ending.minor
        steps = max(0, Rounding.CEILING.divide(price.minor - ending, step))
        return Money.from_minor(ending + steps * step, price.currency)


def _min_coins(value: int) -> int:
    return _validate.whole(value, "custom amounts' min_coins", minimum=1)


def _max_coins(value: int) -> int:
    return _validate.whole(value, "custom amounts' max_coins", minimum=1)


def _per(value: int) -> int:
    return _validate.whole(value, "custom amounts' per", minimum=1)


def _base_prices(
    value: Mapping[str, Money | Iterable[Money]],
) -> tuple[tuple[str, Money], ...]:
    return _validate.prices_by_storefront(value, "custom amounts' base")


def _tiers(value: Iterable[Tier]) -> tuple[Tier, ...]:
    return tuple(sorted(_validate.instances(value, Tier, "tiers"), key=_tier_order))


def _tier_order(tier: Tier) -> tuple[int, float, Fraction]:
    end = float("inf") if tier.max_coins is None else tier.max_coins
    return (tier.min_coins, end, tier.discount.fraction)


def _price_points(value: Iterable[PricePoints]) -> tuple[PricePoints, ...]:
    points = _validate.unique(
        value, PricePoints, "price_points", lambda p: p.currency.code, "price point currency"
    )
    return tuple(sorted(points, key=lambda p: p.currency.code))


@final
@attrs.frozen
class CustomAmounts:
    """Any quantity of coins from ``min_coins`` to ``max_coins``, priced
    from a base price with discount tiers.

    Args:
        min_coins: the smallest quantity sold.
        max_coins: the largest quantity sold.
        base_prices: for each storefront, the base price of ``per`` coins in
            one or more currencies, such as ``{"web": Money("0.99", "USD")}``
            with ``per=100``.
        per: how many coins the base prices are for (default 1), so that a
            per-coin price below the minor unit is still exact.
        tiers: the discount bands. They must cover every quantity from
            ``min_coins`` (volume mode) or from 1 (graduated mode, where every
            coin of a purchase is priced in its band) up to ``max_coins``,
            without gaps or overlaps; :meth:`~coinecon.pricing.book.PriceBook.check` reports any.
            No tiers means no discount.
        mode: :attr:`TierMode.VOLUME` (default) or :attr:`TierMode.GRADUATED`.
        rounding: how the exact total is rounded to the currency's minor unit.
        price_points: at most one :class:`PricePoints` per currency, applied
            after rounding.

    The exact total is ``coins * base / per * (1 - discount)`` in volume mode
    (the sum of the bands' totals in graduated mode), rounded with
    ``rounding``, then moved up to the next price point::

        >>> from coinecon import Money, Rate
        >>> custom = CustomAmounts(
        ...     100, 100_000, {"web": Money("0.99", "USD")}, per=100,
        ...     tiers=[Tier(1, 999), Tier(1000, 4999, Rate("5%")), Tier(5000, None, Rate("10%"))],
        ... )
        >>> custom.price(1500, "USD", "web")
        (Money('14.85', 'USD'), Money('14.11', 'USD'))

    The first money is the list price (no tier discount), the second the price
    after the tier discount.
    """

    min_coins: int = attrs.field(converter=_min_coins)
    max_coins: int = attrs.field(converter=_max_coins)
    base_prices: tuple[tuple[str, Money], ...] = attrs.field(converter=_base_prices)
    per: int = attrs.field(default=1, converter=_per)
    tiers: tuple[Tier, ...] = attrs.field(default=(), converter=_tiers)
    mode: TierMode = attrs.field(default=TierMode.VOLUME, validator=instance_of(TierMode))
    rounding: Rounding = attrs.field(default=Rounding.HALF_UP, validator=instance_of(Rounding))
    price_points: tuple[PricePoints, ...] = attrs.field(default=(), converter=_price_points)

    def __attrs_post_init__(self) -> None:
        if self.max_coins < self.min_coins:
            raise InvalidPriceBookError(
                f"custom amounts' max_coins ({self.max_coins}) is below min_coins "
                f"({self.min_coins})"
            )

    @property
    def tier_start(self) -> int:
        """The first quantity the tiers must cover (``min_coins`` in volume
        mode, 1 in graduated mode)."""
        return self.min_coins if self.mode is TierMode.VOLUME else 1

    def markets(self) -> tuple[tuple[Currency, str], ...]:
        """Every ``(currency, storefront)`` with a base price."""
        return tuple((price.currency, shop) for shop, price in self.base_prices)

    def find_base_price(self, currency: Currency | str, storefront: str) -> Money | None:
        """The base price of ``per`` coins, or ``None`` if not sold there."""
        return _validate.find_price(self.base_prices, currency, storefront)

    def price_points_for(self, currency: Currency) -> PricePoints | None:
        """The price points for *currency*, if any."""
        for points in self.price_points:
            if points.currency == currency:
                return points
        return None

    def band_problems(self, start: int, end: int) -> list[str]:
        """Describe every gap in, and overlap of, the tiers between *start* and
        *end* (inclusive); empty when each quantity there is in exactly one tier.

        No tiers at all means one band without discount, which has no problem.
        """
        if not self.tiers:
            return []
        problems: list[str] = []
        for i, first in enumerate(self.tiers):
            for second in self.tiers[i + 1 :]:
                low = max(first.min_coins, second.min_coins, start)
                ends = [m for m in (first.max_coins, second.max_coins) if m is not None]
                high = min([*ends, end])
                if low <= high:
                    problems.append(f"tiers {first} and {second} overlap at {low}-{high} coins")
        cursor = start
        for tier in self.tiers:
            if cursor > end:
                break
            if tier.min_coins > cursor:
                problems.append(f"no tier covers {cursor}-{min(tier.min_coins - 1, end)} coins")
            cursor = end + 1 if tier.max_coins is None else max(cursor, tier.max_coins + 1)
        if cursor <= end:
            problems.append(f"no tier covers {cursor}-{end} coins")
        return problems

    def exact_total(self, coins: int, base: Money) -> Fraction:
        """The exact price of *coins* in minor units, before any rounding.

        Raises:
            PricingProblemError: if *coins* is in a tier gap or overlap.
        """
        unit = Fraction(base.minor, self.per)
        if not self.tiers:
            return coins * unit
        start = 1 if self.mode is TierMode.GRADUATED else coins
        problems = self.band_problems(start, coins)
        if problems:
            raise _ProblemError(f"custom amounts, {coins} coins", "; ".join(problems))
        if self.mode is TierMode.VOLUME:
            (tier,) = (t for t in self.tiers if t.contains(coins))
            return coins * unit * tier.discount.complement().fraction
        total = Fraction(0)
        for tier in self.tiers:
            high = coins if tier.max_coins is None else min(tier.max_coins, coins)
            if high >= tier.min_coins:
                total += (high - tier.min_coins + 1) * unit * tier.discount.complement().fraction
        return total

    def price(self, coins: int, currency: Currency | str, storefront: str) -> tuple[Money, Money]:
        """Return ``(list price, price after tier discount)`` for *coins*.

        Both are rounded with ``rounding`` and moved to the currency's price
        points, if any.

        Raises:
            NotAvailableError: for a quantity outside the range, or a currency or
                storefront without a base price.
            PricingProblemError: for a quantity the tiers price ambiguously or
                not at all, or that costs nothing once rounded.
        """
        coins = _validate.whole(coins, "coins", minimum=1)
        cur = Currency.of(currency)
        if not self.min_coins <= coins <= self.max_coins:
            raise NotAvailableError(
                f"a custom amount of {coins} coins is not sold: custom amounts are "
                f"{self.min_coins} to {self.max_coins} coins"
            )
        base = self.find_base_price(cur, storefront)
        if base is None:
            raise NotAvailableError(
                f"custom amounts are not sold in {cur.code} on storefront {storefront!r}"
            )
        list_price = self._finish(Fraction(base.minor * coins, self.per), cur)
        price = self._finish(self.exact_total(coins, base), cur)
        if not price.is_positive:
            raise _ProblemError(
                f"custom amounts, {coins} coins, {cur.code}/{storefront}",
                f"the price rounds to {price}, below the currency's minor unit",
            )
        return list_price, price

    def _finish(self, exact: Fraction, currency: Currency) -> Money:
        money = Money.from_minor(self.rounding.round(exact), currency)
        points = self.price_points_for(currency)
        return money if points is None or not money.is_positive else points.apply(money)
