"""Stateful test of recharge: purchases, the provider's events in any order
and twice, refunds and chargebacks after partial spending, reconcile, spends,
promotions and adjustments, against the books' own invariants and a model
of the money.

After every step: ``verify()`` is clean (coins and money); a wallet is below
zero only with a debt recorded by a refund or chargeback of its holder's;
every coin credited by a purchase traces to a completed purchase whose
charge the provider approved; and clearing holds exactly what the model says
the provider owes (the totals of completed purchases, less their costs and
what went back to buyers).
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from coinecon import AccountKey, AccountKind, Cause, Currency, LotOrigin, Money, TransactionKind
from coinecon.adapters.fake_payments import Decline, Pend, Raise, Step
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import InsufficientFunds, RefundTooLargeError
from coinecon.recharge import ChargeStatus, PaymentEvent, PurchaseStatus
from coinecon.recharge.eligibility import EligibilityPolicy
from economy_kit import COIN, Kit

HOLDERS = ("ann", "bob", "cy")
SKUS = ("coins_100", "coins_500", "coins_1000")
SCRIPTS: dict[str, tuple[Step, ...]] = {
    "approve": (),
    "decline": (Decline("do_not_honor"),),
    "pend": (Pend(),),
    "time-out": (Raise(TimeoutError("no answer"), charged=True),),
    "refused": (Raise(ConnectionError("refused"), charged=False),),
}
USD = Currency.of("USD")


class Recharge(RuleBasedStateMachine):
    store_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore() if self.store_kind == "memory" else self._sqlite()
        self.kit = Kit(
            self.store,
            eligibility=EligibilityPolicy(require_age=False),
            bonus_expiry=timedelta(hours=20),  # some bonuses lapse before their refund
        )
        self.economy = self.kit.economy
        self.gateway = self.kit.gateway
        self.keys = 0
        self.chargebacks: dict[str, Money] = {}  # the last one asked of each charge

    def _sqlite(self) -> SqliteStore:
        self._directory = tempfile.TemporaryDirectory()
        return SqliteStore(Path(self._directory.name) / "books.db")

    def teardown(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
            self._directory.cleanup()

    def key(self, what: str) -> str:
        self.keys += 1
        return f"{what}-{self.keys}"

    charges = Bundle("charges")
    events = Bundle("events")

    @rule(
        target=charges,
        holder=st.sampled_from(HOLDERS),
        sku=st.sampled_from(SKUS),
        # Mostly approved, so that refunds and chargebacks find coins to take.
        script=st.sampled_from(("approve",) * 4 + tuple(sorted(SCRIPTS))),
        method=st.sampled_from(("card", "wallet")),
    )
    def purchase(self, holder: str, sku: str, script: str, method: str) -> str:
        token = f"pm_{holder}"
        self.gateway.script(token, *SCRIPTS[script])
        quote = self.economy.quote(holder, region="US", sku=sku, payment_method=method)
        purchase = self.economy.purchase(quote, token, self.key("order"))
        return purchase.id

    @rule(
        target=events,
        charge=charges,
        action=st.sampled_from(("refund", "charge-back", "reverse", "settle-or-fail")),
        part=st.sampled_from(("whole", "half", "cents")),
        cents=st.integers(1, 1200),
    )
    def provider_acts(self, charge: str, action: str, part: str, cents: int) -> object:
        """The provider's side: settle or fail a pending charge; refund,
        charge back or reverse an approved one. Some amounts are more than
        is left: the economy must refuse them and write nothing."""
        outcome = self.gateway.lookup(charge)
        if outcome is None or outcome.status is ChargeStatus.DECLINED:
            return multiple()
        if outcome.status is ChargeStatus.PENDING:
            return (self.gateway.settle if part == "whole" else self.gateway.fail)(charge)
        request = next(r for r, _ in self.gateway.charges() if r.charge_id == charge)
        amount = {
            "whole": request.amount,
            "half": Money.from_minor(max(request.amount.minor // 2, 1), USD),
            "cents": Money.from_minor(cents, USD),
        }[part]
        if action == "refund":
            return self.gateway.refund(charge, amount)
        if action == "reverse":
            # A reversal names the amount of a chargeback of this charge, if any.
            amount = self.chargebacks.get(charge, amount)
            return self.gateway.reverse_chargeback(charge, amount)
        self.chargebacks[charge] = amount
        return self.gateway.charge_back(charge, amount)

    @rule(event=events)
    def deliver_again(self, event: PaymentEvent) -> None:
        """An event delivered (again: duplicates and any order)."""
        self.deliver(event)

    @rule(event=consumes(events))
    def deliver_once(self, event: PaymentEvent) -> None:
        self.deliver(event)

    def deliver(self, event: PaymentEvent) -> None:
        # More than is left of the payment is refused, and nothing written.
        with contextlib.suppress(RefundTooLargeError):
            self.economy.handle_payment_event(event)

    @rule()
    def reconcile(self) -> None:
        self.economy.reconcile()

    @rule(holder=st.sampled_from(HOLDERS), coins=st.integers(1, 700))
    def spend(self, holder: str, coins: int) -> None:
        try:
            self.economy.wallets.spend(
                self.key("gift"),
                holder=holder,
                amount=COIN(coins),
                cause=Cause("gift", "rose"),
                kind=TransactionKind.GIFT,
            )
        except InsufficientFunds:
            assert self.economy.balance(holder).amount < coins

    @rule(holder=st.sampled_from(HOLDERS), share=st.sampled_from((50, 90, 100)))
    def spend_most(self, holder: str, share: int) -> None:
        """Spend most of a wallet, so that a chargeback finds coins spent."""
        coins = self.economy.balance(holder).amount * share // 100
        if coins > 0:
            self.spend(holder, coins)

    @rule(holder=st.sampled_from(HOLDERS), coins=st.integers(1, 50))
    def promote(self, holder: str, coins: int) -> None:
        if self.economy.balance(holder).amount < 0:
            return  # a promotion is not how a debt is settled here
        self.economy.wallets.credit(
            self.key("promo"),
            holder=holder,
            amount=COIN(coins),
            origin=LotOrigin.PROMOTION,
            cause=Cause("promotion", "daily"),
            expires_in=timedelta(days=2),
        )

    @rule(holder=st.sampled_from(HOLDERS), coins=st.integers(1, 300))
    def adjust(self, holder: str, coins: int) -> None:
        self.economy.adjust(
            self.key("adjust"), holder=holder, coins=coins, staff="sam", reason="goodwill"
        )

    @rule(hours=st.integers(1, 30))
    def time_passes(self, hours: int) -> None:
        self.kit.clock.advance(timedelta(hours=hours))

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def books_are_clean(self) -> None:
        report = self.economy.verify()
        assert report.ok, str(report)

    @invariant()
    def only_a_recorded_debt_is_below_zero(self) -> None:
        for holder in HOLDERS:
            if self.economy.balance(holder).amount < 0:
                purchases = self.economy.purchases(holder, limit=1000)
                assert any(r.debt for p in purchases for r in p.reversals), holder

    @invariant()
    def purchased_coins_trace_to_approved_charges(self) -> None:
        with self.store.unit_of_work() as uow:
            bought = [t for t in uow.ledger.transactions() if t.kind is TransactionKind.PURCHASE]
        completed = {
            p.id: p
            for holder in HOLDERS
            for p in self.economy.purchases(holder, limit=1000)
            if p.status is PurchaseStatus.COMPLETED
        }
        assert sorted(t.cause.id for t in bought) == sorted(completed)
        for transaction in bought:
            purchase = completed[transaction.cause.id]
            wallet = AccountKey.wallet(purchase.holder, COIN)
            credited = transaction.posting_for(wallet)
            assert credited is not None
            assert credited.amount == purchase.total_coins.amount
            outcome = self.gateway.lookup(purchase.id)
            assert outcome is not None
            assert outcome.status is ChargeStatus.APPROVED

    @invariant()
    def refunds_take_back_coins_in_proportion_to_the_money(self) -> None:
        """However the money went back (in parts, refunds and chargebacks, some
        reversed), the coins taken back are the purchase's coins times the
        share of its total given back, rounded down."""
        for holder in HOLDERS:
            for p in self.economy.purchases(holder, limit=1000):
                taken = sum(
                    -r.coins if r.kind == "chargeback-reversal" else r.coins for r in p.reversals
                )
                expected = p.total_coins.amount * p.returned.minor // p.total.minor
                assert taken == expected, p

    @invariant()
    def clearing_holds_what_the_provider_owes(self) -> None:
        owed = 0
        for holder in HOLDERS:
            for p in self.economy.purchases(holder, limit=1000):
                if p.status is PurchaseStatus.COMPLETED:
                    owed += p.total.minor - p.platform_costs.minor - p.returned.minor
        clearing = AccountKey.system(AccountKind.CLEARING, USD)
        assert self.economy.wallets.balances([clearing])[clearing] == owed


Recharge.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRechargeInMemory = Recharge.TestCase


class RechargeOnSqlite(Recharge):
    store_kind = "sqlite"


RechargeOnSqlite.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRechargeOnSqlite = pytest.mark.slow(RechargeOnSqlite.TestCase)
