"""How a purchase's charge and its provider's events change the books."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from coinecon.errors import RefundTooLargeError, StorageError, ValidationError
from coinecon.ledger import entries
from coinecon.ledger.idempotency import canonical_json
from coinecon.ledger.journal import (
    AccountKey,
    Cause,
    MetadataValue,
    Posting,
    Transaction,
    TransactionKind,
    metadata_pairs,
)
from coinecon.ledger.lots import LotOrigin
from coinecon.money.money import Money
from coinecon.ports import UnitOfWork
from coinecon.recharge import books, purchases
from coinecon.recharge._context import (
    EVENT_KIND,
    MANY,
    Context,
    event_of,
    purchase_event,
    uncredited,
)
from coinecon.recharge._policies import Policies
from coinecon.recharge.gateway import PaymentEvent, PaymentEventType
from coinecon.recharge.purchases import Purchase, PurchaseStatus, Reversal
from coinecon.records import Record

_REASON = 500  # characters of a provider's reason kept on a transaction
_TAKE_BACK = {
    PaymentEventType.REFUNDED: ("refund", TransactionKind.REFUND),
    PaymentEventType.CHARGED_BACK: ("chargeback", TransactionKind.CHARGEBACK),
    PaymentEventType.FAILED: ("refund", TransactionKind.REFUND),
}


class Payments:
    """Completes, fails and reverses purchases."""

    def __init__(
        self,
        ctx: Context,
        policies: Policies,
        *,
        after_chargeback: Callable[[UnitOfWork, Purchase, int, str, datetime], None] | None = None,
        after_reversal: Callable[[UnitOfWork, Purchase, str, datetime], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.policies = policies
        # What else a chargeback that left a debt does (the creators'
        # earnings of the coins spent on gifts): given the purchase, the
        # coins of debt, the transaction and the time.
        self.after_chargeback = after_chargeback
        # And what undoes it when the chargeback is reversed: given the
        # purchase, the chargeback's transaction and the time.
        self.after_reversal = after_reversal

    def complete(
        self, uow: UnitOfWork, purchase: Purchase, reference: str | None, now: datetime
    ) -> Purchase:
        """Credit *purchase*'s coins with its money, in one transaction.

        A purchase that had failed (the provider said so, or never received
        the charge) and is approved after all is credited too: the money was
        taken."""
        waiting = purchase.status.open
        wallet = AccountKey.wallet(purchase.holder, self.ctx.unit)
        self.ctx.wallets.sweep_within(uow, wallet, now)
        grants = [entries.Grant(purchase.coins.amount, LotOrigin.PURCHASE, purchase.value)]
        if purchase.bonus_coins.amount:
            expiry = None if self.ctx.bonus_expiry is None else now + self.ctx.bonus_expiry
            grants.append(entries.Grant(purchase.bonus_coins.amount, LotOrigin.BONUS, None, expiry))
        metadata: dict[str, MetadataValue] = {"payment_method": purchase.payment_method}
        if reference is not None:
            metadata["reference"] = reference
        credited = entries.record_credit(
            uow,
            transaction_id=self.ctx.new_id(),
            new_id=self.ctx.new_id,
            kind=TransactionKind.PURCHASE,
            wallet=wallet,
            grants=grants,
            now=now,
            key=f"purchase:{purchase.id}",
            cause=Cause("purchase", purchase.id),
            metadata=metadata_pairs(metadata),
            also=books.purchase_legs(
                purchase.total, purchase.tax, purchase.buyer_fees, purchase.platform_costs
            ),
        )
        transaction = credited.transaction
        purchase = self.ctx.save(
            uow,
            attrs.evolve(
                purchase,
                status=PurchaseStatus.COMPLETED,
                reason=None,
                reference=reference if reference is not None else purchase.reference,
                transaction_id=transaction.id,
                lot_ids=tuple(lot.id for lot in credited.lots),
                updated_at=now,
            ),
        )
        profile = self.ctx.profile(uow, purchase.holder)
        if waiting:
            uow.records.remove(purchases.OPEN_KIND, purchase.id)
        else:  # its failure had given back what it took of the buyer's history
            profile = self.ctx.save_profile(uow, profile.bought(purchase.promotions), now)
        balance = credited.balances[wallet]
        self.ctx.announce(
            uow,
            "coins.credited",
            now,
            canonical_json(
                {
                    "holder": purchase.holder,
                    "unit": self.ctx.unit.code,
                    "coins": purchase.total_coins.amount,
                    "balance": balance,
                    "purchase": purchase.id,
                }
            ),
            transaction.id,
            event_id=transaction.id,
        )
        self.ctx.announce(uow, "purchase.completed", now, purchase_event(purchase), transaction.id)
        self.policies.note_limits_reached(uow, purchase, profile, now)
        # What the provider sent before it settled (a refund, a chargeback).
        return self.release_held(uow, purchase, now)

    def fail(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        status: PurchaseStatus,
        reason: str,
        now: datetime,
    ) -> Purchase:
        purchase = self.ctx.save(
            uow, attrs.evolve(purchase, status=status, reason=reason, updated_at=now)
        )
        uow.records.remove(purchases.OPEN_KIND, purchase.id)
        # It counted in the buyer's history from its recording: no longer.
        profile = self.ctx.profile(uow, purchase.holder)
        self.ctx.save_profile(uow, profile.released(purchase.promotions), now)
        self.ctx.announce(uow, "purchase.failed", now, purchase_event(purchase))
        # Events held for it stay held: a settlement after all applies them.
        return purchase

    # -- provider events ----------------------------------------------------------------

    def apply(
        self, uow: UnitOfWork, purchase: Purchase, event: PaymentEvent, now: datetime
    ) -> tuple[str, Purchase, str | None]:
        """Apply *event* to *purchase*: its status, the purchase after, and
        the transaction it recorded."""
        kind = event.type
        status = purchase.status
        if event.amount is not None and event.amount.currency != purchase.total.currency:
            raise ValidationError(
                f"event {event.id} is in {event.amount.currency.code}; the payment was in "
                f"{purchase.total.currency.code}"
            )
        if kind is PaymentEventType.SETTLED:
            if status is PurchaseStatus.COMPLETED:
                return "ignored", purchase, None
            purchase = self.complete(uow, purchase, purchase.reference, now)
            return "applied", purchase, purchase.transaction_id
        if status.open:
            if kind is PaymentEventType.FAILED:
                purchase = self.fail(
                    uow, purchase, PurchaseStatus.FAILED, event.reason or "failed", now
                )
                return "applied", purchase, None
            return "held", purchase, None
        if status is not PurchaseStatus.COMPLETED:
            # Declined or failed: nothing was taken, unless the provider
            # settles it after all; held until it does (if it ever does).
            return "held", purchase, None
        if kind is PaymentEventType.CHARGEBACK_REVERSED:
            assert event.amount is not None  # noqa: S101 (checked by PaymentEvent)
            chargeback = next(
                (
                    r
                    for r in purchase.reversals
                    if r.kind == "chargeback" and r.reversed_by is None and r.amount == event.amount
                ),
                None,
            )
            if chargeback is None:
                return "held", purchase, None  # its chargeback has not come yet
            purchase, transaction_id = self.restore(uow, purchase, chargeback, event, now)
            return "applied", purchase, transaction_id
        amount = event.amount
        left = purchase.total - purchase.returned
        if amount is None:  # a payment that failed after all: all of what is left
            amount = left
            if not amount.is_positive:
                return "ignored", purchase, None
        if amount > left:
            raise RefundTooLargeError(
                f"event {event.id} gives back {amount}, but only {left} of the payment of "
                f"{purchase.total} is left to give back",
                allowed=left,
            )
        purchase, transaction_id = self.take_back(uow, purchase, event, amount, now)
        return "applied", purchase, transaction_id

    def take_back(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        event: PaymentEvent,
        amount: Money,
        now: datetime,
    ) -> tuple[Purchase, str]:
        """Give *amount* back for *purchase*: its coins in proportion, and
        the money."""
        label, kind = _TAKE_BACK[event.type]
        coins, tax = purchase.due(purchase.returned + amount)
        coins -= purchase.coins_taken
        tax -= purchase.tax_returned
        wallet = AccountKey.wallet(purchase.holder, self.ctx.unit)
        self.ctx.wallets.sweep_within(uow, wallet, now)
        # The purchase's bonus coins that expired unspent are not taken back:
        # they left the wallet then, and the buyer owes nothing for them. What
        # is forgiven follows the money given back, on the running total.
        lapsed = self._expired_bonus(uow, purchase, wallet, now)
        share = lapsed * (purchase.returned + amount).minor // purchase.total.minor
        forgiven = min(max(share - purchase.forgiven, 0), coins)
        # The provider's reason, cut to what metadata holds (the whole event
        # is in its record).
        reason = None if event.reason is None else event.reason[:_REASON]
        metadata = metadata_pairs({"event": event.id, "reason": reason})
        cause = Cause("purchase", purchase.id)
        transaction_id = self.ctx.new_id()
        debt = 0
        if coins - forgiven:
            debited = entries.record_debit(
                uow,
                transaction_id=transaction_id,
                kind=kind,
                wallet=wallet,
                coins=coins - forgiven,
                sink=AccountKey.issuance(self.ctx.unit),
                order=self.ctx.order,
                now=now,
                key=f"{label}:{event.id}",
                cause=cause,
                metadata=metadata,
                first=purchase.lot_ids,
                legs_for=lambda consumed: books.take_back_legs(
                    amount, tax, [c.value for c in consumed]
                ),
                allow_debt=True,
            )
            debt = debited.debt
            balance: int | None = debited.balances[wallet]
        else:  # too little money for a whole coin: the money alone
            transaction = Transaction(
                id=transaction_id,
                kind=kind,
                postings=entries.merge_legs(books.take_back_legs(amount, tax, ())),
                occurred_at=now,
                idempotency_key=f"{label}:{event.id}",
                cause=cause,
                metadata=metadata,
            )
            entries.record(uow, transaction)
            balance = None
        reversal = Reversal(
            event.id, label, amount, coins, debt, transaction_id, now, tax=tax, forgiven=forgiven
        )
        purchase = self.ctx.save(
            uow, attrs.evolve(purchase, reversals=(*purchase.reversals, reversal), updated_at=now)
        )
        self._announce_reversal(uow, purchase, reversal)
        if debt and kind is TransactionKind.CHARGEBACK and self.after_chargeback is not None:
            self.after_chargeback(uow, purchase, debt, transaction_id, now)
        if balance is not None and balance < 0:
            self.ctx.announce(
                uow,
                "wallet.frozen",
                now,
                canonical_json(
                    {"holder": purchase.holder, "unit": self.ctx.unit.code, "debt": -balance}
                ),
                transaction_id,
            )
        return purchase, transaction_id

    def restore(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        chargeback: Reversal,
        event: PaymentEvent,
        now: datetime,
    ) -> tuple[Purchase, str]:
        """Give back what *chargeback* took: its money legs undone, and the
        coins, in lots like those it took from (its debt part first, which
        cancels the debt it made if that is still owed)."""
        taken = uow.ledger.get(chargeback.transaction_id)
        if taken is None:
            raise StorageError(f"chargeback transaction {chargeback.transaction_id} is missing")
        wallet = AccountKey.wallet(purchase.holder, self.ctx.unit)
        self.ctx.wallets.sweep_within(uow, wallet, now)
        # What is due once this chargeback no longer counts: the coins and tax
        # to give back are what was taken beyond it (usually exactly what the
        # chargeback took; one less or more if a refund came in between).
        coins, tax = purchase.due(purchase.returned - chargeback.amount)
        coins = purchase.coins_taken - coins
        tax = purchase.tax_returned - tax
        # What it forgave (a lapsed bonus) it never took: that is not restored.
        accounted, coins = coins, max(coins - chargeback.forgiven, 0)
        grants = _trimmed(self.ctx.slices(uow, taken, chargeback.debt, now), coins)
        values = [grant.value for grant in grants]
        legs = [
            Posting(p.account, -p.amount)
            for p in books.take_back_legs(chargeback.amount, tax, values)
        ]
        legs.extend(uncredited(grants))  # the credit posts these itself
        transaction_id = self.ctx.new_id()
        key = f"chargeback-reversal:{event.id}"
        cause = Cause("purchase", purchase.id)
        metadata = metadata_pairs({"event": event.id, "reverses": taken.id})
        if grants:
            entries.record_credit(
                uow,
                transaction_id=transaction_id,
                new_id=self.ctx.new_id,
                kind=TransactionKind.REVERSAL,
                wallet=wallet,
                grants=grants,
                now=now,
                key=key,
                cause=cause,
                metadata=metadata,
                also=legs,
            )
        else:  # it took no whole coin: the money alone
            entries.record(
                uow,
                Transaction(
                    id=transaction_id,
                    kind=TransactionKind.REVERSAL,
                    postings=entries.merge_legs(legs),
                    occurred_at=now,
                    idempotency_key=key,
                    cause=cause,
                    metadata=metadata,
                ),
            )
        restored = Reversal(
            event.id,
            "chargeback-reversal",
            chargeback.amount,
            accounted,
            0,
            transaction_id,
            now,
            tax=tax,
            forgiven=accounted - coins,
        )
        reversals = tuple(
            attrs.evolve(r, reversed_by=event.id) if r is chargeback else r
            for r in purchase.reversals
        )
        purchase = self.ctx.save(
            uow, attrs.evolve(purchase, reversals=(*reversals, restored), updated_at=now)
        )
        self._announce_reversal(uow, purchase, restored)
        if self.after_reversal is not None:
            self.after_reversal(uow, purchase, chargeback.transaction_id, now)
        return purchase, transaction_id

    def _expired_bonus(
        self, uow: UnitOfWork, purchase: Purchase, wallet: AccountKey, now: datetime
    ) -> int:
        """The coins *purchase*'s bonus lot held when it lapsed (its expiry
        recorded by the sweep), or 0 if it has not lapsed."""
        if not purchase.bonus_coins.amount or len(purchase.lot_ids) < 2:
            return 0
        bonus = uow.lots.get(purchase.lot_ids[-1])
        if bonus is None or bonus.expires_at is None or bonus.expires_at > now:
            return 0
        cause = Cause("lot", bonus.id)
        before = None
        while True:  # the wallet's expiries since the lot lapsed: its own is among them
            page = uow.ledger.history(
                wallet,
                limit=100,
                before=before,
                kinds={TransactionKind.EXPIRY},
                since=bonus.expires_at,
            )
            for entry in page:
                if entry.cause == cause:
                    return -entry.amount
            if len(page) < 100:
                return 0  # spent before it lapsed: nothing expired
            before = page[-1].sequence

    def _announce_reversal(self, uow: UnitOfWork, purchase: Purchase, reversal: Reversal) -> None:
        """The ``payment.reversed`` event of *reversal*, on its transaction."""
        self.ctx.announce(
            uow,
            "payment.reversed",
            reversal.occurred_at,
            canonical_json(
                {
                    "purchase": purchase.id,
                    "holder": purchase.holder,
                    "kind": reversal.kind,
                    "amount": reversal.amount.minor,
                    "currency": reversal.amount.currency.code,
                    "coins": reversal.coins - reversal.forgiven,
                    "debt": reversal.debt,
                }
            ),
            reversal.transaction_id,
            event_id=reversal.transaction_id,
        )

    def held(self, uow: UnitOfWork, purchase_id: str) -> list[Record]:
        """The events held for *purchase_id*, in the order they occurred."""
        held = [
            r
            for r in uow.records.of_owner(EVENT_KIND, purchase_id, limit=MANY)
            if r.data["status"] == "held"
        ]
        return sorted(held, key=lambda r: (r.data["event"]["occurred_at"], r.id))

    def release_held(self, uow: UnitOfWork, purchase: Purchase, now: datetime) -> Purchase:
        """Apply the events held for *purchase* that now can be, until none can."""
        if not purchase.held:
            return purchase  # nothing waits: no need to look
        progress = True
        while progress and purchase.status is PurchaseStatus.COMPLETED:
            progress = False
            for record in self.held(uow, purchase.id):
                event = event_of(record.id, record.data["event"])
                data = record.data
                try:
                    status, purchase, transaction_id = self.apply(uow, purchase, event, now)
                except ValidationError as error:  # refused before it wrote anything
                    status, transaction_id = "refused", None
                    data = data | {"reason": str(error)}
                if status != "held":
                    data = data | {"status": status, "transaction_id": transaction_id}
                    uow.records.update(record.changed(data))
                    progress = True
        if not self.held(uow, purchase.id):
            purchase = self.ctx.save(uow, attrs.evolve(purchase, held=False, updated_at=now))
        return purchase


def _trimmed(grants: list[entries.Grant], coins: int) -> list[entries.Grant]:
    """*grants* made to hold *coins* in all: the last ones cut (their value
    in proportion, rounded down), or one more grant of free coins."""
    held = sum(grant.coins for grant in grants)
    while held > coins:
        last = grants.pop()
        keep = last.coins - min(last.coins, held - coins)
        held -= last.coins - keep
        if keep:
            value = last.value
            if value is not None:
                value = Money.from_minor(value.minor * keep // last.coins, value.currency)
            grants.append(attrs.evolve(last, coins=keep, value=value or None))
    if held < coins:
        grants.append(entries.Grant(coins - held, LotOrigin.ADJUSTMENT))
    return grants
