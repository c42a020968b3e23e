"""What the SQLite adapter does beyond the contract: files, schema, locks, limits."""

from __future__ import annotations

import io
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SCHEMA_VERSION, SqliteStore, _ledger, _sql, _store
from coinecon.adapters.sqlite.schema import APPLICATION_ID, HOLDER_KINDS, MIGRATIONS
from coinecon.clock import ManualClock
from coinecon.errors import InvalidTypeError, StorageError, ValidationError
from coinecon.export import ExportFormat, export_ledger
from coinecon.ledger import journal as ledger
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Cause,
    Posting,
    Transaction,
    TransactionKind,
)
from coinecon.ledger.lots import Lot, LotConsumption, LotOrigin
from coinecon.ledger.verification import verify_books
from coinecon.ledger.wallets import SpendResult, Wallets
from coinecon.money.money import Currency, Money
from coinecon.money.units import Unit
from coinecon.ports import Store
from coinecon.testing import contract
from coinecon.testing.contract import COIN, T0, TRICKY, purchase, record, wallet


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "coins.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(path) as store:
        yield store


def pragma(path: Path, name: str) -> object:
    with closing(sqlite3.connect(path)) as raw:
        return raw.execute(f"PRAGMA {name}").fetchone()[0]


def triggers(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as raw:
        return [
            row[0] for row in raw.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
        ]


def tables(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as raw:
        rows = raw.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        return [name for (name,) in rows]


# -- opening, schema and migrations ------------------------------------------------


def test_a_new_file_gets_the_schema_in_wal_mode(store: SqliteStore, path: Path) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert pragma(path, "application_id") == APPLICATION_ID
    assert pragma(path, "journal_mode") == "wal"
    assert {"accounts", "transactions", "postings", "lots", "idempotency", "outbox"} <= set(
        tables(path)
    )
    assert store.path == str(path)
    assert not store.read_only
    assert repr(store) == f"SqliteStore({str(path)!r})"


def test_data_survives_a_reopen(path: Path) -> None:
    transaction = purchase("tx-1", "alice", 50, metadata=(("sku", "coins_50"),))
    lot = Lot.new("lot-1", wallet("alice"), LotOrigin.PURCHASE, 50, T0, "tx-1")
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        record(uow, transaction)
        uow.lots.add(lot)
        uow.commit()
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        assert uow.ledger.get("tx-1") == transaction
        assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 50}
        assert list(uow.lots.all()) == [lot]
        report = verify_books(
            uow.ledger.transactions(), uow.ledger.postings(), uow.ledger.accounts(), uow.lots.all()
        )
        assert report.ok, str(report)


def test_an_empty_sqlite_database_gets_the_schema(path: Path) -> None:
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("CREATE TABLE scratch (x)")
        raw.execute("DROP TABLE scratch")
    assert path.stat().st_size > 0
    assert pragma(path, "user_version") == 0
    with SqliteStore(path):
        pass
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_an_empty_file_gets_the_schema(path: Path) -> None:
    path.touch()
    with SqliteStore(path):
        pass
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_a_newer_schema_is_refused(store: SqliteStore, path: Path) -> None:
    store.close()
    newer = SCHEMA_VERSION + 41
    with closing(sqlite3.connect(path)) as raw:
        raw.execute(f"PRAGMA user_version = {newer}")
    with pytest.raises(StorageError, match=rf"version {newer}.*version {SCHEMA_VERSION}"):
        SqliteStore(path)
    assert pragma(path, "user_version") == newer


def test_a_file_that_is_not_sqlite_is_refused(path: Path) -> None:
    garbage = os.urandom(4096)
    path.write_bytes(garbage)
    with pytest.raises(StorageError, match="not a database"):
        SqliteStore(path)
    assert path.read_bytes() == garbage


def test_a_foreign_database_is_refused_untouched(path: Path) -> None:
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("CREATE TABLE users (name TEXT)")
        raw.execute("INSERT INTO users VALUES ('x')")
        raw.commit()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="another application"):
        SqliteStore(path)
    assert path.read_bytes() == before
    assert pragma(path, "journal_mode") == "delete"


def test_another_applications_id_is_refused(path: Path) -> None:
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("PRAGMA application_id = 42")
    with pytest.raises(StorageError, match=r"application_id 0x2a"):
        SqliteStore(path)


def _with_step(monkeypatch: pytest.MonkeyPatch, step: tuple[str, ...]) -> int:
    migrations = (*MIGRATIONS, step)
    monkeypatch.setattr(_store, "MIGRATIONS", migrations)
    monkeypatch.setattr(_store, "SCHEMA_VERSION", len(migrations))
    return len(migrations)


def test_an_older_schema_is_migrated_forward(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5))
        uow.commit()
    latest = _with_step(
        monkeypatch,
        (
            "ALTER TABLE accounts ADD COLUMN note TEXT",
            "CREATE TABLE audit (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
        ),
    )
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 5}
    assert pragma(path, "user_version") == latest
    assert "audit" in tables(path)
    with closing(sqlite3.connect(path)) as raw:
        columns = [row[1] for row in raw.execute("PRAGMA table_info(accounts)")]
    assert "note" in columns


def test_a_failing_migration_changes_nothing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteStore(path):
        pass
    _with_step(monkeypatch, ("CREATE TABLE audit (x)", "THIS IS NOT SQL"))
    with pytest.raises(StorageError, match="syntax error"):
        SqliteStore(path)
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert "audit" not in tables(path)
    monkeypatch.undo()
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        assert uow.ledger.accounts() == {}


def test_arguments_are_checked(path: Path) -> None:
    with pytest.raises(InvalidTypeError):
        SqliteStore(path, timeout=True)
    with pytest.raises(InvalidTypeError):
        SqliteStore(path, timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SqliteStore(path, timeout=0)
    for forever in (math.inf, math.nan, 10**12):
        with pytest.raises(ValidationError):
            SqliteStore(path, timeout=forever)
    with pytest.raises(ValidationError):
        SqliteStore(path, synchronous="SOMETIMES")
    with pytest.raises(InvalidTypeError):
        SqliteStore(path, read_only="no")  # type: ignore[arg-type]
    for wrong in (123, b"coins.db", None):
        with pytest.raises(InvalidTypeError):
            SqliteStore(wrong)  # type: ignore[arg-type]
    for name in (":memory:", "", "file:x.db?mode=memory"):
        with pytest.raises(ValidationError, match="file path"):
            SqliteStore(name)
    assert not path.exists()


def test_a_closed_store_is_refused(store: SqliteStore) -> None:
    uow = store.unit_of_work()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.unit_of_work()
    with pytest.raises(StorageError, match="closed"), uow:
        pass


def test_a_unit_of_work_open_at_close_still_ends_cleanly(store: SqliteStore) -> None:
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5))
        store.close()
        uow.commit()
    with SqliteStore(store.path) as again, again.unit_of_work() as uow:
        assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 5}


# -- read-only files -----------------------------------------------------------------


def test_a_read_only_store_reads_and_refuses_writes(path: Path) -> None:
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5))
        uow.lots.add(Lot.new("lot-1", wallet("alice"), LotOrigin.BONUS, 5, T0, "tx-1"))
        uow.commit()
    before = path.read_bytes()
    with SqliteStore(path, read_only=True) as store:
        assert store.read_only
        assert "read_only=True" in repr(store)
        with store.unit_of_work() as uow:
            assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 5}
            # Reads first, so that nothing could be kept in memory to write later.
            (lot,) = uow.lots.open_lots(wallet("alice"))
            assert uow.idempotency.get("k") is None
            writes: list[Callable[[], object]] = [
                lambda: record(uow, purchase("tx-2", "alice", 5)),
                lambda: uow.lots.add(
                    Lot.new("lot-2", wallet("alice"), LotOrigin.BONUS, 1, T0, "t")
                ),
                lambda: uow.lots.update(lot.take(3)[0]),
                lambda: uow.lots.record_consumption("tx-1", [LotConsumption(lot.id, 1)]),
                lambda: uow.idempotency.add(IdempotencyRecord("k", "f" * 64, "{}", T0)),
                lambda: uow.outbox.add(OutboxEvent("e", "coins.spent", T0, "{}")),
                lambda: uow.outbox.mark_delivered(["e"], T0),
            ]
            for write in writes:
                with pytest.raises(StorageError, match="read-only"):
                    write()
            assert uow.ledger.get("tx-2") is None
            assert uow.lots.open_lots(wallet("alice")) == [lot]
            assert uow.idempotency.get("k") is None
        # Two read-only units of work may be open at once: they take no write lock.
        with store.unit_of_work() as first, store.unit_of_work() as second:
            assert first.ledger.accounts() == second.ledger.accounts()
    assert path.read_bytes() == before
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        assert uow.ledger.get("tx-2") is None


def test_read_only_needs_an_existing_current_file(path: Path) -> None:
    with pytest.raises(StorageError):
        SqliteStore(path, read_only=True)
    path.touch()
    with pytest.raises(StorageError, match="needs migrating"):
        SqliteStore(path, read_only=True)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root bypasses file permissions; read_only=True covers read-only files",
)
def test_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "locked"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(StorageError):
            SqliteStore(directory / "coins.db")
    finally:
        directory.chmod(0o700)


# -- rows changed outside coinecon ------------------------------------------------------


def _books_to_tamper_with(path: Path) -> str:
    """A file with a purchase, a gift, their events and records, all through
    the wallet service; the gift's transaction id."""
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        wallets.credit(
            "p1",
            holder="alice",
            amount=COIN(10),
            origin=LotOrigin.PURCHASE,
            cause=Cause("purchase", "p1"),
            value=Money("1.00", "USD"),
            metadata={"channel": "app"},
        )
        gift = GIFT(wallets)
    return gift.transaction_id


def GIFT(wallets: Wallets) -> SpendResult:  # noqa: N802 (the one gift of these books)
    return wallets.spend("s1", holder="alice", amount=COIN(4), cause=Cause("gift", "s1"))


class _Sink:
    def deliver(self, event: OutboxEvent) -> None:
        del event


def test_another_trigger_refusing_a_posting_rolls_the_unit_of_work_back(
    store: SqliteStore, path: Path
) -> None:
    """A host's own trigger on the file refusing a posting: the unit of work
    is rolled back whole with SQLite's message, and refuses further use."""
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TRIGGER unlucky BEFORE INSERT ON postings WHEN NEW.amount = 13 "
            "BEGIN SELECT RAISE(ABORT, 'thirteen is unlucky'); END"
        )
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-0", "bob", 1))
        record(uow, purchase("tx-1", "alice", 13))
        with pytest.raises(StorageError, match=r"refused the writes.*rolled back: thirteen"):
            uow.commit()
        with pytest.raises(StorageError, match="rolled this unit of work back"):
            uow.ledger.accounts()
    with store.unit_of_work() as uow:
        assert uow.ledger.accounts() == {}


def _drop_the_append_only_triggers(db: sqlite3.Connection) -> None:
    """What a writer that changes the ledger must do first."""
    for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%append_only%'"
    ).fetchall():
        db.execute(f"DROP TRIGGER {name}")


_READERS: dict[str, Callable[[Wallets, str], object]] = {
    "verify": lambda wallets, _gift: wallets.verify(),
    "history": lambda wallets, _gift: wallets.history(wallet("alice")),
    "transaction": lambda wallets, gift: wallets.transaction(gift),
    "export": lambda wallets, _gift: export_ledger(
        wallets._store, io.StringIO(), file_format=ExportFormat.JSONL
    ),
    "lots": lambda wallets, _gift: wallets.lots("alice", COIN),
    "replay": lambda wallets, _gift: GIFT(wallets),
    "deliver": lambda wallets, _gift: wallets.deliver_events(_Sink()),
    "consumed": lambda wallets, gift: wallets.consumption(gift),
}
_POSTED_TWICE = (  # the gift's last posting moved to the account of the one before
    "UPDATE postings SET account_id = (SELECT account_id FROM postings "
    "WHERE sequence = (SELECT max(sequence) - 1 FROM postings)) "
    "WHERE sequence = (SELECT max(sequence) FROM postings)"
)
_CORRUPTIONS = {
    "transaction kind": ("UPDATE transactions SET kind = 'theft'", "verify"),
    "kind, in history": ("UPDATE transactions SET kind = 'theft'", "history"),
    "kind, by id": ("UPDATE transactions SET kind = 'theft'", "transaction"),
    "kind, exported": ("UPDATE transactions SET kind = 'theft'", "export"),
    "transaction time": ("UPDATE transactions SET occurred_at = 'yesterday'", "verify"),
    "naive time": ("UPDATE transactions SET occurred_at = '2026-01-01T00:00:00'", "verify"),
    "metadata not JSON": ("UPDATE transactions SET metadata = '{not json'", "verify"),
    "metadata not pairs": ("UPDATE transactions SET metadata = '{\"a\": 1}'", "verify"),
    "empty cause": ("UPDATE transactions SET cause_id = ''", "verify"),
    "account kind": ("UPDATE accounts SET kind = 'vault' WHERE kind = 'wallet'", "verify"),
    "unit code": ("UPDATE accounts SET asset_code = 'not a code' WHERE kind = 'wallet'", "verify"),
    "posting twice": (_POSTED_TWICE, "verify"),
    "lot origin": ("UPDATE lots SET origin = 'stolen'", "lots"),
    "lot time": ("UPDATE lots SET created_at = 'soon'", "lots"),
    "lot currency": ("UPDATE lots SET value_currency = 'XQQ'", "lots"),
    "record time": (
        "UPDATE transactions SET occurred_at = 'then' WHERE idempotency_key = 's1'",
        "replay",
    ),
    "result not JSON": (
        "UPDATE transactions SET result = 'not json' WHERE idempotency_key = 's1'",
        "replay",
    ),
    "result not a spend's": (
        "UPDATE transactions SET result = '{}' WHERE idempotency_key = 's1'",
        "replay",
    ),
    "postings not where the row says": ("UPDATE transactions SET postings = 1", "verify"),
    "postings of another transaction": (
        "UPDATE transactions SET first_sequence = first_sequence + 1",
        "history",
    ),
    "event time": ("UPDATE transactions SET occurred_at = 'now'", "deliver"),
    "event type": ("UPDATE transactions SET event_type = ''", "deliver"),
    "event id": ("UPDATE transactions SET event_id = id || char(10)", "deliver"),
    "consumed currency": ("UPDATE lot_consumptions SET value_currency = 'XQQ'", "consumed"),
    "chain into another account": (
        (
            "UPDATE postings SET previous = (SELECT min(sequence) FROM postings AS p "
            "WHERE p.account_id != postings.account_id) "
            "WHERE sequence = (SELECT last_sequence FROM accounts WHERE kind = 'wallet')"
        ),
        "history",
    ),
    "chain to no posting": (
        "UPDATE accounts SET last_sequence = 999 WHERE kind = 'wallet'",
        "history",
    ),
}


@pytest.mark.parametrize("corruption", list(_CORRUPTIONS))
def test_a_row_changed_outside_coinecon_is_a_storage_error(path: Path, corruption: str) -> None:
    """A value written into the file by other means, that coinecon could not
    have written, is reported as a StorageError naming the row when it is
    read, never as a bare ValueError or as a rule of the domain; the file is
    left as it was."""
    gift = _books_to_tamper_with(path)
    statement, reader = _CORRUPTIONS[corruption]
    with closing(sqlite3.connect(path)) as db, db:
        _drop_the_append_only_triggers(db)
        assert db.execute(statement).rowcount > 0
    before = path.read_bytes()
    read = _READERS[reader]
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        with pytest.raises(StorageError, match="cannot be read back"):
            read(wallets, gift)
    assert path.read_bytes() == before


def _commands_fail(store: SqliteStore) -> None:
    """On books from :func:`_books_to_tamper_with` that SQLite cannot write:
    a command and a batch raise StorageError."""
    wallets = Wallets(store, clock=ManualClock(T0))

    def bulk_work() -> None:
        with wallets.batch() as bulk:
            bulk.credit("p3", holder="bob", amount=COIN(5), origin=LotOrigin.BONUS, cause=CAUSE)
            bulk.spend("s2", holder="alice", amount=COIN(1), cause=CAUSE)

    with pytest.raises(StorageError, match="readonly"):
        wallets.credit("p2", holder="bob", amount=COIN(5), origin=LotOrigin.BONUS, cause=CAUSE)
    with pytest.raises(StorageError, match="readonly"):
        bulk_work()


CAUSE = Cause("test", "1")


def test_a_file_sqlite_may_not_write_fails_cleanly(path: Path) -> None:
    """SQLite refuses to write a file it may not (permissions, read-only
    media) with SQLITE_READONLY; ``PRAGMA query_only`` makes it do so whoever
    runs the test (root ignores file permissions). Commands fail with
    StorageError and the file is left as it was."""
    _books_to_tamper_with(path)
    before = path.read_bytes()
    with SqliteStore(path) as store:
        (connection,) = store._idle  # the one pooled connection
        connection.raw.execute("PRAGMA query_only = ON")
        _commands_fail(store)
    assert path.read_bytes() == before
    with SqliteStore(path, read_only=True) as store:
        assert Wallets(store).balance("alice", COIN) == COIN(6)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root bypasses file permissions; the query_only test covers the same failure",
)
def test_a_read_only_file_fails_cleanly(path: Path) -> None:
    _books_to_tamper_with(path)
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        with SqliteStore(path) as store:
            _commands_fail(store)
    finally:
        path.chmod(0o644)
    assert path.read_bytes() == before


# -- locking --------------------------------------------------------------------------


def test_a_lock_held_past_the_time_out_raises(path: Path) -> None:
    with SqliteStore(path, timeout=0.3) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with (
                pytest.raises(StorageError, match=r"locked.*time-out of 0.3 s"),
                store.unit_of_work(),
            ):
                pass
            assert 0.25 <= time.monotonic() - started < 5
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        with store.unit_of_work() as uow:
            record(uow, purchase("tx-1", "alice", 1))
            uow.commit()


def test_the_write_lock_held_by_another_thread_past_the_time_out_raises(path: Path) -> None:
    with SqliteStore(path, timeout=0.2) as store:
        entered, release = threading.Event(), threading.Event()

        def hold() -> None:
            with store.unit_of_work():
                entered.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert entered.wait(10)
            started = time.monotonic()
            with (
                pytest.raises(StorageError, match="another unit of work in this process held it"),
                store.unit_of_work(),
            ):
                pass
            assert 0.15 <= time.monotonic() - started < 5
        finally:
            release.set()
            holder.join()
        with store.unit_of_work() as uow:  # free again once the holder is done
            record(uow, purchase("tx-1", "alice", 1))
            uow.commit()


@pytest.mark.parametrize("adapter", ["memory", "sqlite"])
def test_a_nested_unit_of_work_in_one_thread_is_refused(path: Path, adapter: str) -> None:
    """Both built-in stores refuse a thread's second unit of work while its
    first is open (it would wait for itself); the first goes on unharmed. The
    port does not require it of other adapters."""
    store: Store = MemoryStore() if adapter == "memory" else SqliteStore(path)
    with store.unit_of_work() as uow:
        with pytest.raises(StorageError, match="already has a unit of work"):
            store.unit_of_work().__enter__()
        record(uow, purchase("tx-1", "alice", 1))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.ledger.get("tx-1") is not None
    if isinstance(store, SqliteStore):
        store.close()


# -- constraints in SQL ----------------------------------------------------------------


def test_sql_checks_the_balance_of_what_it_is_sent(store: SqliteStore) -> None:
    """A transaction whose own check was bypassed (as a buggy caller could)
    is refused by SQL when its postings are sent, and the unit of work is
    rolled back whole."""
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-0", "bob", 1))
        uow.commit()
    transaction = purchase("tx-1", "alice", 5)
    object.__setattr__(
        transaction,
        "postings",
        (Posting(AccountKey.issuance(COIN), -5), Posting(wallet("alice"), 6)),
    )
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-2", "carol", 2))
        uow.ledger.record(transaction, {AccountKey.issuance(COIN): -8, wallet("alice"): 6})
        with pytest.raises(StorageError, match="tx-1 sums to 1 COIN"):
            uow.commit()
        with pytest.raises(StorageError, match="rolled this unit of work back"):
            uow.ledger.accounts()
    with store.unit_of_work() as uow:
        assert uow.ledger.accounts() == {AccountKey.issuance(COIN): -1, wallet("bob"): 1}
        assert [t.id for t in uow.ledger.transactions()] == ["tx-0"]


def _bypassing(transaction: Transaction, *postings: Posting) -> Transaction:
    """*transaction* with other *postings*, past its own checks (as a buggy
    caller could build it)."""
    object.__setattr__(transaction, "postings", postings)
    return transaction


def test_sql_sums_a_unit_and_a_currency_of_one_code_apart(store: SqliteStore) -> None:
    usd_unit = AccountKey.system(AccountKind.ISSUANCE, Unit("USD"))
    usd = AccountKey.system(AccountKind.REVENUE, Currency.of("USD"))
    transaction = _bypassing(purchase("tx-1", "alice", 5), Posting(usd_unit, 5), Posting(usd, -5))
    with store.unit_of_work() as uow:
        uow.ledger.record(transaction, {usd_unit: 5, usd: -5})
        with pytest.raises(
            StorageError, match=r"tx-1 sums to -5 USD \(money\), tx-1 sums to 5 USD \(unit\)$"
        ):
            uow.commit()


def test_sql_lists_at_most_ten_unbalanced_transactions(store: SqliteStore) -> None:
    issuance = AccountKey.issuance(COIN)
    with store.unit_of_work() as uow:
        for n in range(11):
            transaction = _bypassing(purchase(f"tx-{n}", "alice", 1), Posting(issuance, -1))
            uow.ledger.record(transaction, {issuance: -1 - n})
        with pytest.raises(StorageError) as raised:
            uow.commit()
    message = str(raised.value)
    assert message.count("sums to -1 COIN (unit)") == 10
    assert "tx-9 sums" in message
    assert "tx-10 sums" not in message
    assert message.endswith("; there may be more")


def test_sql_finds_a_debt_in_any_transaction_of_one_flush(store: SqliteStore) -> None:
    carol = wallet("carol")
    issuance = AccountKey.issuance(COIN)
    overdraft = _bypassing(purchase("tx-1", "carol", 1), Posting(carol, -1), Posting(issuance, 1))
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-0", "alice", 1))
        uow.ledger.record(overdraft, {carol: -1, issuance: 0})
        with pytest.raises(StorageError, match="tx-1 takes wallet:carol:COIN to -1"):
            uow.commit()


def test_sql_lets_a_credit_pay_a_debt_off_in_part(store: SqliteStore) -> None:
    """Only a debit may take a holder's account below zero: a credit that
    leaves a chargeback's debt partly unpaid is fine."""
    carol = wallet("carol")
    issuance = AccountKey.issuance(COIN)
    chargeback = contract.transaction(
        "tx-cb", TransactionKind.CHARGEBACK, (carol, -5), (issuance, 5)
    )
    with store.unit_of_work() as uow:
        uow.ledger.record(chargeback, {carol: -5, issuance: 5})
        uow.ledger.record(purchase("tx-pay", "carol", 2), {issuance: 3, carol: -3})
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.ledger.balances([carol]) == {carol: -3}


def test_the_check_at_each_flush_reads_only_the_new_postings(store: SqliteStore) -> None:
    """It runs at every flush, so it must start from the postings written
    since the last one (by their sequence), never scan the ledger."""
    with store.unit_of_work() as uow:
        uow.ledger.accounts()
        connection = uow._connection
        assert connection is not None
        plan = connection.raw.execute("EXPLAIN QUERY PLAN " + _sql._UNBALANCED, (1,)).fetchall()
    assert "SEARCH p USING INTEGER PRIMARY KEY (rowid>?)" in plan[0][3]


def _seeded(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection to books from :func:`_books_to_tamper_with`:
    another program writing to the file."""
    _books_to_tamper_with(path)
    return sqlite3.connect(path, isolation_level=None)


def test_the_schema_refuses_any_writer_a_debit_into_debt_outside_a_chargeback(
    path: Path,
) -> None:
    with closing(_seeded(path)) as db:
        alice = db.execute("SELECT id FROM accounts WHERE kind = 'wallet'").fetchone()[0]
        issuance = db.execute("SELECT id FROM accounts WHERE kind = 'issuance'").fetchone()[0]
        for kind, refused in (("adjustment", True), ("chargeback", False)):
            db.execute("BEGIN")
            row = db.execute(
                "INSERT INTO transactions (id, kind, occurred_at, idempotency_key, cause_type, "
                "cause_id, metadata, first_sequence, postings) "
                "VALUES (?, ?, '2026-01-01T00:00:00.000000+00:00', ?, 't', '1', '[]', "
                "(SELECT max(sequence) + 1 FROM postings), 2) RETURNING row",
                (f"tx-{kind}", kind, f"key-{kind}"),
            ).fetchone()[0]
            insert = (
                "INSERT INTO postings (transaction_row, account_id, amount, balance_after) "
                "VALUES (?, ?, ?, ?)"
            )
            db.execute(insert, (row, issuance, 7, -3))  # a system account may be below zero
            if refused:
                with pytest.raises(sqlite3.IntegrityError, match="outside a chargeback"):
                    db.execute(insert, (row, alice, -7, -1))
            else:
                db.execute(insert, (row, alice, -7, -1))
            db.execute("ROLLBACK")


@pytest.mark.parametrize("statement", ["UPDATE {0} SET {1} = {1}", "DELETE FROM {0}"])
@pytest.mark.parametrize(
    ("table", "column"),
    [("transactions", "kind"), ("postings", "amount"), ("lot_consumptions", "amount")],
)
def test_the_schema_keeps_the_ledger_append_only_for_any_writer(
    path: Path, table: str, column: str, statement: str
) -> None:
    with closing(_seeded(path)) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(statement.format(table, column))
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0


def test_the_schemas_triggers_know_the_holders_accounts_and_the_chargeback() -> None:
    """The triggers' SQL names the holder-owned account kinds (the payable
    one in its own trigger, as it may not go above zero) and the transaction
    kinds that may leave a debt; they must be the ledger's."""

    def latest(name: str) -> str:
        return [sql for step in MIGRATIONS for sql in step if f"CREATE TRIGGER {name}" in sql][-1]

    debt, overpaid = (
        latest("postings_no_debt_outside_a_chargeback"),
        latest("postings_no_overpayment"),
    )
    positive = ", ".join(repr(kind.value) for kind in AccountKind if kind in ledger._HOLDS_POSITIVE)
    assert f"IN ({positive})" in debt
    assert f"= '{ledger._OWED.value}'" in overpaid
    assert {k for k in AccountKind if k.holder_owned} == {*ledger._HOLDS_POSITIVE, ledger._OWED}
    holders = ", ".join(repr(kind.value) for kind in AccountKind if kind.holder_owned)
    assert f"({holders})" == HOLDER_KINDS  # the accounts with a history by kind
    may_overdraw = ", ".join(sorted(repr(kind.value) for kind in ledger._MAY_OVERDRAW))
    assert f"NOT IN ({may_overdraw})" in debt  # check_rules' own list
    assert f"NOT IN ({may_overdraw})" in overpaid


def test_the_schema_refuses_paying_a_creator_more_than_owed(path: Path) -> None:
    """Whoever writes the file: a posting that takes a creator's payable
    account above zero is refused, one that leaves it owing is not."""
    usd = Currency.of("USD")
    payable = AccountKey(AccountKind.CREATOR_PAYABLE, "carol", usd)
    clearing = AccountKey.system(AccountKind.CLEARING, usd)
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        owed = (Posting(payable, -5), Posting(clearing, 5))
        conversion = TransactionKind.CONVERSION
        record(uow, Transaction("owed", conversion, owed, T0, "k-owed", Cause("c", "1")))
        uow.commit()
    with closing(sqlite3.connect(path)) as db:
        account_id, balance = db.execute(
            "SELECT id, balance FROM accounts WHERE kind = 'creator-payable'"
        ).fetchone()
        assert balance == -5
        row = db.execute("SELECT max(row) FROM transactions").fetchone()[0]
        sequence = db.execute("SELECT max(sequence) FROM postings").fetchone()[0]
        with pytest.raises(sqlite3.IntegrityError, match="more than their payable account owes"):
            db.execute(
                "INSERT INTO postings (sequence, transaction_row, account_id, amount,"
                " balance_after, previous) VALUES (?, ?, ?, 6, 1, NULL)",
                (sequence + 1, row, account_id),
            )


def test_a_long_unit_of_work_sends_its_rows_as_it_goes(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ledger, "_FLUSH_ROWS", 5)
    with store.unit_of_work() as uow:
        for i in range(10):
            record(uow, purchase(f"tx-{i}", "alice", 1))
            assert uow._pending.waiting() < 5
        assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 10}
        uow.commit()
    with store.unit_of_work() as uow:
        assert [p.balance_after for p in uow.ledger.postings() if p.account == wallet("alice")] == [
            *range(1, 11)
        ]


def test_whole_tables_stream_page_by_page(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ledger, "_PAGE", 2)
    transactions = [purchase(f"tx-{i}", "alice", i + 1) for i in range(5)]
    lots = [Lot.new(f"lot-{i}", wallet("alice"), LotOrigin.BONUS, i + 1, T0, "t") for i in range(5)]
    with store.unit_of_work() as uow:
        for transaction, lot in zip(transactions, lots, strict=True):
            record(uow, transaction)
            uow.lots.add(lot)
        uow.commit()
    with store.unit_of_work() as uow:
        assert list(uow.ledger.transactions()) == transactions
        postings = list(uow.ledger.postings())
        assert [p.sequence for p in postings] == list(range(1, 11))
        assert [p.transaction_id for p in postings[::2]] == [t.id for t in transactions]
        assert list(uow.lots.all()) == lots
        late = uow.ledger.postings()
        assert next(late).sequence == 1
    with pytest.raises(StorageError, match="not active"):
        list(late)


def _overdraft(
    kind: AccountKind, transaction_kind: TransactionKind
) -> tuple[Transaction, AccountKey]:
    """A transaction that takes an account of *kind* from 0 to -1 (a creator's
    payable account, negative by what is owed: to +1), against a system
    account: what check_rules refuses for a holder's account outside a
    chargeback, built by hand."""
    owner = "carol" if kind.holder_owned else PLATFORM
    account = AccountKey(kind, owner, COIN)
    counter = AccountKey.spent(COIN) if kind is AccountKind.ISSUANCE else AccountKey.issuance(COIN)
    sign = -1 if kind is AccountKind.CREATOR_PAYABLE else 1
    transaction = Transaction(
        id=f"tx-{kind.value}-{transaction_kind.value}",
        kind=transaction_kind,
        postings=(Posting(account, -sign), Posting(counter, sign)),
        occurred_at=T0,
        idempotency_key=f"key-{kind.value}-{transaction_kind.value}",
        cause=Cause("test", kind.value),
    )
    return transaction, account


@pytest.mark.parametrize("kind", list(AccountKind))
def test_sql_refuses_a_debit_below_zero_on_a_holders_account_outside_a_chargeback(
    store: SqliteStore, kind: AccountKind
) -> None:
    """SQL checks at each flush what check_rules checks first: a holder's
    account (wallet, earnings, creator payable) goes below zero only in a
    chargeback; system accounts may. A unit of work that breaks the rule is
    rolled back whole."""
    for transaction_kind in (TransactionKind.ADJUSTMENT, TransactionKind.CHARGEBACK):
        transaction, account = _overdraft(kind, transaction_kind)
        counter = transaction.postings[1].account
        sign = transaction.postings[1].amount
        refused = kind.holder_owned and transaction_kind is TransactionKind.ADJUSTMENT
        where = "above zero: paid more than owed" if sign < 0 else "below zero"
        with store.unit_of_work() as uow:
            uow.ledger.record(transaction, {account: -sign, counter: sign})
            if refused:
                with pytest.raises(StorageError, match=f"{where} outside a chargeback"):
                    uow.commit()
            else:
                uow.commit()
        with store.unit_of_work() as uow:
            kept = uow.ledger.get(transaction.id) is not None
            assert kept is not refused
            if kept:  # undo it by hand, for the next kind of transaction
                uow.ledger.record(
                    attrs.evolve(
                        transaction,
                        id=f"{transaction.id}-back",
                        kind=TransactionKind.ADJUSTMENT,
                        postings=(Posting(account, sign), Posting(counter, -sign)),
                    ),
                    {account: 0, counter: 0},
                )
                uow.commit()


def test_a_full_disk_raises_and_keeps_nothing_of_the_failed_work(path: Path) -> None:
    """``PRAGMA max_page_count`` makes the file "full": single commands and a
    batch fail with ``StorageError``, and nothing of them is kept."""
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        wallets.credit(
            "seed",
            holder="alice",
            amount=COIN(10**6),
            origin=LotOrigin.BONUS,
            cause=Cause("s", "1"),
        )
        (connection,) = store._idle  # the one pooled connection
        pages = connection.raw.execute("PRAGMA page_count").fetchone()[0]
        connection.raw.execute(f"PRAGMA max_page_count = {pages}")

        def spend(key: str) -> None:
            wallets.spend(key, holder="alice", amount=COIN(1), cause=Cause("item", key))

        done: list[str] = []

        def spend_one_by_one() -> None:
            for n in range(1000):
                spend(f"one-{n}")
                done.append(f"one-{n}")

        def spend_in_bulk() -> None:
            with wallets.batch() as bulk:
                for n in range(5000):
                    bulk.spend(f"bulk-{n}", holder="alice", amount=COIN(1), cause=Cause("b", "1"))

        with pytest.raises(StorageError, match="full"):
            spend_one_by_one()
        kept = len(done)
        with pytest.raises(StorageError, match="full"):
            spend_in_bulk()
        connection.raw.execute(f"PRAGMA max_page_count = {2**30}")
        spend("after")  # the store works again once there is room
    with SqliteStore(path, read_only=True) as store:
        wallets = Wallets(store)
        assert wallets.verify().ok
        assert wallets.balance("alice", COIN) == COIN(10**6 - kept - 1)
        keys = {
            t.idempotency_key
            for t in wallets.history(AccountKey.wallet("alice", COIN), limit=1000).entries
        }
        assert not any(key.startswith("bulk-") for key in keys)
        assert f"one-{kept}" not in keys
        assert "after" in keys


def test_a_write_refused_while_a_stream_reads_raises_storage_error(store: SqliteStore) -> None:
    """A waiting write that SQL refuses when a stream sends it (here an item
    whose amount was broken after its checks ran) raises ``StorageError``
    and rolls the unit of work back."""
    item = LotConsumption("lot-1", 1)
    object.__setattr__(item, "amount", 0)
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-0", "alice", 1))
        uow.lots.add(Lot.new("lot-1", wallet("alice"), LotOrigin.BONUS, 1, T0, "tx-0"))
        lots = uow.lots.all()
        uow.lots.record_consumption("tx-1", [item])
        with pytest.raises(StorageError, match="rolled back"):
            list(lots)
        with pytest.raises(StorageError, match="rolled this unit of work back"):
            uow.commit()
    with store.unit_of_work() as uow:
        assert uow.ledger.accounts() == {}


class _RollbackFails:
    """A stand-in for a sqlite3 connection whose first ROLLBACK fails."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw
        self.failed = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "ROLLBACK" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return self._raw.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def test_a_unit_of_work_whose_rollback_failed_commits_nothing(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way rolls the unit of work back; should that
    rollback fail too, the unit of work still refuses to commit what was
    left half-written."""
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-0", "bob", 1))
        connection = uow._connection
        assert connection is not None
        real = connection.raw
        connection.raw = _RollbackFails(real)  # type: ignore[assignment]

        def boom(*_args: object) -> None:
            raise RuntimeError("boom after the transaction row")

        monkeypatch.setattr(_ledger._Ledger, "_write", staticmethod(boom))
        with pytest.raises(RuntimeError, match="boom"):
            record(uow, purchase("tx-1", "alice", 5))
        monkeypatch.undo()
        connection.raw = real
        with pytest.raises(StorageError, match="rolled this unit of work back"):
            uow.commit()
        with pytest.raises(StorageError, match="rolled this unit of work back"):
            uow.ledger.accounts()
    with store.unit_of_work() as uow:
        assert uow.ledger.accounts() == {}
        assert list(uow.ledger.transactions()) == []


class _StatementsFail:
    """A stand-in for a sqlite3 connection on which every statement but
    transaction control fails, as on a disk that has gone away."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql in ("BEGIN IMMEDIATE", "BEGIN", "COMMIT", "ROLLBACK"):
            return self._raw.execute(sql, *args)
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    def executemany(self, *_args: Any) -> sqlite3.Cursor:
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


_REPOSITORY_CALLS: dict[str, Callable[[Any], object]] = {
    "ledger.balances": lambda uow: uow.ledger.balances([wallet("zed")]),
    "ledger.record": lambda uow: uow.ledger.record(
        purchase("tx-9", "zed", 1), {AccountKey.issuance(COIN): -1, wallet("zed"): 1}
    ),
    "ledger.get": lambda uow: uow.ledger.get("tx-9"),
    "ledger.accounts": lambda uow: uow.ledger.accounts(),
    "lots.add": lambda uow: uow.lots.add(
        Lot.new("lot-9", wallet("zed"), LotOrigin.BONUS, 1, T0, "tx-9")
    ),
    "lots.update": lambda uow: uow.lots.update(
        Lot.new("lot-9", wallet("zed"), LotOrigin.BONUS, 1, T0, "tx-9")
    ),
    "lots.open_lots": lambda uow: uow.lots.open_lots(wallet("zed")),
    "lots.record_consumption": lambda uow: uow.lots.record_consumption(
        "tx-9", [LotConsumption("lot-9", 1)]
    ),
    "idempotency.get": lambda uow: uow.idempotency.get("key-9"),
    "idempotency.add": lambda uow: uow.idempotency.add(IdempotencyRecord("key-9", "f", "{}", T0)),
    "outbox.add": lambda uow: uow.outbox.add(OutboxEvent("event-9", "t", T0, "{}")),
    "outbox.pending": lambda uow: uow.outbox.pending(limit=10),
    "outbox.mark_delivered": lambda uow: uow.outbox.mark_delivered(["event-9"], T0),
    "ledger.history": lambda uow: uow.ledger.history(wallet("zed"), limit=10),
    "ledger.transactions": lambda uow: list(uow.ledger.transactions()),
    "ledger.postings": lambda uow: list(uow.ledger.postings()),
    "lots.get": lambda uow: uow.lots.get("lot-9"),
    "lots.expired": lambda uow: uow.lots.expired(T0, limit=10),
    "lots.all": lambda uow: list(uow.lots.all()),
    "lots.consumption": lambda uow: uow.lots.consumption("tx-9"),
}


@pytest.mark.parametrize("call", sorted(_REPOSITORY_CALLS))
def test_a_failing_statement_raises_storage_error_from_every_repository_method(
    store: SqliteStore, call: str
) -> None:
    """Every repository method turns a failure of SQLite into
    ``StorageError`` (most through one decorator; the few that every command
    calls catch it themselves)."""
    with store.unit_of_work() as uow:
        uow.ledger.accounts()  # the transaction is open before the disk goes
        connection = uow._connection
        assert connection is not None
        real = connection.raw
        connection.raw = _StatementsFail(real)  # type: ignore[assignment]
        try:
            with pytest.raises(StorageError, match="SQLite failed: disk I/O error"):
                _REPOSITORY_CALLS[call](uow)
        finally:
            connection.raw = real


def test_a_transaction_sqlite_rolled_back_by_itself_is_not_continued(store: SqliteStore) -> None:
    """SQLite ends a transaction on its own after some errors (a full disk, an
    I/O error); the unit of work must then refuse to go on, rather than write
    the rest into a new transaction and commit half of its work."""
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5))
        connection = uow._connection
        assert connection is not None
        connection.raw.execute("ROLLBACK")  # what SQLite does itself on such errors
        with pytest.raises(StorageError, match="rolled this unit of work back"):
            record(uow, purchase("tx-2", "alice", 5))
        with pytest.raises(StorageError, match="rolled this unit of work back"):
            uow.commit()
    with store.unit_of_work() as uow:
        assert uow.ledger.accounts() == {}


def test_what_a_unit_of_work_read_is_read_again_after_its_commit(path: Path) -> None:
    """Balances and open lots kept in memory do not outlive a commit: another
    writer may write before the next read."""
    with SqliteStore(path) as first, SqliteStore(path) as second, first.unit_of_work() as uow:
        uow.lots.add(Lot.new("lot-1", wallet("alice"), LotOrigin.BONUS, 10, T0, "tx-1"))
        record(uow, purchase("tx-1", "alice", 10))
        uow.commit()
        assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 10}
        assert [lot.remaining for lot in uow.lots.open_lots(wallet("alice"))] == [10]
        uow.commit()
        with second.unit_of_work() as other:
            record(other, purchase("tx-2", "alice", 5))
            (lot,) = other.lots.open_lots(wallet("alice"))
            other.lots.update(lot.take(4)[0])
            other.commit()
        assert uow.ledger.balances([wallet("alice")]) == {wallet("alice"): 15}
        assert [lot.remaining for lot in uow.lots.open_lots(wallet("alice"))] == [6]


def test_lot_constraints_hold_in_sql(store: SqliteStore) -> None:
    lot = Lot.new("lot-1", wallet("alice"), LotOrigin.BONUS, 10, T0, "tx-1")
    object.__setattr__(lot, "remaining", 11)
    with store.unit_of_work() as uow:
        with pytest.raises(StorageError, match="constraint"):
            uow.lots.add(lot)
        assert uow.lots.get("lot-1") is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET balance = 1.5",
        "UPDATE postings SET amount = 2.5",
        "UPDATE postings SET balance_after = 'seven'",
        "UPDATE lots SET amount = 10.0 + 0.5",
        "UPDATE lots SET remaining = 0.5",
        "UPDATE lots SET value_minor = 99.5",
        "UPDATE lots SET value_recognised = 0.5",
        "UPDATE lots SET exhausted = 0.5",
        "UPDATE postings SET previous = 0.5",
        "UPDATE accounts SET last_sequence = 1.5",
        "UPDATE lot_consumptions SET amount = 1.5",
        "UPDATE lot_consumptions SET value_minor = 0.5",
        "UPDATE lot_consumptions SET value_minor = -1",
    ],
)
def test_every_amount_of_money_or_coins_is_an_integer_in_sql(path: Path, statement: str) -> None:
    """Whoever writes to the file: amounts and balances are stored as
    integers, never as floats or text."""
    _books_to_tamper_with(path)
    with closing(sqlite3.connect(path)) as db:
        _drop_the_append_only_triggers(db)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            db.execute(statement)


def test_amounts_beyond_64_bits_are_refused(store: SqliteStore) -> None:
    transaction = purchase("tx-1", "alice", 5)
    with store.unit_of_work() as uow:
        with pytest.raises(StorageError, match="64-bit"):
            uow.ledger.record(transaction, {AccountKey.issuance(COIN): -5, wallet("alice"): 2**63})
        assert uow.ledger.accounts() == {}


def test_identifiers_are_stored_as_data(store: SqliteStore, path: Path) -> None:
    holder = "'); DROP TABLE accounts;--"
    with store.unit_of_work() as uow:
        record(uow, purchase(TRICKY, holder, 3, key=TRICKY))
        uow.commit()
    with closing(sqlite3.connect(path)) as raw:
        owners = [row[0] for row in raw.execute("SELECT owner FROM accounts ORDER BY id")]
        keys = [row[0] for row in raw.execute("SELECT idempotency_key FROM transactions")]
    assert owners == ["@platform", holder]
    assert keys == [TRICKY]
    assert "accounts" in tables(path)
    with store.unit_of_work() as uow:
        assert uow.ledger.balances([wallet(holder)]) == {wallet(holder): 3}


def test_datetimes_are_stored_as_utc_text(store: SqliteStore, path: Path) -> None:
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 1))
        uow.commit()
    with closing(sqlite3.connect(path)) as raw:
        (stored,) = raw.execute("SELECT occurred_at FROM transactions").fetchone()
    assert stored == "2026-01-01T00:00:00.000000+00:00"


def test_account_ids_learnt_in_a_rolled_back_unit_of_work_are_forgotten(path: Path) -> None:
    with SqliteStore(path) as first, SqliteStore(path) as second:
        with first.unit_of_work() as uow:
            record(uow, purchase("tx-bob", "bob", 5))
        # The ids bob's rolled-back accounts had are now taken by carol's.
        with second.unit_of_work() as uow:
            record(uow, purchase("tx-carol", "carol", 7))
            uow.commit()
        with first.unit_of_work() as uow:
            assert uow.ledger.balances([wallet("bob")]) == {wallet("bob"): 0}
            record(uow, purchase("tx-bob", "bob", 5))
            uow.commit()
        with second.unit_of_work() as uow:
            assert uow.ledger.balances([wallet("bob"), wallet("carol")]) == {
                wallet("bob"): 5,
                wallet("carol"): 7,
            }
            report = verify_books(
                uow.ledger.transactions(), uow.ledger.postings(), uow.ledger.accounts(), []
            )
            assert [p for p in report.problems if "lots hold" not in p] == []


def test_the_two_readings_of_a_repeated_wall_time_are_stored_an_hour_apart(
    path: Path,
) -> None:
    """01:30 in New York happens twice when the clocks go back; the two
    datetimes compare equal but are an hour apart, and are stored so."""
    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)  # EDT, 05:30 UTC
    second = first.replace(fold=1)  # EST, 06:30 UTC
    assert second == first
    assert second.timestamp() - first.timestamp() == 3600
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        for key, expiry in (("a", first), ("b", second)):
            wallets.credit(
                key,
                holder=f"holder-{key}",
                amount=COIN(5),
                origin=LotOrigin.PROMOTION,
                cause=Cause("promo", key),
                expires_at=expiry,
            )
        for key, expiry in (("a", first), ("b", second)):
            (lot,) = wallets.lots(f"holder-{key}", COIN)
            assert lot.expires_at is not None
            assert lot.expires_at.timestamp() == expiry.timestamp()


def test_a_spends_lot_update_that_finds_no_lot_rolls_the_unit_of_work_back(
    store: SqliteStore,
) -> None:
    """A spend's lot update is sent by the lot's row; should the row be gone
    (another writer of the file), the update is not silently lost."""
    wallets = Wallets(store, clock=ManualClock(T0))
    wallets.credit(
        "c1", holder="alice", amount=COIN(10), origin=LotOrigin.PROMOTION, cause=Cause("p", "1")
    )
    with store.unit_of_work() as uow:
        (lot,) = uow.lots.open_lots(wallet("alice"))
        raw = uow._work().raw
        raw.execute("DELETE FROM lots WHERE id = ?", (lot.id,))  # behind coinecon's back
        taken, _ = lot.take(3)
        uow.lots.update(taken)
        with pytest.raises(StorageError, match="a lot read in this transaction is gone"):
            uow.commit()
    assert [lot.remaining for lot in wallets.lots("alice", COIN)] == [10]
