"""Coin packages: fixed bundles of coins at a price per currency and storefront."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import final

import attrs

from coinecon.errors import NotAvailableError
from coinecon.money.money import Currency, Money
from coinecon.pricing import _validate

__all__ = ["CoinPackage"]


def _sku(value: str) -> str:
    return _validate.identifier(value, "a package SKU")


def _coins(value: int) -> int:
    return _validate.whole(value, "package coins", minimum=1)


def _bonus(value: int) -> int:
    return _validate.whole(value, "package bonus coins", minimum=0)


def _prices(value: Mapping[str, Money | Iterable[Money]]) -> tuple[tuple[str, Money], ...]:
    return _validate.prices_by_storefront(value, "package")


@final
@attrs.frozen
class CoinPackage:
    """A purchasable bundle of coins, priced per currency and storefront.

    Args:
        sku: the package's identifier, such as ``"coins_500"``.
        coins: how many coins it sells (at least 1).
        prices: for each storefront (``"web"``, ``"ios"``, ``"android"`` or one the
            host names), one :class:`~coinecon.money.money.Money` or several, at most one
            per currency; every price is above zero.
        bonus_coins: coins given on top, at no extra price (default 0).

    A package is sold only where it has a price; anything else is
    :class:`~coinecon.errors.NotAvailableError`::

        >>> from coinecon import Money
        >>> package = CoinPackage(
        ...     "coins_500", 500,
        ...     {"web": [Money("4.99", "USD"), Money("4.99", "EUR")], "ios": Money("5.99", "USD")},
        ...     bonus_coins=25,
        ... )
        >>> package.price("USD", "ios")
        Money('5.99', 'USD')
        >>> package.delivered_coins
        525
        >>> package.price("EUR", "ios")
        Traceback (most recent call last):
        ...
        coinecon.errors.NotAvailableError: package coins_500 is not sold in EUR on storefront 'ios'

    Attributes:
        sku: the package's identifier.
        coins: the coins sold.
        prices: ``(storefront, price)`` pairs sorted by storefront, then currency.
        bonus_coins: the coins given on top.
    """

    sku: str = attrs.field(converter=_sku)
    coins: int = attrs.field(converter=_coins)
    prices: tuple[tuple[str, Money], ...] = attrs.field(converter=_prices)
    bonus_coins: int = attrs.field(default=0, converter=_bonus)

    @property
    def delivered_coins(self) -> int:
        """The coins a buyer receives, ``coins`` plus ``bonus_coins``."""
        return self.coins + self.bonus_coins

    def find_price(self, currency: Currency | str, storefront: str) -> Money | None:
        """Return the price in *currency* on *storefront*, or ``None`` if not sold there."""
        return _validate.find_price(self.prices, currency, storefront)

    def price(self, currency: Currency | str, storefront: str) -> Money:
        """Return the price in *currency* on *storefront*.

        Raises:
            NotAvailableError: if the package has no such price.
        """
        found = self.find_price(currency, storefront)
        if found is None:
            raise NotAvailableError(
                f"package {self.sku} is not sold in {Currency.of(currency).code} "
                f"on storefront {storefront!r}"
            )
        return found

    def markets(self) -> tuple[tuple[Currency, str], ...]:
        """Every ``(currency, storefront)`` the package has a price in."""
        return tuple((price.currency, shop) for shop, price in self.prices)
