"""Schema v3 of the SQLite adapter: each account's postings form a chain that
history walks (no index of postings by account); lots say whether they are
exhausted, so that taking coins from a lot that keeps some rewrites its row
and no index; and an event with its transaction's id is kept on the row
without an entry in the index of event ids."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore, _lots, _sql
from coinecon.clock import ManualClock
from coinecon.ledger.journal import AccountKey, Cause, HistoryEntry, Posting, TransactionKind
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.money.money import Money
from coinecon.ports import Store
from coinecon.testing.contract import COIN, DIAMOND, T0

ALICE = AccountKey.wallet("alice", COIN)
BOB = AccountKey.wallet("bob", COIN)
EARNINGS = AccountKey.earnings("carol", DIAMOND)


def _books(store: Store) -> None:
    """Interleaved work on several accounts: purchases, gifts, a spend,
    over a few hours."""
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock)
    for n in range(4):
        for holder in ("alice", "bob"):
            wallets.credit(
                f"buy-{holder}-{n}",
                holder=holder,
                amount=COIN(10 + n),
                origin=LotOrigin.PURCHASE,
                cause=Cause("purchase", f"{holder}-{n}"),
                value=Money.from_minor(10 + n, "USD"),
            )
            clock.advance(timedelta(minutes=20))
        wallets.spend(
            f"gift-{n}",
            holder="alice" if n % 2 else "bob",
            amount=COIN(3 + n),
            cause=Cause("gift", f"g-{n}"),
            kind=TransactionKind.GIFT,
            also=(Posting(EARNINGS, 2), Posting(AccountKey.issuance(DIAMOND), -2)),
        )
        clock.advance(timedelta(minutes=20))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[MemoryStore, SqliteStore]]:
    memory = MemoryStore()
    with SqliteStore(tmp_path / "books.db") as sqlite:
        for store in (memory, sqlite):
            _books(store)
        yield memory, sqlite


def _history(store: Store, account: AccountKey, **query: object) -> list[HistoryEntry]:
    with store.unit_of_work() as uow:
        return uow.ledger.history(account, **query)  # type: ignore[arg-type]


@pytest.mark.parametrize("account", [ALICE, BOB, EARNINGS, AccountKey.spent(COIN)])
def test_history_walks_the_chain_as_the_memory_store_reads_its_index(
    stores: tuple[MemoryStore, SqliteStore], account: AccountKey
) -> None:
    """Every cursor (one of the account's postings, another account's, one
    past the end, one before the start), every limit and the filters give
    the memory store's entries: the same sequences, transactions and
    amounts."""
    memory, sqlite = stores
    with sqlite.unit_of_work() as uow:
        last = max(p.sequence for p in uow.ledger.postings())
    since, until = T0 + timedelta(minutes=50), T0 + timedelta(hours=2)
    queries: list[dict[str, object]] = [
        {"limit": limit, "before": before}
        for limit in (1, 2, 3, 50)
        for before in (None, *range(last + 3))
    ]
    queries += [
        {"limit": 2, "kinds": {TransactionKind.GIFT}},
        {"limit": 50, "kinds": {TransactionKind.PURCHASE}, "before": last - 3},
        {"limit": 50, "kinds": set()},
        {"limit": 3, "since": since},
        {"limit": 50, "since": since, "until": until},
        {"limit": 1, "until": until, "before": 7},
    ]
    for query in queries:
        ours = _history(sqlite, account, **query)
        theirs = _history(memory, account, **query)
        assert [(e.sequence, e.amount, e.balance_after, e.kind) for e in ours] == [
            (e.sequence, e.amount, e.balance_after, e.kind) for e in theirs
        ], query


def test_history_of_an_account_without_postings_is_empty(
    stores: tuple[MemoryStore, SqliteStore],
) -> None:
    _memory, sqlite = stores
    assert _history(sqlite, AccountKey.wallet("nobody", COIN), limit=5) == []


def test_every_posting_names_the_account_s_posting_before_it(
    stores: tuple[MemoryStore, SqliteStore],
) -> None:
    _memory, sqlite = stores
    with closing(sqlite3.connect(sqlite.path)) as db:
        postings = db.execute("SELECT sequence, account_id, previous FROM postings")
        last: dict[int, int] = {}
        for sequence, account_id, previous in sorted(postings):
            assert previous == last.get(account_id)
            last[account_id] = sequence
        assert dict(db.execute("SELECT id, last_sequence FROM accounts")) == last


def _writes(db: sqlite3.Connection, sql: str) -> list[str]:
    """The b-trees (tables and indexes) that *sql* opens for writing."""
    roots = dict(
        db.execute("SELECT rootpage, name FROM sqlite_schema WHERE type IN ('table', 'index')")
    )
    return sorted(
        roots[line[3]]  # the opcode's P2: the b-tree's root page
        for line in db.execute(f"EXPLAIN {sql}", [None] * sql.count("?"))
        if line[1] == "OpenWrite"
    )


def test_the_hot_writes_touch_no_index(stores: tuple[MemoryStore, SqliteStore]) -> None:
    """A spend's balance updates, postings and lot updates rewrite rows of
    their tables and no index (a posting has its entry in the history by
    kind); only a lot emptied leaves the indexes of open lots."""
    _memory, sqlite = stores
    with closing(sqlite3.connect(sqlite.path)) as db:
        assert _writes(db, _sql._UPDATE_BALANCE) == ["accounts"]
        # A posting's entry in the history by kind, made by the schema's trigger.
        assert _writes(db, _sql._INSERT_POSTING) == ["history", "postings"]
        assert _writes(db, _sql._UPDATE_LOT_CONSUMED) == ["lots"]
        open_lots = ["lots_expiring", "lots_oldest_first", "lots_spend_groups"]
        assert _writes(db, _sql._UPDATE_LOT_EMPTIED) == ["lots", *open_lots]
        assert set(open_lots) <= set(_writes(db, _lots._INSERT_LOT))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE lots SET remaining = 0 WHERE exhausted = 0",
        "UPDATE lots SET exhausted = 1 WHERE remaining > 0",
        "UPDATE lots SET exhausted = NULL",
        "UPDATE postings SET previous = sequence",
    ],
)
def test_the_schema_keeps_the_marks_true_for_any_writer(
    stores: tuple[MemoryStore, SqliteStore], statement: str
) -> None:
    """A lot is exhausted exactly when nothing remains, and a posting's
    previous one comes before it, whoever writes the file."""
    _memory, sqlite = stores
    with closing(sqlite3.connect(sqlite.path)) as db:
        for (name,) in db.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '%append_only%'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {name}")
        with pytest.raises(sqlite3.IntegrityError, match=r"CHECK|NOT NULL"):
            db.execute(statement)


def test_an_exhausted_lot_leaves_the_open_lots(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "books.db") as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        for key in ("p1", "p2"):
            wallets.credit(
                key,
                holder="alice",
                amount=COIN(5),
                origin=LotOrigin.BONUS,
                cause=Cause("bonus", key),
            )
        wallets.spend("s1", holder="alice", amount=COIN(7), cause=Cause("sticker", "s1"))
        with store.unit_of_work() as uow:
            (left,) = uow.lots.open_lots(ALICE)
        assert left.remaining == 3
        with closing(sqlite3.connect(store.path)) as db:
            assert sorted(db.execute("SELECT remaining, exhausted FROM lots")) == [
                (0, 1),
                (3, 0),
            ]


def test_the_wallet_services_events_take_no_entry_in_the_index_of_event_ids(
    stores: tuple[MemoryStore, SqliteStore],
) -> None:
    _memory, sqlite = stores
    with closing(sqlite3.connect(sqlite.path)) as db:
        kept = db.execute(
            "SELECT count(*), count(event_type), sum(event_id = '') FROM transactions"
        ).fetchone()
        indexed = db.execute(
            "SELECT count(*) FROM transactions INDEXED BY transactions_by_event "
            "WHERE event_id != ''"
        ).fetchone()
    assert kept == (12, 12, 12)
    assert indexed == (0,)


def test_one_holders_accounts_are_found_by_the_index_not_by_reading_all(
    stores: tuple[MemoryStore, SqliteStore],
) -> None:
    _memory, sqlite = stores
    with closing(sqlite3.connect(sqlite.path)) as db:
        plan = " ".join(
            str(line[3]) for line in db.execute(f"EXPLAIN QUERY PLAN {_sql._ACCOUNTS_OF}", ("x",))
        )
    assert "USING INDEX sqlite_autoindex_accounts_1" in plan, plan
    assert "SCAN accounts" not in plan, plan
