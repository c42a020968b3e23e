"""The checks a purchase passes before any charge: its quote, its buyer's
eligibility, and the limits."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from coinecon.errors import (
    LimitExceeded,
    NotAvailableError,
    NotEligibleError,
    QuoteMismatchError,
    ValidationError,
)
from coinecon.ledger.idempotency import canonical_json
from coinecon.ledger.journal import AccountKey
from coinecon.money.money import Money
from coinecon.ports import UnitOfWork
from coinecon.pricing import Quote
from coinecon.recharge import purchases
from coinecon.recharge._context import MANY, Context
from coinecon.recharge.limits import Budget
from coinecon.recharge.profiles import HolderProfile
from coinecon.recharge.purchases import Purchase, PurchaseStatus

HOUR = timedelta(hours=1)
_WAITING = timedelta(days=30)  # how far back a purchase still waiting counts
_ISSUED = 100_000  # quote fingerprints remembered at most


class Policies:
    """The quote, eligibility and limit checks, and the limits a purchase reached."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # The fingerprints of the quotes this economy gave, with their buyer
        # and the version of the buyer's profile then.
        self._issued: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def issued(self, quote: Quote, profile: HolderProfile) -> None:
        """Remember that this economy gave *quote* to a buyer whose profile
        was at *profile*'s version: while it still is, the book would give
        the same quote again, and :meth:`check_quote` need not ask it."""
        issued = self._issued
        with self._lock:
            if len(issued) >= _ISSUED:
                issued.clear()  # bounded; a quote forgotten is priced again
            issued[quote.fingerprint] = (quote.account, profile.version)

    def check_quote(self, quote: Quote, quoted: str, profile: HolderProfile) -> None:
        """Refuse a quote (of fingerprint *quoted*) that the book would not
        give now for this buyer: altered, or made before the buyer's history
        changed."""
        if quote.expires_at - quote.created_at != self.ctx.validity:
            # Its own times are part of what is checked: a quote backdated, or
            # made valid longer, would revive windows and prices long gone.
            raise QuoteMismatchError(
                f"the quote is valid for {quote.expires_at - quote.created_at}; this economy's "
                f"quotes are valid for {self.ctx.validity}: ask for a new one"
            )
        if self._issued.get(quoted) == (quote.account, profile.version):
            return  # this economy made it, for the history the buyer has now
        try:
            fresh = self.ctx.price_book.quote(
                account=quote.account,
                region=quote.region,
                storefront=quote.storefront,
                payment_method=quote.payment_method,
                now=quote.created_at,
                history=profile.history,
                validity=quote.expires_at - quote.created_at,
                coins=quote.coins.amount if quote.sku is None else None,
                sku=quote.sku,
            )
        except (NotAvailableError, ValidationError) as error:
            raise QuoteMismatchError(
                f"the quote is not one the price book gives: {error}"
            ) from None
        if fresh.fingerprint != quoted:
            raise QuoteMismatchError(
                "the quote differs from what the price book gives for it (altered, or the "
                "buyer's history changed since it was made): ask for a new one"
            )

    def check_eligible(self, profile: HolderProfile, region: str, now: datetime) -> None:
        policy = self.ctx.eligibility
        holder = profile.holder
        if policy.regions is not None and region not in policy.regions:
            raise NotEligibleError(
                f"coins are not sold in {region}", holder=holder, reason="region"
            )
        if not policy.require_age:
            return
        attestation = profile.attestation
        if attestation is not None and attestation.covers(region, now.date(), policy):
            return
        if profile.consent is not None:
            return
        if attestation is None:
            raise NotEligibleError(
                f"{holder}'s age is not attested, and no parental consent is recorded",
                holder=holder,
                reason="no-attestation",
            )
        if policy.majority(region) > attestation.majority:
            raise NotEligibleError(
                f"{holder}'s age was attested for {attestation.region} (of age at "
                f"{attestation.majority}); {region} needs {policy.majority(region)}",
                holder=holder,
                reason="attestation-region",
            )
        raise NotEligibleError(
            f"{holder} is not of age in {region} until {attestation.adult_from.isoformat()}, "
            "and no parental consent is recorded",
            holder=holder,
            reason="not-adult",
        )

    def check_limits(
        self, uow: UnitOfWork, quote: Quote, profile: HolderProfile, now: datetime
    ) -> None:
        holder = quote.account
        limits = self.ctx.limits
        if limits.purchases_per_hour is not None:
            allowed = limits.purchases_per_hour
            recent = self.counted(uow, holder, now - HOUR)
            if len(recent) >= allowed:
                raise LimitExceeded(
                    f"{holder} made {len(recent)} purchases in the last hour; "
                    f"the limit is {allowed}",
                    limit="purchases-per-hour",
                    allowed=allowed,
                    remaining=0,
                )
        if limits.max_wallet_balance is not None:
            allowed = limits.max_wallet_balance
            # The coins of its purchases still waiting for the provider count:
            # they may all be credited.
            waiting = sum(
                p.total_coins.amount
                for p in self.counted(uow, holder, now - _WAITING)
                if p.status.open
            )
            wallet = AccountKey.wallet(holder, self.ctx.unit)
            balance = self.ctx.wallets.balance_within(uow, wallet, now) + waiting
            if balance + quote.total_coins.amount > allowed:
                raise LimitExceeded(
                    f"{holder}'s wallet would hold {balance + quote.total_coins.amount} coins "
                    f"(with its purchases waiting for the provider); it may hold at most {allowed}",
                    limit="wallet-balance",
                    allowed=allowed,
                    remaining=max(allowed - balance, 0),
                )
        budget = profile.budget
        if budget is not None and budget.amount.currency == quote.currency:
            spent = self.spent(uow, holder, budget, now)
            if spent + quote.total > budget.amount:
                raise LimitExceeded(
                    f"{holder} set a {budget.period.value} budget of {budget.amount} and spent "
                    f"{spent} of it; this purchase costs {quote.total}",
                    limit="budget",
                    allowed=budget.amount,
                    remaining=max(budget.amount - spent, budget.amount.currency.zero()),
                )

    def counted(self, uow: UnitOfWork, holder: str, since: datetime) -> list[Purchase]:
        """*holder*'s purchases since *since* that count against limits:
        charging, pending or completed."""
        return [
            p
            for p in map(
                Purchase.from_record,
                uow.records.of_owner(purchases.KIND, holder, since=since, limit=MANY),
            )
            if p.status
            in (PurchaseStatus.CHARGING, PurchaseStatus.PENDING, PurchaseStatus.COMPLETED)
        ]

    def spent(self, uow: UnitOfWork, holder: str, budget: Budget, now: datetime) -> Money:
        spent = budget.amount.currency.zero()
        for purchase in self.counted(uow, holder, budget.period_start(now)):
            if purchase.total.currency == budget.amount.currency:
                spent += purchase.total - purchase.returned
        return spent

    def note_limits_reached(
        self, uow: UnitOfWork, purchase: Purchase, profile: HolderProfile, now: datetime
    ) -> None:
        """Announce ``limit.reached`` when this purchase used up the holder's
        budget or hourly purchases (the next one would be refused)."""
        reached: list[dict[str, Any]] = []
        budget = profile.budget
        if budget is not None and budget.amount.currency == purchase.total.currency:
            spent = self.spent(uow, purchase.holder, budget, now)
            if spent >= budget.amount:
                reached.append(
                    {
                        "limit": "budget",
                        "allowed": budget.amount.minor,
                        "currency": budget.amount.currency.code,
                    }
                )
        per_hour = self.ctx.limits.purchases_per_hour
        if per_hour is not None and len(self.counted(uow, purchase.holder, now - HOUR)) >= per_hour:
            reached.append({"limit": "purchases-per-hour", "allowed": per_hour})
        for limit in reached:
            self.ctx.announce(
                uow, "limit.reached", now, canonical_json({"holder": purchase.holder, **limit})
            )
