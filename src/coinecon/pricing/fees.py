"""What a purchase costs beyond the coins: payment fees, service fee,
store commission and tax."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, final

import attrs

from coinecon._checks import instance_of
from coinecon.errors import InvalidPriceBookError, InvalidRateError, NotAvailableError
from coinecon.money.money import Currency, Money
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding
from coinecon.pricing import _validate

__all__ = ["BorneBy", "Fee", "FeeSchedule", "PaymentMethodFee", "TaxMode", "TaxRule"]


class BorneBy(enum.Enum):
    """Who pays a fee."""

    BUYER = "buyer"
    """Added to what the buyer is charged."""
    PLATFORM = "platform"
    """Taken out of what the platform keeps."""


class TaxMode(enum.Enum):
    """Whether prices in a region already contain the tax."""

    INCLUSIVE = "inclusive"
    """Prices include the tax, as VAT and GST do; it is split out of the price."""
    EXCLUSIVE = "exclusive"
    """The tax is added on top of the price (US sales tax)."""


def _fee_rate(_instance: object, attribute: Any, value: Rate) -> None:
    if value > Rate(1):
        raise InvalidRateError(f"{attribute.name} must be at most 100%, got {value}")


def _amounts(value: Money | Iterable[Money]) -> tuple[Money, ...]:
    return _validate.by_currency(value, "a fee amount", positive=False)


def _pick(amounts: tuple[Money, ...], currency: Currency, what: str) -> Money | None:
    if not amounts:
        return None
    for money in amounts:
        if money.currency == currency:
            return money
    raise NotAvailableError(f"{what} is not set in {currency.code}")


@final
@attrs.frozen
class Fee:
    """A fee of a share of an amount plus a fixed part, kept between a minimum
    and a maximum.

    The fixed part, minimum and maximum are money, at most one per currency.
    Where one of them is given in some currencies but not in the one charged,
    the fee cannot be computed and :class:`~coinecon.errors.NotAvailableError`
    is raised, rather than guessing::

        >>> from coinecon import Money, Rate
        >>> card = Fee(Rate("2.9%"), fixed=Money("0.30", "USD"), minimum=Money("0.50", "USD"))
        >>> card.amount(Money("9.99", "USD"))
        Money('0.59', 'USD')
        >>> card.amount(Money("0.99", "USD"))
        Money('0.50', 'USD')

    Attributes:
        rate: the share of the amount (default 0).
        fixed: the fixed part per currency.
        minimum: the smallest fee per currency.
        maximum: the largest fee per currency.
        rounding: how the share is rounded to the minor unit.
    """

    rate: Rate = attrs.field(default=Rate(0), converter=_validate.to_rate, validator=_fee_rate)
    fixed: tuple[Money, ...] = attrs.field(default=(), converter=_amounts)
    minimum: tuple[Money, ...] = attrs.field(default=(), converter=_amounts)
    maximum: tuple[Money, ...] = attrs.field(default=(), converter=_amounts)
    rounding: Rounding = attrs.field(default=Rounding.HALF_UP, validator=instance_of(Rounding))

    def __attrs_post_init__(self) -> None:
        for low in self.minimum:
            for high in self.maximum:
                if low.currency == high.currency and low > high:
                    raise InvalidPriceBookError(
                        f"a fee's minimum {low} is above its maximum {high}"
                    )

    def missing_currencies(self, currency: Currency) -> tuple[str, ...]:
        """Name the parts (fixed, minimum, maximum) that are set but not in *currency*."""
        parts = (("fixed", self.fixed), ("minimum", self.minimum), ("maximum", self.maximum))
        return tuple(
            part
            for part, amounts in parts
            if amounts and all(m.currency != currency for m in amounts)
        )

    def amount(self, base: Money) -> Money:
        """The fee on *base*: ``base * rate`` rounded, plus the fixed part,
        raised to the minimum and lowered to the maximum.

        Raises:
            NotAvailableError: if a fixed part, minimum or maximum is set, but
                not in *base*'s currency.
            InvalidPriceError: if *base* is not :class:`~coinecon.money.money.Money`
                (:class:`~coinecon.errors.FloatNotAllowedError` for a float).
        """
        base = _validate.money(base, "the amount a fee is charged on")
        currency = base.currency
        fee = base.times(self.rate, rounding=self.rounding)
        fixed = _pick(self.fixed, currency, "the fee's fixed part")
        if fixed is not None:
            fee += fixed
        low = _pick(self.minimum, currency, "the fee's minimum")
        if low is not None and fee < low:
            fee = low
        high = _pick(self.maximum, currency, "the fee's maximum")
        if high is not None and fee > high:
            fee = high
        return fee


def _method(value: str) -> str:
    return _validate.name(value, "a payment method")


def _storefronts(value: Iterable[str]) -> frozenset[str]:
    return _validate.names(value, "a payment method storefront")


@final
@attrs.frozen
class PaymentMethodFee:
    """What a payment method (card, wallet, app store billing…) charges.

    Attributes:
        method: the payment method's name, such as ``"card"``.
        fee: the processor's fee on the amount charged before it.
        borne_by: :attr:`BorneBy.PLATFORM` (default: taken out of the platform's
            revenue) or :attr:`BorneBy.BUYER` (added to the buyer's total as a
            surcharge). Either way the processor keeps it.
        storefronts: the storefronts it may be used on (empty: all).
    """

    method: str = attrs.field(converter=_method)
    fee: Fee = attrs.field(factory=Fee, validator=instance_of(Fee))
    borne_by: BorneBy = attrs.field(default=BorneBy.PLATFORM, validator=instance_of(BorneBy))
    storefronts: frozenset[str] = attrs.field(default=frozenset(), converter=_storefronts)


def _region(value: str) -> str:
    return _validate.region_code(value)


@final
@attrs.frozen
class TaxRule:
    """The tax of one region.

    Inclusive tax is split out of the price exactly: ``net = price / (1 + rate)``
    rounded with :attr:`rounding`, and ``tax = price - net``, so net plus tax is
    always the price. Exclusive tax is ``price * rate`` rounded, added on top::

        >>> from coinecon import Money, Rate
        >>> vat = TaxRule("DE", Rate("19%"), TaxMode.INCLUSIVE, label="VAT")
        >>> vat.tax_on(Money("9.99", "EUR"))
        Money('1.60', 'EUR')
        >>> TaxRule("US", Rate("8.875%"), TaxMode.EXCLUSIVE).tax_on(Money("9.99", "USD"))
        Money('0.89', 'USD')

    Attributes:
        region: the ISO 3166-1 alpha-2 code of the region.
        rate: the tax rate.
        mode: :attr:`TaxMode.INCLUSIVE` or :attr:`TaxMode.EXCLUSIVE`.
        rounding: how the tax (or the net, for inclusive tax) is rounded.
        label: how the tax is named on a quote (``"VAT"``, ``"GST"``, ``"sales tax"``).
    """

    region: str = attrs.field(converter=_region)
    rate: Rate = attrs.field(converter=_validate.to_rate)
    mode: TaxMode = attrs.field(validator=instance_of(TaxMode))
    rounding: Rounding = attrs.field(default=Rounding.HALF_UP, validator=instance_of(Rounding))
    label: str = attrs.field(default="tax", validator=instance_of(str))

    def tax_on(self, price: Money) -> Money:
        """The tax in (inclusive) or on (exclusive) *price*.

        Raises:
            InvalidPriceError: if *price* is not :class:`~coinecon.money.money.Money`
                (:class:`~coinecon.errors.FloatNotAllowedError` for a float).
        """
        price = _validate.money(price, "the price taxed")
        if self.mode is TaxMode.EXCLUSIVE:
            return price.times(self.rate, rounding=self.rounding)
        numerator, denominator = self.rate.numerator, self.rate.denominator
        net = self.rounding.divide(price.minor * denominator, denominator + numerator)
        return price - Money.from_minor(net, price.currency)


def _methods(value: Iterable[PaymentMethodFee]) -> tuple[PaymentMethodFee, ...]:
    methods = _validate.unique(
        value, PaymentMethodFee, "payment_methods", lambda m: m.method, "payment method"
    )
    return tuple(sorted(methods, key=lambda m: m.method))


def _commissions(value: Mapping[str, Rate]) -> tuple[tuple[str, Rate], ...]:
    pairs = []
    given: Mapping[str, object] = _validate.as_mapping(value, "store_commissions")
    for storefront, given_rate in given.items():
        rate = _validate.to_rate(given_rate)  # type: ignore[arg-type]
        if rate > Rate(1):
            raise InvalidRateError(
                f"the commission of storefront {storefront!r} must be a Rate of at most "
                f"100%, got {rate!r}"
            )
        pairs.append((_validate.name(storefront, "a storefront"), rate))
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def _taxes(value: Iterable[TaxRule]) -> tuple[TaxRule, ...]:
    rules = _validate.unique(value, TaxRule, "taxes", lambda r: r.region, "tax region")
    return tuple(sorted(rules, key=lambda r: r.region))


def _service_fee(value: Fee | None) -> Fee | None:
    if value is not None and not isinstance(value, Fee):
        raise InvalidPriceBookError(f"service_fee must be a Fee or None, got {value!r}")
    return value


@final
@attrs.frozen
class FeeSchedule:
    """Every fee and tax a purchase may carry, and who bears each.

    Args:
        payment_methods: the accepted payment methods and their fees; a method
            not listed is not accepted.
        service_fee: the platform's fee on the discounted price, shown to and
            paid by the buyer (``None``: none).
        store_commissions: the app-store commission per storefront, as a share
            of the amount charged net of tax; absorbed by the platform.
        commission_rounding: how commissions are rounded.
        taxes: the tax rules, at most one per region; a region without one is
            charged no tax (:meth:`~coinecon.pricing.book.PriceBook.check` warns).

    The service fee and the store commission are not taxed; tax applies to the
    price of the coins.
    """

    payment_methods: tuple[PaymentMethodFee, ...] = attrs.field(default=(), converter=_methods)
    service_fee: Fee | None = attrs.field(default=None, converter=_service_fee)
    store_commissions: tuple[tuple[str, Rate], ...] = attrs.field(
        factory=dict, converter=_commissions
    )
    commission_rounding: Rounding = attrs.field(
        default=Rounding.HALF_UP, validator=instance_of(Rounding)
    )
    taxes: tuple[TaxRule, ...] = attrs.field(default=(), converter=_taxes)

    def payment_method(self, method: str, storefront: str) -> PaymentMethodFee:
        """The fees of *method*, if accepted on *storefront*.

        Raises:
            NotAvailableError: for a method not listed, or not on *storefront*.
        """
        for entry in self.payment_methods:
            if entry.method == method:
                if entry.storefronts and storefront not in entry.storefronts:
                    raise NotAvailableError(
                        f"payment method {method!r} is not accepted on storefront {storefront!r}"
                    )
                return entry
        raise NotAvailableError(f"payment method {method!r} is not accepted")

    def commission(self, storefront: str) -> Rate:
        """The store commission on *storefront* (0 where none is listed)."""
        for shop, rate in self.store_commissions:
            if shop == storefront:
                return rate
        return Rate(0)

    def tax_rule(self, region: str) -> TaxRule | None:
        """The tax rule of *region*, or ``None`` if it has none."""
        for rule in self.taxes:
            if rule.region == region:
                return rule
        return None
