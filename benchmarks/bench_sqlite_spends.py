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
The raw script writes each command's rows as it goes, as a hand-written script
would; coinecon's adapter keeps what a unit of work read in memory and sends
its rows in ``executemany`` calls at commit, so in batched mode it writes each
account's balance once per batch rather than once per spend (see "Batched
writes" in ``docs/storage.md``). Both write every transaction, posting, lot
update, consumption, idempotency record and event.
"""

from __future__ import annotations

import argparse
import json
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


def raw_round(directory: Path, spends: int, *, batched: bool) -> float:  # noqa: PLR0915
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
        accounts[name] = db.execute(
            "INSERT INTO accounts (kind, owner, asset_kind, asset_code) VALUES (?, ?, 'unit', ?)",
            (kind, owner, code),
        ).lastrowid
    wallets, lots = [], []
    for h in range(HOLDERS):
        wallets.append(
            db.execute(
                "INSERT INTO accounts (kind, owner, asset_kind, asset_code, balance)"
                " VALUES ('wallet', ?, 'unit', 'COIN', ?)",
                (f"holder-{h}", 10**9),
            ).lastrowid
        )
        lot_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO lots (id, account_kind, owner, asset_kind, asset_code, origin, amount,"
            " remaining, created_at, transaction_id, value_minor, value_currency,"
            " value_recognised) VALUES (?, 'wallet', ?, 'unit', 'COIN', 'purchase', ?, ?, ?,"
            " 'seed', 100000, 'USD', 0)",
            (lot_id, f"holder-{h}", 10**9, 10**9, T0.isoformat()),
        )
        lots.append(lot_id)
    db.execute("COMMIT")
    now = T0.isoformat()

    def one(n: int) -> None:
        key = f"gift-{n}"
        h = n % HOLDERS
        if db.execute("SELECT fingerprint FROM idempotency WHERE key = ?", (key,)).fetchone():
            raise AssertionError("replay")
        ids = (wallets[h], accounts["spent"], accounts["issuance"], accounts["earnings"])
        rows = dict(
            db.execute("SELECT id, balance FROM accounts WHERE id IN (?, ?, ?, ?)", ids).fetchall()
        )
        amounts = (-2, 2, -1, 1)
        after = [rows[i] + a for i, a in zip(ids, amounts, strict=True)]
        if after[0] < 0:
            raise AssertionError("overdraft")
        transaction_id = uuid.uuid4().hex
        row = db.execute(
            "INSERT INTO transactions (id, kind, occurred_at, idempotency_key, cause_type,"
            " cause_id, metadata) VALUES (?, 'gift', ?, ?, 'gift', ?, '{}')",
            (transaction_id, now, key, f"g-{n}"),
        ).lastrowid
        db.executemany(
            "INSERT INTO postings (transaction_row, account_id, amount, balance_after)"
            " VALUES (?, ?, ?, ?)",
            [(row, i, a, b) for i, a, b in zip(ids, amounts, after, strict=True)],
        )
        db.executemany(
            "UPDATE accounts SET balance = ? WHERE id = ?",
            list(zip(after, ids, strict=True)),
        )
        lot = db.execute(
            "SELECT id, amount, remaining, value_minor, value_recognised FROM lots"
            " WHERE account_kind = 'wallet' AND owner = ? AND asset_kind = 'unit'"
            " AND asset_code = 'COIN' AND remaining > 0 ORDER BY row",
            (f"holder-{h}",),
        ).fetchone()
        remaining = lot[2] - 2
        recognised = lot[3] * (lot[1] - remaining) // lot[1]
        db.execute(
            "UPDATE lots SET remaining = ?, value_recognised = ? WHERE id = ?",
            (remaining, recognised, lot[0]),
        )
        db.execute("INSERT INTO lot_consumptions (transaction_id) VALUES (?)", (transaction_id,))
        db.execute(
            "INSERT INTO lot_consumption_items (transaction_id, position, lot_id, amount,"
            " value_minor, value_currency) VALUES (?, 0, ?, 2, ?, 'USD')",
            (transaction_id, lot[0], recognised - lot[4]),
        )
        result = json.dumps({"transaction_id": transaction_id, "balance": after[0]})
        db.execute(
            "INSERT INTO idempotency (key, fingerprint, result, created_at) VALUES (?, ?, ?, ?)",
            (key, uuid.uuid4().hex, result, now),
        )
        db.execute(
            "INSERT INTO outbox (id, type, occurred_at, payload, transaction_id)"
            " VALUES (?, 'coins.spent', ?, ?, ?)",
            (uuid.uuid4().hex, now, result, transaction_id),
        )

    start = time.perf_counter()
    if batched:
        db.execute("BEGIN IMMEDIATE")
        for n in range(spends):
            one(n)
        db.execute("COMMIT")
    else:
        for n in range(spends):
            db.execute("BEGIN IMMEDIATE")
            one(n)
            db.execute("COMMIT")
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
