"""Spends per second through coinecon on SQLite, against raw sqlite3.

Run with ``python3 tasks.py bench`` (or ``.venv/bin/python benchmarks/bench_sqlite_spends.py``).

Each spend has the shape of a gift: coins leave a holder's wallet for the spent
account, and a creator earns diamonds out of the diamond issuance account, in
one transaction. coinecon does it through ``Wallets.spend`` on a
``SqliteStore``; the baseline is a plain sqlite3 script that writes the same
rows in the same way on the same schema (read the idempotency key and the four
balances, insert the transaction and its four postings, update the four
balances, take coins from the wallet's open lot, record the consumption, the
idempotency record and the outbox event). Both run in the same process, in the
same run, on fresh files in the same directory, so the ratio is what matters:
absolute rates vary from machine to machine and run to run.

Two modes: one command per SQLite transaction (``synchronous=NORMAL``, WAL),
and batched (all commands of a round in one transaction, ``Wallets.batch()``).
The raw script (``RawBooks``) writes the same rows in the same way as the
adapter: it keeps what a transaction read in memory under the write lock and
sends postings, balance updates, lot updates, consumption items and
idempotency records with ``executemany`` at commit (see "Batched writes" in
``docs/storage.md``), so the ratio is the cost of coinecon's checks, domain
objects and storage abstraction over the bare writes. Its rows are the
adapter's to the byte but for random ids, and it builds them as cheaply as
coinecon's hot path does (f-strings for the JSON, one random draw per id);
each round checks that both wrote the same number of rows to every table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coinecon import ManualClock, Money, Unit
from coinecon.adapters.sqlite import SqliteStore
from coinecon.adapters.sqlite.schema import APPLICATION_ID, MIGRATIONS
from coinecon.ledger.journal import AccountKey, Cause, Posting, TransactionKind
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets

COIN, DIAMOND = Unit("COIN"), Unit("DIAMOND")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOLDERS = 10


TABLES = (
    "accounts",
    "transactions",
    "postings",
    "lots",
    "lot_consumptions",
    "lot_consumption_items",
    "idempotency",
    "outbox",
)


def row_counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many rows each table holds."""
    return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def written(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The rows written between two :func:`row_counts`."""
    return {table: after[table] - before[table] for table in TABLES}


# A gift's other legs: the creator earns a diamond, out of the diamond issuance.
ALSO = (
    Posting(AccountKey.issuance(DIAMOND), -1),
    Posting(AccountKey.earnings("creator", DIAMOND), 1),
)


def seed(wallets: Wallets) -> None:
    """Give each of the :data:`HOLDERS` holders 10**9 purchased coins."""
    with wallets.batch() as bulk:
        for h in range(HOLDERS):
            bulk.credit(
                f"seed-{h}",
                holder=f"holder-{h}",
                amount=COIN(10**9),
                origin=LotOrigin.PURCHASE,
                cause=Cause("purchase", f"seed-{h}"),
                value=Money(1000, "USD"),
            )


def gift(wallets: Wallets, key: str, n: int) -> None:
    """The *n*-th gift-shaped spend: two coins from one of the holders, in turn."""
    wallets.spend(
        key,
        holder=f"holder-{n % HOLDERS}",
        amount=COIN(2),
        cause=Cause("gift", f"g-{n}"),
        kind=TransactionKind.GIFT,
        also=ALSO,
    )


def coinecon_round(directory: Path, spends: int, *, batched: bool) -> tuple[float, dict[str, int]]:
    """Seconds for *spends* gift-shaped spends through coinecon, and the rows
    they wrote."""
    path = directory / f"coinecon-{uuid.uuid4().hex}.db"
    store = SqliteStore(path, synchronous="NORMAL")
    wallets = Wallets(store, clock=ManualClock(T0))
    seed(wallets)

    with sqlite3.connect(path) as db:
        before = row_counts(db)
    start = time.perf_counter()
    if batched:
        with wallets.batch() as bulk:
            for n in range(spends):
                gift(bulk, f"gift-{n}", n)
    else:
        for n in range(spends):
            gift(wallets, f"gift-{n}", n)
    elapsed = time.perf_counter() - start
    assert wallets.verify().ok
    store.close()
    with sqlite3.connect(path) as db:
        return elapsed, written(before, row_counts(db))


# How JSON writes a string (escaped, ASCII): what coinecon's canonical JSON uses.
_text = json.encoder.encode_basestring_ascii
_random = random.Random(os.urandom(32))  # ids must be unique, not secret
_FLUSH_ROWS = 10_000  # as the adapter: send what waits once this many rows do
_LOT_COLUMNS = (
    "id, account_kind, owner, asset_kind, asset_code, origin, amount, remaining, created_at, "
    "transaction_id, value_minor, value_currency, value_recognised, expires_at"
)


def new_id() -> str:
    """A random 128-bit id as 32 hex digits, made as coinecon makes its ids."""
    return _random.getrandbits(128).to_bytes(16).hex()


class RawBooks:
    """The same writes as coinecon's SQLite adapter, by hand.

    Like the adapter, it reads each balance and each holder's open lot once
    per SQLite transaction and keeps them in memory (it holds the write lock),
    inserts each transaction, consumption and event at once (and each account
    the first time it is used), and sends the postings, balance updates, lot
    updates, consumption items and idempotency records with ``executemany``
    once 10,000 rows wait and at commit. Its rows are coinecon's to the byte
    but for ids: the same fingerprint (SHA-256 of the same canonical JSON),
    the same result JSON, times in the same format, the same lot update. It
    builds its JSON as coinecon does on this path, with f-strings; it makes no
    checks, which is what the ratio prices.
    """

    def __init__(self, db: sqlite3.Connection, wallets: list[int]) -> None:
        self.db = db
        self.wallets = wallets
        self.platform: dict[str, int] = {}  # spent, issuance, earnings: made on first use
        self.now = T0.astimezone(UTC).isoformat(timespec="microseconds")
        self.begin()

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.balances: dict[int, int] = {}
        self.dirty: dict[int, int] = {}
        # holder -> the lot's columns, as a list to update in place
        self.lots: dict[int, list[Any]] = {}
        self.postings: list[tuple[int, int, int, int]] = []
        self.items: list[tuple[str, int, str, int, int, str]] = []
        self.records: list[tuple[str, str, str, str]] = []

    def account(self, kind: str, owner: str, code: str) -> int:
        """The id of a platform or creator account, created at its first use."""
        found = self.platform.get(kind)
        if found is None:
            found = self.db.execute(
                "INSERT INTO accounts (kind, owner, asset_kind, asset_code, balance) "
                "VALUES (?, ?, 'unit', ?, 0) RETURNING id",
                (kind, owner, code),
            ).fetchone()[0]
            self.platform[kind] = found
            self.balances[found] = 0
        return found

    def spend(self, n: int) -> None:
        key = f"gift-{n}"
        h = n % HOLDERS
        holder = f"holder-{h}"
        cause_id = f"g-{n}"
        request = (
            '{"command":"spend","request":{"also":[["earnings:creator:DIAMOND",1],'
            '["issuance:@platform:DIAMOND",-1]],"amount":2,'
            f'"cause":{_text(f"gift:{cause_id}")},"holder":{_text(holder)},"kind":"gift",'
            '"metadata":{},"unit":"COIN"}}'
        )
        digest = hashlib.sha256(request.encode("ascii")).hexdigest()
        if self.db.execute(
            "SELECT key, fingerprint, result, created_at FROM idempotency WHERE key = ?", (key,)
        ).fetchone():
            raise AssertionError("replay")
        ids = (
            self.wallets[h],
            self.account("spent", "@platform", "COIN"),
            self.account("issuance", "@platform", "DIAMOND"),
            self.account("earnings", "creator", "DIAMOND"),
        )
        missing = [i for i in ids if i not in self.balances]
        if missing:
            marks = ", ".join("?" * len(missing))
            self.balances.update(
                self.db.execute(f"SELECT id, balance FROM accounts WHERE id IN ({marks})", missing)
            )
        after = [self.balances[i] + a for i, a in zip(ids, (-2, 2, -1, 1), strict=True)]
        if after[0] < 0:
            raise AssertionError("overdraft")
        transaction_id = new_id()
        row = self.db.execute(
            "INSERT INTO transactions (id, kind, occurred_at, idempotency_key, cause_type,"
            " cause_id, metadata) VALUES (?, 'gift', ?, ?, 'gift', ?, '[]')",
            (transaction_id, self.now, key, cause_id),
        ).lastrowid
        assert row is not None
        for account_id, amount, balance in zip(ids, (-2, 2, -1, 1), after, strict=True):
            self.balances[account_id] = self.dirty[account_id] = balance
            self.postings.append((row, account_id, amount, balance))
        lot = self.lots.get(h)
        if lot is None:
            lot = self.lots[h] = list(
                self.db.execute(
                    f"SELECT {_LOT_COLUMNS} FROM lots WHERE account_kind = 'wallet' AND owner = ?"
                    " AND asset_kind = 'unit' AND asset_code = 'COIN' AND remaining > 0"
                    " ORDER BY row",
                    (holder,),
                ).fetchone()
            )
        lot_id, amount, remaining, value, recognised = lot[0], lot[6], lot[7], lot[10], lot[12]
        lot[7] = remaining = remaining - 2
        lot[12] = value * (amount - remaining) // amount
        part = lot[12] - recognised
        self.db.execute(
            "INSERT INTO lot_consumptions (transaction_id) VALUES (?)", (transaction_id,)
        )
        self.items.append((transaction_id, 0, str(lot_id), 2, part, "USD"))
        result = (
            f'{{"balance":{after[0]},"consumed":[[{_text(str(lot_id))},2,{part},"USD"]],'
            f'"transaction_id":{_text(transaction_id)},"unit":"COIN"}}'
        )
        self.records.append((key, digest, result, self.now))
        self.db.execute(
            "INSERT INTO outbox (id, type, occurred_at, payload, transaction_id)"
            " VALUES (?, 'coins.spent', ?, ?, ?)",
            (new_id(), self.now, result, transaction_id),
        )
        waiting = len(self.postings) + len(self.items) + len(self.records)
        if waiting + len(self.dirty) + len(self.lots) >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        db = self.db
        db.executemany(
            "UPDATE accounts SET balance = ? WHERE id = ?",
            [(b, i) for i, b in self.dirty.items()],
        )
        self.dirty.clear()
        db.executemany(
            "INSERT INTO postings (transaction_row, account_id, amount, balance_after)"
            " VALUES (?, ?, ?, ?)",
            self.postings,
        )
        self.postings.clear()
        db.executemany(
            "UPDATE lots SET origin = ?, amount = ?, remaining = ?, created_at = ?, "
            "transaction_id = ?, value_minor = ?, value_currency = ?, value_recognised = ?, "
            "expires_at = ? WHERE id = ? AND account_kind = ? AND owner = ? AND asset_kind = ? "
            "AND asset_code = ?",
            [(*lot[5:], *lot[:5]) for lot in self.lots.values()],
        )
        db.executemany(
            "INSERT INTO lot_consumption_items (transaction_id, position, lot_id, amount,"
            " value_minor, value_currency) VALUES (?, ?, ?, ?, ?, ?)",
            self.items,
        )
        self.items.clear()
        db.executemany(
            "INSERT INTO idempotency (key, fingerprint, result, created_at) VALUES (?, ?, ?, ?)",
            self.records,
        )
        self.records.clear()

    def commit(self) -> None:
        self.flush()
        self.db.execute("COMMIT")


def raw_round(directory: Path, spends: int, *, batched: bool) -> tuple[float, dict[str, int]]:
    """Seconds for the same rows written by a plain sqlite3 script, and the
    rows it wrote."""
    db = sqlite3.connect(directory / f"raw-{uuid.uuid4().hex}.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
    for step in MIGRATIONS:
        for statement in step:
            db.execute(statement)
    db.execute("BEGIN IMMEDIATE")
    wallets = []
    created = T0.astimezone(UTC).isoformat(timespec="microseconds")
    for h in range(HOLDERS):
        row = db.execute(
            "INSERT INTO accounts (kind, owner, asset_kind, asset_code, balance)"
            " VALUES ('wallet', ?, 'unit', 'COIN', ?)",
            (f"holder-{h}", 10**9),
        ).lastrowid
        assert row is not None
        wallets.append(row)
        db.execute(
            "INSERT INTO lots (id, account_kind, owner, asset_kind, asset_code, origin, amount,"
            " remaining, created_at, transaction_id, value_minor, value_currency,"
            " value_recognised) VALUES (?, 'wallet', ?, 'unit', 'COIN', 'purchase', ?, ?, ?,"
            " 'seed', 100000, 'USD', 0)",
            (new_id(), f"holder-{h}", 10**9, 10**9, created),
        )
    db.execute("COMMIT")
    before = row_counts(db)

    start = time.perf_counter()
    books = RawBooks(db, wallets)
    for n in range(spends):
        books.spend(n)
        if not batched:
            books.commit()
            books.begin()
    books.commit()
    elapsed = time.perf_counter() - start
    rows = written(before, row_counts(db))
    db.close()
    return elapsed, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spends", type=int, default=2000, help="spends per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per mode (median taken)")
    args = parser.parse_args(argv)
    print(
        f"gift-shaped spends on SQLite (WAL, synchronous=NORMAL), {args.spends} per round, "
        f"{args.rounds} rounds; each round runs coinecon and raw back to back, and the ratio "
        "is the median of the rounds' ratios\n"
    )
    print(f"{'mode':<26}{'coinecon/s':>12}{'raw/s':>12}{'ratio':>8}")
    worst = 1.0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for label, batched in (("one spend per transaction", False), ("batched", True)):
            ours: list[float] = []
            raw: list[float] = []
            for _ in range(args.rounds):  # pair the runs so drift hits both alike
                our_time, our_rows = coinecon_round(directory, args.spends, batched=batched)
                raw_time, raw_rows = raw_round(directory, args.spends, batched=batched)
                if our_rows != raw_rows:
                    sys.exit(f"the two wrote different rows: {our_rows} against {raw_rows}")
                ours.append(args.spends / our_time)
                raw.append(args.spends / raw_time)
            ratio = statistics.median(a / b for a, b in zip(ours, raw, strict=True))
            worst = min(worst, ratio)
            rates = f"{statistics.median(ours):>12,.0f}{statistics.median(raw):>12,.0f}"
            print(f"{label:<26}{rates}{ratio:>8.2f}")
    print(
        f"\ntarget: ratio >= 0.50 in both modes; worst ratio {worst:.2f}: "
        f"{'met' if worst >= 0.5 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
