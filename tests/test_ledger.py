from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinecon import Currency, Money, Unit
from coinecon.errors import (
    AmountOutOfRangeError,
    BalanceLimitExceeded,
    InsufficientFunds,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidTypeError,
    LedgerRuleViolation,
    NaiveDatetimeError,
    TransferNotAllowed,
    UnbalancedTransactionError,
)
from coinecon.ledger import journal as ledger
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Cause,
    HistoryEntry,
    Posting,
    PostingNotAllowed,
    RecordedPosting,
    Transaction,
    TransactionKind,
    amount_of,
    check_rules,
)
from coinecon.ledger.lots import (
    Lot,
    LotConsumption,
    LotOrigin,
    SpendOrder,
    plan_spend,
    take_from_lots,
)
from coinecon.money.money import MAX_MINOR_UNITS
from coinecon.testing.contract import COIN, DIAMOND, T0, transaction

ALICE = AccountKey.wallet("alice", COIN)
BOB = AccountKey.wallet("bob", COIN)


def tx(kind: TransactionKind, *postings: tuple[AccountKey, int], id: str = "t1") -> Transaction:  # noqa: A002
    return transaction(id, kind, *postings)


class TestAccounts:
    def test_helpers(self) -> None:
        assert ALICE.kind is AccountKind.WALLET
        assert AccountKey.issuance(COIN).owner == PLATFORM
        assert str(AccountKey.spent(COIN)) == "spent:@platform:COIN"
        assert AccountKey.earnings("bob", DIAMOND).kind.holder_owned
        assert not AccountKey.expired(COIN).kind.holder_owned
        assert AccountKey.system(AccountKind.REVENUE, Money(1, "USD").currency).asset_code == "USD"

    def test_owner_rules(self) -> None:
        with pytest.raises(LedgerRuleViolation):
            AccountKey.wallet("@platform", COIN)
        with pytest.raises(LedgerRuleViolation):
            AccountKey(AccountKind.ISSUANCE, "alice", COIN)
        with pytest.raises(InvalidIdentifierError):
            AccountKey.wallet("", COIN)
        with pytest.raises(InvalidIdentifierError):
            AccountKey.wallet("a\x00b", COIN)
        with pytest.raises(InvalidIdentifierError):
            AccountKey.wallet("x" * 201, COIN)
        with pytest.raises(InvalidTypeError):
            AccountKey.wallet("alice", "COIN")  # type: ignore[arg-type]
        # Quotes and SQL are just text.
        assert AccountKey.wallet("o'brien\"; DROP TABLE x;--", COIN).owner.startswith("o'brien")

    def test_amount_of(self) -> None:
        assert amount_of(COIN, 5) == COIN(5)
        assert amount_of(Money(1, "USD").currency, 5) == Money("0.05", "USD")


class TestTransactions:
    def test_balanced_purchase(self) -> None:
        t = tx(TransactionKind.PURCHASE, (AccountKey.issuance(COIN), -5), (ALICE, 5))
        assert t.posting_for(ALICE) == Posting(ALICE, 5)
        assert t.posting_for(BOB) is None
        assert Posting(ALICE, 5).value == COIN(5)

    def test_unbalanced_refused(self) -> None:
        with pytest.raises(UnbalancedTransactionError, match="COIN"):
            tx(TransactionKind.PURCHASE, (AccountKey.issuance(COIN), -5), (ALICE, 4))
        # Balanced in total but not per unit.
        with pytest.raises(UnbalancedTransactionError):
            tx(TransactionKind.GIFT, (ALICE, -5), (AccountKey.earnings("bob", DIAMOND), 5))

    def test_equal_assets_balance_whatever_objects_they_are(self) -> None:
        """The balance is per asset by equality: several equal unit objects
        count as one, and a unit's name does not split it."""
        coins = [Unit("COIN"), Unit("COIN", name="Coins"), Unit("COIN")]
        assert len({id(unit) for unit in coins}) == 3
        issuance = AccountKey(AccountKind.ISSUANCE, PLATFORM, coins[0])
        alice = AccountKey(AccountKind.WALLET, "alice", coins[1])
        bob = AccountKey(AccountKind.WALLET, "bob", coins[2])
        tx(TransactionKind.PURCHASE, (issuance, -5), (alice, 2), (bob, 3))
        with pytest.raises(UnbalancedTransactionError, match="'COIN': 1"):
            tx(TransactionKind.PURCHASE, (issuance, -5), (alice, 3), (bob, 3))
        diamond = AccountKey(AccountKind.EARNINGS, "carol", Unit("DIAMOND"))
        with pytest.raises(UnbalancedTransactionError, match="'COIN': -3, 'DIAMOND': 3"):
            tx(TransactionKind.PURCHASE, (issuance, -5), (alice, 2), (diamond, 3))

    def test_structure_refused(self) -> None:
        with pytest.raises(InvalidAmountError):
            tx(TransactionKind.PURCHASE)
        with pytest.raises(InvalidAmountError):
            Posting(ALICE, 0)
        with pytest.raises(InvalidTypeError):
            Posting(ALICE, 1.0)  # type: ignore[arg-type]
        with pytest.raises(InvalidTypeError):
            Posting(ALICE, True)
        with pytest.raises(BalanceLimitExceeded):
            Posting(ALICE, 2**63)
        with pytest.raises(LedgerRuleViolation, match="twice"):
            tx(TransactionKind.ADJUSTMENT, (ALICE, -5), (ALICE, 5))
        with pytest.raises(LedgerRuleViolation, match="twice"):  # the first fault found wins
            Transaction(
                id="t",
                kind=TransactionKind.ADJUSTMENT,
                postings=(Posting(ALICE, -5), Posting(ALICE, 5), "junk"),  # type: ignore[arg-type]
                occurred_at=T0,
                idempotency_key="k",
                cause=Cause("test", "1"),
            )
        with pytest.raises(NaiveDatetimeError):
            Transaction(
                id="t",
                kind=TransactionKind.PURCHASE,
                postings=(Posting(AccountKey.issuance(COIN), -1), Posting(ALICE, 1)),
                occurred_at=datetime(2026, 1, 1),  # noqa: DTZ001
                idempotency_key="k",
                cause=Cause("test", "t"),
            )
        with pytest.raises(InvalidTypeError):
            Transaction(
                id="t",
                kind=TransactionKind.PURCHASE,
                postings=(Posting(AccountKey.issuance(COIN), -1), Posting(ALICE, 1)),
                occurred_at=T0,
                idempotency_key="k",
                cause=Cause("test", "t"),
                metadata={"rate": Fraction(1, 3)},  # type: ignore[dict-item]
            )

    def test_metadata_is_sorted_pairs(self) -> None:
        t = Transaction(
            id="t",
            kind=TransactionKind.PURCHASE,
            postings=(Posting(AccountKey.issuance(COIN), -1), Posting(ALICE, 1)),
            occurred_at=T0,
            idempotency_key="k",
            cause=Cause("test", "t"),
            metadata={"b": 1, "a": "x", "c": None},
        )
        assert t.metadata == (("a", "x"), ("b", 1), ("c", None))
        assert t.meta == {"a": "x", "b": 1, "c": None}

    @pytest.mark.parametrize(
        ("kind", "amount"),
        [
            (TransactionKind.SPEND, 5),
            (TransactionKind.GIFT, 5),
            (TransactionKind.EXPIRY, 5),
            (TransactionKind.PURCHASE, -5),
            (TransactionKind.BONUS, -5),
            (TransactionKind.REVERSAL, -5),
        ],
    )
    def test_kind_decides_direction(self, kind: TransactionKind, amount: int) -> None:
        with pytest.raises(PostingNotAllowed):
            tx(kind, (ALICE, amount), (AccountKey.spent(COIN), -amount))

    @pytest.mark.parametrize("kind", [TransactionKind.SPEND, TransactionKind.GIFT])
    def test_a_spend_takes_from_one_holders_wallets_only(self, kind: TransactionKind) -> None:
        """A spend debiting two holders' wallets would let one spend the
        other's coins; it is refused even built by hand."""
        with pytest.raises(TransferNotAllowed, match="spends only their own coins"):
            tx(kind, (ALICE, -5), (BOB, -5), (AccountKey.spent(COIN), 10))
        # One holder's wallets in two units is one holder's spend.
        tx(
            kind,
            (ALICE, -5),
            (AccountKey.wallet("alice", DIAMOND), -3),
            (AccountKey.spent(COIN), 5),
            (AccountKey.spent(DIAMOND), 3),
        )
        # An expiry may sweep several holders' lots (it is not a spend).
        tx(TransactionKind.EXPIRY, (ALICE, -5), (BOB, -5), (AccountKey.expired(COIN), 10))

    def test_wallet_to_wallet_refused_even_by_hand(self) -> None:
        with pytest.raises(TransferNotAllowed):
            tx(TransactionKind.ADJUSTMENT, (ALICE, -5), (BOB, 5))
        # Hidden behind platform accounts and another unit, still refused.
        with pytest.raises(TransferNotAllowed):
            tx(
                TransactionKind.ADJUSTMENT,
                (ALICE, -5),
                (AccountKey.spent(COIN), 5),
                (AccountKey.issuance(DIAMOND), -3),
                (AccountKey.wallet("bob", DIAMOND), 3),
            )
        # Debiting two holders and crediting one of them is a transfer too.
        with pytest.raises(TransferNotAllowed):
            tx(
                TransactionKind.ADJUSTMENT,
                (ALICE, -5),
                (BOB, -5),
                (AccountKey.wallet("alice", DIAMOND), 10),
                (AccountKey.issuance(DIAMOND), -10),
                (AccountKey.spent(COIN), 10),
            )
        # A holder converting between their own wallets is not a transfer.
        tx(
            TransactionKind.ADJUSTMENT,
            (ALICE, -5),
            (AccountKey.spent(COIN), 5),
            (AccountKey.issuance(DIAMOND), -3),
            (AccountKey.wallet("alice", DIAMOND), 3),
        )

    @given(
        st.lists(st.sampled_from(["alice", "bob", "carol"]), min_size=2, max_size=2, unique=True),
        st.lists(st.integers(1, 100), min_size=4, max_size=4),
        st.sampled_from(TransactionKind),
    )
    def test_no_hand_built_transaction_moves_coins_between_holders(
        self, holders: list[str], amounts: list[int], kind: TransactionKind
    ) -> None:
        """Any transaction that debits one holder's wallet and credits
        another's is refused, whatever its kind: the transfer rule speaks first."""
        debtor, creditor = holders
        amount = amounts[0]
        with pytest.raises(TransferNotAllowed):
            tx(
                kind,
                (AccountKey.wallet(debtor, COIN), -amount),
                (AccountKey.wallet(creditor, COIN), amount),
            )


class TestRules:
    def test_no_overdraft(self) -> None:
        spend = tx(TransactionKind.SPEND, (ALICE, -10), (AccountKey.spent(COIN), 10))
        with pytest.raises(InsufficientFunds) as info:
            check_rules(spend, {ALICE: 7})
        assert info.value.shortfall == 3
        assert info.value.balance == 7
        assert info.value.requested == 10
        assert info.value.rule == "no-overdraft"
        assert check_rules(spend, {ALICE: 10})[ALICE] == 0

    def test_chargeback_may_overdraw_then_wallet_is_frozen(self) -> None:
        chargeback = tx(TransactionKind.CHARGEBACK, (ALICE, -10), (AccountKey.issuance(COIN), 10))
        after = check_rules(chargeback, {ALICE: 4})
        assert after[ALICE] == -6
        spend = tx(TransactionKind.SPEND, (ALICE, -1), (AccountKey.spent(COIN), 1))
        with pytest.raises(InsufficientFunds, match="debt"):
            check_rules(spend, after)
        # Credits settle the debt.
        settle = tx(TransactionKind.PURCHASE, (AccountKey.issuance(COIN), -6), (ALICE, 6))
        assert check_rules(settle, after)[ALICE] == 0

    def test_system_accounts_may_go_negative(self) -> None:
        t = tx(TransactionKind.PURCHASE, (AccountKey.issuance(COIN), -5), (ALICE, 5))
        assert check_rules(t, {})[AccountKey.issuance(COIN)] == -5

    def test_balance_limit(self) -> None:
        t = tx(TransactionKind.PURCHASE, (AccountKey.issuance(COIN), -5), (ALICE, 5))
        with pytest.raises(BalanceLimitExceeded):
            check_rules(t, {ALICE: MAX_MINOR_UNITS})

    def test_history_entry_explains_itself(self) -> None:
        t = tx(TransactionKind.PURCHASE, (AccountKey.issuance(COIN), -5), (ALICE, 5))
        entry = HistoryEntry.of(RecordedPosting(2, "t1", ALICE, 5, 5), t)
        assert entry.counterparties == (AccountKey.issuance(COIN),)
        assert entry.value == COIN(5)
        assert "purchase" in str(entry)
        assert "test:t1" in str(entry)


class TestLots:
    def lot(self, id: str, origin: LotOrigin, amount: int, **kw: object) -> Lot:  # noqa: A002
        return Lot.new(id, ALICE, origin, amount, kw.pop("at", T0), "t", **kw)  # type: ignore[arg-type]

    def test_spend_orders(self) -> None:
        paid = self.lot("paid", LotOrigin.PURCHASE, 10, value=Money("1.00", "USD"))
        bonus = self.lot("bonus", LotOrigin.BONUS, 10, at=T0 + timedelta(1))
        promo = self.lot(
            "promo", LotOrigin.PROMOTION, 10, at=T0 + timedelta(2), expires_at=T0 + timedelta(30)
        )
        lots = [paid, bonus, promo]
        assert [c.lot_id for c in plan_spend(lots, 30)] == ["promo", "bonus", "paid"]
        assert [c.lot_id for c in plan_spend(lots, 30, SpendOrder.OLDEST_FIRST)] == [
            "paid",
            "bonus",
            "promo",
        ]
        assert [c.lot_id for c in plan_spend(lots, 30, SpendOrder.PURCHASED_FIRST)] == [
            "paid",
            "promo",
            "bonus",
        ]
        with pytest.raises(InsufficientFunds):
            plan_spend(lots, 31)
        with pytest.raises(InvalidAmountError):
            plan_spend(lots, 0)

    def test_expiring_first_goes_by_expiry_whatever_the_origin(self) -> None:
        """A purchased lot that expires sooner goes before a bonus lot that
        expires later (found by the stateful test)."""
        paid = self.lot(
            "paid", LotOrigin.PURCHASE, 1, value=Money("0.01", "USD"), expires_at=T0 + timedelta(2)
        )
        bonus = self.lot("bonus", LotOrigin.BONUS, 1, expires_at=T0 + timedelta(3))
        lasting = self.lot("lasting", LotOrigin.BONUS, 1)
        assert [c.lot_id for c in plan_spend([lasting, bonus, paid], 3)] == [
            "paid",
            "bonus",
            "lasting",
        ]

    def test_consumption_validation(self) -> None:
        with pytest.raises(InvalidAmountError):
            LotConsumption("lot-1", 0)
        with pytest.raises(InvalidTypeError):
            LotConsumption("lot-1", 2.0)  # type: ignore[arg-type]
        with pytest.raises(InvalidAmountError):
            LotConsumption("lot-1", 1, Money("-0.01", "USD"))
        with pytest.raises(InvalidTypeError):
            LotConsumption("lot-1", 1, 5)  # type: ignore[arg-type]
        with pytest.raises(InvalidIdentifierError):
            LotConsumption("", 1)
        lot = self.lot("x", LotOrigin.BONUS, 5)
        with pytest.raises(InvalidTypeError):
            attrs.evolve(lot, remaining=2.5)  # type: ignore[arg-type]

    def test_lot_validation(self) -> None:
        with pytest.raises(InvalidAmountError):
            self.lot("x", LotOrigin.BONUS, 0)
        with pytest.raises(InvalidAmountError):
            self.lot("x", LotOrigin.BONUS, 5, expires_at=T0)
        with pytest.raises(InvalidTypeError):
            Lot.new("x", AccountKey.spent(COIN), LotOrigin.BONUS, 5, T0, "t")
        with pytest.raises(InvalidAmountError):
            self.lot("x", LotOrigin.PURCHASE, 5, value=Money("-1", "USD"))
        lot = self.lot("x", LotOrigin.BONUS, 5)
        with pytest.raises(InvalidAmountError):
            lot.take(6)
        with pytest.raises(InvalidAmountError, match="a 16610-bit number"):
            lot.take(10**5000)
        with pytest.raises(AmountOutOfRangeError):
            self.lot("x", LotOrigin.BONUS, MAX_MINOR_UNITS + 1)
        # A lot claiming more recognised value than its consumed coins are worth.
        odd = attrs.evolve(
            self.lot("y", LotOrigin.PURCHASE, 10, value=Money("1", "USD")), value_recognised=50
        )
        with pytest.raises(InvalidAmountError, match="must not be negative"):
            odd.take(1)

    def test_taking_from_a_lot_keeps_every_other_field(self) -> None:
        lot = Lot(
            id="lot-7",
            account=ALICE,
            origin=LotOrigin.PURCHASE,
            amount=10,
            remaining=8,
            created_at=T0,
            transaction_id="tx-7",
            value=Money("1.00", "USD"),
            value_recognised=20,
            expires_at=T0 + timedelta(days=30),
        )
        after, consumption = lot.take(3)
        assert after == attrs.evolve(lot, remaining=5, value_recognised=50)
        assert consumption == LotConsumption("lot-7", 3, Money("0.30", "USD"))

    @given(
        st.integers(1, 10_000),
        st.integers(0, 10**9),
        st.lists(st.integers(1, 10_000), min_size=1, max_size=20),
    )
    def test_consuming_a_whole_lot_recognises_exactly_its_value(
        self, coins: int, value_minor: int, steps: list[int]
    ) -> None:
        lot = self.lot("x", LotOrigin.PURCHASE, coins, value=Money.from_minor(value_minor, "USD"))
        recognised = 0
        for step in steps:
            if lot.remaining == 0:
                break
            lot, consumption = lot.take(min(step, lot.remaining))
            assert consumption.value is not None
            assert consumption.value.minor >= 0
            recognised += consumption.value.minor
        if lot.remaining:
            lot, consumption = lot.take(lot.remaining)
            assert consumption.value is not None
            recognised += consumption.value.minor
        assert recognised == value_minor
        assert lot.remaining_value == Money.zero("USD")

    @given(
        st.lists(
            st.tuples(st.integers(1, 50), st.booleans(), st.booleans()), min_size=1, max_size=8
        ),
        st.data(),
    )
    def test_spending_takes_exactly_the_amount_or_nothing(
        self, specs: list[tuple[int, bool, bool]], data: st.DataObject
    ) -> None:
        lots = []
        for i, (n, paid, used_up) in enumerate(specs):
            lot = self.lot(
                f"l{i}",
                LotOrigin.PURCHASE if paid else LotOrigin.BONUS,
                n,
                value=Money.from_minor(n * 3, "EUR") if paid else None,
            )
            lots.append(lot.take(n)[0] if used_up else lot)
        total = sum(lot.remaining for lot in lots)
        coins = data.draw(st.integers(1, total + 3))
        order = data.draw(st.sampled_from(SpendOrder))
        if coins > total:
            with pytest.raises(InsufficientFunds) as info:
                take_from_lots(lots, coins, order)
            assert str(info.value).endswith(f"lots hold {total}, {coins - total} short of {coins}")
            assert (info.value.balance, info.value.requested) == (total, coins)
            return
        taken = take_from_lots(lots, coins, order)
        assert sum(c.amount for _, c in taken) == coins
        before = {lot.id: lot.remaining for lot in lots}
        assert all(before[after.id] - after.remaining == c.amount for after, c in taken)
        assert all(c.amount > 0 for _, c in taken)  # used-up lots are never taken from
        assert [after.id for after, _ in taken] == [
            lot.id for lot in order.sort(lot for lot in lots if lot.remaining)
        ][: len(taken)]

    def test_one_open_lot_short_of_the_spend_is_insufficient_funds(self) -> None:
        with pytest.raises(InsufficientFunds, match="lots hold 3, 2 short of 5"):
            take_from_lots([self.lot("l0", LotOrigin.BONUS, 3)], 5)

    def test_a_used_up_lot_is_skipped_before_the_one_open_lot(self) -> None:
        used_up, _ = self.lot("l0", LotOrigin.BONUS, 3).take(3)
        ((after, consumption),) = take_from_lots([used_up, self.lot("l1", LotOrigin.BONUS, 4)], 2)
        assert (consumption.lot_id, consumption.amount, after.remaining) == ("l1", 2, 2)


def test_shared_account_keys_are_the_keys_asked_for() -> None:
    """Keys of the common accounts are shared, but never one that differs
    from what the caller passed in a field that equality ignores."""
    named = Unit("COIN", "Coins")
    assert AccountKey.wallet("alice", named).asset.name == "Coins"
    assert AccountKey.wallet("alice", COIN).asset.name == ""
    with_numeric = Currency("XTS", 2, "Test", "963")
    without = Currency("XTS", 2, "Test", "")
    AccountKey.system(AccountKind.REVENUE, with_numeric)
    assert AccountKey.issuance(without).asset.numeric == ""  # type: ignore[arg-type, union-attr]
    assert AccountKey.wallet("alice", COIN) is AccountKey.wallet("alice", COIN)
    with pytest.raises(LedgerRuleViolation):
        AccountKey.wallet("@alice", COIN)


def test_shared_account_keys_are_found_by_every_field_of_the_unit() -> None:
    """The shared keys are found by the unit's code and name: a field added to
    Unit must join them."""
    assert [field.name for field in attrs.fields(Unit)] == ["code", "name"]


def test_shared_account_keys_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "_MAX_SHARED_KEYS", 3)
    monkeypatch.setattr(ledger, "_SHARED_KEYS", {})
    keys = [AccountKey.wallet(f"holder-{n}", COIN) for n in range(10)]
    assert 0 < len(ledger._SHARED_KEYS) <= 3
    assert keys == [AccountKey(AccountKind.WALLET, f"holder-{n}", COIN) for n in range(10)]
