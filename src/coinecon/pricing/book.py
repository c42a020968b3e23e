"""The price book: what is sold where, and for how much; and quoting from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from typing import final

import attrs

from coinecon._checks import instance_of
from coinecon._ids import check_identifier
from coinecon.clock import require_aware
from coinecon.errors import (
    InvalidIdentifierError,
    InvalidPriceBookError,
    InvalidQuoteError,
    InvalidTypeError,
    NotAvailableError,
    PriceBookInvalidError,
)
from coinecon.money.money import Currency, Money
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding
from coinecon.money.units import Unit, UnitAmount
from coinecon.pricing import _validate
from coinecon.pricing.checks import check_book
from coinecon.pricing.custom import CustomAmounts
from coinecon.pricing.fees import BorneBy, FeeSchedule, TaxMode
from coinecon.pricing.packages import CoinPackage
from coinecon.pricing.problems import (
    Level,
    Problem,
    RuleOverrides,
    Severity,
    apply_rules,
    rule_overrides,
)
from coinecon.pricing.promotions import BuyerHistory, Promotion, PromotionKind, StackingPolicy
from coinecon.pricing.quote import LineKind, Quote, QuoteLine

__all__ = ["PriceBook"]


def _regions(value: Mapping[str, Currency | str]) -> tuple[tuple[str, Currency], ...]:
    given = _validate.as_mapping(value, "regions (region code to currency)")
    pairs = [(_validate.region_code(code), Currency.of(cur)) for code, cur in given.items()]
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def _packages(value: Iterable[CoinPackage]) -> tuple[CoinPackage, ...]:
    return _validate.unique(value, CoinPackage, "packages", lambda p: p.sku, "SKU")


def _custom(value: CustomAmounts | None) -> CustomAmounts | None:
    if value is not None and not isinstance(value, CustomAmounts):
        raise InvalidPriceBookError(f"custom must be CustomAmounts or None, got {value!r}")
    return value


def _promotions(value: Iterable[Promotion]) -> tuple[Promotion, ...]:
    promotions = _validate.unique(value, Promotion, "promotions", lambda p: p.id, "promotion id")
    return tuple(sorted(promotions, key=lambda p: p.id))


def _check_request(account: object, history: object, validity: object) -> None:
    if not isinstance(validity, timedelta) or validity <= timedelta(0):
        raise InvalidQuoteError(f"validity must be a positive timedelta, got {validity!r}")
    if not isinstance(history, BuyerHistory):
        raise InvalidTypeError(f"history must be a BuyerHistory, got {history!r}")
    try:
        check_identifier(account, "account")
    except (InvalidIdentifierError, InvalidTypeError) as error:
        raise InvalidQuoteError(str(error)) from None


@final
@attrs.frozen
class PriceBook:
    """Every coin package, custom-amount rule, promotion and fee, by region.

    Args:
        regions: which currency each region (ISO 3166-1 alpha-2 code) is sold in.
        packages: the coin packages, each SKU once.
        custom: the custom-amount rule, or ``None`` if only packages are sold.
        promotions: the promotions, each id once.
        fees: the fee schedule.
        stacking: how eligible promotions combine (default
            :attr:`~coinecon.pricing.promotions.StackingPolicy.BEST_SINGLE`).
        unit: the unit the book sells (default ``Unit("COIN")``).
        discount_rounding: how a percent-off promotion's cut is rounded
            (default :attr:`Rounding.HALF_UP <coinecon.money.rounding.Rounding.HALF_UP>`).
        rules: how :meth:`check` and :meth:`validate` treat each rule, by code:
            ``{"P002": "error", "F003": "off"}`` raises, lowers or silences
            rules (see :data:`~coinecon.pricing.problems.RULES`). Stored as
            sorted ``(code, level)`` pairs; unknown codes and levels are refused.

    See :doc:`/pricing` for a worked example.
    """

    regions: tuple[tuple[str, Currency], ...] = attrs.field(converter=_regions)
    packages: tuple[CoinPackage, ...] = attrs.field(default=(), converter=_packages)
    custom: CustomAmounts | None = attrs.field(default=None, converter=_custom)
    promotions: tuple[Promotion, ...] = attrs.field(default=(), converter=_promotions)
    fees: FeeSchedule = attrs.field(factory=FeeSchedule, validator=instance_of(FeeSchedule))
    stacking: StackingPolicy = attrs.field(
        default=StackingPolicy.BEST_SINGLE,
        validator=instance_of(StackingPolicy),
    )
    unit: Unit = attrs.field(default=Unit("COIN"), validator=instance_of(Unit))
    discount_rounding: Rounding = attrs.field(
        default=Rounding.HALF_UP, validator=instance_of(Rounding)
    )
    # The overrides are part of the book as written, so they take part in
    # equality and hashing like every other field: two books that validate
    # differently are not the same book. They never change a price, and a
    # quote's fingerprint is made from the quote's own fields, never from the
    # book, so quotes are the same whatever the rules.
    rules: tuple[tuple[str, Level], ...] = attrs.field(default=(), converter=rule_overrides)

    # -- lookups -----------------------------------------------------------

    def currency_for(self, region: str) -> Currency:
        """The currency sold in *region*.

        Raises:
            NotAvailableError: if the book does not sell in *region*.
            InvalidPriceBookError: if *region* is not a two-letter code.
        """
        code = _validate.region_code(region)
        for known, currency in self.regions:
            if known == code:
                return currency
        raise NotAvailableError(f"coins are not sold in region {code}")

    def package(self, sku: str) -> CoinPackage:
        """The package with *sku*.

        Raises:
            NotAvailableError: if there is none.
        """
        for package in self.packages:
            if package.sku == sku:
                return package
        raise NotAvailableError(f"there is no package with SKU {sku!r}")

    def coin_price(
        self,
        *,
        region: str,
        storefront: str,
        coins: int | None = None,
        sku: str | None = None,
    ) -> Money:
        """The price of a package or custom amount in *region* on *storefront*,
        after any tier discount and before promotions, fees and added tax.

        Raises:
            NotAvailableError: if it is not sold there.
            PricingProblemError: if the tiers cannot price *coins*.
        """
        currency = self.currency_for(region)
        return self._coin_price(currency, storefront, coins, sku)[2]

    def _coin_price(
        self, currency: Currency, storefront: str, coins: int | None, sku: str | None
    ) -> tuple[str, Money, Money, int, int]:
        """Return (label, list price, price, coins bought, package bonus)."""
        if (coins is None) == (sku is None):
            raise InvalidQuoteError("give either coins= (a custom amount) or sku=, not both")
        _validate.name(storefront, "a storefront")
        if sku is not None:
            package = self.package(sku)
            price = package.price(currency, storefront)
            return (
                f"{package.coins} coins ({sku})",
                price,
                price,
                package.coins,
                package.bonus_coins,
            )
        bought = _validate.whole(coins, "coins", minimum=1)
        if self.custom is None:
            raise NotAvailableError("custom amounts are not sold: the book has packages only")
        list_price, price = self.custom.price(bought, currency, storefront)
        return f"{bought} coins", list_price, price, bought, 0

    # -- quoting -----------------------------------------------------------

    def quote(
        self,
        *,
        account: str,
        region: str,
        storefront: str,
        payment_method: str,
        now: datetime,
        history: BuyerHistory,
        validity: timedelta,
        coins: int | None = None,
        sku: str | None = None,
    ) -> Quote:
        """Price one purchase exactly, as a :class:`~coinecon.pricing.quote.Quote`
        valid from *now* for *validity*.

        Give either *sku* (a package) or *coins* (a custom amount).

        Raises:
            NotAvailableError: for a region, storefront, currency, SKU, payment
                method or quantity not on sale.
            NaiveDatetimeError: if *now* has no time zone.
            InvalidQuoteError: for both or neither of *coins* and *sku*, an
                account that is not a usable identifier (empty, too long, or with
                characters that are not printable), or a validity that is not
                positive.
            PricingProblemError: if the book's tiers cannot price *coins*.
        """
        now = require_aware(now, "now")
        _check_request(account, history, validity)
        currency = self.currency_for(region)
        label, list_price, price, bought, bonus = self._coin_price(currency, storefront, coins, sku)
        method = self.fees.payment_method(
            _validate.name(payment_method, "a payment method"), storefront
        )
        buyer = [QuoteLine(LineKind.LIST_PRICE, label, list_price, BorneBy.BUYER)]
        if price != list_price:
            buyer.append(
                QuoteLine(
                    LineKind.TIER_DISCOUNT, "tier discount", price - list_price, BorneBy.PLATFORM
                )
            )
        chosen = self._choose(
            region=region,
            storefront=storefront,
            bought=bought,
            bonus=bonus,
            price=price,
            history=history,
            now=now,
        )
        for promotion in chosen:  # percent-offs compound, in id order
            cut = promotion.price_cut(price, rounding=self.discount_rounding)
            bonus += promotion.bonus_for(bought)
            if promotion.kind is PromotionKind.PERCENT_OFF:
                price -= cut
                buyer.append(
                    QuoteLine(
                        LineKind.PROMOTION,
                        f"promotion {promotion.id}",
                        -cut,
                        BorneBy.PLATFORM,
                    )
                )
        zero = currency.zero()
        if self.fees.service_fee is not None:
            service = self.fees.service_fee.amount(price)
            if service:
                buyer.append(QuoteLine(LineKind.SERVICE_FEE, "service fee", service, BorneBy.BUYER))
        rule = self.fees.tax_rule(region)
        tax = zero if rule is None else rule.tax_on(price)
        tax_label = "tax" if rule is None else f"{rule.label} {Rate(rule.rate.as_percent())}%"
        if rule is not None and rule.mode is TaxMode.EXCLUSIVE and tax:
            buyer.append(QuoteLine(LineKind.TAX, tax_label, tax, BorneBy.BUYER))
        processor = method.fee.amount(sum((line.amount for line in buyer), zero))
        if method.borne_by is BorneBy.BUYER and processor:
            buyer.append(
                QuoteLine(LineKind.PAYMENT_FEE, f"{method.method} fee", processor, BorneBy.BUYER)
            )
        total = sum((line.amount for line in buyer), zero)
        commission = (total - tax).times(
            self.fees.commission(storefront), rounding=self.fees.commission_rounding
        )
        platform = []
        if processor:
            platform.append(
                QuoteLine(
                    LineKind.PROCESSOR_FEE,
                    f"{method.method} processing",
                    -processor,
                    method.borne_by,
                )
            )
        if commission:
            platform.append(
                QuoteLine(
                    LineKind.STORE_COMMISSION,
                    f"{storefront} store commission",
                    -commission,
                    BorneBy.PLATFORM,
                )
            )
        if tax:
            platform.append(
                QuoteLine(LineKind.TAX_REMITTED, f"{tax_label} remitted", -tax, BorneBy.BUYER)
            )
        return Quote(
            account=account,
            region=region,
            currency=currency,
            storefront=storefront,
            payment_method=payment_method,
            sku=sku,
            coins=UnitAmount(bought, self.unit),
            bonus_coins=UnitAmount(bonus, self.unit),
            list_price=list_price,
            promotions=tuple(p.id for p in chosen),
            buyer_lines=buyer,
            platform_lines=platform,
            tax=tax,
            tax_included=rule is not None and rule.mode is TaxMode.INCLUSIVE,
            total=total,
            net_revenue=total - processor - commission - tax,
            created_at=now,
            expires_at=now + validity,
        )

    def _choose(
        self,
        *,
        region: str,
        storefront: str,
        bought: int,
        bonus: int,
        price: Money,
        history: BuyerHistory,
        now: datetime,
    ) -> tuple[Promotion, ...]:
        """The promotions that apply, in id order, under the stacking policy.

        A promotion's value to the buyer is the price per coin received with it
        alone (exactly, as a fraction); the lowest wins, and a tie goes to the
        smaller id.
        """
        eligible = [
            p
            for p in self.promotions
            if p.is_eligible(
                region=region, storefront=storefront, coins=bought, history=history, now=now
            )
        ]

        def value(promotion: Promotion) -> tuple[Fraction, str]:
            paid = price - promotion.price_cut(price, rounding=self.discount_rounding)
            received = bought + bonus + promotion.bonus_for(bought)
            return Fraction(paid.minor, received), promotion.id

        if not eligible:
            return ()
        if self.stacking is StackingPolicy.BEST_SINGLE:
            return (min(eligible, key=value),)
        best: dict[str, Promotion] = {}
        for promotion in sorted(eligible, key=value):
            best.setdefault(promotion.group, promotion)
        return tuple(sorted(best.values(), key=lambda p: p.id))

    # -- checking ----------------------------------------------------------

    def check(self, *, rules: RuleOverrides | None = None) -> tuple[Problem, ...]:
        """Return every problem in the book at once, each with its rule's code.

        Errors by default: a total that goes down when coins go up, tier gaps
        and overlaps, a tier discount that falls, a custom amount that rounds
        to nothing, promotions that can never apply, fees not set in a
        currency sold. Warnings by default: a package that costs more per coin
        than a smaller one, a package priced worse than the same custom
        amount, regions without tax rules or prices, stacking groups without
        effect. :data:`~coinecon.pricing.problems.RULES` lists every rule.

        The book's own ``rules`` are applied, then *rules* on top of them
        (as a command line overrides a configuration file): each rule set to
        ``"off"`` is left out, and each other override sets the severity.

        Packages are compared size by neighbouring size within each currency
        and storefront, plus the worst pair of each: the problems grow with
        the packages, not with their pairs, and a book with any pair out of
        order has at least one (unless its rule is off).

        Raises:
            InvalidPriceBookError: if *rules* has an unknown code or level
                (the book itself is never the cause: its problems are returned).
        """
        overrides = dict(self.rules)
        overrides.update(rule_overrides(rules))
        return apply_rules(check_book(self), overrides)

    def validate(self, *, rules: RuleOverrides | None = None) -> None:
        """Refuse a book with any error from :meth:`check`, after the book's
        ``rules`` and then *rules* are applied (warnings pass).

        Raises:
            PriceBookInvalidError: an exception group of every error at once;
                its message names the rule codes, to look up or override.
            InvalidPriceBookError: if *rules* has an unknown code or level.
        """
        errors = [p for p in self.check(rules=rules) if p.severity is Severity.ERROR]
        if errors:
            count = f"{len(errors)} error{'s' if len(errors) > 1 else ''}"
            codes = ", ".join(dict.fromkeys(p.code for p in errors))
            raise PriceBookInvalidError(
                f"the price book has {count} ({codes})", [p.to_error() for p in errors]
            )
