"""A review of the PostgreSQL adapter: races and faults that lose or
duplicate money, or break the port's contract, each shown against the real
server (each failed before its fix)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg_pool
import pytest

from coinecon.adapters.fake_payouts import FakePayoutGateway
from coinecon.adapters.postgres import PostgresStore, PostgresUnitOfWork, RetryableStorageError
from coinecon.adapters.postgres._ledger import _Ledger
from coinecon.creators.conversion import ConversionRate
from coinecon.creators.payouts import PayoutPolicy
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import AccountKey, AccountKind, Transaction, TransactionKind
from coinecon.money.money import Currency
from coinecon.testing.contract import DIAMOND, T0, gift, purchase, record, transaction
from economy_kit import Kit
from postgres_kit import conninfo, drop_schema, fresh_store, new_schema

USD = Currency.of("USD")
EUR = Currency.of("EUR")
CAROL = AccountKey.earnings("carol", DIAMOND)


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    with fresh_store(pool_size=6) as store:
        yield store


def admin(query: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """Run *query* on a connection of its own, committed at once."""
    with psycopg.connect(conninfo(), autocommit=True) as connection:
        cursor = connection.execute(query, parameters)
        return cursor.fetchall() if cursor.description else []


def wait_until_blocked(pid: int, thread: threading.Thread, timeout: float = 10.0) -> None:
    """Wait until the backend *pid* waits for a lock (or *thread* is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and thread.is_alive():
        found = admin("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", pid)
        if found and found[0][0] == "Lock":
            return
        time.sleep(0.01)


def in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """Start *target* in a thread; the list gets what it raised."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as error:  # noqa: BLE001 (the test reads it)
            failures.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failures


def conversion(transaction_id: str, units: int, currency: Currency) -> Transaction:
    """What Earnings.convert records: *units* of carol's diamonds converted
    into as many cents owed to her in *currency*."""
    return transaction(
        transaction_id,
        TransactionKind.CONVERSION,
        (CAROL, -units),
        (AccountKey.issuance(DIAMOND), units),
        (AccountKey.system(AccountKind.CREATOR_SHARE, currency), units),
        (AccountKey(AccountKind.CREATOR_PAYABLE, "carol", currency), -units),
    )


def earn(store: PostgresStore, units: int) -> int:
    """Give carol *units* diamonds; return the shard they were credited on."""
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-buy", "alice", units))
        record(uow, gift("tx-gift", "alice", "carol", units))
        uow.commit()
        return uow.shard


# -- the earnings floor ------------------------------------------------------------


def test_two_conversions_of_the_same_earnings_cannot_both_commit(store: PostgresStore) -> None:
    """Carol has 100 diamonds and converts them all twice at once, to USD and
    to EUR (so no payable account serialises the two). The second one's
    _recheck waits for the first's lock on the one shard row there was; when
    the first commits, READ COMMITTED re-reads that row (unchanged: the first
    wrote its debit to a new row of its own shard) and never sees the new
    row, so the sum is still 100 and the second debit passes too."""
    credited_on = earn(store, 100)
    with store.unit_of_work() as first:
        if first.shard == credited_on:  # as a connection of another pid would
            first.shard = (credited_on + 1) % store.shards
        record(first, conversion("tx-usd", 100, USD))  # locks the shard row, adds one
        pid: list[int] = []

        def second() -> None:
            with store.unit_of_work() as uow:
                pid.append(uow.connection().info.backend_pid)
                assert uow.ledger.balances([CAROL]) == {CAROL: 100}
                record(uow, conversion("tx-eur", 100, EUR))
                uow.commit()

        thread, failures = in_thread(second)
        while not pid and thread.is_alive():
            time.sleep(0.01)
        if pid:
            wait_until_blocked(pid[0], thread)
        first.commit()
        thread.join()
    with store.unit_of_work() as uow:
        balance = uow.ledger.balances([CAROL])[CAROL]
    converted = 100 - balance
    assert balance >= 0, f"carol converted {converted} of her 100 diamonds ({failures=})"


# -- records read without a lock -----------------------------------------------------


def test_a_conversion_never_converts_earnings_still_held(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held earnings (PayoutPolicy.holding) may not be converted. Earnings.convert
    reads the tallies (what is held) and then the earnings balance; a gift
    committing in between adds to both, but the conversion holds the old
    tally: it sees the gift's diamonds as free and converts them. Nothing
    catches it: the tally it read is not written back (nothing in it was
    released), and _recheck only compares the balance with itself."""
    kit = Kit(
        store,
        conversion_rate=ConversionRate({"USD": "0.005"}),
        payout_policy=PayoutPolicy(holding=timedelta(days=7)),
        payout_gateway=FakePayoutGateway(),
    )
    economy = kit.economy
    kit.adult("alice")
    kit.creator("cat")
    for n in range(3):
        kit.buy("alice", "coins_1000", key=f"buy-{n}")

    def lion(key: str) -> None:
        economy.send_gift("alice", "cat", "lion", context="s", region="US", idempotency_key=key)

    lion("lion-0")
    lion("lion-1")  # 299 diamonds, held until March 10th
    kit.clock.set(datetime(2026, 3, 10, tzinfo=UTC))
    economy.convert("cat", "USD", units=100, idempotency_key="c-1")  # the tally released
    assert economy.creator("cat").held == ()
    earned = AccountKey.earnings("cat", economy.creator_unit)
    original = _Ledger.balances
    armed = [threading.get_ident()]

    def balances(self: _Ledger, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        if armed and armed[0] == threading.get_ident() and earned in accounts:
            armed.clear()  # a gift commits between the tallies' read and this one
            thread, failures = in_thread(lambda: lion("lion-2"))
            thread.join()
            assert failures == []
        return original(self, accounts)

    monkeypatch.setattr(_Ledger, "balances", balances)
    receipt = economy.convert("cat", "USD", idempotency_key="c-2")
    monkeypatch.undo()
    held = sum(units for _, units in economy.creator("cat").held)
    assert held in {149, 150}  # lion-2's diamonds
    left = economy.earnings("cat").amount
    assert left >= held, f"converted {receipt.units}: {held} held, {left} left"


def test_a_conversion_survives_gifts_landing_while_it_runs(store: PostgresStore) -> None:
    """The hot creator: a gift lands in every attempt of a conversion,
    between its read of the earnings and its record. A credit cannot make a
    checked debit unsafe, yet _recheck wants the balance unchanged, so every
    attempt is refused and run() gives up; the retries read the earnings no
    differently, so they lose the same race again. (Under a steady stream of
    gifts the window is never empty: _recheck's FOR UPDATE even waits for
    the gifts in flight on the creator's shards, then sees their credits.)"""
    earn(store, 100)
    attempts: list[int] = []

    def convert(uow: PostgresUnitOfWork) -> None:
        attempts.append(len(attempts))
        seen = uow.ledger.balances([CAROL])[CAROL]
        with store.unit_of_work() as other:  # a viewer's gift, committed meanwhile
            n = len(attempts)
            record(other, purchase(f"tx-buy-{n}", f"viewer-{n}", 1))
            record(other, gift(f"tx-gift-{n}", f"viewer-{n}", "carol", 1))
            other.commit()
        record(uow, conversion(f"tx-usd-{n}", seen, USD))
        uow.commit()

    store.run(convert)
    with store.unit_of_work() as uow:
        assert uow.ledger.balances([CAROL]) == {CAROL: len(attempts)}


# -- the deferred writes sent with the commit ------------------------------------------


def test_a_commit_refused_by_a_deferred_write_ends_the_transaction(
    store: PostgresStore,
) -> None:
    """commit() promises that the unit of work stays usable (the next
    statement begins the next transaction). When a write sent with the COMMIT
    (here the idempotency key this unit of work found free, taken meanwhile)
    is refused, the server skips the rest of the pipeline, COMMIT included:
    the transaction is left open in the aborted state, and every later
    statement of the unit of work fails with a plain, non-retryable
    StorageError ("current transaction is aborted") until it is left."""
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-0", "alice", 1))  # alice's wallet has a row
        uow.commit()
        assert uow.idempotency.get("key-1") is None
        record(uow, purchase("tx-1", "alice", 5))  # alice's wallet locked
        with store.unit_of_work() as other:  # the key taken meanwhile
            other.idempotency.add(IdempotencyRecord("key-1", "f", "r", T0))
            other.commit()
        uow.idempotency.add(IdempotencyRecord("key-1", "f", "r", T0))
        with pytest.raises(RetryableStorageError):
            uow.commit()
        record(uow, purchase("tx-2", "bob", 5))
        uow.commit()


# -- a host's pool -------------------------------------------------------------------


def test_times_read_through_a_host_pool_are_utc() -> None:
    """The store's own pool sets TimeZone to UTC; with a host's pool it sets
    nothing, and every timestamptz read back (a transaction's time, a lot's
    creation and expiry, a record's creation) carries the session's zone:
    equal instants, but other offsets in whatever is rendered from them
    (receipts, statements, exports), unlike the same store on its own pool."""
    schema = new_schema()
    pool: psycopg_pool.ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = (
        psycopg_pool.ConnectionPool(
            conninfo() + " options='-c TimeZone=Asia/Kolkata'",
            min_size=1,
            max_size=2,
            kwargs={"autocommit": False},
            open=True,
        )
    )
    try:
        with PostgresStore(pool=pool, schema=schema) as store, store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 5))
            uow.commit()
            found = uow.ledger.get("tx-1")
            assert found is not None
            assert found.occurred_at.isoformat() == T0.isoformat()
    finally:
        pool.close()
        drop_schema(schema)
