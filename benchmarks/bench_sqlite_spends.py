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
objects and storage abstraction over the bare writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from coinecon import ManualClock, Money, Unit
from coinecon.adapters._sqlite_schema import APPLICATION_ID, MIGRATIONS
from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger import AccountKey, Cause, Posting, TransactionKind
from coinecon.lots import LotOrigin
from coinecon.wallets import Wallets

COIN, DIAMOND = Unit("COIN"), Unit("DIAMOND")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOLDERS = 10


def coinecon_round(directory: Path, spends: int, *, batched: bool) -> float:
    """Seconds for *spends* gift-shaped spends through coinecon."""
    store = SqliteStore(directory / f"coinecon-{uuid.uuid4().hex}.db", synchronous="NORMAL")
    wallets = Wallets(store, clock=ManualClock(T0))
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
    also = (
        Posting(AccountKey.issuance(DIAMOND), -1),
        Posting(AccountKey.earnings("creator", DIAMOND), 1),
    )

    def one(target: Wallets, n: int) -> None:
        target.spend(
            f"gift-{n}",
            holder=f"holder-{n % HOLDERS}",
            amount=COIN(2),
            cause=Cause("gift", f"g-{n}"),
            kind=TransactionKind.GIFT,
            also=also,
        )

    start = time.perf_counter()
    if batched:
        with wallets.batch() as bulk:
            for n in range(spends):
                one(bulk, n)
    else:
        for n in range(spends):
            one(wallets, n)
    elapsed = time.perf_counter() - start
    assert wallets.verify().ok
    store.close()
    return elapsed


class RawBooks:
    """The same writes as coinecon's SQLite adapter, by hand.

    Like the adapter, it reads each balance and each holder's open lot once
    per SQLite transaction and keeps them in memory (it holds the write lock),
    inserts each transaction, consumption and event at once, and sends the
    postings, balance updates, lot updates, consumption items and idempotency
    records with ``executemany`` at commit. Ids and fingerprints are made the
    same way (random 128-bit hex, SHA-256 of canonical JSON).
    """

    def __init__(
        self, db: sqlite3.Connection, accounts: dict[str, int], wallets: list[int]
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.wallets = wallets
        self.now = T0.isoformat()
        self.begin()

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.balances: dict[int, int] = {}
        self.dirty: dict[int, int] = {}
        # holder -> (lot id, [amount, remaining, value, value recognised])
        self.lots: dict[int, tuple[str, list[int]]] = {}
        self.postings: list[tuple[int, int, int, int]] = []
        self.items: list[tuple[str, int, str, int, int, str]] = []
        self.records: list[tuple[str, str, str, str]] = []

    def spend(self, n: int) -> None:
        key = f"gift-{n}"
        h = n % HOLDERS
        request = {"holder": f"holder-{h}", "amount": 2, "cause": f"gift:g-{n}"}
        digest = hashlib.sha256(
            json.dumps(request, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        if self.db.execute("SELECT fingerprint FROM idempotency WHERE key = ?", (key,)).fetchone():
            raise AssertionError("replay")
        ids = (
            self.wallets[h],
            self.accounts["spent"],
            self.accounts["issuance"],
            self.accounts["earnings"],
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
        transaction_id = os.urandom(16).hex()
        row = self.db.execute(
            "INSERT INTO transactions (id, kind, occurred_at, idempotency_key, cause_type,"
            " cause_id, metadata) VALUES (?, 'gift', ?, ?, 'gift', ?, '[]')",
            (transaction_id, self.now, key, f"g-{n}"),
        ).lastrowid
        assert row is not None
        for account_id, amount, balance in zip(ids, (-2, 2, -1, 1), after, strict=True):
            self.balances[account_id] = self.dirty[account_id] = balance
            self.postings.append((row, account_id, amount, balance))
        lot = self.lots.get(h)
        if lot is None:
            lot_id, *numbers = self.db.execute(
                "SELECT id, amount, remaining, value_minor, value_recognised FROM lots"
                " WHERE account_kind = 'wallet' AND owner = ? AND asset_kind = 'unit'"
                " AND asset_code = 'COIN' AND remaining > 0 ORDER BY row",
                (f"holder-{h}",),
            ).fetchone()
            lot = self.lots[h] = (lot_id, numbers)
        lot_id, numbers = lot
        amount, remaining, value, recognised = numbers
        numbers[1] = remaining = remaining - 2
        numbers[3] = value * (amount - remaining) // amount
        self.db.execute(
            "INSERT INTO lot_consumptions (transaction_id) VALUES (?)", (transaction_id,)
        )
        self.items.append((transaction_id, 0, lot_id, 2, numbers[3] - recognised, "USD"))
        result = json.dumps(
            {"transaction_id": transaction_id, "balance": after[0]}, separators=(",", ":")
        )
        self.records.append((key, digest, result, self.now))
        self.db.execute(
            "INSERT INTO outbox (id, type, occurred_at, payload, transaction_id)"
            " VALUES (?, 'coins.spent', ?, ?, ?)",
            (os.urandom(16).hex(), self.now, result, transaction_id),
        )

    def commit(self) -> None:
        db = self.db
        db.executemany(
            "UPDATE accounts SET balance = ? WHERE id = ?",
            [(b, i) for i, b in self.dirty.items()],
        )
        db.executemany(
            "INSERT INTO postings (transaction_row, account_id, amount, balance_after)"
            " VALUES (?, ?, ?, ?)",
            self.postings,
        )
        db.executemany(
            "UPDATE lots SET remaining = ?, value_recognised = ? WHERE id = ?",
            [(numbers[1], numbers[3], lot_id) for lot_id, numbers in self.lots.values()],
        )
        db.executemany(
            "INSERT INTO lot_consumption_items (transaction_id, position, lot_id, amount,"
            " value_minor, value_currency) VALUES (?, ?, ?, ?, ?, ?)",
            self.items,
        )
        db.executemany(
            "INSERT INTO idempotency (key, fingerprint, result, created_at) VALUES (?, ?, ?, ?)",
            self.records,
        )
        db.execute("COMMIT")


def raw_round(directory: Path, spends: int, *, batched: bool) -> float:
    """Seconds for the same rows written by a plain sqlite3 script."""
    db = sqlite3.connect(directory / f"raw-{uuid.uuid4().hex}.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
    for step in MIGRATIONS:
        for statement in step:
            db.execute(statement)
    db.execute("BEGIN IMMEDIATE")
    accounts = {}
    for name, (kind, owner, code) in {
        "spent": ("spent", "@platform", "COIN"),
        "issuance": ("issuance", "@platform", "DIAMOND"),
        "earnings": ("earnings", "creator", "DIAMOND"),
    }.items():
        row = db.execute(
            "INSERT INTO accounts (kind, owner, asset_kind, asset_code) VALUES (?, ?, 'unit', ?)",
            (kind, owner, code),
        ).lastrowid
        assert row is not None
        accounts[name] = row
    wallets = []
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
            (os.urandom(16).hex(), f"holder-{h}", 10**9, 10**9, T0.isoformat()),
        )
    db.execute("COMMIT")

    start = time.perf_counter()
    books = RawBooks(db, accounts, wallets)
    for n in range(spends):
        books.spend(n)
        if not batched:
            books.commit()
            books.begin()
    books.commit()
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


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
                ours.append(args.spends / coinecon_round(directory, args.spends, batched=batched))
                raw.append(args.spends / raw_round(directory, args.spends, batched=batched))
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
