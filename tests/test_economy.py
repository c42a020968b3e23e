"""CoinEconomy's recharge: quotes, purchases, the provider's answers and
events, refunds, chargebacks, eligibility, limits, adjustments and cases, on
both stores."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta, timezone

import attrs
import pytest

from coinecon import (
    AccountKey,
    AccountKind,
    Cause,
    Currency,
    LotOrigin,
    Money,
    Posting,
    PostingNotAllowed,
    TransactionKind,
)
from coinecon.adapters.fake_payments import Decline, Pend, Raise
from coinecon.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidTypeError,
    LimitExceeded,
    NotEligibleError,
    NotFoundError,
    QuoteExpiredError,
    QuoteMismatchError,
    RefundTooLargeError,
    ValidationError,
    WalletFrozen,
)
from coinecon.ports import Store
from coinecon.recharge import (
    Budget,
    BudgetPeriod,
    CaseStatus,
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    EligibilityPolicy,
    LimitPolicy,
    PaymentEvent,
    PaymentEventType,
    Purchase,
    PurchaseStatus,
)
from economy_kit import COIN, T0, Kit

USD = Currency.of("USD")


def money(kind: AccountKind) -> AccountKey:
    return AccountKey.system(kind, USD)


@pytest.fixture
def kit(store: Store) -> Kit:
    kit = Kit(store)
    kit.adult("alice")
    return kit


def buy(kit: Kit, key: str, sku: str = "coins_500", holder: str = "alice") -> Purchase:
    quote = kit.economy.quote(holder, region="US", sku=sku)
    return kit.economy.purchase(quote, "pm_card", key)


def gift(kit: Kit, key: str, coins: int, holder: str = "alice") -> str:
    return kit.economy.wallets.spend(
        key,
        holder=holder,
        amount=COIN(coins),
        cause=Cause("gift", key),
        kind=TransactionKind.GIFT,
    ).transaction_id


def books(kit: Kit) -> dict[AccountKind, int]:
    """The USD money accounts' balances."""
    kinds = [
        AccountKind.CLEARING,
        AccountKind.FEES,
        AccountKind.TAX_PAYABLE,
        AccountKind.REVENUE,
        AccountKind.DEFERRED_REVENUE,
        AccountKind.LOSSES,
        AccountKind.BREAKAGE,
    ]
    found = kit.economy.wallets.balances([money(k) for k in kinds])
    return {k: found[money(k)] for k in kinds if found[money(k)]}


def clean(kit: Kit) -> None:
    report = kit.economy.verify()
    assert report.ok, str(report)


class TestPurchase:
    def test_an_approved_purchase_credits_coins_bonus_and_money_in_one_transaction(
        self, kit: Kit
    ) -> None:
        quote = kit.economy.quote("alice", region="US", sku="coins_500")
        assert (quote.total, quote.tax) == (Money("5.43", "USD"), Money("0.44", "USD"))
        purchase = kit.economy.purchase(quote, "pm_card", "order-1")
        assert purchase.status is PurchaseStatus.COMPLETED
        assert purchase.value == Money("4.99", "USD")  # net of tax, before the platform's costs
        assert kit.economy.balance("alice") == COIN(525)
        lots = kit.economy.wallets.lots("alice", COIN)
        assert [(lot.origin.value, lot.amount, lot.value) for lot in lots] == [
            ("purchase", 500, Money("4.99", "USD")),
            ("bonus", 25, None),
        ]
        assert {lot.transaction_id for lot in lots} == {purchase.transaction_id}
        # The payment into clearing less the processor's fee, the tax owed,
        # and the coins' value deferred until they are used.
        assert books(kit) == {
            AccountKind.CLEARING: 497,
            AccountKind.FEES: 46,  # 2.9% of 5.43 plus 0.30, rounded half up
            AccountKind.TAX_PAYABLE: -44,
            AccountKind.DEFERRED_REVENUE: -499,
        }
        assert kit.economy.deferred_revenue() == {"USD": Money("4.99", "USD")}
        assert kit.events() == ["coins.credited", "purchase.completed"]
        assert [request.amount for request, _ in kit.gateway.charges()] == [quote.total]
        clean(kit)

    def test_a_replay_answers_the_purchase_as_it_stands_and_charges_nothing(self, kit: Kit) -> None:
        quote = kit.economy.quote("alice", region="US", sku="coins_500")
        first = kit.economy.purchase(quote, "pm_card", "order-1")
        assert kit.economy.purchase(quote, "pm_card", "order-1") == first
        assert kit.gateway.calls == 1
        with pytest.raises(IdempotencyConflict):
            kit.economy.purchase(quote, "pm_other", "order-1")
        assert kit.economy.balance("alice") == COIN(525)

    def test_a_buyer_fee_is_revenue_at_the_sale(self, store: Store) -> None:
        kit = Kit(store, eligibility=EligibilityPolicy(require_age=False))
        quote = kit.economy.quote("ann", region="FR", sku="coins_100", payment_method="wallet")
        assert quote.total == Money("1.00", "EUR")  # 0.99 and the buyer's 1 % wallet fee
        purchase = kit.economy.purchase(quote, "pm_wallet", "order-1")
        assert (purchase.buyer_fees, purchase.value) == (Money("0.01", "EUR"), Money("0.99", "EUR"))
        clean(kit)
        assert kit.economy.deferred_revenue()["EUR"] == Money("0.99", "EUR")
        revenue = AccountKey.system(AccountKind.REVENUE, Currency.of("EUR"))
        assert kit.economy.wallets.balances([revenue])[revenue] == -1
        assert Purchase.of_quote("p", quote, "pm", "k", T0).quote_fingerprint == quote.fingerprint

    def test_an_expired_or_altered_quote_charges_nothing(self, kit: Kit) -> None:
        quote = kit.economy.quote("alice", region="US", sku="coins_500")
        altered = attrs.evolve(quote, bonus_coins=COIN(5_000))
        with pytest.raises(QuoteMismatchError):
            kit.economy.purchase(altered, "pm_card", "order-1")
        promoted = attrs.evolve(quote, promotions=("spring",))
        with pytest.raises(QuoteMismatchError):
            kit.economy.purchase(promoted, "pm_card", "order-1")
        kit.clock.advance(timedelta(minutes=15))
        with pytest.raises(QuoteExpiredError):
            kit.economy.purchase(quote, "pm_card", "order-1")
        assert kit.gateway.calls == 0
        assert kit.economy.purchases("alice") == []
        assert kit.economy.verify().transactions == 0

    def test_a_quote_made_before_the_buyers_history_changed_is_stale(self, store: Store) -> None:
        kit = Kit(store, welcome=True)
        kit.adult("alice")
        first = kit.economy.quote("alice", region="US", sku="coins_100")
        second = kit.economy.quote("alice", region="US", sku="coins_100")
        assert first.bonus_coins == COIN(50)  # the first purchase's welcome bonus
        kit.economy.purchase(first, "pm_card", "order-1")
        with pytest.raises(QuoteMismatchError):  # it would take the welcome bonus twice
            kit.economy.purchase(second, "pm_card", "order-2")
        assert kit.economy.quote("alice", region="US", sku="coins_100").bonus_coins == COIN(0)

    def test_a_decline_credits_nothing_and_says_why(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Decline("insufficient_funds"))
        purchase = buy(kit, "order-1")
        assert (purchase.status, purchase.reason) == (
            PurchaseStatus.DECLINED,
            "insufficient_funds",
        )
        assert kit.economy.balance("alice") == COIN(0)
        assert kit.events() == ["purchase.failed"]
        assert buy(kit, "order-1") == purchase  # a replay: no new charge
        assert kit.gateway.calls == 1
        clean(kit)

    def test_a_pending_charge_credits_only_once_settled(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Pend(), Pend())
        purchase = buy(kit, "order-1")
        assert purchase.status is PurchaseStatus.PENDING
        assert kit.economy.balance("alice") == COIN(0)
        settled = kit.gateway.settle(purchase.id)
        outcome = kit.economy.handle_payment_event(settled)
        assert (outcome.status, outcome.purchase.status) == ("applied", PurchaseStatus.COMPLETED)
        assert kit.economy.balance("alice") == COIN(525)
        again = kit.economy.handle_payment_event(settled)
        assert (again.status, again.transaction_id) == ("duplicate", outcome.transaction_id)
        assert kit.economy.balance("alice") == COIN(525)
        failed = buy(kit, "order-2")
        kit.economy.handle_payment_event(kit.gateway.fail(failed.id, "bank_refused"))
        assert kit.economy.purchase_of(failed.id).status is PurchaseStatus.FAILED
        assert kit.economy.balance("alice") == COIN(525)
        clean(kit)

    def test_a_provider_that_fails_before_charging_leaves_a_purchase_that_fails_later(
        self, kit: Kit
    ) -> None:
        kit.gateway.script("pm_card", Raise(ConnectionError("refused"), charged=False))
        purchase = buy(kit, "order-1")
        assert purchase.status is PurchaseStatus.CHARGING
        assert "ConnectionError" in (purchase.reason or "")
        assert kit.economy.balance("alice") == COIN(0)
        assert kit.economy.reconcile() == []  # it may be on its way to the provider still
        kit.clock.advance(timedelta(minutes=5))
        [reconciled] = kit.economy.reconcile()
        assert reconciled.status is PurchaseStatus.FAILED
        assert kit.economy.reconcile() == []
        assert kit.economy.balance("alice") == COIN(0)

    def test_a_time_out_after_the_charge_is_credited_once_by_reconcile(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Raise(TimeoutError("no answer"), charged=True))
        purchase = buy(kit, "order-1")
        assert purchase.status is PurchaseStatus.CHARGING
        assert buy(kit, "order-1").status is PurchaseStatus.CHARGING  # a retry charges nothing
        kit.clock.advance(timedelta(minutes=5))
        [reconciled] = kit.economy.reconcile()
        assert reconciled.status is PurchaseStatus.COMPLETED
        assert kit.economy.reconcile(purchase.id) == [reconciled]
        assert kit.economy.balance("alice") == COIN(525)
        assert len(list(kit.gateway.charges())) == 1
        clean(kit)

    def test_a_settlement_event_completes_a_purchase_whose_charge_timed_out(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Raise(TimeoutError(), charged=True))
        purchase = buy(kit, "order-1")
        event = PaymentEvent("evt-x", PaymentEventType.SETTLED, purchase.id, T0)
        assert kit.economy.handle_payment_event(event).purchase.status is PurchaseStatus.COMPLETED
        [after] = kit.economy.reconcile(purchase.id)
        assert after.status is PurchaseStatus.COMPLETED
        assert kit.economy.balance("alice") == COIN(525)
        clean(kit)


class TestLapsedBonus:
    def test_a_refund_after_the_bonus_lapsed_leaves_no_debt_for_it(self, store: Store) -> None:
        kit = Kit(store, bonus_expiry=timedelta(days=1))
        kit.adult("alice")
        purchase = buy(kit, "order-1", "coins_1000")
        kit.clock.advance(timedelta(days=2))
        assert kit.economy.balance("alice") == COIN(1_000)  # the 100 bonus coins lapsed
        outcome = kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id))
        [reversal] = outcome.purchase.reversals
        assert (reversal.coins, reversal.forgiven, reversal.debt) == (1_100, 100, 0)
        assert kit.economy.balance("alice") == COIN(0)
        clean(kit)
        restored = kit.economy.handle_payment_event(kit.gateway.reverse_chargeback(purchase.id))
        assert restored.status == "applied"
        assert kit.economy.balance("alice") == COIN(1_000)  # not the lapsed bonus
        clean(kit)

    def test_refunds_across_the_lapse_forgive_exactly_what_expired(self, store: Store) -> None:
        kit = Kit(store, bonus_expiry=timedelta(days=1))
        kit.adult("alice")
        purchase = buy(kit, "order-1")  # 500 + 25 bonus for 5.43
        kit.economy.handle_payment_event(kit.gateway.refund(purchase.id, Money("2.71", "USD")))
        kit.clock.advance(timedelta(days=2))  # the 25 bonus coins lapse, unspent
        kit.economy.handle_payment_event(kit.gateway.refund(purchase.id, Money("2.72", "USD")))
        after = kit.economy.purchase_of(purchase.id)
        assert (after.coins_taken, after.forgiven) == (525, 25)
        assert kit.economy.balance("alice") == COIN(0)  # no debt for the lapsed bonus
        clean(kit)

    def test_tiny_refunds_after_the_lapse_never_forgive_more_than_they_take(
        self, store: Store
    ) -> None:
        kit = Kit(store, bonus_expiry=timedelta(days=1))
        kit.adult("alice")
        purchase = buy(kit, "order-1", "coins_1000")  # 1,000 + 100 bonus for 10.88
        kit.economy.handle_payment_event(kit.gateway.refund(purchase.id, Money("1.92", "USD")))
        kit.clock.advance(timedelta(days=2))
        for _ in range(40):
            kit.economy.handle_payment_event(kit.gateway.refund(purchase.id, Money("0.01", "USD")))
            clean(kit)
        kit.economy.handle_payment_event(kit.gateway.refund(purchase.id, Money("8.56", "USD")))
        after = kit.economy.purchase_of(purchase.id)
        assert after.returned == after.total
        assert kit.economy.balance("alice") == COIN(0)
        clean(kit)

    def test_a_bonus_spent_before_it_lapsed_is_not_forgiven(self, store: Store) -> None:
        kit = Kit(store, bonus_expiry=timedelta(days=1))
        kit.adult("alice")
        purchase = buy(kit, "order-1")
        gift(kit, "gift-1", 525)
        kit.clock.advance(timedelta(days=2))
        outcome = kit.economy.handle_payment_event(kit.gateway.refund(purchase.id))
        [reversal] = outcome.purchase.reversals
        assert (reversal.coins, reversal.forgiven, reversal.debt) == (525, 0, 525)
        clean(kit)


class TestReviewThree:
    """What the third review found."""

    def test_a_provider_reference_or_reason_that_metadata_cannot_hold_is_refused_early(
        self,
    ) -> None:
        with pytest.raises(ValidationError):
            ChargeOutcome(ChargeStatus.APPROVED, "r" * 2000)
        with pytest.raises(ValidationError):
            PaymentEvent("e", PaymentEventType.FAILED, "p", T0, reason="x" * 1001)

    def test_a_str_enum_payment_method_is_plain_text(self, kit: Kit) -> None:
        class Method(enum.StrEnum):
            CARD = "pm_card"

        quote = kit.economy.quote("alice", region="US", sku="coins_500")
        purchase = kit.economy.purchase(quote, Method.CARD, "order-1")
        assert purchase.status is PurchaseStatus.COMPLETED
        clean(kit)

    def test_purchases_waiting_count_against_the_maximum_balance(self, store: Store) -> None:
        kit = Kit(store, limits=LimitPolicy(max_wallet_balance=1_200))
        kit.adult("alice")
        kit.gateway.script("pm_card", Pend())
        buy(kit, "order-1", "coins_1000")  # 1,100 coins, pending
        with pytest.raises(LimitExceeded) as refused:
            buy(kit, "order-2", "coins_1000")
        assert refused.value.remaining == 100

    def test_a_spend_cannot_post_to_deferred_revenue_or_its_spent_account(self, kit: Kit) -> None:
        buy(kit, "order-1")
        deferred = AccountKey.system(AccountKind.DEFERRED_REVENUE, USD)
        for legs in (
            (Posting(deferred, 50), Posting(money(AccountKind.REVENUE), -50)),
            (Posting(AccountKey.spent(COIN), 5), Posting(AccountKey.issuance(COIN), -5)),
        ):
            with pytest.raises(PostingNotAllowed):
                kit.economy.wallets.spend(
                    "s", holder="alice", amount=COIN(10), cause=Cause("x", "y"), also=legs
                )
        clean(kit)

    def test_bad_times_and_flags_are_typed_errors(self, kit: Kit) -> None:
        far = datetime.max.replace(tzinfo=timezone(timedelta(hours=-14)))
        with pytest.raises(ValidationError):
            kit.economy.wallets.credit(
                "k",
                holder="alice",
                amount=COIN(1),
                origin=LotOrigin.BONUS,
                cause=Cause("x", "y"),
                expires_at=far,
            )
        with pytest.raises(ValidationError):
            kit.economy.reconcile(older_than=timedelta(days=999_999_999))
        with pytest.raises(InvalidTypeError):
            kit.economy.attest_age("a", holder="bob", region="US", source="s", adult="no")  # type: ignore[arg-type]
        assert kit.economy.profile("bob").attestation is None


class TestRaces:
    """What the review found: answers and events that cross each other."""

    def test_a_charge_failed_by_reconcile_and_then_approved_is_credited(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Raise(ConnectionError("refused"), charged=False))
        purchase = buy(kit, "order-1")
        kit.clock.advance(timedelta(minutes=5))
        [failed] = kit.economy.reconcile()
        assert failed.status is PurchaseStatus.FAILED
        # The provider takes the charge after all (a late retry of the call).
        kit.gateway.charge(ChargeRequest(purchase.id, "alice", purchase.total, "pm_card", "x"))
        settled = PaymentEvent("evt-late", PaymentEventType.SETTLED, purchase.id, T0)
        outcome = kit.economy.handle_payment_event(settled)
        assert (outcome.status, outcome.purchase.status) == ("applied", PurchaseStatus.COMPLETED)
        assert kit.economy.reconcile(purchase.id) == [outcome.purchase]
        assert kit.economy.balance("alice") == COIN(525)
        clean(kit)

    def test_a_refund_of_a_purchase_failed_by_reconcile_waits_for_its_settlement(
        self, kit: Kit
    ) -> None:
        kit.gateway.script("pm_card", Raise(ConnectionError("refused"), charged=False))
        purchase = buy(kit, "order-1")
        kit.clock.advance(timedelta(minutes=5))
        kit.economy.reconcile()
        kit.gateway.charge(ChargeRequest(purchase.id, "alice", purchase.total, "pm_card", "x"))
        refund = kit.gateway.refund(purchase.id, Money("1.00", "USD"))
        assert kit.economy.handle_payment_event(refund).status == "held"
        [found] = kit.economy.reconcile(purchase.id)  # asked by id, a failed one is looked up
        assert found.status is PurchaseStatus.COMPLETED
        assert found.refunded == Money("1.00", "USD")
        clean(kit)

    def test_a_settlement_after_a_failure_credits_a_payment_taken_after_all(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Pend())
        purchase = buy(kit, "order-1")
        failed = PaymentEvent("evt-1", PaymentEventType.FAILED, purchase.id, T0)
        settled = PaymentEvent("evt-2", PaymentEventType.SETTLED, purchase.id, T0)
        kit.economy.handle_payment_event(failed)
        assert kit.economy.handle_payment_event(settled).status == "applied"
        assert kit.economy.handle_payment_event(settled).status == "duplicate"
        assert kit.economy.balance("alice") == COIN(525)
        clean(kit)

    def test_an_event_in_another_currency_is_refused_before_it_is_held(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Pend())
        purchase = buy(kit, "order-1")
        euros = PaymentEvent(
            "evt-1", PaymentEventType.REFUNDED, purchase.id, T0, Money("1.00", "EUR")
        )
        with pytest.raises(ValidationError, match="EUR"):
            kit.economy.handle_payment_event(euros)
        kit.economy.handle_payment_event(kit.gateway.settle(purchase.id))
        assert kit.economy.balance("alice") == COIN(525)

    def test_reconcile_looks_at_the_longest_waiting_first_and_queues_the_pending(
        self, kit: Kit
    ) -> None:
        kit.gateway.script("pm_card", Pend(), Pend(), Raise(charged=True))
        first, second = buy(kit, "order-1", "coins_100"), buy(kit, "order-2", "coins_100")
        kit.clock.advance(timedelta(minutes=1))
        stuck = buy(kit, "order-3", "coins_100")
        kit.clock.advance(timedelta(minutes=5))
        looked = kit.economy.reconcile(limit=2)
        assert {p.id for p in looked} == {first.id, second.id}  # pending: to the back
        [then] = kit.economy.reconcile(limit=1)
        assert (then.id, then.status) == (stuck.id, PurchaseStatus.COMPLETED)

    def test_a_quote_made_valid_longer_is_refused(self, kit: Kit) -> None:
        quote = kit.economy.quote("alice", region="US", sku="coins_500")
        stretched = attrs.evolve(quote, expires_at=quote.expires_at + timedelta(days=365))
        with pytest.raises(QuoteMismatchError, match="valid for"):
            kit.economy.purchase(stretched, "pm_card", "order-1")
        backdated = attrs.evolve(
            quote,
            created_at=quote.created_at - timedelta(days=30),
            expires_at=quote.expires_at - timedelta(days=30),
        )
        with pytest.raises(QuoteExpiredError):
            kit.economy.purchase(backdated, "pm_card", "order-1")

    def test_a_welcome_bonus_is_not_given_to_two_purchases_made_at_once(self, store: Store) -> None:
        kit = Kit(store, welcome=True)
        kit.adult("alice")
        transfer = kit.economy.quote("alice", region="US", sku="coins_100")
        card = kit.economy.quote("alice", region="US", sku="coins_500")
        kit.gateway.script("pm_card", Pend())
        kit.economy.purchase(transfer, "pm_card", "order-1")  # pending, with the bonus
        with pytest.raises(QuoteMismatchError):
            kit.economy.purchase(card, "pm_card", "order-2")
        assert kit.economy.profile("alice").redemptions == (("welcome", 1),)
        kit.economy.handle_payment_event(kit.gateway.fail(kit.economy.purchases("alice")[0].id))
        assert kit.economy.profile("alice").redemptions == ()  # the failure gave it back
        assert kit.economy.quote("alice", region="US", sku="coins_500").bonus_coins == COIN(75)


class TestRefundsAndChargebacks:
    def test_a_whole_refund_takes_the_coins_and_gives_the_money_back(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        kit.events()
        outcome = kit.economy.handle_payment_event(kit.gateway.refund(purchase.id))
        assert outcome.status == "applied"
        assert kit.economy.balance("alice") == COIN(0)
        assert outcome.purchase.refunded == purchase.total
        assert (outcome.purchase.coins_taken, outcome.purchase.tax_returned) == (525, 44)
        assert books(kit) == {
            AccountKind.CLEARING: -46,  # the processor keeps its fee
            AccountKind.FEES: 46,
        }
        assert kit.economy.deferred_revenue() == {"USD": Money("0.00", "USD")}
        assert kit.events() == ["payment.reversed"]
        clean(kit)

    def test_refunds_in_parts_take_exactly_the_coins_of_a_whole_one(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        for part in ("1.00", "2.00", "2.43"):
            kit.economy.handle_payment_event(kit.gateway.refund(purchase.id, Money(part, "USD")))
            clean(kit)
        after = kit.economy.purchase_of(purchase.id)
        assert sum(r.coins for r in after.reversals) == 525
        assert kit.economy.balance("alice") == COIN(0)
        assert books(kit)[AccountKind.CLEARING] == -46

    def test_a_refund_larger_than_the_payment_is_refused_and_writes_nothing(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        kit.economy.handle_payment_event(kit.gateway.refund(purchase.id, Money("5.00", "USD")))
        too_much = kit.gateway.refund(purchase.id, Money("1.00", "USD"))
        with pytest.raises(RefundTooLargeError) as refused:
            kit.economy.handle_payment_event(too_much)
        assert refused.value.allowed == Money("0.43", "USD")
        fixed = attrs.evolve(too_much, amount=Money("0.43", "USD"))
        assert kit.economy.handle_payment_event(fixed).status == "applied"  # not seen before
        clean(kit)

    def test_a_chargeback_after_spending_leaves_a_debt_that_freezes_the_wallet(
        self, kit: Kit
    ) -> None:
        purchase = buy(kit, "order-1")
        gift(kit, "gift-1", 400)
        kit.events()
        outcome = kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id))
        assert kit.economy.balance("alice") == COIN(-400)
        [reversal] = outcome.purchase.reversals
        assert (reversal.kind, reversal.coins, reversal.debt) == ("chargeback", 525, 400)
        assert kit.events() == ["payment.reversed", "wallet.frozen"]
        # The platform's loss: the money for the coins already spent.
        assert books(kit)[AccountKind.LOSSES] > 0
        clean(kit)
        with pytest.raises(WalletFrozen):
            gift(kit, "gift-2", 1)
        buy(kit, "order-2", sku="coins_1000")  # settles the debt first
        assert kit.economy.balance("alice") == COIN(1_100 - 400)
        gift(kit, "gift-3", 10)
        clean(kit)

    def test_a_chargeback_reversal_restores_what_it_took(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        gift(kit, "gift-1", 100)
        before = (kit.economy.balance("alice"), books(kit))
        kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id))
        outcome = kit.economy.handle_payment_event(kit.gateway.reverse_chargeback(purchase.id))
        assert outcome.status == "applied"
        assert (kit.economy.balance("alice"), books(kit)) == before
        assert outcome.purchase.charged_back == Money("0.00", "USD")
        clean(kit)
        gift(kit, "gift-2", 425)
        clean(kit)

    def test_a_refund_after_a_reversed_chargeback_takes_the_coins_once(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id))
        kit.economy.handle_payment_event(kit.gateway.reverse_chargeback(purchase.id))
        after = kit.economy.handle_payment_event(kit.gateway.refund(purchase.id)).purchase
        assert (after.coins_taken, after.tax_returned) == (525, 44)
        assert kit.economy.balance("alice") == COIN(0)
        clean(kit)

    def test_a_refund_before_its_settlement_is_held_then_applied(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Pend())
        purchase = buy(kit, "order-1")
        settle = kit.gateway.settle(purchase.id)
        refund = kit.gateway.refund(purchase.id, Money("2.00", "USD"))
        assert kit.economy.handle_payment_event(refund).status == "held"
        assert kit.economy.balance("alice") == COIN(0)
        kit.economy.handle_payment_event(settle)
        after = kit.economy.purchase_of(purchase.id)
        assert after.refunded == Money("2.00", "USD")
        assert kit.economy.handle_payment_event(refund).status == "duplicate"
        assert kit.economy.balance("alice") == COIN(525 - 193)  # 525 * 200 // 543
        clean(kit)

    def test_a_refund_held_while_charging_is_applied_when_reconcile_completes_it(
        self, kit: Kit
    ) -> None:
        kit.gateway.script("pm_card", Raise(TimeoutError(), charged=True))
        purchase = buy(kit, "order-1")
        refund = kit.gateway.refund(purchase.id)
        assert kit.economy.handle_payment_event(refund).status == "held"
        [after] = kit.economy.reconcile(older_than=timedelta(0))
        assert after.status is PurchaseStatus.COMPLETED
        assert after.refunded == after.total
        assert kit.economy.balance("alice") == COIN(0)
        clean(kit)

    def test_a_held_refund_too_large_is_refused_when_released(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Pend())
        purchase = buy(kit, "order-1")
        too_much = kit.gateway.refund(purchase.id, Money("9.00", "USD"))
        assert kit.economy.handle_payment_event(too_much).status == "held"
        settled = kit.economy.handle_payment_event(kit.gateway.settle(purchase.id))
        assert settled.purchase.status is PurchaseStatus.COMPLETED
        assert settled.purchase.reversals == ()
        assert kit.economy.handle_payment_event(too_much).status == "duplicate"
        with kit.store.unit_of_work() as uow:
            record = uow.records.get("payment-event", too_much.id)
            assert record is not None
            assert record.data["status"] == "refused"
            assert "only 5.43 USD" in record.data["reason"]
        clean(kit)

    def test_a_reversal_before_its_chargeback_is_held_then_applied(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        chargeback = kit.gateway.charge_back(purchase.id)
        reversal = kit.gateway.reverse_chargeback(purchase.id)
        assert kit.economy.handle_payment_event(reversal).status == "held"
        kit.economy.handle_payment_event(chargeback)
        assert kit.economy.balance("alice") == COIN(525)
        assert kit.economy.purchase_of(purchase.id).charged_back == Money("0.00", "USD")
        clean(kit)

    def test_events_of_a_declined_charge_wait_in_case_it_settles_after_all(self, kit: Kit) -> None:
        kit.gateway.script("pm_card", Decline())
        purchase = buy(kit, "order-1")
        assert kit.economy.handle_payment_event(kit.gateway.refund(purchase.id)).status == "held"
        assert kit.economy.balance("alice") == COIN(0)
        clean(kit)

    def test_an_event_is_known_by_its_id(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        event = kit.gateway.refund(purchase.id, Money("1.00", "USD"))
        kit.economy.handle_payment_event(event)
        with pytest.raises(IdempotencyConflict):
            kit.economy.handle_payment_event(attrs.evolve(event, amount=Money("2.00", "USD")))
        with pytest.raises(NotFoundError):
            kit.economy.handle_payment_event(attrs.evolve(event, id="evt-9", charge_id="nope"))
        with pytest.raises(InvalidTypeError):
            kit.economy.handle_payment_event("evt-1")  # type: ignore[arg-type]


class TestEligibility:
    def test_a_buyer_needs_an_attestation_or_a_consent(self, store: Store) -> None:
        kit = Kit(store)
        quote = kit.economy.quote("bob", region="US", sku="coins_100")
        with pytest.raises(NotEligibleError) as refused:
            kit.economy.purchase(quote, "pm_card", "order-1")
        assert refused.value.reason == "no-attestation"
        kit.economy.attest_age(
            "age-bob", holder="bob", region="US", source="id-check", birth_date=date(2012, 1, 1)
        )
        with pytest.raises(NotEligibleError) as refused:
            kit.economy.purchase(quote, "pm_card", "order-1")
        assert refused.value.reason == "not-adult"
        profile = kit.economy.record_consent(
            "consent-bob", holder="bob", guardian="parent-77", source="parent-portal"
        )
        assert profile.attestation is not None
        assert profile.attestation.adult_from == date(2030, 1, 1)  # not the birth date
        assert kit.economy.purchase(quote, "pm_card", "order-1").status is PurchaseStatus.COMPLETED

    def test_an_attestation_covers_regions_of_no_higher_majority(self, store: Store) -> None:
        kit = Kit(store)
        kit.economy.attest_age("age", holder="kim", region="US", source="app-store", adult=True)
        quote = kit.economy.quote("kim", region="KR", sku="coins_100")
        with pytest.raises(NotEligibleError) as refused:
            kit.economy.purchase(quote, "pm_card", "order-1")
        assert refused.value.reason == "attestation-region"
        kit.economy.attest_age("age-kr", holder="kim", region="KR", source="id-check", adult=True)
        assert kit.economy.purchase(quote, "pm_card", "order-1").status is PurchaseStatus.COMPLETED

    def test_regions_without_recharge_are_refused(self, store: Store) -> None:
        kit = Kit(store, eligibility=EligibilityPolicy(regions={"US"}, require_age=False))
        quote = kit.economy.quote("zoe", region="FR", sku="coins_100")
        with pytest.raises(NotEligibleError, match="not sold in FR"):
            kit.economy.purchase(quote, "pm_card", "order-1")

    def test_attestation_input_is_checked(self, kit: Kit) -> None:
        with pytest.raises(ValidationError):
            kit.economy.attest_age("a", holder="x", region="US", source="s")
        with pytest.raises(ValidationError, match="GB"):
            kit.economy.attest_age("a", holder="x", region="UK", source="s", adult=True)


class TestLimits:
    def test_purchases_per_hour(self, store: Store) -> None:
        kit = Kit(store, limits=LimitPolicy(purchases_per_hour=2))
        kit.adult("alice")
        buy(kit, "order-1", sku="coins_100")
        buy(kit, "order-2", sku="coins_100")
        assert "limit.reached" in kit.events()
        with pytest.raises(LimitExceeded) as refused:
            buy(kit, "order-3", sku="coins_100")
        assert (refused.value.limit, refused.value.allowed, refused.value.remaining) == (
            "purchases-per-hour",
            2,
            0,
        )
        kit.clock.advance(timedelta(minutes=61))
        assert buy(kit, "order-3", sku="coins_100").status is PurchaseStatus.COMPLETED

    def test_a_wallet_holds_at_most_its_maximum(self, store: Store) -> None:
        kit = Kit(store, limits=LimitPolicy(max_wallet_balance=1_000))
        kit.adult("alice")
        buy(kit, "order-1")
        with pytest.raises(LimitExceeded) as refused:
            buy(kit, "order-2")
        assert (refused.value.limit, refused.value.remaining) == ("wallet-balance", 475)
        assert kit.gateway.calls == 1

    def test_a_budget_in_the_holders_time_zone(self, kit: Kit) -> None:
        budget = Budget(Money("10.00", "USD"), BudgetPeriod.DAILY, "America/New_York")
        kit.economy.set_budget("budget-1", holder="alice", budget=budget)
        buy(kit, "order-1")  # 5.43
        with pytest.raises(LimitExceeded) as refused:
            buy(kit, "order-2")  # 5.43 more would pass 10.00
        assert refused.value.remaining == Money("4.57", "USD")
        # 12:00 UTC is 07:00 in New York: the next day there starts at 05:00 UTC tomorrow.
        kit.clock.advance(timedelta(hours=17))
        assert buy(kit, "order-2").status is PurchaseStatus.COMPLETED
        kit.economy.set_budget("budget-2", holder="alice", budget=None)
        assert buy(kit, "order-3").status is PurchaseStatus.COMPLETED


class TestStaff:
    def test_an_adjustment_names_its_staff_and_reason(self, kit: Kit) -> None:
        with pytest.raises(ValidationError, match="reason"):
            kit.economy.adjust("adj-1", holder="alice", coins=10, staff="sam")
        result = kit.economy.adjust(
            "adj-1", holder="alice", coins=10, staff="sam", reason="outage compensation"
        )
        assert result.balance == COIN(10)
        transaction = kit.economy.wallets.transaction(result.transaction_id)
        assert transaction is not None
        assert transaction.meta == {"staff": "sam", "reason": "outage compensation", "case": None}
        with pytest.raises(InsufficientFunds):
            kit.economy.adjust("adj-2", holder="alice", coins=-11, staff="sam", reason="typo")
        assert kit.economy.adjust(
            "adj-2", holder="alice", coins=-10, staff="sam", reason="typo"
        ).balance == COIN(0)
        clean(kit)

    def test_a_case_reverses_a_spend_the_holder_did_not_make(self, kit: Kit) -> None:
        buy(kit, "order-1")
        before = books(kit)
        spent = gift(kit, "gift-1", 300)
        case = kit.economy.report(
            "report-1", holder="alice", transaction_id=spent, description="not me"
        )
        assert case.status is CaseStatus.OPEN
        with pytest.raises(ValidationError):
            kit.economy.adjust("adj", holder="bob", coins=1, staff="sam", case_id=case.id)
        kit.economy.review("review-1", case_id=case.id, staff="sam", note="looking")
        resolved = kit.economy.resolve(
            "resolve-1", case_id=case.id, staff="sam", reverse=True, reason="stolen phone"
        )
        assert resolved.status is CaseStatus.REVERSED
        assert [e.action for e in resolved.trail] == ["reported", "review", "reversed"]
        assert kit.economy.balance("alice") == COIN(525)
        assert books(kit) == before  # the revenue is undone
        reversal = kit.economy.wallets.transaction(resolved.reversal_id or "")
        assert reversal is not None
        assert reversal.cause == Cause("case", case.id)
        assert reversal.meta["staff"] == "sam"
        with pytest.raises(ValidationError, match="reversed already"):
            kit.economy.resolve(
                "resolve-2", case_id=case.id, staff="sam", reverse=False, reason="x"
            )
        assert kit.economy.cases("alice") == [resolved]
        clean(kit)

    def test_a_case_is_rejected_with_its_reason(self, kit: Kit) -> None:
        purchase = buy(kit, "order-1")
        case = kit.economy.report(
            "report-1",
            holder="alice",
            transaction_id=purchase.transaction_id or "",
            description="?",
        )
        with pytest.raises(ValidationError, match="payment provider"):
            kit.economy.resolve("r", case_id=case.id, staff="sam", reverse=True, reason="x")
        with pytest.raises(ValidationError, match="disputed already"):  # one case at a time
            kit.economy.report(
                "report-2",
                holder="alice",
                transaction_id=purchase.transaction_id or "",
                description="again",
            )
        rejected = kit.economy.resolve(
            "r2", case_id=case.id, staff="sam", reverse=False, reason="the card is hers"
        )
        assert rejected.status is CaseStatus.REJECTED
        assert rejected.trail[-1].note == "the card is hers"
        again = kit.economy.report(  # a rejected case does not stop a new one
            "report-3",
            holder="alice",
            transaction_id=purchase.transaction_id or "",
            description="new evidence",
        )
        assert again.status is CaseStatus.OPEN
