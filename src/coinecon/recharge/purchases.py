"""Purchases: the record of each recharge, from the charge to its reversals."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

import attrs

from coinecon.ledger.idempotency import canonical_json
from coinecon.money.money import Money
from coinecon.money.units import Unit, UnitAmount
from coinecon.pricing.quote import LineKind, Quote
from coinecon.records import Record

__all__ = ["Purchase", "PurchaseStatus", "Reversal"]

KIND = "purchase"
"""The record kind of purchases."""
OPEN_KIND = "open-purchase"
"""The record kind that marks a purchase waiting for its provider (charging
or pending), owned by the platform: what ``reconcile()`` walks."""


class PurchaseStatus(enum.Enum):
    """Where a purchase stands."""

    CHARGING = "charging"
    """Recorded, and the provider asked; its answer is not known yet (the call
    raised or timed out). A provider event or ``reconcile()`` settles it."""
    PENDING = "pending"
    """The provider will confirm later; nothing credited yet."""
    COMPLETED = "completed"
    """Paid, and its coins credited."""
    DECLINED = "declined"
    """The provider refused the charge; nothing credited (see the reason)."""
    FAILED = "failed"
    """A pending charge did not go through, or the provider never received
    it; nothing credited."""

    @property
    def open(self) -> bool:
        """Whether the purchase still waits for its provider."""
        return self in (PurchaseStatus.CHARGING, PurchaseStatus.PENDING)


@final
@attrs.frozen
class Reversal:
    """Money a completed purchase gave back: a refund, a chargeback, or a
    chargeback's reversal (which restores).

    Attributes:
        event_id: the provider's event.
        kind: ``"refund"``, ``"chargeback"`` or ``"chargeback-reversal"``.
        amount: the money.
        coins: the coins it took back (or restored).
        debt: the coins it took beyond the wallet's lots (its new debt).
        transaction_id: its ledger transaction.
        occurred_at: when it was applied.
        tax: the tax (minor units) it gave back (or, for a reversal, owed
            again).
        forgiven: of :attr:`coins`, the bonus coins it did not take: its
            purchase's bonus lot had lapsed.
        reversed_by: for a chargeback, the event of the reversal that
            restored it, once one has.
    """

    event_id: str
    kind: str
    amount: Money
    coins: int
    debt: int
    transaction_id: str
    occurred_at: datetime
    tax: int
    forgiven: int
    reversed_by: str | None = None

    @property
    def sign(self) -> int:
        """-1 for a chargeback's reversal, which restores; 1 otherwise."""
        return -1 if self.kind == "chargeback-reversal" else 1


@final
@attrs.frozen
class Purchase:
    """One purchase of coins, as the economy records it.

    Attributes:
        id: the purchase's id (also the provider's charge id).
        holder: the buyer.
        idempotency_key: the key of the ``purchase`` command.
        status: where it stands.
        reason: why it was declined or failed, or what went wrong with the
            provider's call while it is charging.
        created_at: when it was recorded.
        updated_at: when it last changed.
        payment_method: the provider's token it was charged to.
        reference: the provider's id of the payment, once known.
        region: the buyer's region, from the quote.
        sku: the package, or ``None`` for a custom amount.
        coins: the coins bought.
        bonus_coins: the coins given on top.
        promotions: the promotions applied.
        total: what the buyer is charged.
        tax: the tax in it.
        buyer_fees: the service and payment-method fees the buyer pays on top.
        platform_costs: the processor fee and store commission the platform pays.
        value: the value of the coins: ``total - tax - buyer_fees``.
        quote_fingerprint: the quote's fingerprint.
        transaction_id: the transaction that credited the coins, once completed.
        lot_ids: the lots it credited (the purchased coins, then the bonus).
        reversals: its refunds, chargebacks and their reversals, in order.
        held: whether provider events wait for it (see
            :meth:`CoinEconomy.handle_payment_event
            <coinecon.economy.CoinEconomy.handle_payment_event>`).
        version: the version of its record as read (0: not stored yet);
            not part of its value.
    """

    id: str
    holder: str
    idempotency_key: str
    status: PurchaseStatus
    reason: str | None
    created_at: datetime
    updated_at: datetime
    payment_method: str
    reference: str | None
    region: str
    sku: str | None
    coins: UnitAmount
    bonus_coins: UnitAmount
    promotions: tuple[str, ...]
    total: Money
    tax: Money
    buyer_fees: Money
    platform_costs: Money
    value: Money
    quote_fingerprint: str
    transaction_id: str | None = None
    lot_ids: tuple[str, ...] = ()
    reversals: tuple[Reversal, ...] = ()
    held: bool = False
    version: int = attrs.field(default=0, eq=False)

    @classmethod
    def of_quote(
        cls,
        purchase_id: str,
        quote: Quote,
        payment_method: str,
        idempotency_key: str,
        now: datetime,
        quote_fingerprint: str | None = None,
    ) -> Purchase:
        """A new purchase of *quote*, charging (*quote_fingerprint*: the
        quote's fingerprint, if its caller computed it already)."""

        def lines(lines: tuple[Any, ...], *kinds: LineKind) -> Money:
            return -sum(
                (line.amount for line in lines if line.kind in kinds), quote.currency.zero()
            )

        buyer_fees = -lines(quote.buyer_lines, LineKind.SERVICE_FEE, LineKind.PAYMENT_FEE)
        costs = lines(quote.platform_lines, LineKind.PROCESSOR_FEE, LineKind.STORE_COMMISSION)
        return cls(
            id=purchase_id,
            holder=quote.account,
            idempotency_key=idempotency_key,
            status=PurchaseStatus.CHARGING,
            reason=None,
            created_at=now,
            updated_at=now,
            payment_method=payment_method,
            reference=None,
            region=quote.region,
            sku=quote.sku,
            coins=quote.coins,
            bonus_coins=quote.bonus_coins,
            promotions=quote.promotions,
            total=quote.total,
            tax=quote.tax,
            buyer_fees=buyer_fees,
            platform_costs=costs,
            value=quote.total - quote.tax - buyer_fees,
            quote_fingerprint=quote.fingerprint if quote_fingerprint is None else quote_fingerprint,
        )

    @property
    def total_coins(self) -> UnitAmount:
        """The coins it credits, :attr:`coins` plus :attr:`bonus_coins`."""
        return self.coins + self.bonus_coins

    def given_back(self, *kinds: str) -> Money:
        """The money of its reversals of *kinds* (all: refunds and
        chargebacks less the chargebacks reversed)."""
        total = self.total.currency.zero()
        for reversal in self.reversals:
            if reversal.kind in kinds:
                total += reversal.amount
        return total

    @property
    def refunded(self) -> Money:
        """The money refunded."""
        return self.given_back("refund")

    @property
    def charged_back(self) -> Money:
        """The money charged back and not restored by a reversal."""
        return self.given_back("chargeback") - self.given_back("chargeback-reversal")

    @property
    def returned(self) -> Money:
        """The money the buyer has back, by refunds and chargebacks."""
        return self.refunded + self.charged_back

    @property
    def coins_taken(self) -> int:
        """The coins its refunds and chargebacks took back, less those restored."""
        return sum(r.sign * r.coins for r in self.reversals)

    @property
    def forgiven(self) -> int:
        """Of :attr:`coins_taken`, the lapsed bonus coins not taken after all."""
        return sum(r.sign * r.forgiven for r in self.reversals)

    @property
    def tax_returned(self) -> int:
        """The tax (minor units) its refunds and chargebacks gave back, less
        what reversals owed again."""
        return sum(r.sign * r.tax for r in self.reversals)

    def due(self, returned: Money) -> tuple[int, int]:
        """The coins and tax (minor units) that *returned*, the money given
        back in all, takes back: its share of the purchase's, rounded down.
        Whatever the parts the money went back in, the coins and tax taken
        are exactly these."""
        share = returned.minor
        total = self.total.minor
        return (
            self.total_coins.amount * share // total,
            self.tax.minor * share // total,
        )

    def record(self) -> Record:
        """This purchase as its record: new (version 1) if it was never
        stored, else the one that follows the version it was read at."""
        return Record(
            KIND,
            self.id,
            self.holder,
            self.created_at,
            self.version + 1,
            canonical_json(self.to_data()),
        )

    def to_data(self) -> dict[str, Any]:
        """The purchase as a JSON document (money in minor units)."""
        currency = self.total.currency.code
        return {
            "holder": self.holder,
            "idempotency_key": self.idempotency_key,
            "status": self.status.value,
            "reason": self.reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "payment_method": self.payment_method,
            "reference": self.reference,
            "region": self.region,
            "sku": self.sku,
            "unit": self.coins.unit.code,
            "coins": self.coins.amount,
            "bonus_coins": self.bonus_coins.amount,
            "promotions": list(self.promotions),
            "currency": currency,
            "total": self.total.minor,
            "tax": self.tax.minor,
            "buyer_fees": self.buyer_fees.minor,
            "platform_costs": self.platform_costs.minor,
            "value": self.value.minor,
            "quote_fingerprint": self.quote_fingerprint,
            "transaction_id": self.transaction_id,
            "lot_ids": list(self.lot_ids),
            "held": self.held,
            "reversals": [
                {
                    "event_id": r.event_id,
                    "kind": r.kind,
                    "amount": r.amount.minor,
                    "coins": r.coins,
                    "debt": r.debt,
                    "transaction_id": r.transaction_id,
                    "occurred_at": r.occurred_at,
                    "reversed_by": r.reversed_by,
                    "tax": r.tax,
                    "forgiven": r.forgiven,
                }
                for r in self.reversals
            ],
        }

    @classmethod
    def from_record(cls, record: Record) -> Purchase:
        """The purchase a record holds."""
        return attrs.evolve(cls.from_data(record.id, record.data), version=record.version)

    @classmethod
    def from_data(cls, purchase_id: str, data: Mapping[str, Any]) -> Purchase:
        """The purchase :meth:`to_data` wrote."""
        code = data["currency"]
        unit = Unit(data["unit"])

        def money(minor: int) -> Money:
            return Money.from_minor(minor, code)

        return cls(
            id=purchase_id,
            holder=data["holder"],
            idempotency_key=data["idempotency_key"],
            status=PurchaseStatus(data["status"]),
            reason=data["reason"],
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            payment_method=data["payment_method"],
            reference=data["reference"],
            region=data["region"],
            sku=data["sku"],
            coins=UnitAmount(data["coins"], unit),
            bonus_coins=UnitAmount(data["bonus_coins"], unit),
            promotions=tuple(data["promotions"]),
            total=money(data["total"]),
            tax=money(data["tax"]),
            buyer_fees=money(data["buyer_fees"]),
            platform_costs=money(data["platform_costs"]),
            value=money(data["value"]),
            quote_fingerprint=data["quote_fingerprint"],
            transaction_id=data["transaction_id"],
            lot_ids=tuple(data["lot_ids"]),
            held=data["held"],
            reversals=tuple(
                Reversal(
                    event_id=r["event_id"],
                    kind=r["kind"],
                    amount=money(r["amount"]),
                    coins=r["coins"],
                    debt=r["debt"],
                    transaction_id=r["transaction_id"],
                    occurred_at=datetime.fromisoformat(r["occurred_at"]),
                    reversed_by=r["reversed_by"],
                    tax=r["tax"],
                    forgiven=r["forgiven"],
                )
                for r in data["reversals"]
            ),
        )
