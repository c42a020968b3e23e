"""The storage contract suite: what every :class:`~coinecon.ports.Store` must do.

Every storage adapter, coinecon's own and a host's, runs these same tests.
Subclass :class:`StoreContract` in a module pytest collects, name the class
``Test...``, and give it one factory method::

    from coinecon.testing.contract import StoreContract

    from myapp.storage import MyStore


    class TestMyStore(StoreContract):
        def make_store(self):
            return MyStore(self.tmp_path / "coins.db")

pytest then runs every contract test against a fresh store from
``StoreContract.make_store``. A store with a ``close()`` method is closed
after each test. The factory may use ``self.tmp_path``, a fresh directory for
each test (pytest's ``tmp_path``); to use other fixtures, override the
``StoreContract.store`` fixture instead.

The parts (:class:`LedgerContract`, :class:`LotContract`,
:class:`IdempotencyContract`, :class:`OutboxContract`,
:class:`RecordContract`, :class:`UnitOfWorkContract`, :class:`ConcurrencyContract`) can also be
subclassed one by one. They need the ``testing`` extra (pytest).
"""

# ruff: noqa: S101 (assert is how pytest tests)

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from coinecon.errors import InvalidAmountError, StorageError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Cause,
    HistoryEntry,
    Posting,
    Transaction,
    TransactionKind,
    check_rules,
)
from coinecon.ledger.lots import (
    Lot,
    LotConsumption,
    LotOrigin,
    SpendOrder,
    covering,
    merge_candidate,
)
from coinecon.ledger.verification import verify_books
from coinecon.money.money import Currency, Money
from coinecon.money.units import Unit
from coinecon.ports import Store, UnitOfWork
from coinecon.records import Record

__all__ = [
    "ConcurrencyContract",
    "IdempotencyContract",
    "LedgerContract",
    "LotContract",
    "OutboxContract",
    "RecordContract",
    "StoreContract",
    "UnitOfWorkContract",
]

COIN = Unit("COIN")
DIAMOND = Unit("DIAMOND")
USD = Currency.of("USD")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRICKY = "o'brien\"; DROP TABLE x;--"
"""An identifier with quotes and an SQL fragment: stored as data, never as code."""


def transaction(
    transaction_id: str, kind: TransactionKind, *legs: tuple[AccountKey, int], at: datetime = T0
) -> Transaction:
    """A transaction of *kind* with one posting per ``(account, amount)`` leg."""
    return Transaction(
        id=transaction_id,
        kind=kind,
        postings=tuple(Posting(account, amount) for account, amount in legs),
        occurred_at=at,
        idempotency_key=f"key-{transaction_id}",
        cause=Cause("test", transaction_id),
    )


def purchase(
    transaction_id: str,
    holder: str,
    coins: int,
    *,
    at: datetime = T0,
    key: str | None = None,
    metadata: tuple[tuple[str, str | int | bool | None], ...] = (),
) -> Transaction:
    """A purchase of *coins* by *holder*: issuance debited, wallet credited."""
    return Transaction(
        id=transaction_id,
        kind=TransactionKind.PURCHASE,
        postings=(
            Posting(AccountKey.issuance(COIN), -coins),
            Posting(AccountKey.wallet(holder, COIN), coins),
        ),
        occurred_at=at,
        idempotency_key=key or f"key-{transaction_id}",
        cause=Cause("purchase", transaction_id),
        metadata=metadata,
    )


def gift(
    transaction_id: str, holder: str, creator: str, coins: int, *, at: datetime = T0
) -> Transaction:
    """A gift of *coins* from *holder*: coins spent, diamonds issued to *creator*."""
    return Transaction(
        id=transaction_id,
        kind=TransactionKind.GIFT,
        postings=(
            Posting(AccountKey.wallet(holder, COIN), -coins),
            Posting(AccountKey.spent(COIN), coins),
            Posting(AccountKey.issuance(DIAMOND), -coins),
            Posting(AccountKey.earnings(creator, DIAMOND), coins),
        ),
        occurred_at=at,
        idempotency_key=f"key-{transaction_id}",
        cause=Cause("gift", transaction_id),
    )


def record(uow: UnitOfWork, transaction: Transaction) -> dict[AccountKey, int]:
    """Check *transaction* against the stored balances, record it, return the
    balances after (what a service does inside a unit of work)."""
    accounts = [posting.account for posting in transaction.postings]
    after = check_rules(transaction, uow.ledger.balances(accounts))
    uow.ledger.record(transaction, after)
    return after


def wallet(holder: str) -> AccountKey:
    """The COIN wallet of *holder*."""
    return AccountKey.wallet(holder, COIN)


def _ids(entries: list[HistoryEntry]) -> list[str]:
    return [entry.transaction_id for entry in entries]


class _Contract:
    """The factory hook and the ``store`` fixture every contract class uses."""

    tmp_path: Path

    def make_store(self) -> Store:
        """Return a new, empty store. Override this in your subclass."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        """A fresh store from ``make_store``, closed afterwards if it can be."""
        self.tmp_path = tmp_path
        store = self.make_store()
        yield store
        close = getattr(store, "close", None)
        if callable(close):
            close()


class LedgerContract(_Contract):
    """Accounts, balances, transactions, postings and history."""

    def test_balances_of_unknown_accounts_are_zero(self, store: Store) -> None:
        """Every requested account is in the result; unknown ones hold 0."""
        with store.unit_of_work() as uow:
            assert uow.ledger.balances([]) == {}
            accounts = [wallet("alice"), AccountKey.issuance(COIN)]
            assert uow.ledger.balances(accounts) == dict.fromkeys(accounts, 0)
            assert uow.ledger.accounts() == {}

    def test_accounts_a_rollback_opened_are_gone_from_their_owner(self, store: Store) -> None:
        """An account opened by a unit of work that rolls back is not among
        its owner's accounts, and opens again with the next write."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 500))
            uow.commit()
        with store.unit_of_work() as uow:
            record(uow, gift("tx-2", "alice", "carol", 120))
            assert uow.ledger.accounts_of("carol") == {AccountKey.earnings("carol", DIAMOND): 120}
            uow.rollback()
        with store.unit_of_work() as uow:
            assert uow.ledger.accounts_of("carol") == {}
            assert uow.ledger.accounts_of("alice") == {wallet("alice"): 500}
            record(uow, gift("tx-3", "alice", "carol", 20))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.ledger.accounts_of("carol") == {AccountKey.earnings("carol", DIAMOND): 20}

    def test_record_sets_and_returns_balances(self, store: Store) -> None:
        """``record`` sets the running balances ``balances`` returns."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 500))
            record(uow, purchase("tx-2", "alice", 20))
            record(uow, gift("tx-3", "alice", "carol", 120))
            expected = {
                wallet("alice"): 400,
                AccountKey.issuance(COIN): -520,
                AccountKey.spent(COIN): 120,
                AccountKey.issuance(DIAMOND): -120,
                AccountKey.earnings("carol", DIAMOND): 120,
            }
            assert uow.ledger.balances(list(expected)) == expected
            assert uow.ledger.accounts() == expected
            assert uow.ledger.accounts_of("alice") == {wallet("alice"): 400}
            assert uow.ledger.accounts_of("carol") == {AccountKey.earnings("carol", DIAMOND): 120}
            assert uow.ledger.accounts_of(PLATFORM) == {
                a: b for a, b in expected.items() if a.owner == PLATFORM
            }
            assert uow.ledger.accounts_of("nobody") == {}
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.ledger.accounts_of("alice") == {wallet("alice"): 400}
            uow.rollback()
        with store.unit_of_work() as uow:
            assert uow.ledger.balances(list(expected)) == expected
            assert uow.ledger.balances([wallet("bob"), wallet("alice")]) == {
                wallet("bob"): 0,
                wallet("alice"): 400,
            }

    def test_record_stores_the_balances_given(self, store: Store) -> None:
        """The backend stores the balances after it is given; it decides no rules."""
        transaction = purchase("tx-1", "alice", 5)
        given = {wallet("alice"): 7, AccountKey.issuance(COIN): -7}
        with store.unit_of_work() as uow:
            uow.ledger.record(transaction, given)
            assert uow.ledger.balances(list(given)) == given
            assert [p.balance_after for p in uow.ledger.postings()] == [-7, 7]

    def test_record_without_a_balance_after_raises_and_writes_nothing(self, store: Store) -> None:
        """Every posted account needs its balance after."""
        with store.unit_of_work() as uow:
            with pytest.raises(StorageError):
                uow.ledger.record(purchase("tx-1", "alice", 5), {wallet("alice"): 5})
            assert uow.ledger.get("tx-1") is None
            assert list(uow.ledger.postings()) == []
            assert uow.ledger.accounts() == {}

    def test_get(self, store: Store) -> None:
        """``get`` returns the transaction as recorded, or ``None``."""
        transaction = gift("tx-2", "alice", "carol", 3, at=T0 + timedelta(minutes=5))
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 10))
            record(uow, transaction)
            assert uow.ledger.get("tx-2") == transaction
            assert uow.ledger.get("tx-3") is None
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.ledger.get("tx-2") == transaction
            assert uow.ledger.get("tx-1") == purchase("tx-1", "alice", 10)

    def test_sequences_increase_in_posting_order(self, store: Store) -> None:
        """Posting sequences are strictly increasing across the ledger, in
        posting order, and carry the balance after each posting."""
        with store.unit_of_work() as uow:
            transactions = [
                purchase("tx-1", "alice", 10),
                gift("tx-2", "alice", "carol", 4),
                purchase("tx-3", "bob", 7),
            ]
            for transaction in transactions:
                record(uow, transaction)
            postings = list(uow.ledger.postings())
        sequences = [p.sequence for p in postings]
        assert sequences == sorted(set(sequences))
        assert [(p.transaction_id, p.account, p.amount) for p in postings] == [
            (t.id, p.account, p.amount) for t in transactions for p in t.postings
        ]
        assert [p.balance_after for p in postings if p.account == wallet("alice")] == [10, 6]

    def test_duplicate_transaction_id_raises_and_writes_nothing(self, store: Store) -> None:
        """A second transaction with the same id is refused, whole."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 10))
            uow.commit()
        with store.unit_of_work() as uow:
            duplicate = purchase("tx-1", "bob", 99)
            with pytest.raises(StorageError):
                record(uow, duplicate)
            assert uow.ledger.balances([wallet("bob"), wallet("alice")]) == {
                wallet("bob"): 0,
                wallet("alice"): 10,
            }
            assert len(list(uow.ledger.postings())) == 2
            assert len(list(uow.ledger.transactions())) == 1
            assert wallet("bob") not in uow.ledger.accounts()
            # The unit of work is still usable after the refusal.
            record(uow, purchase("tx-2", "bob", 1))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.ledger.get("tx-1") == purchase("tx-1", "alice", 10)
            assert uow.ledger.balances([wallet("bob")]) == {wallet("bob"): 1}

    def test_transactions_in_recorded_order(self, store: Store) -> None:
        """``transactions`` yields every transaction in the order recorded."""
        transactions = [
            purchase("tx-b", "alice", 10, at=T0 + timedelta(hours=2)),
            purchase("tx-a", "bob", 5, at=T0),
            gift("tx-c", "alice", "carol", 2, at=T0 + timedelta(hours=1)),
        ]
        with store.unit_of_work() as uow:
            assert list(uow.ledger.transactions()) == []
            for transaction in transactions:
                record(uow, transaction)
            assert list(uow.ledger.transactions()) == transactions
            uow.commit()
        with store.unit_of_work() as uow:
            assert list(uow.ledger.transactions()) == transactions

    def test_history_newest_first(self, store: Store) -> None:
        """History lines explain themselves, newest first."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 10, metadata=(("sku", "coins_10"),)))
            record(uow, purchase("tx-2", "bob", 3))
            record(uow, gift("tx-3", "alice", "carol", 4, at=T0 + timedelta(hours=1)))
            entries = uow.ledger.history(wallet("alice"), limit=10)
        assert [e.transaction_id for e in entries] == ["tx-3", "tx-1"]
        assert entries[0].sequence > entries[1].sequence
        newest, oldest = entries
        assert (newest.amount, newest.balance_after, newest.kind) == (-4, 6, TransactionKind.GIFT)
        assert newest.occurred_at == T0 + timedelta(hours=1)
        assert newest.cause == Cause("gift", "tx-3")
        assert newest.counterparties == (
            AccountKey.spent(COIN),
            AccountKey.issuance(DIAMOND),
            AccountKey.earnings("carol", DIAMOND),
        )
        assert newest.account == wallet("alice")
        assert (oldest.amount, oldest.balance_after) == (10, 10)
        assert oldest.idempotency_key == "key-tx-1"
        assert oldest.metadata == (("sku", "coins_10"),)
        assert oldest.counterparties == (AccountKey.issuance(COIN),)

    def test_history_pages_with_before(self, store: Store) -> None:
        """``before`` is a keyset cursor: pages never overlap or skip."""
        with store.unit_of_work() as uow:
            for i in range(7):
                record(uow, purchase(f"tx-{i}", "alice", i + 1))
                record(uow, purchase(f"other-{i}", "bob", 1))
            pages: list[list[str]] = []
            before: int | None = None
            while True:
                page = uow.ledger.history(wallet("alice"), limit=3, before=before)
                if not page:
                    break
                pages.append([e.transaction_id for e in page])
                before = page[-1].sequence
        assert pages == [["tx-6", "tx-5", "tx-4"], ["tx-3", "tx-2", "tx-1"], ["tx-0"]]

    def test_history_filters(self, store: Store) -> None:
        """``kinds``, ``since`` (inclusive) and ``until`` (exclusive) filter;
        ``limit`` counts what is returned."""
        hour = timedelta(hours=1)
        with store.unit_of_work() as uow:
            record(uow, purchase("p-0", "alice", 10, at=T0))
            record(uow, gift("g-1", "alice", "carol", 1, at=T0 + hour))
            record(uow, purchase("p-2", "alice", 10, at=T0 + 2 * hour))
            record(uow, gift("g-3", "alice", "carol", 1, at=T0 + 3 * hour))
            history = uow.ledger.history
            alice = wallet("alice")
            gifts = {TransactionKind.GIFT}
            purchases = [TransactionKind.PURCHASE]
            tokyo = timezone(timedelta(hours=9))
            assert _ids(history(alice, limit=10, kinds=gifts)) == ["g-3", "g-1"]
            assert _ids(history(alice, limit=1, kinds=purchases)) == ["p-2"]
            assert _ids(history(alice, limit=10, kinds=[])) == []
            assert _ids(history(alice, limit=10, since=T0 + hour)) == ["g-3", "p-2", "g-1"]
            assert _ids(history(alice, limit=10, until=T0 + 2 * hour)) == ["g-1", "p-0"]
            window = history(alice, limit=10, since=T0 + hour, until=T0 + 3 * hour)
            assert _ids(window) == ["p-2", "g-1"]
            since_tokyo = (T0 + 2 * hour).astimezone(tokyo)
            assert _ids(history(alice, limit=10, since=since_tokyo)) == ["g-3", "p-2"]
            assert _ids(history(alice, limit=2, kinds=purchases, since=T0)) == ["p-2", "p-0"]
            assert _ids(history(alice, limit=10, until=T0)) == []

    def test_history_pages_through_filters(self, store: Store) -> None:
        """``before`` pages on within ``kinds``, ``since`` and ``until`` alike."""
        hour = timedelta(hours=1)
        with store.unit_of_work() as uow:
            for i in range(6):
                record(uow, purchase(f"p-{i}", "alice", 10, at=T0 + 2 * i * hour))
                record(uow, gift(f"g-{i}", "alice", "carol", 1, at=T0 + (2 * i + 1) * hour))
            alice = wallet("alice")

            def pages(**filters: Any) -> list[list[str]]:
                found: list[list[str]] = []
                before: int | None = None
                while len(found) < 12 and (
                    page := uow.ledger.history(alice, limit=2, before=before, **filters)
                ):
                    found.append(_ids(page))
                    before = page[-1].sequence
                return found

            assert pages(kinds={TransactionKind.GIFT}) == [
                ["g-5", "g-4"],
                ["g-3", "g-2"],
                ["g-1", "g-0"],
            ]
            assert pages(since=T0 + 7 * hour) == [["g-5", "p-5"], ["g-4", "p-4"], ["g-3"]]
            assert pages(until=T0 + 3 * hour) == [["p-1", "g-0"], ["p-0"]]
            assert pages(
                kinds={TransactionKind.PURCHASE}, since=T0 + hour, until=T0 + 9 * hour
            ) == [
                ["p-4", "p-3"],
                ["p-2", "p-1"],
            ]

    def test_filtered_history_in_time_order_and_out_of_it(self, store: Store) -> None:
        """Every filter, paged with ``before``, gives what filtering the whole
        history gives: while the transactions are recorded in the order of
        their times, after one recorded with an earlier time than the one
        before it, and after that one is rolled back."""
        minute = timedelta(minutes=1)
        kinds_of = [TransactionKind.PURCHASE, TransactionKind.GIFT]

        def check(uow: UnitOfWork) -> None:
            for account in (wallet("alice"), AccountKey.issuance(COIN)):
                check_account(uow, account)

        def check_account(uow: UnitOfWork, alice: AccountKey) -> None:
            whole = uow.ledger.history(alice, limit=1000)
            bounds = [None, T0, T0 + 7 * minute, T0 + 21 * minute, T0 + 99 * minute]
            for kinds in (None, {TransactionKind.GIFT}, set(kinds_of), {TransactionKind.REFUND}):
                for since in bounds:
                    for until in bounds:
                        expected = [
                            entry
                            for entry in whole
                            if (kinds is None or entry.kind in kinds)
                            and (since is None or entry.occurred_at >= since)
                            and (until is None or entry.occurred_at < until)
                        ]
                        found: list[HistoryEntry] = []
                        before: int | None = None
                        while page := uow.ledger.history(
                            alice, limit=3, before=before, kinds=kinds, since=since, until=until
                        ):
                            found += page
                            before = page[-1].sequence
                        assert found == expected, (kinds, since, until)
                        middle = expected[len(expected) // 2].sequence if expected else 5
                        assert (
                            uow.ledger.history(
                                alice, limit=2, before=middle, kinds=kinds, since=since, until=until
                            )
                            == [entry for entry in expected if entry.sequence < middle][:2]
                        )

        with store.unit_of_work() as uow:
            for n in range(30):
                if n % 3:
                    record(uow, gift(f"g-{n}", "alice", "carol", 1, at=T0 + n * minute))
                else:
                    record(uow, purchase(f"p-{n}", "alice", 5, at=T0 + n * minute))
                record(uow, purchase(f"b-{n}", "bob", 1, at=T0 + n * minute))
            uow.commit()
            check(uow)
            record(uow, purchase("late", "alice", 5, at=T0 + 10 * minute))  # the clock went back
            check(uow)
            uow.rollback()
            check(uow)
            record(uow, purchase("late", "alice", 5, at=T0 + 10 * minute))
            record(uow, gift("after", "alice", "carol", 1, at=T0 + 40 * minute))
            uow.commit()
        with store.unit_of_work() as uow:
            check(uow)

    def test_streams_of_a_period_in_time_order_and_out_of_it(self, store: Store) -> None:
        """``transactions`` and ``postings`` with ``since`` and ``until`` give
        what filtering the whole streams by the transactions' times gives,
        whether the ledger was recorded in the order of its times or not."""
        minute = timedelta(minutes=1)

        def check(uow: UnitOfWork) -> None:
            transactions = list(uow.ledger.transactions())
            postings = list(uow.ledger.postings())
            times = {t.id: t.occurred_at for t in transactions}
            bounds = [None, T0, T0 + 5 * minute, T0 + 12 * minute, T0 + 99 * minute]
            for since in bounds:
                for until in bounds:

                    def within(when: datetime, since: Any = since, until: Any = until) -> bool:
                        return (since is None or when >= since) and (until is None or when < until)

                    assert list(uow.ledger.transactions(since=since, until=until)) == [
                        t for t in transactions if within(t.occurred_at)
                    ], (since, until)
                    assert list(uow.ledger.postings(since=since, until=until)) == [
                        p for p in postings if within(times[p.transaction_id])
                    ], (since, until)

        with store.unit_of_work() as uow:
            for n in range(15):
                record(uow, purchase(f"p-{n}", "alice", 5, at=T0 + n * minute))
                record(uow, gift(f"g-{n}", "alice", "carol", 1, at=T0 + n * minute))
            uow.commit()
            check(uow)
            record(uow, purchase("late", "bob", 5, at=T0 + 4 * minute))  # the clock went back
            record(uow, purchase("later", "bob", 5, at=T0 + 20 * minute))
            uow.commit()
            check(uow)

    def test_history_of_unknown_account_and_bad_limit(self, store: Store) -> None:
        """An account never posted to has no history; ``limit`` must be positive."""
        with store.unit_of_work() as uow:
            assert uow.ledger.history(wallet("nobody"), limit=5) == []
            with pytest.raises(InvalidAmountError):
                uow.ledger.history(wallet("nobody"), limit=0)

    def test_an_account_created_and_rolled_back_was_never_posted(self, store: Store) -> None:
        """An account that a rolled-back transaction created reads as 0, is
        not listed, and can be created afresh."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "bob", 3))
            assert uow.ledger.balances([wallet("bob")]) == {wallet("bob"): 3}
            uow.rollback()
            assert uow.ledger.balances([wallet("bob")]) == {wallet("bob"): 0}
            assert uow.ledger.accounts() == {}
            record(uow, purchase("tx-1", "bob", 2))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.ledger.balances([wallet("bob")]) == {wallet("bob"): 2}
            assert [p.balance_after for p in uow.ledger.postings()] == [-2, 2]

    def test_streams_hold_what_there_was_when_asked(self, store: Store) -> None:
        """``transactions``, ``postings`` and ``lots.all`` yield what was stored
        when they were called, not rows written while they are read."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 1))
            uow.lots.add(_lot("lot-1"))
            transactions = uow.ledger.transactions()
            postings = uow.ledger.postings()
            lots = uow.lots.all()
            record(uow, purchase("tx-2", "alice", 1))
            uow.lots.add(_lot("lot-2"))
            assert [t.id for t in transactions] == ["tx-1"]
            assert [p.transaction_id for p in postings] == ["tx-1", "tx-1"]
            assert [lot.id for lot in lots] == ["lot-1"]

    def test_money_accounts_round_trip(self, store: Store) -> None:
        """Accounts holding a currency come back as that currency."""
        settlement = Transaction(
            id="settle-1",
            kind=TransactionKind.SETTLEMENT,
            postings=(
                Posting(AccountKey.system(AccountKind.CLEARING, USD), -1999),
                Posting(AccountKey.system(AccountKind.REVENUE, USD), 1999),
            ),
            occurred_at=T0,
            idempotency_key="settle-1",
            cause=Cause("payment", "pay-1"),
        )
        with store.unit_of_work() as uow:
            record(uow, settlement)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.ledger.get("settle-1") == settlement
            accounts = uow.ledger.accounts()
            assert accounts == {
                AccountKey.system(AccountKind.CLEARING, USD): -1999,
                AccountKey.system(AccountKind.REVENUE, USD): 1999,
            }
            assert all(isinstance(a.asset, Currency) for a in accounts)
            assert AccountKey.system(AccountKind.REVENUE, Unit("USD")) not in accounts

    def test_round_trip_of_tricky_text(self, store: Store) -> None:
        """Quotes, SQL fragments, unicode and metadata of every type read back equal."""
        tricky_metadata = (
            ("flag", True),
            ("gift", "🎁 ギフト"),
            ("nothing", None),
            ("quote", TRICKY),
            ("count", -(2**62)),
        )
        transaction = Transaction(
            id=f"tx {TRICKY}",
            kind=TransactionKind.PURCHASE,
            postings=(
                Posting(AccountKey.issuance(COIN), -5),
                Posting(wallet(TRICKY), 5),
            ),
            occurred_at=datetime(
                2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5))
            ),
            idempotency_key=f"key {TRICKY} ключ",
            cause=Cause("purchase", TRICKY),
            metadata=tricky_metadata,
        )
        with store.unit_of_work() as uow:
            record(uow, transaction)
            uow.commit()
        with store.unit_of_work() as uow:
            loaded = uow.ledger.get(transaction.id)
            assert loaded == transaction
            assert loaded is not None
            assert loaded.metadata == transaction.metadata
            assert loaded.occurred_at.utcoffset() is not None
            assert uow.ledger.balances([wallet(TRICKY)]) == {wallet(TRICKY): 5}
            assert uow.ledger.history(wallet(TRICKY), limit=1)[0].cause == Cause("purchase", TRICKY)
            assert wallet(TRICKY) in uow.ledger.accounts()


def _lot(
    lot_id: str,
    holder: str = "alice",
    amount: int = 100,
    *,
    created: datetime = T0,
    expires: datetime | None = None,
    value: Money | None = None,
) -> Lot:
    return Lot.new(
        lot_id,
        wallet(holder),
        LotOrigin.PURCHASE if value is not None else LotOrigin.PROMOTION,
        amount,
        created,
        f"tx-{lot_id}",
        value=value,
        expires_at=expires,
    )


def _two_stored_lots(store: Store) -> tuple[Lot, Lot]:
    """Store alice's lots ``lot-1`` and ``lot-2`` of 10 coins; return them."""
    first, second = _lot("lot-1", amount=10), _lot("lot-2", amount=10)
    with store.unit_of_work() as uow:
        uow.lots.add(first)
        uow.lots.add(second)
        uow.commit()
    return first, second


def _varied_lots(holder: str, count: int) -> list[Lot]:
    """*count* lots of *holder* of every origin, some expiring (a few before
    ``T0 + 10 days``), created out of the order they are added in, with ties
    of expiry and of creation time broken by id."""
    origins = list(LotOrigin)
    lots = []
    for n in range(count):
        origin = origins[n % len(origins)]
        created = T0 + timedelta(hours=(n * 7) % 11)  # not in the order added
        expires = None if n % 3 else created + timedelta(days=1 + (n * 5) % 13)
        lots.append(
            Lot.new(
                f"{holder}-{(n * 37) % 101:03d}-{n}",
                wallet(holder),
                origin,
                1 + (n * 3) % 7,
                created,
                f"tx-{holder}-{n}",
                value=Money.from_minor(n, "USD") if origin is LotOrigin.PURCHASE else None,
                expires_at=expires,
            )
        )
    return lots


def _check_spendable(uow: UnitOfWork, holder: str, now: datetime) -> None:
    """``spendable`` answers as :func:`covering` over the open lots sorted in
    each order, for amounts from one coin to more than the lots hold."""
    account = wallet(holder)
    open_lots = uow.lots.open_lots(account)
    total = sum(lot.remaining for lot in open_lots)
    for order in SpendOrder:
        expected_order = order.sort(open_lots)
        for coins in sorted({1, 2, 5, total // 3 or 1, total // 2 or 1, total, total + 1}):
            found = uow.lots.spendable(account, order, now, coins)
            assert found == covering(expected_order, coins, now), (order, coins)


def _spendable_scenario(store: Store, count: int) -> None:
    """``spendable`` against :func:`covering` for a wallet of *count* lots:
    read afresh, after the unit of work changed lots (taken from, emptied,
    refilled, added), and after a rollback."""
    now = T0 + timedelta(days=10)
    lots = _varied_lots("alice", count)
    with store.unit_of_work() as uow:
        for lot in lots:
            uow.lots.add(lot)
        for lot in _varied_lots("bob", 5):
            uow.lots.add(lot)
        uow.lots.add(
            attrs.evolve(lots[0], id="diamonds", account=AccountKey.wallet("alice", DIAMOND))
        )
        uow.lots.update(lots[1].take(lots[1].remaining)[0])
        uow.commit()
    with store.unit_of_work() as uow:
        _check_spendable(uow, "alice", now)
        _check_spendable(uow, "bob", now)
    with store.unit_of_work() as uow:
        found = uow.lots.spendable(wallet("alice"), SpendOrder.OLDEST_FIRST, now, 3)
        for lot in found:
            uow.lots.update(lot.take(min(lot.remaining, 2))[0])
        uow.lots.update(attrs.evolve(lots[1], remaining=1))  # refilled
        uow.lots.update(lots[4].take(lots[4].remaining)[0])  # emptied
        for lot in _varied_lots("alice", count + 4)[count:]:
            uow.lots.add(attrs.evolve(lot, id=f"new-{lot.id}"))
        _check_spendable(uow, "alice", now)
        uow.rollback()
        _check_spendable(uow, "alice", now)
        assert uow.lots.open_lots(wallet("alice")) == [lot for lot in lots if lot.id != lots[1].id]
    with store.unit_of_work() as uow:
        assert uow.lots.spendable(wallet("nobody"), SpendOrder.OLDEST_FIRST, now, 1) == []
        assert [
            lot.id
            for lot in uow.lots.spendable(
                AccountKey.wallet("alice", DIAMOND), SpendOrder.EXPIRING_FIRST, T0, 1
            )
        ] == ["diamonds"]


class LotContract(_Contract):
    """Lots and the record of what spends consumed."""

    def test_add_and_get(self, store: Store) -> None:
        """A lot reads back equal, with money value and expiry."""
        lot = _lot(
            "lot-1",
            value=Money("0.99", "USD"),
            created=datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))),
            expires=T0 + timedelta(days=30),
        )
        with store.unit_of_work() as uow:
            assert uow.lots.get("lot-1") is None
            uow.lots.add(lot)
            assert uow.lots.get("lot-1") == lot
            uow.commit()
        with store.unit_of_work() as uow:
            loaded = uow.lots.get("lot-1")
            assert loaded == lot
            assert loaded is not None
            assert loaded.value == Money("0.99", "USD")
            assert loaded.expires_at == T0 + timedelta(days=30)

    def test_duplicate_lot_raises_and_writes_nothing(self, store: Store) -> None:
        """A second lot with the same id is refused."""
        with store.unit_of_work() as uow:
            uow.lots.add(_lot("lot-1", amount=10))
            with pytest.raises(StorageError):
                uow.lots.add(_lot("lot-1", "bob", amount=20))
            assert list(uow.lots.all()) == [_lot("lot-1", amount=10)]
            assert uow.lots.open_lots(wallet("bob")) == []

    def test_open_lots_follow_writes_in_the_same_unit_of_work(self, store: Store) -> None:
        """Updates, emptied lots and new lots show in ``open_lots``, ``get``
        and ``all`` at once; a rollback returns to what was committed."""
        first, second = _two_stored_lots(store)
        with store.unit_of_work() as uow:
            assert uow.lots.open_lots(wallet("alice")) == [first, second]
            emptied, _ = first.take(10)
            taken, _ = second.take(3)
            uow.lots.update(emptied)
            uow.lots.update(taken)
            assert uow.lots.open_lots(wallet("alice")) == [taken]
            third = _lot("lot-3", amount=5)
            uow.lots.add(third)
            assert uow.lots.open_lots(wallet("alice")) == [taken, third]
            assert uow.lots.get("lot-1") == emptied
            assert list(uow.lots.all()) == [emptied, taken, third]
            refilled = attrs.evolve(emptied, remaining=4)
            uow.lots.update(refilled)
            assert uow.lots.open_lots(wallet("alice")) == [refilled, taken, third]
            with pytest.raises(StorageError):
                uow.lots.update(attrs.evolve(taken, account=wallet("bob")))
            uow.lots.update(attrs.evolve(third, remaining=0))
            assert uow.lots.open_lots(wallet("alice")) == [refilled, taken]
            assert uow.lots.open_lots(wallet("bob")) == []
            uow.rollback()
            # Nothing read yet in this transaction: the refusal comes from storage.
            with pytest.raises(StorageError):
                uow.lots.update(attrs.evolve(first, account=wallet("bob")))
            assert uow.lots.open_lots(wallet("alice")) == [first, second]
            assert uow.lots.open_lots(wallet("bob")) == []

    def test_a_lot_emptied_and_committed_can_hold_coins_again(self, store: Store) -> None:
        """A lot emptied in one unit of work and given coins again in a later
        one is open again, in its place among the account's lots."""
        first, second = _two_stored_lots(store)
        with store.unit_of_work() as uow:
            uow.lots.update(first.take(first.remaining)[0])
            assert uow.lots.open_lots(wallet("alice")) == [second]
            uow.commit()
        refilled = attrs.evolve(first, remaining=2)
        with store.unit_of_work() as uow:
            assert uow.lots.open_lots(wallet("alice")) == [second]
            emptied = uow.lots.get(first.id)
            assert emptied is not None
            uow.lots.update(attrs.evolve(emptied, remaining=2))
            assert uow.lots.open_lots(wallet("alice")) == [refilled, second]
            uow.rollback()
            assert uow.lots.open_lots(wallet("alice")) == [second]
            uow.lots.update(attrs.evolve(emptied, remaining=2))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.lots.open_lots(wallet("alice")) == [refilled, second]
            expiring = _lot("expiring", expires=T0 + timedelta(hours=1))
            uow.lots.add(expiring)
            uow.lots.update(expiring.take(expiring.remaining)[0])
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.lots.expired(T0 + timedelta(hours=1), limit=5) == []
            uow.lots.update(attrs.evolve(expiring, remaining=3))
            uow.commit()
        with store.unit_of_work() as uow:
            assert [lot.id for lot in uow.lots.expired(T0 + timedelta(hours=1), limit=5)] == [
                "expiring"
            ]
            assert [
                lot.id for lot in uow.lots.lapsed(wallet("alice"), T0 + timedelta(hours=1))
            ] == ["expiring"]

    def test_update(self, store: Store) -> None:
        """``update`` replaces a stored lot; an unknown lot is an error."""
        lot = _lot("lot-1", value=Money("1.00", "USD"))
        after, _ = lot.take(30)
        with store.unit_of_work() as uow:
            uow.lots.add(lot)
            uow.lots.update(after)
            assert uow.lots.get("lot-1") == after
            with pytest.raises(StorageError):
                uow.lots.update(_lot("lot-2"))
            assert uow.lots.get("lot-2") is None
            uow.commit()
        with store.unit_of_work() as uow:
            loaded = uow.lots.get("lot-1")
            assert loaded == after
            assert loaded is not None
            assert (loaded.remaining, loaded.value_recognised) == (70, 30)

    def test_open_lots_in_creation_order_with_coins_remaining(self, store: Store) -> None:
        """Only the account's lots with coins left, oldest first."""
        lots = [
            _lot("lot-c", created=T0 + timedelta(hours=2)),
            _lot("lot-a", created=T0),
            _lot("lot-b", created=T0 + timedelta(hours=1)),
            _lot("lot-bob", "bob"),
        ]
        with store.unit_of_work() as uow:
            for lot in lots:
                uow.lots.add(lot)
            spent, _ = lots[1].take(100)
            uow.lots.update(spent)
            assert [lot.id for lot in uow.lots.open_lots(wallet("alice"))] == ["lot-c", "lot-b"]
            assert uow.lots.open_lots(wallet("bob")) == [lots[3]]
            assert uow.lots.open_lots(wallet("nobody")) == []
            assert uow.lots.open_lots(AccountKey.wallet("alice", DIAMOND)) == []
            assert [lot.id for lot in uow.lots.all()] == ["lot-c", "lot-a", "lot-b", "lot-bob"]

    def test_a_lot_emptied_refilled_and_taken_from_again(self, store: Store) -> None:
        """Updates of one lot that empty it, bring it back and take from it
        again, with no read in between, all land."""
        first, second = _two_stored_lots(store)
        with store.unit_of_work() as uow:
            assert uow.lots.open_lots(wallet("alice")) == [first, second]
            emptied, _ = first.take(10)
            uow.lots.update(emptied)
            refilled = attrs.evolve(emptied, remaining=4)
            uow.lots.update(refilled)
            again, _ = refilled.take(1)
            uow.lots.update(again)
            assert uow.lots.open_lots(wallet("alice")) == [again, second]
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.lots.get("lot-1") == again

    def test_lots_added_after_open_lots_and_rolled_back(self, store: Store) -> None:
        """A lot added after ``open_lots`` shows at once (unless it has no coins
        left), and a rollback takes it away again."""
        with store.unit_of_work() as uow:
            assert uow.lots.open_lots(wallet("alice")) == []
            fresh = _lot("lot-1", amount=5)
            uow.lots.add(fresh)
            uow.lots.add(attrs.evolve(_lot("lot-0", amount=5), remaining=0))
            assert uow.lots.open_lots(wallet("alice")) == [fresh]
            uow.rollback()
            assert uow.lots.open_lots(wallet("alice")) == []
            assert list(uow.lots.all()) == []

    def test_expired_soonest_first_with_limit(self, store: Store) -> None:
        """Lots with coins left whose expiry is at or before *now*, soonest first."""
        day = timedelta(days=1)
        with store.unit_of_work() as uow:
            uow.lots.add(_lot("late", expires=T0 + 3 * day))
            uow.lots.add(_lot("soon", expires=T0 + day))
            uow.lots.add(_lot("never"))
            uow.lots.add(_lot("future", expires=T0 + 10 * day))
            uow.lots.add(_lot("b-mid", expires=T0 + 2 * day))
            uow.lots.add(_lot("a-mid", "bob", expires=T0 + 2 * day))
            used, _ = _lot("used", expires=T0 + day).take(100)
            uow.lots.add(_lot("used", expires=T0 + day))
            uow.lots.update(used)
            now = T0 + 3 * day
            assert [lot.id for lot in uow.lots.expired(now, limit=10)] == [
                "soon",
                "a-mid",
                "b-mid",
                "late",
            ]
            assert [lot.id for lot in uow.lots.expired(now, limit=2)] == ["soon", "a-mid"]
            assert [lot.id for lot in uow.lots.expired(T0 + day, limit=10)] == ["soon"]
            assert uow.lots.expired(T0, limit=10) == []
            tokyo = timezone(timedelta(hours=9))
            assert [lot.id for lot in uow.lots.expired((T0 + day).astimezone(tokyo), limit=5)] == [
                "soon"
            ]

    def test_expired_follows_a_lots_changes_commits_and_rollbacks(self, store: Store) -> None:
        """A lot whose expiry moves is due at its new time only, and at its old
        one again once the move is rolled back; a lot emptied is never due,
        whether in the unit of work that emptied it or after its commit."""
        hour = timedelta(hours=1)
        with store.unit_of_work() as uow:
            uow.lots.add(_lot("first", expires=T0 + hour))
            uow.lots.add(_lot("second", expires=T0 + 2 * hour))
            uow.commit()
        with store.unit_of_work() as uow:
            first = uow.lots.get("first")
            assert first is not None
            uow.lots.update(attrs.evolve(first, expires_at=T0 + 3 * hour))
            assert [lot.id for lot in uow.lots.expired(T0 + 2 * hour, limit=5)] == ["second"]
            assert [lot.id for lot in uow.lots.expired(T0 + 3 * hour, limit=5)] == [
                "second",
                "first",
            ]
            uow.rollback()
            assert [lot.id for lot in uow.lots.expired(T0 + 2 * hour, limit=5)] == [
                "first",
                "second",
            ]
            uow.lots.update(first.take(first.remaining)[0])
            assert [lot.id for lot in uow.lots.expired(T0 + 3 * hour, limit=5)] == ["second"]
            uow.commit()
        with store.unit_of_work() as uow:
            assert [lot.id for lot in uow.lots.expired(T0 + 3 * hour, limit=5)] == ["second"]
            assert [lot.id for lot in uow.lots.open_lots(wallet("alice"))] == ["second"]

    def test_a_lot_changed_without_reading_its_account_reads_back_changed(
        self, store: Store
    ) -> None:
        """A lot found by ``expired()`` (its account's open lots never read)
        and emptied is gone from ``open_lots``, ``lapsed`` and ``expired`` in
        the same unit of work, and after its commit; one of another account
        changed meanwhile is untouched."""
        hour = timedelta(hours=1)
        with store.unit_of_work() as uow:
            uow.lots.add(_lot("alices", expires=T0 + hour))
            uow.lots.add(_lot("bobs", "bob", expires=T0 + hour))
            uow.commit()
        for check in ("same unit of work", "after the commit"):
            with store.unit_of_work() as uow:
                if check == "same unit of work":
                    due = uow.lots.expired(T0 + hour, limit=5)
                    assert [lot.id for lot in due] == ["alices", "bobs"]
                    uow.lots.update(due[0].take(due[0].remaining)[0])
                    uow.lots.update(due[1].take(10)[0])
                assert [lot.id for lot in uow.lots.lapsed(wallet("alice"), T0 + hour)] == []
                assert uow.lots.open_lots(wallet("alice")) == []
                assert [lot.remaining for lot in uow.lots.open_lots(wallet("bob"))] == [90]
                assert [lot.id for lot in uow.lots.expired(T0 + hour, limit=5)] == ["bobs"]
                uow.commit()

    def test_lapsed_of_one_account_soonest_first(self, store: Store) -> None:
        """``lapsed`` returns the account's lots with coins left whose expiry
        is at or before *now* (the instant itself included), soonest first,
        then by id; other accounts' lots and other units' are not its."""
        day = timedelta(days=1)
        with store.unit_of_work() as uow:
            uow.lots.add(_lot("late", expires=T0 + 3 * day))
            uow.lots.add(_lot("soon", expires=T0 + day))
            uow.lots.add(_lot("never"))
            uow.lots.add(_lot("future", expires=T0 + 10 * day))
            uow.lots.add(_lot("b-mid", expires=T0 + 2 * day))
            uow.lots.add(_lot("a-mid", expires=T0 + 2 * day))
            uow.lots.add(_lot("bobs", "bob", expires=T0 + day))
            uow.lots.add(
                Lot.new(
                    "diamonds",
                    AccountKey.wallet("alice", DIAMOND),
                    LotOrigin.PROMOTION,
                    5,
                    T0,
                    "tx-diamonds",
                    expires_at=T0 + day,
                )
            )
            uow.lots.add(_lot("used", expires=T0 + day))
            uow.lots.update(_lot("used", expires=T0 + day).take(100)[0])
            uow.commit()
        alice = wallet("alice")
        tokyo = timezone(timedelta(hours=9))
        for _ in range(2):  # read afresh, then again after the open lots were read
            with store.unit_of_work() as uow:
                assert [lot.id for lot in uow.lots.lapsed(alice, T0 + 3 * day)] == [
                    "soon",
                    "a-mid",
                    "b-mid",
                    "late",
                ]
                assert [lot.id for lot in uow.lots.lapsed(alice, T0 + day)] == ["soon"]
                just_before = T0 + day - timedelta(microseconds=1)
                assert uow.lots.lapsed(alice, just_before) == []
                at_tokyo = (T0 + 2 * day).astimezone(tokyo)
                assert [lot.id for lot in uow.lots.lapsed(alice, at_tokyo)] == [
                    "soon",
                    "a-mid",
                    "b-mid",
                ]
                assert [lot.id for lot in uow.lots.lapsed(wallet("bob"), T0 + day)] == ["bobs"]
                assert uow.lots.lapsed(wallet("nobody"), T0 + 10 * day) == []
                diamonds = uow.lots.lapsed(AccountKey.wallet("alice", DIAMOND), T0 + day)
                assert [lot.id for lot in diamonds] == ["diamonds"]
                soon = uow.lots.lapsed(alice, T0 + day)[0]
                assert soon == _lot("soon", expires=T0 + day)
                uow.lots.open_lots(alice)

    def test_lapsed_follows_writes_in_the_same_unit_of_work(self, store: Store) -> None:
        """A lot emptied, taken from or added in the unit of work shows in
        ``lapsed`` at once, whether or not the open lots were read first; a
        rollback returns to what was committed."""
        day = timedelta(days=1)
        alice = wallet("alice")
        first = _lot("lot-1", amount=10, expires=T0 + day)
        second = _lot("lot-2", amount=10, expires=T0 + 2 * day)
        with store.unit_of_work() as uow:
            uow.lots.add(first)
            uow.lots.add(second)
            uow.commit()
        later = T0 + 5 * day
        for read_open_lots_first in (False, True):
            with store.unit_of_work() as uow:
                if read_open_lots_first:
                    assert uow.lots.open_lots(alice) == [first, second]
                emptied, _ = first.take(10)
                uow.lots.update(emptied)
                taken, _ = second.take(3)
                uow.lots.update(taken)
                assert uow.lots.lapsed(alice, later) == [taken]
                third = _lot("lot-3", amount=5, expires=T0 + day / 2)
                uow.lots.add(third)
                assert uow.lots.lapsed(alice, later) == [third, taken]
                uow.rollback()
                assert uow.lots.lapsed(alice, later) == [first, second]

    def test_spendable_of_a_wallet_with_few_lots(self, store: Store) -> None:
        """``spendable`` gives the open lots that have not lapsed, in each
        :class:`~coinecon.ledger.lots.SpendOrder`, up to the first at which they cover the amount
        (all of them when they do not), for a wallet of a few lots."""
        _spendable_scenario(store, 6)

    def test_spendable_of_a_wallet_with_many_lots(self, store: Store) -> None:
        """The same for a wallet of more lots than a store may hold in memory
        (the adapters read those from an index in spend order)."""
        _spendable_scenario(store, 45)

    def test_spendable_after_a_rollback_and_an_id_used_again(self, store: Store) -> None:
        """A lot added to a wallet of many lots and rolled back is gone from
        its ``spendable`` and ``lapsed``, even when its id is used again for
        a lot of another wallet."""
        day = timedelta(days=1)
        with store.unit_of_work() as uow:
            for n in range(40):
                uow.lots.add(_lot(f"alice-{n}", amount=1, expires=T0 + 9 * day))
            uow.commit()
        with store.unit_of_work() as uow:
            alice = wallet("alice")
            assert len(uow.lots.spendable(alice, SpendOrder.OLDEST_FIRST, T0, 100)) == 40
            uow.lots.lapsed(alice, T0 + 10 * day)
            uow.lots.add(_lot("x", amount=5, expires=T0 + day))
            assert uow.lots.spendable(alice, SpendOrder.EXPIRING_FIRST, T0, 1)[0].id == "x"
            uow.rollback()
            uow.lots.add(_lot("x", "bob", amount=5, expires=T0 + day))
            uow.commit()
            for order in SpendOrder:
                found = uow.lots.spendable(alice, order, T0, 100)
                assert {lot.account for lot in found} == {alice}
                assert len(found) == 40
            assert "x" not in {lot.id for lot in uow.lots.lapsed(alice, T0 + 10 * day)}
            assert [lot.id for lot in uow.lots.lapsed(wallet("bob"), T0 + day)] == ["x"]

    def test_mergeable_is_the_newest_of_the_origin_among_the_newest_free_lots(
        self, store: Store
    ) -> None:
        """``mergeable`` answers as
        :func:`~coinecon.ledger.lots.merge_candidate` over the open lots, for
        a wallet of a few lots and one of many, read afresh, after changes in
        the unit of work and after a rollback."""
        for holder, count in (("few", 6), ("many", 45)):
            lots = _varied_lots(holder, count)
            with store.unit_of_work() as uow:
                for lot in lots:
                    uow.lots.add(lot)
                uow.commit()
            account = wallet(holder)
            with store.unit_of_work() as uow:
                for origin in LotOrigin:
                    expected = merge_candidate(uow.lots.open_lots(account), origin)
                    assert uow.lots.mergeable(account, origin) == expected, (holder, origin)
                newest = merge_candidate(lots, LotOrigin.BONUS)
                assert newest is not None
                uow.lots.update(newest.take(newest.remaining)[0])  # emptied
                added = _lot(f"{holder}-new", holder, amount=3, created=T0 + timedelta(days=1))
                uow.lots.add(attrs.evolve(added, origin=LotOrigin.BONUS))
                for origin in LotOrigin:
                    expected = merge_candidate(uow.lots.open_lots(account), origin)
                    assert uow.lots.mergeable(account, origin) == expected, (holder, origin)
                assert uow.lots.mergeable(account, LotOrigin.BONUS) == attrs.evolve(
                    added, origin=LotOrigin.BONUS
                )
                uow.rollback()
                assert uow.lots.mergeable(account, LotOrigin.BONUS) == newest
        with store.unit_of_work() as uow:
            assert uow.lots.mergeable(wallet("nobody"), LotOrigin.BONUS) is None

    def test_a_lot_grown_by_a_merge_reads_back_whole(self, store: Store) -> None:
        """``update`` stores a lot whose amount grew (a credit merged into it)
        as it is, for a wallet of a few lots and one of many, whether or not
        the lot was read in the unit of work first."""
        for holder, count in (("few", 3), ("many", 40)):
            lots = [_lot(f"{holder}-{n}", holder, amount=2) for n in range(count)]
            with store.unit_of_work() as uow:
                for lot in lots:
                    uow.lots.add(lot)
                uow.commit()
            account = wallet(holder)
            for read_first in (True, False):
                with store.unit_of_work() as uow:
                    target = (
                        uow.lots.mergeable(account, LotOrigin.PROMOTION) if read_first else None
                    )
                    target = target or uow.lots.get(lots[-1].id)
                    assert target is not None
                    grown = attrs.evolve(
                        target, amount=target.amount + 5, remaining=target.remaining + 5
                    )
                    uow.lots.update(grown)
                    assert uow.lots.get(grown.id) == grown
                    taken = uow.lots.spendable(account, SpendOrder.OLDEST_FIRST, T0, 10_000)
                    assert grown in taken
                    uow.commit()
                with store.unit_of_work() as uow:
                    assert uow.lots.get(grown.id) == grown
                    assert grown in uow.lots.open_lots(account)

    def test_spendable_passes_over_lapsed_lots(self, store: Store) -> None:
        """A lot whose expiry is at or before *now* is never spendable, in any
        order, though it still has coins until the sweep."""
        day = timedelta(days=1)
        with store.unit_of_work() as uow:
            uow.lots.add(_lot("lapses", amount=10, expires=T0 + day))
            uow.lots.add(_lot("lasts", amount=10, created=T0 + day / 2))
            uow.commit()
        with store.unit_of_work() as uow:
            for order in SpendOrder:
                at_expiry = uow.lots.spendable(wallet("alice"), order, T0 + day, 5)
                assert [lot.id for lot in at_expiry] == ["lasts"]
                before = uow.lots.spendable(wallet("alice"), order, T0 + day / 2, 15)
                assert len(before) == 2

    def test_an_empty_consumption_is_refused(self, store: Store) -> None:
        """A consumption lists at least one lot: an empty one is refused with
        a typed error and records nothing."""
        with store.unit_of_work() as uow:
            with pytest.raises(InvalidAmountError, match="at least one lot"):
                uow.lots.record_consumption("tx-1", [])
            uow.lots.record_consumption("tx-1", [LotConsumption("lot-1", 1)])
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.lots.consumption("tx-1") == [LotConsumption("lot-1", 1)]

    def test_consumption(self, store: Store) -> None:
        """What a transaction consumed reads back in order; twice is an error."""
        consumed = [
            LotConsumption("lot-2", 10),
            LotConsumption("lot-1", 40, Money("0.39", "USD")),
        ]
        with store.unit_of_work() as uow:
            assert uow.lots.consumption("tx-9") == []
            uow.lots.record_consumption("tx-9", consumed)
            with pytest.raises(StorageError):
                uow.lots.record_consumption("tx-9", [LotConsumption("lot-3", 1)])
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.lots.consumption("tx-9") == consumed
            assert uow.lots.consumption("tx-other") == []


class IdempotencyContract(_Contract):
    """The first result of each idempotency key."""

    def test_add_and_get(self, store: Store) -> None:
        """A record reads back equal; an unknown key is ``None``."""
        stored = IdempotencyRecord(TRICKY, "f" * 64, '{"coins":5,"note":"o\'k"}', T0)
        with store.unit_of_work() as uow:
            assert uow.idempotency.get(TRICKY) is None
            uow.idempotency.add(stored)
            assert uow.idempotency.get(TRICKY) == stored
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.idempotency.get(TRICKY) == stored
            assert uow.idempotency.get("other") is None

    def test_a_key_found_free_is_stored_once(self, store: Store) -> None:
        """Looked up, found free and added: a second add in the same unit of
        work is refused, and a rollback forgets the first."""
        first = IdempotencyRecord("k", "a" * 64, "{}", T0)
        with store.unit_of_work() as uow:
            assert uow.idempotency.get("k") is None
            uow.idempotency.add(first)
            with pytest.raises(StorageError):
                uow.idempotency.add(IdempotencyRecord("k", "b" * 64, "[]", T0))
            assert uow.idempotency.get("k") == first
            uow.rollback()
            assert uow.idempotency.get("k") is None
            uow.idempotency.add(first)
            record(uow, purchase("tx-1", "alice", 1))
            uow.ledger.accounts()  # a read that may send waiting writes
            with pytest.raises(StorageError):
                uow.idempotency.add(IdempotencyRecord("k", "b" * 64, "[]", T0))
            assert uow.idempotency.get("k") == first
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.idempotency.get("k") == first

    def test_prune_forgets_records_of_its_own_unit_of_work_too(self, store: Store) -> None:
        """A record added earlier in the same unit of work and older than the
        time is forgotten like any other; a rollback forgets the addition."""
        with store.unit_of_work() as uow:
            uow.idempotency.add(IdempotencyRecord("kept", "a" * 64, "{}", T0 + timedelta(days=2)))
            uow.commit()
            uow.idempotency.add(IdempotencyRecord("k", "b" * 64, "{}", T0))
            assert uow.idempotency.prune(T0 + timedelta(days=1)) == 1
            assert uow.idempotency.get("k") is None
            uow.idempotency.add(IdempotencyRecord("k", "c" * 64, "[]", T0 + timedelta(days=3)))
            uow.rollback()
            assert uow.idempotency.get("k") is None
            assert uow.idempotency.get("kept") is not None

    def test_duplicate_key_raises_and_writes_nothing(self, store: Store) -> None:
        """A key is stored once; a second record for it is refused."""
        first = IdempotencyRecord("k", "a" * 64, "{}", T0)
        with store.unit_of_work() as uow:
            uow.idempotency.add(first)
            uow.commit()
        with store.unit_of_work() as uow:
            with pytest.raises(StorageError):
                uow.idempotency.add(IdempotencyRecord("k", "b" * 64, "[]", T0 + timedelta(1)))
            assert uow.idempotency.get("k") == first

    def test_prune_forgets_the_records_before_a_time_and_nothing_after(self, store: Store) -> None:
        """Records created before *older_than* are forgotten (their keys are
        free again), those at or after it stay; alike for records on their
        command's transaction and records of their own; a rollback brings
        the forgotten back."""
        hour = timedelta(hours=1)
        records = [
            IdempotencyRecord(f"k-{n}", f"{n}" * 64, f'{{"n":{n}}}', T0 + n * hour)
            for n in range(4)
        ]
        with store.unit_of_work() as uow:
            for n, kept in enumerate(records):
                if n % 2:  # with its command's transaction, as a service records it
                    record(uow, purchase(f"tx-{n}", "alice", 1, at=kept.created_at, key=kept.key))
                uow.idempotency.add(kept)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.idempotency.prune(T0 + 2 * hour) == 2
            assert [uow.idempotency.get(r.key) for r in records] == [None, None, *records[2:]]
            uow.idempotency.add(IdempotencyRecord("new", "e" * 64, "{}", T0 + 5 * hour))
            uow.rollback()
            assert [uow.idempotency.get(r.key) for r in records] == records
            assert uow.idempotency.get("new") is None
            assert uow.idempotency.prune(T0 + 2 * hour) == 2
            uow.commit()
        with store.unit_of_work() as uow:
            assert [uow.idempotency.get(r.key) for r in records] == [None, None, *records[2:]]
            assert uow.idempotency.prune(T0 + 2 * hour) == 0
            again = IdempotencyRecord("k-1", "f" * 64, "[]", T0 + 6 * hour)
            record(uow, purchase("tx-again", "alice", 1, at=again.created_at, key="k-1"))
            uow.idempotency.add(again)  # a forgotten key is free
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.idempotency.get("k-1") == again
            assert len(list(uow.ledger.transactions())) == 3  # the ledger keeps every one


def _event(event_id: str, minutes: int = 0, transaction_id: str | None = None) -> OutboxEvent:
    return OutboxEvent(
        event_id,
        "coins.credited",
        T0 + timedelta(minutes=minutes),
        f'{{"id":"{event_id}"}}',
        transaction_id,
    )


class OutboxContract(_Contract):
    """Events awaiting delivery."""

    def test_pending_oldest_first(self, store: Store) -> None:
        """Events come back in the order added, up to *limit*."""
        events = [_event("e-3", 5, "tx-1"), _event("e-1", 1), _event(TRICKY, 0, TRICKY)]
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == []
            for event in events:
                uow.outbox.add(event)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == events
            assert uow.outbox.pending(limit=2) == events[:2]

    def test_prune_forgets_delivered_events_before_a_time(self, store: Store) -> None:
        """Delivered events that occurred before *older_than* are forgotten;
        one not delivered, or at or after it, stays; a rollback brings the
        forgotten back."""
        events = [_event("e-0", 0), _event("e-1", 10), _event("e-2", 20), _event("e-3", 30)]
        with store.unit_of_work() as uow:
            for event in events:
                uow.outbox.add(event)
            uow.commit()
            uow.outbox.mark_delivered(["e-0", "e-2", "e-3"], T0 + timedelta(hours=1))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.prune(T0 + timedelta(minutes=25)) == 2
            assert uow.outbox.pending(limit=10) == [events[1]]
            uow.rollback()
            assert uow.outbox.pending(limit=10) == [events[1]]
            assert uow.outbox.prune(T0 + timedelta(minutes=25)) == 2
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.prune(T0 + timedelta(minutes=25)) == 0
            assert uow.outbox.prune(T0 + timedelta(minutes=40)) == 1
            uow.outbox.mark_delivered(["e-1"], T0 + timedelta(hours=2))
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == []
            assert uow.outbox.prune(T0 + timedelta(minutes=40)) == 1

    def test_prune_forgets_deliveries_of_its_own_unit_of_work_too(self, store: Store) -> None:
        """An event delivered earlier in the same unit of work is forgotten
        like any other; a rollback makes it pending again."""
        with store.unit_of_work() as uow:
            uow.outbox.add(_event("e-0", 0))
            uow.commit()
            uow.outbox.add(_event("e-1", 5))
            uow.outbox.mark_delivered(["e-0", "e-1"], T0 + timedelta(hours=1))
            assert uow.outbox.prune(T0 + timedelta(hours=1)) == 2
            assert uow.outbox.pending(limit=10) == []
            uow.rollback()
            assert uow.outbox.pending(limit=10) == [_event("e-0", 0)]

    def test_mark_delivered(self, store: Store) -> None:
        """Delivered events leave the pending list; unknown ids are ignored."""
        with store.unit_of_work() as uow:
            for i in range(4):
                uow.outbox.add(_event(f"e-{i}", i))
            uow.outbox.mark_delivered(["e-0", "e-2", "unknown"], T0)
            assert [e.id for e in uow.outbox.pending(limit=10)] == ["e-1", "e-3"]
            uow.outbox.mark_delivered(["e-0"], T0 + timedelta(hours=1))
            uow.commit()
        with store.unit_of_work() as uow:
            assert [e.id for e in uow.outbox.pending(limit=1)] == ["e-1"]
            uow.outbox.mark_delivered({"e-1", "e-3"}, T0)
            assert uow.outbox.pending(limit=10) == []

    def test_events_of_transactions_delivered_in_any_order(self, store: Store) -> None:
        """Events of transactions recorded in the same unit of work and an
        event of none come back in the order added; marking them delivered
        in any order, and more than once, leaves exactly the others pending;
        a rollback forgets the marks."""
        events: list[OutboxEvent] = []
        with store.unit_of_work() as uow:
            for n in range(5):
                transaction = purchase(f"tx-{n}", "alice", 1 + n)
                record(uow, transaction)
                events.append(
                    OutboxEvent(f"e-{n}", "coins.credited", T0, f'{{"n":{n}}}', f"tx-{n}")
                )
                uow.outbox.add(events[-1])
                if n == 2:
                    events.append(_event("loose", 3))
                    uow.outbox.add(events[-1])
            with pytest.raises(StorageError):
                uow.outbox.add(attrs.evolve(events[0], type="coins.spent"))
            uow.commit()
        _, e1, e2, _, _, e4 = events
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == events
            uow.outbox.mark_delivered(["e-3", "loose", "e-0"], T0)
            assert uow.outbox.pending(limit=10) == [e1, e2, e4]
            uow.commit()
        with store.unit_of_work() as uow:
            uow.outbox.mark_delivered(["e-2"], T0)
            assert uow.outbox.pending(limit=10) == [e1, e4]
            uow.rollback()
            assert uow.outbox.pending(limit=10) == [e1, e2, e4]
            uow.outbox.mark_delivered(["e-1", "e-2", "e-1"], T0)
            assert uow.outbox.pending(limit=1) == [e4]
            uow.commit()
        with store.unit_of_work() as uow:
            uow.outbox.mark_delivered(["e-4", "unknown"], T0)
            assert uow.outbox.pending(limit=10) == []
            later = purchase("tx-5", "alice", 1)
            record(uow, later)
            news = OutboxEvent("e-5", "coins.credited", T0, "{}", "tx-5")
            uow.outbox.add(news)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == [news]

    def test_events_come_back_in_the_order_added_whatever_their_transaction(
        self, store: Store
    ) -> None:
        """An event of no transaction added between a transaction and its
        event, and the events of two transactions added in the reverse of
        their order, come back in the order added."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 5))
            record(uow, purchase("tx-2", "bob", 5))
            added = [
                _event("loose"),
                _event("e-2", transaction_id="tx-2"),
                _event("e-1", transaction_id="tx-1"),
                _event("loose-2"),
            ]
            for event in added:
                uow.outbox.add(event)
            assert uow.outbox.pending(limit=10) == added
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == added
            record(uow, purchase("tx-3", "carol", 5))
            later = _event("e-3", transaction_id="tx-3")
            uow.outbox.add(later)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == [*added, later]

    def test_events_with_their_transactions_ids(self, store: Store) -> None:
        """An event may take its transaction's id (the wallet service's
        events do): it is pending, delivered and refused as a duplicate by
        that id, alongside events with ids of their own; a transaction whose
        event has another id leaves its own id free for an event."""
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 5))
            record(uow, purchase("tx-2", "bob", 5))
            own = _event("tx-1", transaction_id="tx-1")
            other = _event("e-2", transaction_id="tx-2")
            for event in (own, other):
                uow.outbox.add(event)
            uow.commit()
        with store.unit_of_work() as uow:
            for duplicate in (_event("tx-1", 3), _event("e-2", 3), _event("tx-1", 3, "tx-2")):
                with pytest.raises(StorageError):
                    uow.outbox.add(duplicate)
            loose = _event("tx-2", 4)  # tx-2's event is e-2: the id tx-2 is free
            uow.outbox.add(loose)
            assert uow.outbox.pending(limit=10) == [own, other, loose]
            uow.outbox.mark_delivered(["tx-1"], T0)
            assert uow.outbox.pending(limit=10) == [other, loose]
            uow.outbox.mark_delivered(["tx-2", "e-2"], T0)
            assert uow.outbox.pending(limit=10) == []
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(limit=10) == []

    def test_duplicate_event_raises(self, store: Store) -> None:
        """An event id is stored once."""
        with store.unit_of_work() as uow:
            uow.outbox.add(_event("e-1"))
            with pytest.raises(StorageError):
                uow.outbox.add(_event("e-1", 9))
            assert uow.outbox.pending(limit=10) == [_event("e-1")]


def _write_everything(uow: UnitOfWork, tag: str) -> None:
    record(uow, purchase(f"tx-{tag}", "alice", 10))
    uow.lots.add(_lot(f"lot-{tag}", amount=10))
    uow.lots.record_consumption(f"tx-{tag}", [LotConsumption(f"lot-{tag}", 1)])
    uow.idempotency.add(IdempotencyRecord(f"key-{tag}", "f" * 64, "{}", T0))
    uow.outbox.add(_event(f"e-{tag}"))
    uow.records.add(_record(f"r-{tag}"))


def _kept(uow: UnitOfWork, tag: str) -> tuple[bool, bool, bool, bool, bool, bool]:
    """Which of the six writes of :func:`_write_everything` *uow* reads."""
    return (
        uow.ledger.get(f"tx-{tag}") is not None,
        uow.lots.get(f"lot-{tag}") is not None,
        uow.lots.consumption(f"tx-{tag}") != [],
        uow.idempotency.get(f"key-{tag}") is not None,
        any(e.id == f"e-{tag}" for e in uow.outbox.pending(limit=100)),
        uow.records.get("purchase", f"r-{tag}") is not None,
    )


_ALL = (True, True, True, True, True, True)
_NONE = (False, False, False, False, False, False)


def _record(
    record_id: str, owner: str = "alice", minutes: int = 0, kind: str = "purchase"
) -> Record:
    return Record.new(
        kind, record_id, owner, T0 + timedelta(minutes=minutes), {"id": record_id, "n": 1}
    )


class RecordContract(_Contract):
    """The services' records: versioned documents by kind, id and owner."""

    def test_add_and_get(self, store: Store) -> None:
        """A record reads back equal, before and after its commit, by kind and id."""
        tricky = Record.new("case", "c-1", "o\u2019brien", T0, {"note": 'caf\u00e9 "x"\n'})
        with store.unit_of_work() as uow:
            uow.records.add(_record("p-1"))
            uow.records.add(tricky)
            assert uow.records.get("purchase", "p-1") == _record("p-1")  # before the commit
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.records.get("purchase", "p-1") == _record("p-1")
            assert uow.records.get("case", "c-1") == tricky
            assert uow.records.get("case", "p-1") is None  # ids are per kind
            assert uow.records.get("purchase", "p-2") is None

    def test_a_duplicate_or_a_new_record_past_version_1_is_refused(self, store: Store) -> None:
        """An id taken in its kind, or a new record not at version 1, is refused."""
        with store.unit_of_work() as uow:
            uow.records.add(_record("p-1"))
            uow.commit()
        with store.unit_of_work() as uow:
            with pytest.raises(StorageError, match="already exists"):
                uow.records.add(_record("p-1", owner="bob"))
            with pytest.raises(StorageError, match="version 1"):
                uow.records.add(attrs.evolve(_record("p-2"), version=2))
            assert uow.records.get("purchase", "p-2") is None
            assert uow.records.of_owner("purchase", "bob", limit=10) == []

    def test_update_takes_the_next_version_only(self, store: Store) -> None:
        """An update stores the next version only, and never moves a record."""
        first = _record("p-1")
        with store.unit_of_work() as uow:
            uow.records.add(first)
            second = first.changed({"status": "done"})
            uow.records.update(second)
            assert uow.records.get("purchase", "p-1") == second
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.records.get("purchase", "p-1") == second
            assert uow.records.get("purchase", "p-1").data == {"status": "done"}  # type: ignore[union-attr]
            with pytest.raises(StorageError, match="version 2"):
                uow.records.update(first.changed({"status": "stale"}))  # version 2 again
            with pytest.raises(StorageError, match="version 2"):
                uow.records.update(second.changed({}).changed({}))  # version 4
            with pytest.raises(StorageError, match="owner and creation time"):
                uow.records.update(attrs.evolve(second.changed({}), owner="bob"))
            with pytest.raises(StorageError, match="owner and creation time"):
                uow.records.update(
                    attrs.evolve(second.changed({}), created_at=T0 + timedelta(hours=1))
                )
            with pytest.raises(StorageError, match="does not exist"):
                uow.records.update(_record("p-9").changed({}))
            assert uow.records.get("purchase", "p-1") == second

    def test_of_owner_newest_first_since_a_time(self, store: Store) -> None:
        """An owner's records of a kind, newest first, from a time, up to a limit."""
        with store.unit_of_work() as uow:
            for n in (3, 1, 4, 2):
                uow.records.add(_record(f"p-{n}", minutes=n))
            uow.records.add(_record("p-0", minutes=2))  # same time as p-2: by id
            uow.records.add(_record("b-1", owner="bob", minutes=1))
            uow.records.add(_record("c-1", minutes=1, kind="case"))
            uow.commit()
        with store.unit_of_work() as uow:
            ids = [r.id for r in uow.records.of_owner("purchase", "alice", limit=10)]
            assert ids == ["p-4", "p-3", "p-2", "p-0", "p-1"]
            ids = [r.id for r in uow.records.of_owner("purchase", "alice", limit=2)]
            assert ids == ["p-4", "p-3"]
            since = T0 + timedelta(minutes=2)
            ids = [r.id for r in uow.records.of_owner("purchase", "alice", since=since, limit=10)]
            assert ids == ["p-4", "p-3", "p-2", "p-0"]
            zoned = since.astimezone(timezone(timedelta(hours=-5)))  # the same instant
            assert uow.records.of_owner("purchase", "alice", since=zoned, limit=10)[-1].id == "p-0"
            until = T0 + timedelta(minutes=3)
            ids = [r.id for r in uow.records.of_owner("purchase", "alice", until=until, limit=10)]
            assert ids == ["p-2", "p-0", "p-1"]
            oldest = uow.records.of_owner("purchase", "alice", limit=3, oldest_first=True)
            assert [r.id for r in oldest] == ["p-1", "p-0", "p-2"]
            window = uow.records.of_owner(
                "purchase", "alice", since=since, until=until, limit=1, oldest_first=True
            )
            assert [r.id for r in window] == ["p-0"]
            assert [r.id for r in uow.records.of_owner("case", "alice", limit=10)] == ["c-1"]
            assert uow.records.of_owner("purchase", "carol", limit=10) == []
            with pytest.raises(InvalidAmountError):
                uow.records.of_owner("purchase", "alice", limit=0)

    def test_remove_forgets_a_record_and_frees_its_id(self, store: Store) -> None:
        """A removed record is gone, from its owner's too, and its id is free."""
        with store.unit_of_work() as uow:
            uow.records.add(_record("p-1"))
            uow.records.add(_record("p-2", minutes=1))
            uow.commit()
        with store.unit_of_work() as uow:
            uow.records.remove("purchase", "p-1")
            assert uow.records.get("purchase", "p-1") is None
            with pytest.raises(StorageError, match="does not exist"):
                uow.records.remove("purchase", "p-1")
            uow.commit()
        with store.unit_of_work() as uow:
            assert [r.id for r in uow.records.of_owner("purchase", "alice", limit=10)] == ["p-2"]
            uow.records.add(_record("p-1", minutes=3))
            assert [r.id for r in uow.records.of_owner("purchase", "alice", limit=10)] == [
                "p-1",
                "p-2",
            ]

    def test_a_rollback_undoes_adds_updates_and_removals(self, store: Store) -> None:
        """A rollback puts every record back as it was at the last commit."""
        first = _record("p-1")
        with store.unit_of_work() as uow:
            uow.records.add(first)
            uow.records.add(_record("p-3", minutes=9))
            uow.commit()
            uow.records.update(first.changed({"status": "x"}))
            uow.records.add(_record("p-2", minutes=5))
            uow.records.remove("purchase", "p-3")
            uow.rollback()
            assert uow.records.get("purchase", "p-3") == _record("p-3", minutes=9)
            uow.records.remove("purchase", "p-3")
            uow.commit()
            assert uow.records.get("purchase", "p-1") == first
            assert uow.records.get("purchase", "p-2") is None
            assert uow.records.of_owner("purchase", "alice", limit=10) == [first]
            uow.records.add(_record("p-2", minutes=5))  # the id is free again
            uow.commit()
        with store.unit_of_work() as uow:
            assert [r.id for r in uow.records.of_owner("purchase", "alice", limit=10)] == [
                "p-2",
                "p-1",
            ]


class UnitOfWorkContract(_Contract):
    """Commit, rollback and the life of a unit of work."""

    def test_commit_makes_writes_visible(self, store: Store) -> None:
        """What one unit of work commits, the next one reads."""
        with store.unit_of_work() as uow:
            _write_everything(uow, "a")
            uow.commit()
        with store.unit_of_work() as uow:
            assert _kept(uow, "a") == _ALL
            assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 10}

    def test_leaving_without_commit_rolls_back(self, store: Store) -> None:
        """Every repository's writes are discarded when the block ends uncommitted."""
        with store.unit_of_work() as uow:
            _write_everything(uow, "a")
            uow.commit()
        with store.unit_of_work() as uow:
            _write_everything(uow, "b")
            assert _kept(uow, "b") == _ALL
            lot = uow.lots.get("lot-a")
            assert lot is not None
            uow.lots.update(lot.take(5)[0])
            uow.outbox.mark_delivered(["e-a"], T0)
        with store.unit_of_work() as uow:
            assert _kept(uow, "b") == _NONE
            assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 10}
            assert uow.ledger.accounts() == {wallet("alice"): 10, AccountKey.issuance(COIN): -10}
            assert len(list(uow.ledger.postings())) == 2
            assert [lot.remaining for lot in uow.lots.all()] == [10]
            assert [e.id for e in uow.outbox.pending(limit=10)] == ["e-a"]

    def test_exception_rolls_back_and_propagates(self, store: Store) -> None:
        """An exception inside the block discards the writes and is re-raised."""

        def fail() -> None:
            with store.unit_of_work() as uow:
                _write_everything(uow, "a")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            fail()
        with store.unit_of_work() as uow:
            assert _kept(uow, "a") == _NONE
            assert uow.ledger.accounts() == {}

    def test_explicit_rollback_and_writes_after_commit(self, store: Store) -> None:
        """``rollback`` discards writes since the last commit; the unit of work
        stays usable, and writes after a commit need another commit."""
        with store.unit_of_work() as uow:
            _write_everything(uow, "a")
            uow.rollback()
            assert _kept(uow, "a") == _NONE
            _write_everything(uow, "b")
            uow.commit()
            _write_everything(uow, "c")
            assert _kept(uow, "c") == _ALL
        with store.unit_of_work() as uow:
            assert _kept(uow, "a") == _NONE
            assert _kept(uow, "b") == _ALL
            assert _kept(uow, "c") == _NONE
            assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 10}
            uow.commit()
            uow.commit()

    def test_a_unit_of_work_is_used_once_inside_with(self, store: Store) -> None:
        """Using a unit of work outside its block, or entering it twice, is an error."""
        uow = store.unit_of_work()
        with pytest.raises(StorageError):
            uow.ledger.balances([wallet("alice")])
        with pytest.raises(StorageError):
            uow.commit()
        with uow:
            with pytest.raises(StorageError), uow:
                pass
            record(uow, purchase("tx-1", "alice", 1))
            uow.commit()
        with pytest.raises(StorageError):
            uow.ledger.get("tx-1")
        with pytest.raises(StorageError):
            uow.lots.all()
        with pytest.raises(StorageError):
            uow.idempotency.get("k")
        with pytest.raises(StorageError):
            uow.outbox.pending(limit=1)
        with pytest.raises(StorageError):
            uow.commit()
        with pytest.raises(StorageError), uow:
            pass
        with store.unit_of_work() as again:
            assert again.ledger.get("tx-1") == purchase("tx-1", "alice", 1)


class ConcurrencyContract(_Contract):
    """Units of work on many threads are isolated from each other."""

    threads = 8
    """How many threads run at once."""
    rounds = 25
    """How many units of work each thread runs."""

    def test_concurrent_read_then_write_is_isolated(self, store: Store) -> None:
        """Threads that each read a balance and record a transaction on it end
        with the exact total and clean books (no lost update)."""
        failures: list[BaseException] = []
        start = threading.Barrier(self.threads)

        def work(thread: int) -> None:
            try:
                start.wait()
                for i in range(self.rounds):
                    with store.unit_of_work() as uow:
                        transaction = purchase(f"tx-{thread}-{i}", "alice", 1)
                        after = record(uow, transaction)
                        uow.lots.add(
                            Lot.new(
                                f"lot-{thread}-{i}",
                                wallet("alice"),
                                LotOrigin.PROMOTION,
                                1,
                                T0,
                                transaction.id,
                            )
                        )
                        assert after[wallet("alice")] >= 1
                        uow.commit()
            except BaseException as error:  # noqa: BLE001 (reported by the main thread)
                failures.append(error)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert failures == []
        total = self.threads * self.rounds
        with store.unit_of_work() as uow:
            assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): total}
            postings = list(uow.ledger.postings())
            alice = [p.balance_after for p in postings if p.account == wallet("alice")]
            assert alice == list(range(1, total + 1))
            report = verify_books(
                uow.ledger.transactions(), postings, uow.ledger.accounts(), uow.lots.all()
            )
        assert report.ok, str(report)
        assert report.transactions == total


class StoreContract(
    LedgerContract,
    LotContract,
    IdempotencyContract,
    OutboxContract,
    RecordContract,
    UnitOfWorkContract,
    ConcurrencyContract,
):
    """The whole storage contract. Subclass it as ``Test...`` and define
    ``make_store``."""
