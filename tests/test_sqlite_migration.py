"""Schema migrations keep everything: a store written by the schema v1 (or
v2, v4 or v5) adapter reads back the same through every port after it is
migrated.

``tests/data/schema_v1.db`` was written by the v1 adapter, and
``tests/data/schema_v1.json`` is what its ports read back then;
``schema_v2.db`` and ``schema_v2.json`` the same for v2,
``schema_v4.db`` and ``schema_v4.json`` for v4, and ``schema_v5.db`` and
``schema_v5.json`` for v5 (see ``tests/data/README.md``).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from books_dump import dump
from coinecon import ManualClock, Money, StorageError
from coinecon.adapters.sqlite import SCHEMA_VERSION, SqliteStore, _store
from coinecon.adapters.sqlite.schema import (
    APPLICATION_ID,
    HOLDER_KINDS,
    MIGRATIONS,
    OPENING_TRANSACTION,
)
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.wallets import SpendResult, Wallets
from coinecon.testing.contract import COIN
from workload import buy, send_gift

DATA = Path(__file__).parent / "data"


@pytest.fixture
def v1_file(tmp_path: Path) -> Path:
    path = tmp_path / "books.db"
    shutil.copyfile(DATA / "schema_v1.db", path)
    return path


def expected(old: int = 1) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"schema_v{old}.json").read_text())
    return data


@pytest.fixture(params=[1, 2, 4, 5], ids=["from-v1", "from-v2", "from-v4", "from-v5"])
def old_file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[int, Path]:
    """A copy of a store written by an older adapter, and that version."""
    old: int = request.param
    path = tmp_path / "books.db"
    shutil.copyfile(DATA / f"schema_v{old}.db", path)
    return old, path


def version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        found: int = db.execute("PRAGMA user_version").fetchone()[0]
        return found


def test_the_fixture_is_a_version_1_file(v1_file: Path) -> None:
    assert version(v1_file) == 1
    assert SCHEMA_VERSION >= 2


def test_the_fixtures_are_files_of_their_versions(old_file: tuple[int, Path]) -> None:
    old, path = old_file
    assert version(path) == old < SCHEMA_VERSION


def test_an_older_store_reads_back_the_same_after_its_migration(
    old_file: tuple[int, Path],
) -> None:
    old, path = old_file
    before = expected(old)
    keys = before.pop("keys")
    with SqliteStore(path) as store:
        assert version(path) == SCHEMA_VERSION
        after = dump(store, keys)
        assert Wallets(store).verify().ok
        deferred = Wallets(store).deferred_revenue()
    if old >= 5:  # nothing to add to its books since
        assert after == before
        return
    # Version 5 put the value its lots owe into deferred revenue, out of
    # clearing, in one transaction recorded after the others: everything
    # else reads back the same.
    opening = after["transactions"].pop()
    owed = {code: money.minor for code, money in deferred.items()}
    assert owed and all(owed.values())
    assert opening["id"] == OPENING_TRANSACTION
    assert opening["kind"] == "settlement"
    assert opening["occurred_at"] == before["transactions"][-1]["occurred_at"]
    assert opening["postings"] == [
        leg
        for code in sorted(owed)
        for leg in (
            [f"clearing:@platform:{code}", owed[code]],
            [f"deferred-revenue:@platform:{code}", -owed[code]],
        )
    ]
    for code in owed:
        for kind in ("clearing", "deferred-revenue"):
            account = f"{kind}:@platform:{code}"
            assert account not in before["accounts"]
            del after["accounts"][account], after["history"][account]
    del after["by_id"][OPENING_TRANSACTION], after["consumed"][OPENING_TRANSACTION]
    assert after == before


def test_the_migration_chains_each_account_s_postings_and_marks_exhausted_lots(
    old_file: tuple[int, Path],
) -> None:
    """Version 3: every posting names the account's posting before it, every
    account its last posting, and every lot says whether it is exhausted."""
    _old, path = old_file
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as db:
        postings = db.execute("SELECT sequence, account_id, previous FROM postings").fetchall()
        chains: dict[int, list[int]] = {}
        for sequence, account_id, previous in sorted(postings):
            chain = chains.setdefault(account_id, [])
            assert previous == (chain[-1] if chain else None)
            chain.append(sequence)
        accounts = dict(db.execute("SELECT id, last_sequence FROM accounts"))
        assert accounts == {account_id: chain[-1] for account_id, chain in chains.items()}
        lots = db.execute("SELECT remaining, exhausted FROM lots").fetchall()
        assert {exhausted for _remaining, exhausted in lots} == {0, 1}
        assert all(exhausted == (remaining == 0) for remaining, exhausted in lots)
        indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_schema")}
    assert "postings_history" not in indexes
    assert not any(name.startswith("migration_") for name in indexes)


def test_the_migration_fills_the_history_by_kind_and_notes_the_time_order(
    old_file: tuple[int, Path],
) -> None:
    """Version 4: every posting of a holder's account is in the history
    under its transaction's kind, and the first transaction recorded out of
    time order is noted."""
    _old, path = old_file
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as db:
        history = sorted(db.execute("SELECT account_id, kind, sequence FROM history"))
        expected = sorted(
            db.execute(
                "SELECT p.account_id, t.kind, p.sequence FROM postings AS p "
                "JOIN transactions AS t ON t.row = p.transaction_row "
                f"JOIN accounts AS a ON a.id = p.account_id WHERE a.kind IN {HOLDER_KINDS}"
            )
        )
        times = [
            time for (time,) in db.execute("SELECT occurred_at FROM transactions ORDER BY row")
        ]
        rows = [row for (row,) in db.execute("SELECT row FROM transactions ORDER BY row")]
        disorder = db.execute("SELECT first_row FROM ledger_disorder").fetchall()
    assert history == expected
    assert len(history) > 10
    back = [rows[i] for i in range(1, len(times)) if times[i] < max(times[:i])]
    assert disorder == ([(back[0],)] if back else [])


def test_the_migration_joins_each_command_s_record_to_its_transaction(v1_file: Path) -> None:
    SqliteStore(v1_file).close()
    with closing(sqlite3.connect(v1_file)) as db:
        joined = db.execute("SELECT count(*) FROM transactions WHERE fingerprint IS NOT NULL")
        (on_transactions,) = joined.fetchone()
        left = [key for (key,) in db.execute("SELECT key FROM idempotency")]
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_schema")}
    assert on_transactions == len(expected()["keys"]) - 2  # all but the orphan and the unused
    assert left == ["orphan-key"]  # a record without a transaction keeps its own row
    assert "lot_consumption_items" not in tables
    assert "postings_of_transaction" not in tables
    assert "lot_consumption_items_by_lot" not in tables


def test_a_migrated_store_takes_new_work_and_replays_old_commands(
    old_file: tuple[int, Path],
) -> None:
    old, path = old_file
    clock = ManualClock(datetime(2026, 3, 5, tzinfo=UTC))
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=clock)
        balance = wallets.balance("holder-0", COIN)
        holder = AccountKey.wallet("holder-0", COIN)
        history = wallets.history(holder, limit=1000).entries
        stored = expected(old)["records"]["gift-0"][1]
        # Versions 1 and 2 kept the lots in the result; a replay gives today's form.
        first = SpendResult.from_json(stored).to_json() if old < 4 else stored
        assert send_gift(wallets, "gift-0", "holder-0", 30) == first  # a replay
        buy(wallets, "after-1", "holder-0", 5)
        send_gift(wallets, "after-2", "holder-0", 7)
        assert wallets.balance("holder-0", COIN) == balance + COIN(5) - COIN(7)
        assert wallets.verify().ok
        newest, after_old = wallets.history(holder, limit=2).entries, history[0]
        assert [entry.amount for entry in newest] == [-7, 5]
        # The new postings chain on from the old ones.
        assert wallets.history(holder, limit=1000).entries[2:] == history
        assert after_old.sequence < newest[1].sequence


def test_a_migration_that_fails_leaves_the_file_as_it_was(
    v1_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = v1_file.read_bytes()
    broken = (*MIGRATIONS[:-1], (*MIGRATIONS[-1], "SELECT * FROM no_such_table"))
    monkeypatch.setattr(_store, "MIGRATIONS", broken)
    with pytest.raises(StorageError, match="no_such_table"):
        SqliteStore(v1_file)
    assert version(v1_file) == 1
    with closing(sqlite3.connect(v1_file)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM lot_consumption_items").fetchone()[0] > 0
    monkeypatch.undo()
    with SqliteStore(v1_file) as store:  # and it migrates once the step is fixed
        keys = expected()["keys"]
        accounts = dump(store, keys)["accounts"]
        # Version 5 adds the two accounts of deferred revenue's opening.
        del accounts["clearing:@platform:USD"], accounts["deferred-revenue:@platform:USD"]
        assert accounts == expected()["accounts"]
    assert before != v1_file.read_bytes()


def test_postings_of_one_transaction_that_are_not_consecutive_are_numbered_anew(
    tmp_path: Path,
) -> None:
    """Another writer of a v1 file may have interleaved two transactions'
    postings; the migration numbers each transaction's postings consecutively,
    in their order, keeping the order of transactions."""
    path = tmp_path / "interleaved.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO accounts (id, kind, owner, asset_kind, asset_code, balance) VALUES "
            "(1, 'issuance', '@platform', 'unit', 'DIAMOND', -30), "
            "(2, 'earnings', 'a', 'unit', 'DIAMOND', 10), "
            "(3, 'earnings', 'b', 'unit', 'DIAMOND', 20)"
        )
        for row, name in ((1, "t1"), (2, "t2")):
            db.execute(
                "INSERT INTO transactions (row, id, kind, occurred_at, idempotency_key, "
                "cause_type, cause_id, metadata) VALUES "
                "(?, ?, 'adjustment', '2026-01-01T00:00:00.000000+00:00', ?, 't', ?, '[]')",
                (row, name, f"key-{name}", name),
            )
        db.executemany(
            "INSERT INTO postings (sequence, transaction_row, account_id, amount, balance_after) "
            "VALUES (?, ?, ?, ?, ?)",
            [(1, 1, 1, -10, -10), (2, 2, 1, -20, -30), (3, 1, 2, 10, 10), (4, 2, 3, 20, 20)],
        )
    with SqliteStore(path) as store:
        with store.unit_of_work() as uow:
            first, second = uow.ledger.transactions()
            assert [p.amount for p in first.postings] == [-10, 10]
            assert [p.amount for p in second.postings] == [-20, 20]
            assert [p.sequence for p in uow.ledger.postings()] == [1, 2, 3, 4]
            assert [(p.transaction_id, p.amount) for p in uow.ledger.postings()] == [
                ("t1", -10),
                ("t1", 10),
                ("t2", -20),
                ("t2", 20),
            ]
        assert Wallets(store).verify().ok


def test_a_transaction_without_postings_fails_the_migration_rather_than_vanish(
    tmp_path: Path,
) -> None:
    """Another writer of a v1 file may have left a transaction with no
    postings (coinecon never writes one): the migration refuses to drop it
    silently, and the file stays at version 1."""
    path = tmp_path / "bare.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO transactions (row, id, kind, occurred_at, idempotency_key, "
            "cause_type, cause_id, metadata) VALUES "
            "(1, 't1', 'adjustment', '2026-01-01T00:00:00.000000+00:00', 'k', 't', 't1', '[]')"
        )
    with pytest.raises(StorageError, match="first_sequence"):
        SqliteStore(path)
    assert version(path) == 1


def test_the_opening_of_deferred_revenue_covers_currencies_without_lots(tmp_path: Path) -> None:
    """A version-4 file may hold deferred revenue another writer posted in a
    currency no lot was bought in: version 5 brings it to what the lots owe
    (nothing) too, out of clearing."""
    path = tmp_path / "v4.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for step in MIGRATIONS[:4]:
            for statement in step:
                db.execute(statement)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 4")
        db.execute(
            "INSERT INTO transactions (row, id, kind, occurred_at, idempotency_key, cause_type,"
            " cause_id, metadata, first_sequence, postings) VALUES (1, 't1', 'settlement',"
            " '2026-01-01T00:00:00.000000+00:00', 'k', 'hand', 't1', '[]', 1, 2)"
        )
        for sequence, (kind, amount) in enumerate(
            (("deferred-revenue", -300), ("revenue", 300)), start=1
        ):
            db.execute(
                "INSERT INTO accounts (id, kind, owner, asset_kind, asset_code, balance,"
                " last_sequence) VALUES (?, ?, '@platform', 'money', 'GBP', ?, ?)",
                (sequence, kind, amount, sequence),
            )
            db.execute(
                "INSERT INTO postings (sequence, transaction_row, account_id, amount,"
                " balance_after) VALUES (?, 1, ?, ?, ?)",
                (sequence, sequence, amount, amount),
            )
    with SqliteStore(path) as store:
        wallets = Wallets(store)
        opening = wallets.transaction(OPENING_TRANSACTION)
        assert opening is not None
        assert [(str(p.account), p.amount) for p in opening.postings] == [
            ("clearing:@platform:GBP", -300),
            ("deferred-revenue:@platform:GBP", 300),
        ]
        assert wallets.deferred_revenue() == {"GBP": Money("0.00", "GBP")}
        assert wallets.verify().ok
