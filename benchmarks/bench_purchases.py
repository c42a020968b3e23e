"""Purchases per second: CoinEconomy on SQLite against the minimal correct raw
sqlite3 write of the same purchase, measured in one run.

Run with ``python3 tasks.py bench`` (or ``.venv/bin/python
benchmarks/bench_purchases.py``; ``--help`` for the options).

A purchase through a payment provider must be recorded *before* the provider
is asked (a process that dies after the charge would otherwise leave money
taken and no trace of it), then credited once the provider approves. So the
minimal correct write is two SQLite transactions:

1. insert the payment record (its idempotency key UNIQUE: a replay finds it);
2. after the charge: insert the transaction row, update the six balances
   (coin issuance and the wallet; clearing, fees, tax payable and deferred
   revenue), insert the six postings with their running balances, and mark
   the payment completed (guarded: only a payment still charging).

Baseline (r), ``RawPurchases`` below, does exactly that; no lots, no outbox,
no profile, no re-check of the quote. coinecon does all of those too, behind
the same two commits. Both call the same in-memory fake provider.

Each case runs in paired rounds on fresh files, the order rotating; a ratio
is the median of the rounds' ratios of purchases per second. The group-commit
cases run coinecon's purchases from several threads through one
``SqliteStore`` (their commits shared) against (r) one per commit.

The one-per-commit cases also print a ``ceiling``: the very statements
coinecon ran in that round (recorded with their parameters as it ran them),
replayed by raw sqlite3 on a file in the same starting state, with the same
provider calls and no other Python around them. No code around those
statements can be faster, so it says how far any Python could bring
coinecon's ratio without writing fewer or cheaper statements.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from coinecon import (
    ManualClock,
    PriceBook,
)
from coinecon.__main__ import _book as demo_book
from coinecon.adapters.fake_payments import FakePaymentGateway
from coinecon.adapters.sqlite import SqliteStore
from coinecon.economy import CoinEconomy
from coinecon.pricing import Quote
from coinecon.recharge import ChargeRequest, EligibilityPolicy, PurchaseStatus

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
TARGET = 0.5  # coinecon at least half the rate of (r)


def book() -> PriceBook:
    """The demo's book: three packages, a card fee, US sales tax."""
    return demo_book()


class Order(NamedTuple):
    """One purchase to make: its key, and the quote (made before timing)."""

    key: str
    quote: Quote


def orders(economy: CoinEconomy, count: int, holders: int, start: int) -> list[Order]:
    """*count* quotes for holders chosen round-robin, many holders, packages in turn."""
    skus = ("coins_100", "coins_500", "coins_1000")
    return [
        Order(
            f"order-{n}",
            economy.quote(f"holder-{n % holders}", region="US", sku=skus[n % 3]),
        )
        for n in range(start, start + count)
    ]


def new_economy(path: Path, synchronous: str, store: SqliteStore | None = None) -> CoinEconomy:
    clock = ManualClock(T0)
    return CoinEconomy(
        price_book=book(),
        store=SqliteStore(path, synchronous=synchronous) if store is None else store,
        gateway=FakePaymentGateway(clock=clock),
        clock=clock,
        eligibility=EligibilityPolicy(require_age=False),
    )


_SCHEMA = (
    "CREATE TABLE balances (account INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
    (
        "CREATE TABLE transactions (id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,"
        " created_at TEXT NOT NULL)"
    ),
    (
        "CREATE TABLE postings (transaction_id INTEGER NOT NULL, leg INTEGER NOT NULL,"
        " account INTEGER NOT NULL, amount INTEGER NOT NULL, balance_after INTEGER NOT NULL,"
        " PRIMARY KEY (transaction_id, leg)) WITHOUT ROWID"
    ),
    (
        "CREATE TABLE payments (id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,"
        " fingerprint TEXT NOT NULL, holder INTEGER NOT NULL, amount INTEGER NOT NULL,"
        " status TEXT NOT NULL, transaction_id INTEGER)"
    ),
)
_ADD = "UPDATE balances SET balance = balance + ? WHERE account = ? RETURNING balance"


class RawPurchases:
    """Baseline (r): the minimal correct purchase on raw sqlite3 (see the
    module's documentation). Accounts: holders 0..n-1, then the platform's."""

    def __init__(self, path: Path, holders: int, synchronous: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute(f"PRAGMA synchronous = {synchronous}")
        for statement in _SCHEMA:
            self.db.execute(statement)
        self.issuance, self.clearing, self.fees, self.tax, self.deferred = range(
            holders, holders + 5
        )
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO balances (account, balance) VALUES (?, 0)",
            [(n,) for n in range(holders + 5)],
        )
        self.db.execute("COMMIT")
        self.gateway = FakePaymentGateway()

    def purchase(self, key: str, holder: int, quote: Quote) -> str:
        db = self.db
        total, tax = quote.total.minor, quote.tax.minor
        costs = -sum(line.amount.minor for line in quote.platform_lines) - tax
        value = total - tax
        coins = quote.total_coins.amount
        fingerprint = quote.fingerprint
        db.execute("BEGIN IMMEDIATE")
        try:
            payment = db.execute(
                "INSERT INTO payments (idempotency_key, fingerprint, holder, amount, status)"
                " VALUES (?, ?, ?, ?, 'charging')",
                (key, fingerprint, holder, total),
            ).lastrowid
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            status: str = db.execute(
                "SELECT status FROM payments WHERE idempotency_key = ?", (key,)
            ).fetchone()[0]
            return status
        db.execute("COMMIT")
        self.gateway.charge(ChargeRequest(str(payment), f"h{holder}", quote.total, "pm", "coins"))
        db.execute("BEGIN IMMEDIATE")
        transaction = db.execute(
            "INSERT INTO transactions (idempotency_key, created_at) VALUES (?, ?)",
            (f"purchase:{payment}", T0.isoformat()),
        ).lastrowid
        legs = (
            (self.issuance, -coins),
            (holder, coins),
            (self.clearing, total - costs),
            (self.fees, costs),
            (self.tax, -tax),
            (self.deferred, -value),
        )
        db.executemany(
            "INSERT INTO postings (transaction_id, leg, account, amount, balance_after)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (
                    transaction,
                    leg,
                    account,
                    amount,
                    db.execute(_ADD, (amount, account)).fetchone()[0],
                )
                for leg, (account, amount) in enumerate(legs)
                if amount
            ],
        )
        done = db.execute(
            "UPDATE payments SET status = 'completed', transaction_id = ?"
            " WHERE id = ? AND status = 'charging'",
            (transaction, payment),
        ).rowcount
        assert done == 1
        db.execute("COMMIT")
        return "completed"


class _Recording:
    """A sqlite3 connection that notes every statement it runs (with its
    parameters) while *log* is not None."""

    __slots__ = ("log", "raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.log: list[tuple[str, Any, bool]] | None = None

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        if self.log is not None:
            self.log.append((sql, parameters, False))
        return self.raw.execute(sql, parameters)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = list(rows)
        if self.log is not None:
            self.log.append((sql, rows, True))
        return self.raw.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


_CHARGE = "-- a provider's charge"  # marks where (r) and coinecon ask the provider


def recorded_purchases(
    path: Path, synchronous: str, todo: list[Order]
) -> list[tuple[str, Any, bool]]:
    """Make *todo*'s purchases through coinecon on *path*, and return the
    statements its connection ran for them, in order, with a marker for
    each charge."""
    store = SqliteStore(path, synchronous=synchronous)
    [connection] = store._idle  # noqa: SLF001  # the one it opened, pooled
    wrapped = _Recording(connection.raw)
    connection.raw = wrapped  # type: ignore[assignment]
    economy = new_economy(path, synchronous, store)
    log: list[tuple[str, Any, bool]] = []
    wrapped.log = log
    for order in todo:
        log.append((_CHARGE, order.quote.total, False))
        bought = economy.purchase(order.quote, "pm_card", order.key)
        assert bought.status is PurchaseStatus.COMPLETED
    assert store._idle == [connection], "one connection, one thread"  # noqa: SLF001
    store.close()
    return log


def replayer(path: Path, synchronous: str, log: list[tuple[str, Any, bool]]) -> Callable[[], None]:
    """A body that runs *log* on *path* (a fresh store's file) with raw
    sqlite3, configured as coinecon configures its connections."""
    SqliteStore(path, synchronous=synchronous).close()  # the same schema, empty
    db = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA temp_store = MEMORY")
    gateway = FakePaymentGateway()

    def body() -> None:
        charges = 0
        for sql, parameters, many in log:
            if sql is _CHARGE:
                charges += 1
                gateway.charge(ChargeRequest(str(charges), "h", parameters, "pm", "coins"))
            elif many:
                db.executemany(sql, parameters)
            else:
                db.execute(sql, parameters).fetchall()

    return body


def _timed(count: int, body: Callable[[], None]) -> float:
    gc.collect()
    start = time.perf_counter()
    body()
    return count / (time.perf_counter() - start)


def run_case(
    name: str,
    directory: Path,
    *,
    synchronous: str,
    threads: int,
    purchases: int,
    holders: int,
    rounds: int,
) -> tuple[Row, Row | None]:
    """coinecon's row over *rounds* paired rounds; and, one purchase at a
    time, the ceiling's row (coinecon's statements replayed, no Python)."""
    ours: list[float] = []
    theirs: list[float] = []
    ceilings: list[float] = []
    counter = itertools.count()
    directory = Path(tempfile.mkdtemp(dir=directory))  # this case's files
    for round_ in range(rounds):

        def coinecon() -> None:
            economy = new_economy(directory / f"c-{next(counter)}.db", synchronous)
            todo = orders(economy, purchases, holders, 0)
            chunks = [todo[n::threads] for n in range(threads)]

            def work(chunk: list[Order]) -> None:
                for order in chunk:
                    bought = economy.purchase(order.quote, "pm_card", order.key)
                    assert bought.status is PurchaseStatus.COMPLETED

            def body() -> None:
                if threads == 1:
                    work(todo)
                    return
                workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()

            ours.append(_timed(purchases, body))
            assert economy.verify().ok

        def raw() -> None:
            baseline = RawPurchases(directory / f"r-{next(counter)}.db", holders, synchronous)
            quoting = new_economy(directory / f"q-{next(counter)}.db", synchronous)
            todo = orders(quoting, purchases, holders, 0)

            def body() -> None:
                for n, order in enumerate(todo):
                    baseline.purchase(order.key, n % holders, order.quote)

            theirs.append(_timed(purchases, body))

        def ceiling() -> None:
            quoting = new_economy(directory / f"q-{next(counter)}.db", synchronous)
            todo = orders(quoting, purchases, holders, 0)
            log = recorded_purchases(directory / f"l-{next(counter)}.db", synchronous, todo)
            ceilings.append(
                _timed(purchases, replayer(directory / f"p-{next(counter)}.db", synchronous, log))
            )

        contenders = [coinecon, raw] + ([ceiling] if threads == 1 else [])
        turn = round_ % len(contenders)
        for contender in contenders[turn:] + contenders[:turn]:
            contender()
    return _row(name, ours, theirs), (
        _row("  ceiling: its statements, no Python", ceilings, theirs) if ceilings else None
    )


class Row(NamedTuple):
    """One line of the table: rates, the median ratio and its range."""

    name: str
    rate: float
    raw: float
    ratio: float
    low: float
    high: float


def _row(name: str, ours: list[float], theirs: list[float]) -> Row:
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return Row(
        name,
        statistics.median(ours),
        statistics.median(theirs),
        statistics.median(ratios),
        min(ratios),
        max(ratios),
    )


def _line(row: Row) -> str:
    return (
        f"{row.name:48} {row.rate:>11,.0f} {row.raw:>9,.0f} {row.ratio:>6.2f} "
        f"({row.low:.2f}-{row.high:.2f})"
    )


def self_check(directory: Path) -> None:
    """(r) replays an idempotency key without writing again, and writes what
    a purchase must: one payment, one transaction, its six postings."""
    baseline = RawPurchases(directory / "check-r.db", 10, "NORMAL")
    quoting = new_economy(directory / "check-q.db", "NORMAL")
    [order] = orders(quoting, 1, 10, 0)
    assert baseline.purchase(order.key, 3, order.quote) == "completed"
    assert baseline.purchase(order.key, 3, order.quote) == "completed"
    counts = [
        baseline.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("payments", "transactions", "postings")
    ]
    assert counts == [1, 1, 6], counts
    print("self-check: (r) records the payment, then its transaction and postings, once")
    # The ceiling's replay writes what coinecon wrote, row for row.
    todo = orders(quoting, 5, 10, 1)
    log = recorded_purchases(directory / "check-l.db", "NORMAL", todo)
    replayer(directory / "check-p.db", "NORMAL", log)()

    def rows(path: Path) -> list[list[tuple[object, ...]]]:
        db = sqlite3.connect(path)
        try:
            return [
                sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("transactions", "postings", "accounts", "lots", "records", "outbox")
            ]
        finally:
            db.close()

    assert rows(directory / "check-l.db") == rows(directory / "check-p.db")
    assert rows(directory / "check-p.db")[0], "the replay wrote transactions"
    print("self-check: the ceiling's replay writes coinecon's rows, the same\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (checks, not numbers)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--purchases", type=int, default=1000, help="purchases per round")
    arguments = parser.parse_args(argv)
    rounds, purchases = (1, 60) if arguments.quick else (arguments.rounds, arguments.purchases)
    full = max(purchases // 5, 10)
    holders = 10_000
    cases = [
        ("SQLite NORMAL, one purchase per commit pair", "NORMAL", 1, purchases),
        ("SQLite FULL, one purchase per commit pair", "FULL", 1, full),
        ("group commit FULL,  4 threads", "FULL", 4, full),
        ("group commit FULL, 16 threads", "FULL", 16, full),
    ]
    with tempfile.TemporaryDirectory() as directory:
        self_check(Path(directory))
    print(
        f"{holders:,} holders; purchases per round: {purchases} at NORMAL, {full} at FULL; "
        f"{rounds} round(s); ratio = coinecon / (r), the median of the rounds' ratios\n"
    )
    print(f"{'case':48} {'coinecon/s':>11} {'(r)/s':>9} {'ratio':>6} {'(range)':>13}  verdict")
    passed = 0
    with tempfile.TemporaryDirectory() as directory:
        for name, synchronous, threads, count in cases:
            row, ceiling = run_case(
                name,
                Path(directory),
                synchronous=synchronous,
                threads=threads,
                purchases=count,
                holders=holders,
                rounds=rounds,
            )
            verdict = "PASS" if row.ratio >= TARGET else "FAIL"
            passed += verdict == "PASS"
            print(f"{_line(row)}  >= {TARGET}x {verdict}")
            if ceiling is not None:
                print(_line(ceiling))
    print(f"\ntargets: {passed} PASS, {len(cases) - passed} FAIL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
