from __future__ import annotations

import threading
from collections.abc import Generator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from dateutil.relativedelta import relativedelta

from coinecon import Currency, ManualClock, Money, Unit, UnitAmount
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import (
    BalanceLimitExceeded,
    FloatNotAllowedError,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidTypeError,
    NaiveDatetimeError,
    StorageError,
    TransferNotAllowed,
    UnbalancedTransactionError,
    ValidationError,
)
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Cause,
    Posting,
    Transaction,
    TransactionKind,
)
from coinecon.ledger.lots import Lot, LotOrigin
from coinecon.ledger.wallets import CreditResult, SpendResult, Wallets
from coinecon.money.money import MAX_MINOR_UNITS
from coinecon.ports import (
    IdempotencyRepository,
    LedgerRepository,
    LotRepository,
    OutboxRepository,
    RecordRepository,
    UnitOfWork,
)
from coinecon.testing.contract import COIN, DIAMOND, T0, wallet


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def wallets(store: MemoryStore, clock: ManualClock) -> Wallets:
    return Wallets(store, clock=clock)


def buy(wallets: Wallets, key: str, holder: str, coins: int, price: str = "1.00") -> CreditResult:
    return wallets.credit(
        key,
        holder=holder,
        amount=COIN(coins),
        origin=LotOrigin.PURCHASE,
        cause=Cause("purchase", key),
        value=Money(price, "USD"),
    )


def spend(wallets: Wallets, key: str, holder: str, coins: int) -> SpendResult:
    return wallets.spend(key, holder=holder, amount=COIN(coins), cause=Cause("item", key))


class TestCommands:
    def test_credit_and_spend(self, wallets: Wallets) -> None:
        credit = buy(wallets, "p1", "alice", 100)
        assert credit.balance == COIN(100)
        result = spend(wallets, "s1", "alice", 30)
        assert result.balance == COIN(70)
        assert wallets.balance("alice", COIN) == COIN(70)
        assert [(c.lot_id, c.amount) for c in result.consumed] == [(credit.lot_id, 30)]
        assert result.value == {"USD": Money("0.30", "USD")}
        assert wallets.consumption(result.transaction_id) == list(result.consumed)
        transaction = wallets.transaction(result.transaction_id)
        assert transaction is not None
        assert transaction.kind is TransactionKind.SPEND
        assert wallets.transaction("missing") is None
        assert wallets.verify().ok

    def test_gift_shape_credits_creator_in_another_unit(self, wallets: Wallets) -> None:
        buy(wallets, "p1", "alice", 100)
        earnings = AccountKey.earnings("bob", DIAMOND)
        wallets.spend(
            "g1",
            holder="alice",
            amount=COIN(50),
            cause=Cause("gift", "g1"),
            kind=TransactionKind.GIFT,
            also=(Posting(AccountKey.issuance(DIAMOND), -25), Posting(earnings, 25)),
        )
        assert wallets.balances([earnings]) == {earnings: 25}
        assert wallets.verify().ok

    def test_insufficient_funds_changes_nothing(self, wallets: Wallets) -> None:
        buy(wallets, "p1", "alice", 10)
        with pytest.raises(InsufficientFunds) as info:
            spend(wallets, "s1", "alice", 11)
        assert info.value.shortfall == 1
        assert wallets.balance("alice", COIN) == COIN(10)
        # The key was not used: the same key works for a valid request.
        assert spend(wallets, "s1", "alice", 10).balance == COIN(0)
        assert wallets.verify().ok

    def test_replay_returns_first_result_and_changes_nothing(self, wallets: Wallets) -> None:
        first = buy(wallets, "p1", "alice", 100)
        assert buy(wallets, "p1", "alice", 100) == first
        spent = spend(wallets, "s1", "alice", 40)
        spend(wallets, "s2", "alice", 10)
        assert spend(wallets, "s1", "alice", 40) == spent  # the first balance, 60
        assert wallets.balance("alice", COIN) == COIN(50)

    def test_same_key_different_request_conflicts(self, wallets: Wallets) -> None:
        buy(wallets, "p1", "alice", 100)
        with pytest.raises(IdempotencyConflict) as info:
            buy(wallets, "p1", "alice", 101)
        assert info.value.key == "p1"
        with pytest.raises(IdempotencyConflict):
            spend(wallets, "p1", "alice", 1)
        assert wallets.balance("alice", COIN) == COIN(100)

    @pytest.mark.parametrize(
        ("changes", "error"),
        [
            pytest.param(
                {"origin": LotOrigin.PURCHASE}, InvalidAmountError, id="purchase-no-value"
            ),
            pytest.param({"value": Money(1, "USD")}, InvalidAmountError, id="value-not-purchase"),
            pytest.param({"amount": COIN(0)}, InvalidAmountError, id="zero-coins"),
            pytest.param({"amount": 5}, InvalidTypeError, id="plain-int"),
            pytest.param({"holder": ""}, InvalidIdentifierError, id="empty-holder"),
            pytest.param({"origin": "bonus"}, InvalidTypeError, id="origin-text"),
            pytest.param(
                {"expires_at": datetime(2027, 1, 1)},  # noqa: DTZ001
                NaiveDatetimeError,
                id="naive-expiry",
            ),
            pytest.param({"expires_at": T0 - timedelta(1)}, ValidationError, id="expired"),
            pytest.param(
                {"expires_at": T0 + timedelta(1), "expires_in": timedelta(1)},
                ValidationError,
                id="two-expiries",
            ),
        ],
    )
    def test_a_bad_credit_stores_nothing(
        self, wallets: Wallets, changes: dict[str, object], error: type[Exception]
    ) -> None:
        request: dict[str, object] = {
            "holder": "a",
            "amount": COIN(5),
            "origin": LotOrigin.PROMOTION,
            "cause": Cause("p", "1"),
        }
        with pytest.raises(error):
            wallets.credit("k", **(request | changes))  # type: ignore[arg-type]
        # Nothing was stored: the key is still free.
        assert buy(wallets, "k", "a", 5).balance == COIN(5)

    def test_a_bad_spend_stores_nothing(self, wallets: Wallets) -> None:
        buy(wallets, "p", "a", 5)
        with pytest.raises(InvalidTypeError):
            wallets.spend("k", holder="a", amount=5, cause=Cause("p", "1"))  # type: ignore[arg-type]
        with pytest.raises(InvalidIdentifierError):
            spend(wallets, "", "a", 5)
        with pytest.raises(InvalidTypeError):
            wallets.spend(
                "k",
                holder="a",
                amount=COIN(1),
                cause=Cause("p", "1"),
                kind=TransactionKind.PURCHASE,
            )
        assert spend(wallets, "k", "a", 5).balance == COIN(0)

    def test_transfer_through_also_is_refused(self, wallets: Wallets) -> None:
        buy(wallets, "p1", "alice", 10)
        with pytest.raises(TransferNotAllowed):
            wallets.spend(
                "g1",
                holder="alice",
                amount=COIN(5),
                cause=Cause("gift", "g1"),
                also=(
                    Posting(AccountKey.issuance(DIAMOND), -5),
                    Posting(AccountKey.wallet("bob", DIAMOND), 5),
                ),
            )
        assert wallets.balance("alice", COIN) == COIN(10)


def promote(wallets: Wallets, **expiry: Any) -> CreditResult:
    """Credit alice 20 promotional coins that expire as *expiry* says."""
    return wallets.credit(
        "promo1",
        holder="alice",
        amount=COIN(20),
        origin=LotOrigin.PROMOTION,
        cause=Cause("promotion", "welcome"),
        **expiry,
    )


class TestExpiry:
    def test_promotional_coins_expire(self, wallets: Wallets, clock: ManualClock) -> None:
        buy(wallets, "p1", "alice", 100)
        promo = promote(wallets, expires_in=relativedelta(months=1))
        assert promo.expires_at == datetime(2026, 2, 1, tzinfo=UTC)
        spend(wallets, "s1", "alice", 5)  # taken from the expiring lot first
        assert wallets.expire() == ()
        clock.set(datetime(2026, 2, 1, tzinfo=UTC))
        (expired,) = wallets.expire()
        assert expired.expired == COIN(15)
        assert expired.lot_id == promo.lot_id
        assert expired.value is None
        assert wallets.balance("alice", COIN) == COIN(100)
        assert wallets.expire() == ()
        assert wallets.balances([AccountKey.expired(COIN)]) == {AccountKey.expired(COIN): 15}
        assert wallets.verify().ok

    def test_a_callers_key_cannot_block_expiry(self, wallets: Wallets, clock: ManualClock) -> None:
        promo = promote(wallets, expires_in=timedelta(days=1))
        buy(wallets, f"expiry:{promo.lot_id}", "bob", 10)  # the key expiry's transaction names
        clock.advance(timedelta(days=1))
        (expired,) = wallets.expire()
        assert expired.lot_id == promo.lot_id
        assert wallets.balance("alice", COIN) == COIN(0)
        assert buy(wallets, f"expiry:{promo.lot_id}", "bob", 10).balance == COIN(10)  # replayed
        assert wallets.verify().ok

    def test_an_expiry_in_another_offset_is_the_same_request(self, wallets: Wallets) -> None:
        at = datetime(2026, 3, 1, 12, tzinfo=UTC)
        first = promote(wallets, expires_at=at)
        again = promote(wallets, expires_at=at.astimezone(timezone(timedelta(hours=9))))
        assert again == first

    def test_an_expiry_beyond_the_calendar_is_refused(self, wallets: Wallets) -> None:
        with pytest.raises(ValidationError, match="cannot expire"):
            promote(wallets, expires_in=relativedelta(years=9000))
        assert wallets.verify().transactions == 0

    def test_expire_limit_validated(self, wallets: Wallets) -> None:
        with pytest.raises(InvalidAmountError):
            wallets.expire(limit=0)


class TestQueries:
    def test_history_pagination_and_filters(self, wallets: Wallets, clock: ManualClock) -> None:
        for i in range(5):
            buy(wallets, f"p{i}", "alice", 10)
            clock.advance(timedelta(hours=1))
        for i in range(3):
            spend(wallets, f"s{i}", "alice", 1)
            clock.advance(timedelta(hours=1))
        account = AccountKey.wallet("alice", COIN)
        page = wallets.history(account, limit=3)
        assert [e.kind for e in page.entries] == [TransactionKind.SPEND] * 3
        assert [e.balance_after for e in page.entries] == [47, 48, 49]
        seen = list(page.entries)
        while page.next_cursor is not None:
            page = wallets.history(account, limit=3, cursor=page.next_cursor)
            seen.extend(page.entries)
        assert len(seen) == 8
        assert [e.sequence for e in seen] == sorted((e.sequence for e in seen), reverse=True)
        purchases = wallets.history(account, kinds=[TransactionKind.PURCHASE])
        assert len(purchases.entries) == 5
        assert purchases.next_cursor is None
        window = wallets.history(
            account, since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)
        )
        assert [e.cause.id for e in window.entries] == ["p2", "p1"]
        entry = seen[0]
        # The coins go to the spent account, their value from deferred revenue to revenue.
        assert entry.counterparties == (
            AccountKey.spent(COIN),
            AccountKey.system(AccountKind.DEFERRED_REVENUE, Currency.of("USD")),
            AccountKey.system(AccountKind.REVENUE, Currency.of("USD")),
        )
        assert entry.cause == Cause("item", "s2")
        with pytest.raises(InvalidIdentifierError):
            wallets.history(account, cursor="abc")
        with pytest.raises(InvalidAmountError):
            wallets.history(account, limit=0)
        with pytest.raises(NaiveDatetimeError):
            wallets.history(account, since=datetime(2026, 1, 1))  # noqa: DTZ001
        with pytest.raises(ValidationError, match="empty"):
            wallets.history(account, since=T0, until=T0)

    def test_deferred_revenue(self, wallets: Wallets) -> None:
        buy(wallets, "p1", "alice", 100, "0.99")
        buy(wallets, "p2", "bob", 500, "4.99")
        wallets.credit(
            "eur", holder="carol", amount=COIN(10), origin=LotOrigin.PURCHASE,
            cause=Cause("purchase", "eur"), value=Money("0.10", "EUR"),
        )  # fmt: skip
        wallets.credit(
            "b1", holder="alice", amount=COIN(10), origin=LotOrigin.BONUS, cause=Cause("b", "1")
        )
        assert wallets.deferred_revenue() == {
            "EUR": Money("0.10", "EUR"),
            "USD": Money("5.98", "USD"),
        }
        spend(wallets, "s1", "alice", 60)  # 10 bonus, then 50 paid coins: 0.49 recognised
        assert wallets.deferred_revenue()["USD"] == Money("5.49", "USD")
        spend(wallets, "s2", "alice", 50)
        assert wallets.deferred_revenue()["USD"] == Money("4.99", "USD")
        assert wallets.lots("alice", COIN) == []

    def test_events_are_delivered_at_least_once(self, wallets: Wallets) -> None:
        buy(wallets, "p1", "alice", 10)
        spend(wallets, "s1", "alice", 1)
        spend(wallets, "s1", "alice", 1)  # a replay writes no event

        class Flaky:
            def __init__(self) -> None:
                self.seen: list[OutboxEvent] = []
                self.fail_next = True

            def deliver(self, event: OutboxEvent) -> None:
                if self.fail_next:
                    self.fail_next = False
                    raise ConnectionError("broker down")
                self.seen.append(event)

        sink = Flaky()
        with pytest.raises(ConnectionError):
            wallets.deliver_events(sink)
        assert wallets.deliver_events(sink) == 2
        assert [e.type for e in sink.seen] == ["coins.credited", "coins.spent"]
        assert wallets.deliver_events(sink) == 0


class TestAtomicity:
    def test_exception_inside_unit_of_work_leaves_nothing(
        self, store: MemoryStore, wallets: Wallets
    ) -> None:
        buy(wallets, "p1", "alice", 10)
        wallet = AccountKey.wallet("alice", COIN)
        transaction = Transaction(
            id="inner",
            kind=TransactionKind.PURCHASE,
            postings=(Posting(AccountKey.issuance(COIN), -5), Posting(wallet, 5)),
            occurred_at=T0,
            idempotency_key="inner",
            cause=Cause("purchase", "inner"),
        )

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.unit_of_work() as uow:  # noqa: PT012 (the point)
            uow.ledger.record(transaction, {AccountKey.issuance(COIN): -15, wallet: 15})
            uow.lots.add(Lot.new("inner-lot", wallet, LotOrigin.BONUS, 5, T0, "inner"))
            assert uow.ledger.balances([wallet]) == {wallet: 15}
            raise Boom
        assert wallets.balance("alice", COIN) == COIN(10)
        assert wallets.transaction("inner") is None
        report = wallets.verify()
        assert report.ok
        assert report.transactions == 1

    def test_failure_midway_rolls_back_everything(
        self, store: MemoryStore, clock: ManualClock
    ) -> None:
        class FailingIds:
            def __init__(self) -> None:
                self.calls = 0

            def __call__(self) -> str:
                self.calls += 1
                if self.calls == 2:  # the lot id, after the transaction was recorded
                    raise RuntimeError("crash between writes")
                return f"id-{self.calls}"

        wallets = Wallets(store, clock=clock, new_id=FailingIds())
        with pytest.raises(RuntimeError):
            buy(wallets, "p1", "alice", 10)
        healthy = Wallets(store, clock=clock)
        assert healthy.balance("alice", COIN) == COIN(0)
        report = healthy.verify()
        assert report.ok
        assert report.transactions == 0
        assert buy(healthy, "p1", "alice", 10).balance == COIN(10)

    def test_concurrent_spends_never_overdraw(self, wallets: Wallets) -> None:
        buy(wallets, "p1", "alice", 100)
        failures: list[Exception] = []

        def worker(n: int) -> None:
            for i in range(20):
                try:
                    spend(wallets, f"s-{n}-{i}", "alice", 1)
                except InsufficientFunds as error:
                    failures.append(error)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert wallets.balance("alice", COIN) == COIN(0)
        assert len(failures) == 8 * 20 - 100
        assert wallets.verify().ok


class TestBatch:
    def test_batch_commits_once(self, wallets: Wallets) -> None:
        with wallets.batch() as bulk:
            for n in range(10):
                buy(bulk, f"p{n}", "alice", 10)
            spend(bulk, "s1", "alice", 95)
            assert bulk.balance("alice", COIN) == COIN(5)
        assert wallets.balance("alice", COIN) == COIN(5)
        assert buy(wallets, "p3", "alice", 10).balance == COIN(40)  # the first result, replayed
        assert wallets.verify().ok

    def test_failed_command_voids_the_batch(self, wallets: Wallets) -> None:
        buy(wallets, "p0", "alice", 10)
        with pytest.raises(StorageError, match="batch"), wallets.batch() as bulk:  # noqa: PT012
            buy(bulk, "p1", "alice", 10)
            with pytest.raises(InsufficientFunds):
                spend(bulk, "s1", "alice", 1000)
            with pytest.raises(StorageError):
                buy(bulk, "p2", "alice", 10)
        assert wallets.balance("alice", COIN) == COIN(10)
        assert wallets.verify().transactions == 1

    def test_the_outer_wallets_refuse_while_their_batch_is_open(self, wallets: Wallets) -> None:
        with wallets.batch() as bulk:
            buy(bulk, "p1", "alice", 10)
            with pytest.raises(StorageError, match="use the Wallets that batch"):
                wallets.balance("alice", COIN)
            with pytest.raises(StorageError, match="use the Wallets that batch"):
                buy(wallets, "p2", "alice", 10)
            buy(bulk, "p3", "alice", 10)
        assert wallets.balance("alice", COIN) == COIN(20)
        # Other threads just wait for the batch, as for any unit of work.
        seen: list[UnitAmount] = []
        with wallets.batch() as bulk:
            reader = threading.Thread(target=lambda: seen.append(wallets.balance("alice", COIN)))
            reader.start()
            buy(bulk, "p4", "alice", 10)
        reader.join()
        assert seen == [COIN(30)]

    def test_exception_in_block_keeps_nothing(self, wallets: Wallets) -> None:
        with pytest.raises(KeyError), wallets.batch() as bulk:  # noqa: PT012
            buy(bulk, "p1", "alice", 10)
            raise KeyError("boom")
        assert wallets.balance("alice", COIN) == COIN(0)


class _EnteredOnly:
    """A unit of work whose repositories exist only between entry and exit, as
    an adapter's that binds them to a connection taken on entry would."""

    def __init__(self, inner: UnitOfWork) -> None:
        self._inner = inner
        self._entered = False

    def _open(self) -> UnitOfWork:
        if not self._entered:
            raise StorageError("the repositories exist only inside the 'with' block")
        return self._inner

    @property
    def ledger(self) -> LedgerRepository:
        return self._open().ledger

    @property
    def lots(self) -> LotRepository:
        return self._open().lots

    @property
    def idempotency(self) -> IdempotencyRepository:
        return self._open().idempotency

    @property
    def outbox(self) -> OutboxRepository:
        return self._open().outbox

    @property
    def records(self) -> RecordRepository:
        return self._open().records

    def __enter__(self) -> Self:
        self._inner.__enter__()
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._entered = False
        self._inner.__exit__(exc_type, exc, traceback)

    def commit(self) -> None:
        self._inner.commit()

    def rollback(self) -> None:
        self._inner.rollback()


class _EnteredOnlyStore:
    def __init__(self) -> None:
        self._inner = MemoryStore()

    def unit_of_work(self) -> _EnteredOnly:
        return _EnteredOnly(self._inner.unit_of_work())


def test_a_batch_reaches_the_repositories_only_once_it_has_entered() -> None:
    wallets = Wallets(_EnteredOnlyStore(), clock=ManualClock(T0))
    buy(wallets, "p0", "alice", 10)
    with wallets.batch() as bulk:
        buy(bulk, "p1", "alice", 10)
        spend(bulk, "s1", "alice", 15)
    assert wallets.balance("alice", COIN) == COIN(5)
    assert wallets.verify().ok


def test_a_batch_closed_on_another_thread_leaves_the_wallets_usable() -> None:
    wallets = Wallets(MemoryStore())

    def job() -> Generator[Wallets]:
        with wallets.batch() as bulk:
            yield bulk

    suspended = job()
    next(suspended)  # the batch is open, registered under this thread
    closer = threading.Thread(target=suspended.close)
    closer.start()
    closer.join()
    assert wallets.balance("alice", COIN) == COIN(0)


class _Sink:
    def deliver(self, event: OutboxEvent) -> None:
        del event


class _FixedClock:
    """A host's clock that always says *at*."""

    def __init__(self, at: object) -> None:
        self.at = at

    def now(self) -> Any:
        return self.at


@pytest.mark.parametrize(
    ("at", "error"),
    [
        (datetime(2026, 1, 1), NaiveDatetimeError),  # noqa: DTZ001 (the point)
        ("2026-01-01T00:00:00Z", InvalidTypeError),
    ],
)
def test_a_host_clock_giving_no_aware_time_is_refused_by_every_command(
    at: object, error: type[Exception]
) -> None:
    """The commands (and the balance, which leaves out lapsed lots) take the
    clock's time as it is when it is a UTC datetime and check it otherwise;
    what they build from it is not checked again."""
    store = MemoryStore()
    buy(Wallets(store, clock=ManualClock(T0)), "p1", "alice", 10)
    wallets = Wallets(store, clock=_FixedClock(at))
    with pytest.raises(error, match="clock time"):
        buy(wallets, "p2", "alice", 10)
    with pytest.raises(error, match="clock time"):
        spend(wallets, "s1", "alice", 1)
    with pytest.raises(error, match="clock time"):
        wallets.expire()
    # A balance leaves out lots lapsed by now: it reads the clock too.
    with pytest.raises(error, match="clock time"):
        wallets.balance("alice", COIN)
    assert Wallets(store, clock=ManualClock(T0)).balance("alice", COIN) == COIN(10)
    assert wallets.verify().transactions == 1


@pytest.mark.parametrize(("bad", "error"), [("", InvalidIdentifierError), (7, InvalidTypeError)])
def test_a_bad_transaction_id_from_the_hosts_new_id_is_refused_and_nothing_kept(
    bad: Any, error: type[Exception]
) -> None:
    """The host's ``new_id`` makes the ids of transactions (and so of their
    events) and lots: each is checked like any id."""
    ids: list[Any] = ["tx-1", "lot-1", bad]
    wallets = Wallets(MemoryStore(), clock=ManualClock(T0), new_id=iter(ids).__next__)
    buy(wallets, "p1", "alice", 5)
    with pytest.raises(error, match="transaction id"):
        spend(wallets, "s1", "alice", 2)
    assert wallets.balance("alice", COIN) == COIN(5)
    assert wallets.verify().transactions == 1


def test_a_commands_event_takes_its_transactions_id() -> None:
    """One event per command, under its transaction's id: consumers that
    deduplicate on ``event.id`` see each command once."""
    wallets = Wallets(MemoryStore(), clock=ManualClock(T0))
    bought = wallets.credit(
        "p1",
        holder="alice",
        amount=COIN(5),
        origin=LotOrigin.BONUS,
        cause=Cause("bonus", "p1"),
    )
    spent = spend(wallets, "s1", "alice", 2)

    class Sink:
        def __init__(self) -> None:
            self.events: list[OutboxEvent] = []

        def deliver(self, event: OutboxEvent) -> None:
            self.events.append(event)

    sink = Sink()
    assert wallets.deliver_events(sink) == 2
    assert [(e.id, e.transaction_id, e.type) for e in sink.events] == [
        (bought.transaction_id, bought.transaction_id, "coins.credited"),
        (spent.transaction_id, spent.transaction_id, "coins.spent"),
    ]


def test_every_argument_of_the_service_is_checked() -> None:
    store = MemoryStore()
    with pytest.raises(InvalidTypeError, match="store"):
        Wallets(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="clock"):
        Wallets(store, clock="now")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="new_id"):
        Wallets(store, new_id="id-1")  # type: ignore[arg-type]
    wallets = Wallets(store, clock=ManualClock(T0))
    buy(wallets, "p1", "alice", 10)
    for also in (None, Posting(AccountKey.issuance(COIN), -1)):
        with pytest.raises(InvalidTypeError, match="also"):
            wallets.spend(
                "s1",
                holder="alice",
                amount=COIN(1),
                cause=Cause("item", "s1"),
                also=also,  # type: ignore[arg-type]
            )
    with pytest.raises(InvalidTypeError, match="kinds"):
        wallets.history(wallet("alice"), kinds=5)  # type: ignore[arg-type]
    for accounts in (5, ["alice"]):
        with pytest.raises(InvalidTypeError, match="accounts"):
            wallets.balances(accounts)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="sink"):
        wallets.deliver_events(None)  # type: ignore[arg-type]
    assert wallets.deliver_events(_Sink()) == 1
    assert wallets.balance("alice", COIN) == COIN(10)
    assert wallets.verify().transactions == 1


def test_metadata_is_checked_before_the_fingerprint() -> None:
    """Bad metadata gets the metadata check's own error, not whatever
    fingerprinting it would raise."""
    wallets = Wallets(MemoryStore())
    buy(wallets, "p1", "alice", 10)
    loop: list[object] = []
    loop.append(loop)
    bad: list[object] = [{"note": loop}, {"ratio": 0.5}, {1: "x"}, {"": "x"}, 7, [("k", "v")]]
    for metadata in bad:
        with pytest.raises((InvalidTypeError, InvalidIdentifierError), match="metadata"):
            wallets.credit(
                "k1",
                holder="alice",
                amount=COIN(5),
                origin=LotOrigin.ADJUSTMENT,
                cause=Cause("support", "1"),
                metadata=metadata,  # type: ignore[arg-type]
            )
        with pytest.raises((InvalidTypeError, InvalidIdentifierError), match="metadata"):
            wallets.spend(
                "s1",
                holder="alice",
                amount=COIN(1),
                cause=Cause("item", "1"),
                metadata=metadata,  # type: ignore[arg-type]
            )
    credited = wallets.credit(
        "k1",
        holder="alice",
        amount=COIN(5),
        origin=LotOrigin.ADJUSTMENT,
        cause=Cause("support", "1"),
        metadata={"ticket": "T-1", "urgent": True, "staff": "sam", "reason": "refund in coins"},
    )
    transaction = wallets.transaction(credited.transaction_id)
    assert transaction is not None
    assert transaction.meta == {
        "ticket": "T-1",
        "urgent": True,
        "staff": "sam",
        "reason": "refund in coins",
    }


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {"staff": "sam"},
        {"reason": "typo"},
        {"staff": " ", "reason": "typo"},
        {"staff": "sam", "case": ""},
    ],
)
def test_an_adjustment_names_its_staff_and_why(metadata: dict[str, str] | None) -> None:
    wallets = Wallets(MemoryStore())
    with pytest.raises(ValidationError, match="staff"):
        wallets.credit(
            "k1",
            holder="alice",
            amount=COIN(5),
            origin=LotOrigin.ADJUSTMENT,
            cause=Cause("support", "1"),
            metadata=metadata,
        )
    assert wallets.verify().transactions == 0
    assert wallets.credit(
        "k1",
        holder="alice",
        amount=COIN(5),
        origin=LotOrigin.ADJUSTMENT,
        cause=Cause("support", "1"),
        metadata={"staff": "sam", "case": "case-7"},
    ).balance == COIN(5)


def test_a_credit_that_merges_checks_its_cause_too() -> None:
    wallets = Wallets(MemoryStore(), merge_origins={LotOrigin.PROMOTION})
    with pytest.raises(InvalidTypeError, match="cause"):
        wallets.credit(
            "k1",
            holder="alice",
            amount=COIN(5),
            origin=LotOrigin.PROMOTION,
            cause="daily",  # type: ignore[arg-type]
        )
    assert wallets.verify().transactions == 0


def test_what_a_new_user_tripped_on_is_said_plainly(tmp_path: Path) -> None:
    """A float value is refused as a float; a directory or a missing folder is
    named; the unit's supply limit is called that; an unbalanced transaction
    names its idempotency key."""
    wallets = Wallets(MemoryStore())
    with pytest.raises(FloatNotAllowedError, match=r"0\.99"):
        wallets.credit(
            "k",
            holder="ann",
            amount=Unit("COIN")(1),
            origin=LotOrigin.PURCHASE,
            cause=Cause("purchase", "p"),
            value=0.99,  # type: ignore[arg-type]
        )
    with pytest.raises(ValidationError, match="is a directory"):
        SqliteStore(tmp_path)
    with pytest.raises(ValidationError, match="does not exist; create it first"):
        SqliteStore(tmp_path / "missing" / "books.db")
    coin = Unit("COIN")
    wallets.credit(
        "big",
        holder="ann",
        amount=coin(MAX_MINOR_UNITS - 1),
        origin=LotOrigin.BONUS,
        cause=Cause("bonus", "b"),
    )
    with pytest.raises(BalanceLimitExceeded, match="total supply limit"):
        wallets.credit(
            "more", holder="bob", amount=coin(2), origin=LotOrigin.BONUS, cause=Cause("bonus", "b")
        )
    with pytest.raises(UnbalancedTransactionError, match="idempotency key 'order-9'"):
        Transaction(
            id="t-1",
            kind=TransactionKind.ADJUSTMENT,
            postings=(Posting(AccountKey.issuance(coin), -1), Posting(AccountKey.spent(coin), 2)),
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            idempotency_key="order-9",
            cause=Cause("c", "1"),
        )
