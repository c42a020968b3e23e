"""Quotes: immutable, expiring offers with every price component."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, final

import attrs

from coinecon._checks import identifier, instance_of, optional_instance_of
from coinecon.clock import require_aware
from coinecon.errors import InvalidPriceBookError, InvalidQuoteError, InvalidTypeError
from coinecon.ledger.idempotency import canonical_json
from coinecon.money.money import Currency, Money
from coinecon.money.units import UnitAmount
from coinecon.pricing import _validate
from coinecon.pricing.fees import BorneBy

__all__ = ["LineKind", "Quote", "QuoteLine"]


class LineKind(enum.Enum):
    """What a line of a quote is."""

    LIST_PRICE = "list-price"
    """The coins' price before any discount (buyer side, positive)."""
    TIER_DISCOUNT = "tier-discount"
    """The volume or graduated tier discount of a custom amount (buyer side, negative)."""
    PROMOTION = "promotion"
    """A promotion's price cut (buyer side, negative)."""
    SERVICE_FEE = "service-fee"
    """The platform's service fee (buyer side, positive)."""
    PAYMENT_FEE = "payment-fee"
    """A payment-method surcharge the buyer bears (buyer side, positive)."""
    TAX = "tax"
    """Tax added on top of the price (buyer side, positive)."""
    PROCESSOR_FEE = "processor-fee"
    """What the payment processor keeps (platform side, negative)."""
    STORE_COMMISSION = "store-commission"
    """What the app store keeps (platform side, negative)."""
    TAX_REMITTED = "tax-remitted"
    """The tax the platform passes on to the tax authority (platform side, negative)."""


@final
@attrs.frozen
class QuoteLine:
    """One signed component of a quote.

    Attributes:
        kind: what the line is.
        label: a short human description (``"VAT 19%"``, ``"promotion spring20"``).
        amount: the signed amount: positive adds, negative takes away.
        borne_by: who pays it.
    """

    kind: LineKind = attrs.field(validator=instance_of(LineKind))
    label: str = attrs.field(validator=instance_of(str))
    amount: Money = attrs.field(validator=instance_of(Money))
    borne_by: BorneBy = attrs.field(validator=instance_of(BorneBy))

    def __str__(self) -> str:
        return f"{self.label}: {self.amount}"


_BUYER_KINDS = frozenset(
    {
        LineKind.LIST_PRICE,
        LineKind.TIER_DISCOUNT,
        LineKind.PROMOTION,
        LineKind.SERVICE_FEE,
        LineKind.PAYMENT_FEE,
        LineKind.TAX,
    }
)
_PLATFORM_KINDS = frozenset(LineKind) - _BUYER_KINDS


def _lines(value: Iterable[QuoteLine]) -> tuple[QuoteLine, ...]:
    return _validate.instances(value, QuoteLine, "quote lines", InvalidQuoteError)


def _aware(value: datetime) -> datetime:
    return require_aware(value, "a quote time")


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    if not isinstance(value, tuple | list):
        raise InvalidTypeError(
            f"a quote's promotions must be a tuple of promotion ids, got {type(value).__name__}"
        )
    try:
        ids = tuple(_validate.identifier(given, "a quote's promotion id") for given in value)
    except InvalidPriceBookError as error:
        raise InvalidQuoteError(str(error)) from None
    if list(ids) != sorted(set(ids)):
        raise InvalidQuoteError(
            f"a quote's promotion ids must be sorted and each given once, got {ids!r}"
        )
    return ids


_FINGERPRINT_VERSION = "coinecon.quote.v1"


@final
@attrs.frozen
class Quote:
    """Everything about one priced purchase, as an immutable, expiring value.

    The buyer side adds up: the sum of :attr:`buyer_lines` is :attr:`total`. The
    platform side adds up: :attr:`total` plus the (negative) :attr:`platform_lines`
    is :attr:`net_revenue`. The totals agree with the lines: :attr:`list_price`
    is the one list-price line, the tax-remitted lines are :attr:`tax`, and the
    added-tax lines are :attr:`tax` when it is added on top, zero when it is
    included. All of it is checked when a quote is made, so a quote that does
    not add up cannot exist.

    Attributes:
        account: the buying account.
        region: the buyer's region (ISO 3166-1 alpha-2).
        currency: the currency charged.
        storefront: where the purchase is made.
        payment_method: how it is paid.
        sku: the package bought, or ``None`` for a custom amount.
        coins: the coins bought.
        bonus_coins: the coins given on top (package bonus and promotions).
        list_price: the coins' price before any discount.
        promotions: the ids of the promotions applied, sorted.
        buyer_lines: what the buyer pays, line by line.
        platform_lines: what the platform gives up out of the total, line by line.
        tax: the tax, included in the price or added on top.
        tax_included: whether :attr:`tax` is inside the price (VAT, GST).
        total: what the buyer is charged.
        net_revenue: what the platform keeps.
        created_at: when the quote was made.
        expires_at: when it stops being valid (exclusive).
    """

    account: str = attrs.field(validator=identifier("a quote's account"))
    region: str = attrs.field(validator=instance_of(str))
    currency: Currency = attrs.field(validator=instance_of(Currency))
    storefront: str = attrs.field(validator=instance_of(str))
    payment_method: str = attrs.field(validator=instance_of(str))
    sku: str | None = attrs.field(validator=optional_instance_of(str))
    coins: UnitAmount = attrs.field(validator=instance_of(UnitAmount))
    bonus_coins: UnitAmount = attrs.field(validator=instance_of(UnitAmount))
    list_price: Money = attrs.field(validator=instance_of(Money))
    promotions: tuple[str, ...] = attrs.field(converter=_ids)
    buyer_lines: tuple[QuoteLine, ...] = attrs.field(converter=_lines)
    platform_lines: tuple[QuoteLine, ...] = attrs.field(converter=_lines)
    tax: Money = attrs.field(validator=instance_of(Money))
    tax_included: bool = attrs.field(validator=instance_of(bool))
    total: Money = attrs.field(validator=instance_of(Money))
    net_revenue: Money = attrs.field(validator=instance_of(Money))
    created_at: datetime = attrs.field(converter=_aware)
    expires_at: datetime = attrs.field(converter=_aware)

    def __attrs_post_init__(self) -> None:
        every: tuple[Money, ...] = (self.list_price, self.tax, self.total, self.net_revenue)
        every += tuple(line.amount for line in (*self.buyer_lines, *self.platform_lines))
        if any(money.currency != self.currency for money in every):
            raise InvalidQuoteError(f"every amount of a quote must be in {self.currency.code}")
        if self.coins.unit != self.bonus_coins.unit:
            raise InvalidQuoteError("coins and bonus coins must be of one unit")
        if not self.coins.is_positive or self.bonus_coins.is_negative:
            raise InvalidQuoteError("a quote sells a positive number of coins")
        zero = self.currency.zero()
        self._check_lines(zero)
        if sum((line.amount for line in self.buyer_lines), zero) != self.total:
            raise InvalidQuoteError(f"the buyer lines do not add up to the total {self.total}")
        if (
            self.total + sum((line.amount for line in self.platform_lines), zero)
            != self.net_revenue
        ):
            raise InvalidQuoteError(
                f"the total less the platform lines is not the net revenue {self.net_revenue}"
            )
        if self.expires_at <= self.created_at:
            raise InvalidQuoteError("a quote must expire after it is made")

    def _check_lines(self, zero: Money) -> None:
        """Refuse lines on the wrong side, and a list price or tax that the
        lines do not show."""
        if any(line.kind not in _BUYER_KINDS for line in self.buyer_lines) or any(
            line.kind not in _PLATFORM_KINDS for line in self.platform_lines
        ):
            raise InvalidQuoteError("a quote line is on the wrong side (buyer or platform)")
        listed = [line.amount for line in self.buyer_lines if line.kind is LineKind.LIST_PRICE]
        if listed != [self.list_price]:
            raise InvalidQuoteError(
                f"the list price {self.list_price} is not the one list-price line "
                f"({', '.join(map(str, listed)) or 'none'})"
            )

        def total(kind: LineKind, lines: tuple[QuoteLine, ...]) -> Money:
            return sum((line.amount for line in lines if line.kind is kind), zero)

        if self.tax.is_negative or -total(LineKind.TAX_REMITTED, self.platform_lines) != self.tax:
            raise InvalidQuoteError(f"the tax {self.tax} is not the tax remitted")
        added = zero if self.tax_included else self.tax
        if total(LineKind.TAX, self.buyer_lines) != added:
            raise InvalidQuoteError(
                f"the tax lines do not show the tax {self.tax} as "
                f"{'included in' if self.tax_included else 'added to'} the price"
            )

    @property
    def price(self) -> Money:
        """The coins' price after every discount and promotion, before fees and
        added tax."""
        cuts = (LineKind.LIST_PRICE, LineKind.TIER_DISCOUNT, LineKind.PROMOTION)
        return sum(
            (line.amount for line in self.buyer_lines if line.kind in cuts), self.currency.zero()
        )

    @property
    def discounts(self) -> tuple[QuoteLine, ...]:
        """The tier discount and promotion lines."""
        cuts = (LineKind.TIER_DISCOUNT, LineKind.PROMOTION)
        return tuple(line for line in self.buyer_lines if line.kind in cuts)

    @property
    def total_coins(self) -> UnitAmount:
        """The coins the buyer receives, :attr:`coins` plus :attr:`bonus_coins`."""
        return self.coins + self.bonus_coins

    def is_valid_at(self, now: datetime) -> bool:
        """Whether the quote may still be purchased at *now*: ``created_at <= now < expires_at``.

        Raises:
            NaiveDatetimeError: if *now* has no time zone.
        """
        now = require_aware(now, "now")
        return self.created_at <= now < self.expires_at

    def canonical(self) -> str:
        """The quote as canonical JSON: sorted keys, amounts in minor units, times in
        UTC. What :attr:`fingerprint` hashes; stable across Python versions."""
        return canonical_json(self._document())

    @property
    def fingerprint(self) -> str:
        """A SHA-256 hex digest of :meth:`canonical`: equal quotes have equal
        fingerprints, and changing any field changes it."""
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()

    def _document(self) -> dict[str, Any]:
        def lines(items: tuple[QuoteLine, ...]) -> list[list[Any]]:
            return [[i.kind.value, i.label, i.amount.minor, i.borne_by.value] for i in items]

        return {
            "version": _FINGERPRINT_VERSION,
            "account": self.account,
            "region": self.region,
            "currency": [self.currency.code, self.currency.exponent],
            "storefront": self.storefront,
            "payment_method": self.payment_method,
            "sku": self.sku,
            "unit": self.coins.unit.code,
            "coins": self.coins.amount,
            "bonus_coins": self.bonus_coins.amount,
            "list_price": self.list_price.minor,
            "promotions": list(self.promotions),
            "buyer_lines": lines(self.buyer_lines),
            "platform_lines": lines(self.platform_lines),
            "tax": self.tax.minor,
            "tax_included": self.tax_included,
            "total": self.total.minor,
            "net_revenue": self.net_revenue.minor,
            "created_at": _utc(self.created_at),
            "expires_at": _utc(self.expires_at),
        }


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
