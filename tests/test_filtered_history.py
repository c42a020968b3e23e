"""Filtered history and the time order of the ledger: the stores answer
``kinds``, ``since`` and ``until`` from their indexes, not by reading the
account's whole history (behaviours; ``benchmarks/scale.py`` times them)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore, _ledger
from coinecon.adapters.sqlite.schema import MIGRATIONS
from coinecon.ledger.journal import TransactionKind
from coinecon.testing.contract import T0, gift, purchase, record, wallet

MINUTE = timedelta(minutes=1)


def test_a_kind_and_a_range_of_sequences_is_a_range_of_the_history_table(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "books.db"):
        pass
    with closing(sqlite3.connect(tmp_path / "books.db")) as db:
        plan = " ".join(
            row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {_ledger._OF_KIND}", [0, "", 0, 0, 1])
        )
        assert "SEARCH history USING PRIMARY KEY" in plan
        assert "sequence>? AND sequence<?" in plan
        assert "TEMP B-TREE" not in plan


def test_the_schema_notes_the_first_transaction_out_of_time_order(tmp_path: Path) -> None:
    """For any writer: the trigger notes it, a rollback forgets it, and time
    filters then walk the account's postings (still exact)."""
    path = tmp_path / "books.db"
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        record(uow, purchase("p-1", "alice", 5, at=T0 + MINUTE))
        record(uow, purchase("p-2", "alice", 5, at=T0 + MINUTE))  # the same time is in order
        uow.commit()
        record(uow, purchase("p-0", "alice", 5, at=T0))
        uow.rollback()
        uow.commit()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT * FROM ledger_disorder").fetchall() == []
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        record(uow, gift("g-3", "alice", "carol", 1, at=T0 + 2 * MINUTE))
        record(uow, purchase("p-0", "alice", 5, at=T0))
        uow.commit()
        late = uow.ledger.history(wallet("alice"), limit=10, until=T0 + MINUTE)
        assert [entry.transaction_id for entry in late] == ["p-0"]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT first_row FROM ledger_disorder").fetchall() == [(4,)]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM history")


def disordered_at(store: MemoryStore) -> int | None:
    return store._state.disordered_at


def test_the_memory_store_forgets_a_disorder_that_was_rolled_back() -> None:
    store = MemoryStore()
    with store.unit_of_work() as uow:
        record(uow, purchase("p-1", "alice", 5, at=T0 + MINUTE))
        uow.commit()
        record(uow, purchase("p-0", "alice", 5, at=T0))
        assert disordered_at(store) == 1
        uow.rollback()
        assert disordered_at(store) is None
        record(uow, purchase("p-2", "alice", 5, at=T0 + MINUTE))
        uow.commit()
        assert disordered_at(store) is None


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_every_posting_is_in_the_history_by_kind(tmp_path: Path, kind: str) -> None:
    """The history by kind holds each posting once, under its transaction's
    kind: a filter on all kinds is the whole history."""
    store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "books.db")
    with store.unit_of_work() as uow:
        for n in range(20):
            record(uow, purchase(f"p-{n}", "alice", 5, at=T0 + n * MINUTE))
            record(uow, gift(f"g-{n}", "alice", "carol", 2, at=T0 + n * MINUTE))
        uow.commit()
        alice = wallet("alice")
        whole = uow.ledger.history(alice, limit=100)
        assert uow.ledger.history(alice, limit=100, kinds=set(TransactionKind)) == whole
        assert len(whole) == 40


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_times_in_a_zone_that_repeats_an_hour_are_ordered_by_their_instants(
    tmp_path: Path, kind: str
) -> None:
    """01:15 (the second one, UTC-5) then 01:45 (the first, UTC-4) in New York
    on the night clocks go back: the ledger went back in time, and filters
    say so; compared by wall clock, the two look in order."""
    new_york = ZoneInfo("America/New_York")
    later = datetime(2026, 11, 1, 1, 15, fold=1, tzinfo=new_york)  # 06:15 UTC
    earlier = datetime(2026, 11, 1, 1, 45, fold=0, tzinfo=new_york)  # 05:45 UTC
    store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "books.db")
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5, at=later))
        record(uow, purchase("tx-2", "alice", 5, at=earlier))
        uow.commit()
        since = datetime(2026, 11, 1, 6, tzinfo=UTC)
        assert [t.id for t in uow.ledger.transactions(since=since)] == ["tx-1"]
        found = uow.ledger.history(wallet("alice"), limit=10, since=since)
        assert [entry.transaction_id for entry in found] == ["tx-1"]


def test_the_migration_notes_the_first_transaction_out_of_time_order() -> None:
    """The statement of version 4 that finds it, on rows out of order."""
    (statement,) = [
        sql for sql in MIGRATIONS[3] if "INSERT INTO ledger_disorder (only, first_row)" in sql
    ]
    with closing(sqlite3.connect(":memory:")) as db:
        db.execute("CREATE TABLE transactions (row INTEGER PRIMARY KEY, occurred_at TEXT)")
        db.execute("CREATE TABLE ledger_disorder (only INTEGER PRIMARY KEY, first_row INTEGER)")
        times = ["2026-01-01", "2026-01-03", "2026-01-03", "2026-01-02", "2026-01-01", "2026-01-09"]
        db.executemany("INSERT INTO transactions VALUES (?, ?)", enumerate(times, start=1))
        db.execute(statement)
        assert db.execute("SELECT * FROM ledger_disorder").fetchall() == [(1, 4)]
        db.execute("DELETE FROM ledger_disorder")
        db.execute("DELETE FROM transactions WHERE row >= 4")
        db.execute(statement)
        assert db.execute("SELECT * FROM ledger_disorder").fetchall() == []
