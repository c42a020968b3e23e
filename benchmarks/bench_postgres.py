"""Gifts per second on PostgreSQL: CoinEconomy.send_gift on the PostgreSQL
store against raw psycopg, with 1, 2, 4 and 8 worker processes, in one run
against one server.

Run with ``python3 tasks.py bench`` (or ``.venv/bin/python
benchmarks/bench_postgres.py``; ``--help`` for the options). It needs a
server: ``--conninfo`` (default ``$COINECON_POSTGRES``, else ``host=127.0.0.1
dbname=test``); without one it says so and stops. Every side works in a
fresh schema of its own, dropped at the end.

The workload is production-shaped: ``--holders`` viewers (each worker sends
from its own share of them, each with one purchased lot worth money) gifting
100 creators whose popularity is Zipf-like (the most popular receives about a
fifth of all gifts), a gift costing 1 to 50 coins, the creator earning half.
Each worker sends gifts back to back for ``--seconds``; a rate is all the
workers' gifts over that time.

Baseline (a), ``RAW_GIFT`` below, is the minimal correct double-entry gift in
raw psycopg: ONE statement in its own transaction (autocommit), so one round
trip, that inserts the transaction row (its idempotency key UNIQUE), takes the
coins from the sender's wallet (a CHECK keeps it from going below zero, which
fails the whole statement), credits the creator, and inserts the two postings
with their running balances. It keeps no lots, no money side, no events, no
profiles, and checks no catalog, region or eligibility; coinecon does all of
those. Its creator balance is one row, so (a) itself serialises the gifts to
one creator.

Baseline (b) is raw psycopg writing coinecon's own rows: each worker's
coinecon run records the statements the store sent (with their parameters),
and (b) sends the same statements, in the same transactions, on a copy of the
starting schema with no Python between them. The ratio to (b) is what
coinecon's own Python costs; the ratio of (b) to (a) is what coinecon's rows
cost.

The hot creator: 8 workers gift one creator, then 8 workers gift 8 creators;
the ratio is the first rate over the second (coinecon's tallies and sharded
earnings are what keep it up).

Ratios are paired per round (the order rotating) and the median is printed
with its range.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import pickle
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import psycopg_pool
from _workload import CREATORS, SEED_COINS, SEED_VALUE, ZIPF_EXPONENT, _zipf_weights
from bench_gifts import new_economy
from bench_purchases import Row, _row

from coinecon import Cause, LotOrigin, Money
from coinecon.adapters.postgres import PostgresStore
from coinecon.economy import CoinEconomy

TARGET = 0.5  # coinecon at least half of (a) at every worker count
HOT_TARGET = 0.5  # one creator at least half as fast as eight
TALLIES = 64  # a creator's tallies (GiftPolicy.tallies)
SHARDS = 64  # each platform and earnings account's balance rows (PostgresStore(shards=))
WORKERS = (1, 2, 4, 8)
DEFAULT_CONNINFO = "host=127.0.0.1 dbname=test"
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)

# -- the workload ---------------------------------------------------------------------------


class Send(NamedTuple):
    """One gift: a key, a sender and a creator (by number), its price in coins."""

    key: str
    sender: int
    creator: int
    coins: int


def sends(worker: int, workers: int, holders: int, creators: str, tag: str) -> Iterator[Send]:
    """The gifts of *worker* of *workers*, without end: senders from its own
    share of *holders*; creators Zipf-like among 100 (``"zipf"``), one
    (``"one"``) or eight (``"eight"``)."""
    rng = random.Random(f"{tag}-{worker}")
    weights = _zipf_weights(CREATORS, ZIPF_EXPONENT)
    mine = range(worker, holders, workers)
    for n in itertools.count():
        if creators == "zipf":
            creator = rng.choices(range(CREATORS), cum_weights=weights)[0]
        elif creators == "one":
            creator = 0
        else:
            creator = rng.randrange(8)
        yield Send(f"{tag}-{worker}-{n}", rng.choice(mine), creator, rng.randint(1, 50))


# -- coinecon ------------------------------------------------------------------------------


def seed_coinecon(conninfo: str, schema: str, holders: int) -> None:
    """Each viewer one purchased lot worth money; each creator enrolled."""
    with PostgresStore(conninfo, schema=schema, pool_size=1) as store:
        economy = new_economy(store, TALLIES)
        value = Money.from_minor(SEED_VALUE, "USD")
        with economy.wallets.batch() as bulk:
            for h in range(holders):
                bulk.credit(
                    f"seed-{h}",
                    holder=f"holder-{h}",
                    amount=economy.unit(SEED_COINS),
                    origin=LotOrigin.PURCHASE,
                    cause=Cause("purchase", f"seed-{h}"),
                    value=value,
                )
        with economy.batch() as bulk:
            for c in range(CREATORS):
                bulk.enroll_creator(f"enroll-{c}", creator=f"creator-{c}", region="US")


def sender(economy: CoinEconomy) -> Callable[[Send], None]:
    """Sends a workload's gift through *economy*."""

    def send(gift: Send) -> None:
        economy.send_gift(
            f"holder-{gift.sender}",
            f"creator-{gift.creator}",
            f"g{gift.coins}",
            context="live-1",
            region="US",
            idempotency_key=gift.key,
        )

    return send


# -- baseline (a): the minimal correct gift in raw psycopg -------------------------------------

RAW_SCHEMA = (
    "CREATE TABLE {s}.wallets (id integer PRIMARY KEY, coins bigint NOT NULL CHECK (coins >= 0))",
    "CREATE TABLE {s}.earnings (id integer PRIMARY KEY, units bigint NOT NULL)",
    (
        "CREATE TABLE {s}.transactions (id bigserial PRIMARY KEY,"
        " idempotency_key text NOT NULL UNIQUE, fingerprint text NOT NULL)"
    ),
    (
        "CREATE TABLE {s}.postings (transaction_id bigint NOT NULL, leg smallint NOT NULL,"
        " account text NOT NULL, amount bigint NOT NULL, balance_after bigint NOT NULL,"
        " PRIMARY KEY (transaction_id, leg))"
    ),
)

RAW_GIFT = """
WITH t AS (
    INSERT INTO {s}.transactions (idempotency_key, fingerprint) VALUES (%(key)s, %(print)s)
    RETURNING id
), w AS (
    UPDATE {s}.wallets SET coins = coins - %(coins)s WHERE id = %(sender)s RETURNING coins
), e AS (
    UPDATE {s}.earnings SET units = units + %(units)s WHERE id = %(creator)s RETURNING units
)
INSERT INTO {s}.postings (transaction_id, leg, account, amount, balance_after)
SELECT t.id, 0, 'wallet:' || %(sender)s, -%(coins)s, w.coins FROM t, w
UNION ALL
SELECT t.id, 1, 'earnings:' || %(creator)s, %(units)s, e.units FROM t, e
"""


def seed_raw(conninfo: str, schema: str, holders: int) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in RAW_SCHEMA:
            conn.execute(statement.format(s=schema))
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {schema}.wallets (id, coins) VALUES (%s, %s)",
                [(h, SEED_COINS) for h in range(holders)],
            )
            cursor.executemany(
                f"INSERT INTO {schema}.earnings (id, units) VALUES (%s, 0)",
                [(c,) for c in range(CREATORS)],
            )


def raw_worker(conninfo: str, schema: str) -> Callable[[Send], None]:
    conn = psycopg.connect(conninfo, autocommit=True)
    statement = RAW_GIFT.format(s=schema)
    replay = f"SELECT fingerprint FROM {schema}.transactions WHERE idempotency_key = %s"

    def send(gift: Send) -> None:
        fingerprint = f"{gift.sender}:{gift.creator}:{gift.coins}"
        try:
            cursor = conn.execute(
                statement,
                {
                    "key": gift.key,
                    "print": fingerprint,
                    "coins": gift.coins,
                    "sender": gift.sender,
                    "units": max(gift.coins // 2, 1),
                    "creator": gift.creator,
                },
            )
        except psycopg.errors.UniqueViolation:
            row = conn.execute(replay, (gift.key,)).fetchone()
            if row is None or row[0] != fingerprint:
                raise
            return
        if cursor.rowcount != 2:
            raise RuntimeError(f"gift {gift.key} wrote {cursor.rowcount} postings")

    return send


# -- baseline (b): coinecon's own statements, replayed ----------------------------------------


class RecordingConnection(psycopg.Connection[Any]):
    """A connection that notes every statement, commit and rollback sent
    through it (whether in a pipeline, too), so that (b) can send them again."""

    log: list[tuple[str, str, Any, bool]]

    def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        text = query if isinstance(query, str) else query.as_string(self)
        self.log.append(("sql", text, params, self._pipeline is not None))
        return super().execute(query, params, **options)

    def commit(self) -> None:
        self.log.append(("commit", "", None, self._pipeline is not None))
        super().commit()

    def rollback(self) -> None:
        self.log.append(("rollback", "", None, self._pipeline is not None))
        super().rollback()


def recording_worker(conninfo: str, schema: str, log: list[Any]) -> Callable[[Send], None]:
    """coinecon's gifts, through a pool of one recording connection."""

    def configure(connection: psycopg.Connection[Any]) -> None:
        assert isinstance(connection, RecordingConnection)
        connection.log = []  # the settings are not recorded
        connection.execute("SET TimeZone = 'UTC'")
        connection.commit()
        connection.log = log

    pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
        conninfo,
        min_size=1,
        max_size=1,
        connection_class=RecordingConnection,
        kwargs={"autocommit": False},
        configure=configure,
        open=True,
    )
    store = PostgresStore(pool=pool, schema=schema, shards=SHARDS)
    return sender(new_economy(store, TALLIES))


def replay(conn: psycopg.Connection[Any], log: list[tuple[str, str, Any, bool]]) -> None:
    """Send the statements of *log* again, committing and rolling back where
    it did, in a pipeline where it was. A statement that fails now (a retry
    of a command whose first attempt failed then but not now) is rolled back
    with its transaction, as coinecon's would have been."""
    pipeline: Any = None
    failed = False
    for what, text, params, pipelined in log:
        try:
            if pipelined and pipeline is None:
                pipeline = conn.pipeline()
                pipeline.__enter__()
            elif not pipelined and pipeline is not None:
                pipeline, ending = None, pipeline
                ending.__exit__(None, None, None)
            if what == "sql":
                if not failed:
                    conn.execute(text, params)
            elif what == "commit" and not failed:
                conn.commit()
            elif what != "commit":
                conn.rollback()
                failed = False
        except psycopg.Error:
            failed = what == "sql"  # skip the rest of its transaction
            if pipeline is not None:
                pipeline, ending = None, pipeline
                with contextlib.suppress(psycopg.Error):
                    ending.__exit__(None, None, None)
            conn.rollback()
    if pipeline is not None:
        with contextlib.suppress(psycopg.Error):
            pipeline.__exit__(None, None, None)
    conn.rollback()


ROWS = ("transactions", "postings", "lots", "lot_consumptions", "idempotency", "outbox", "records")


def row_counts(conninfo: str, schema: str) -> dict[str, int]:
    """How many rows each of coinecon's tables of *schema* holds."""
    with psycopg.connect(conninfo) as conn:
        return {
            table: conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]  # type: ignore[index]
            for table in ROWS
        }


def copy_schema(conninfo: str, source: str, target: str) -> None:
    """*target*: coinecon's schema with a copy of *source*'s rows and sequences."""
    PostgresStore(conninfo, schema=target, pool_size=1).close()
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers: copied rows
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            (source,),
        ).fetchall()
        for (table,) in tables:
            conn.execute(f'TRUNCATE "{target}"."{table}"')
            conn.execute(f'INSERT INTO "{target}"."{table}" SELECT * FROM "{source}"."{table}"')
        sequences = conn.execute(
            "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = %s",
            (source,),
        ).fetchall()
        for (sequence,) in sequences:
            last = conn.execute(f'SELECT last_value, is_called FROM "{source}"."{sequence}"')
            value, called = last.fetchone() or (1, False)
            conn.execute(
                "SELECT setval(%s::regclass, %s, %s)", (f'"{target}"."{sequence}"', value, called)
            )
        conn.commit()


# -- running ----------------------------------------------------------------------------------


def _work(
    side: str,
    conninfo: str,
    schema: str,
    worker: int,
    workers: int,
    holders: int,
    creators: str,
    tag: str,
    seconds: float,
    barrier: Any,
    results: Any,
    logs: str,
) -> None:
    """One worker: warm up, wait for the others, then send gifts for
    *seconds* (or, for ``"replay"``, send the recorded statements again)."""
    path = Path(logs) / f"{worker}.pickle"
    try:
        if side == "replay":
            source, warm, timed, count = pickle.loads(path.read_bytes())  # noqa: S301 (ours)
            # The same statements, naming the copy's schema instead of the original's.
            warm, timed = (
                [
                    (what, text.replace(f'"{source}"', f'"{schema}"'), p, q)
                    for what, text, p, q in part
                ]
                for part in (warm, timed)
            )
            conn = psycopg.connect(conninfo, autocommit=False)
            conn.execute("SET TimeZone = 'UTC'")
            conn.commit()
            replay(conn, warm)
        else:
            log: list[Any] = []
            if side == "coinecon":
                send = recording_worker(conninfo, schema, log)
            else:
                send = raw_worker(conninfo, schema)
            todo = sends(worker, workers, holders, creators, tag)
            send(next(todo))  # warm up: connections and caches
            warmed = len(log)
    except Exception as error:  # noqa: BLE001 (the parent raises it)
        barrier.abort()  # the other workers stop waiting
        results.put(f"{type(error).__name__}: {error}")
        return
    try:
        barrier.wait()
        started = time.perf_counter()
        if side == "replay":
            replay(conn, timed)
        else:
            count = 0
            deadline = started + seconds
            while time.perf_counter() < deadline:
                send(next(todo))
                count += 1
        elapsed = time.perf_counter() - started
        if side == "coinecon":
            path.write_bytes(pickle.dumps((schema, log[:warmed], log[warmed:], count)))
    except Exception as error:  # noqa: BLE001 (the parent raises it)
        results.put(f"{type(error).__name__}: {error}")
        return
    results.put((count, elapsed))


def rate(
    side: str,
    conninfo: str,
    schema: str,
    workers: int,
    holders: int,
    creators: str,
    seconds: float,
    logs: Path,
) -> float:
    """Gifts per second of *workers* processes sending for *seconds*:
    ``"coinecon"`` (recording its statements in *logs*), ``"raw"`` (a), or
    ``"replay"`` (b, the statements the last ``"coinecon"`` run recorded)."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers)
    results = context.Queue()
    tag = uuid.uuid4().hex[:8]
    processes = [
        context.Process(
            target=_work,
            args=(
                side,
                conninfo,
                schema,
                w,
                workers,
                holders,
                creators,
                tag,
                seconds,
                barrier,
                results,
                str(logs),
            ),
        )
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    done = [results.get(timeout=seconds * 10 + 120) for _ in processes]
    for process in processes:
        process.join()
    failures = [result for result in done if isinstance(result, str)]
    if failures:
        raise RuntimeError(f"a {side} worker failed: {failures[0]}")
    counts = [result for result in done if not isinstance(result, str)]
    return float(sum(count for count, _ in counts) / max(elapsed for _, elapsed in counts))


def _line(row: Row, target: float | None) -> str:
    verdict = (
        "" if target is None else f">= {target}x " + ("PASS" if row.ratio >= target else "FAIL")
    )
    return (
        f"{row.name:34} {row.rate:>9,.0f} {row.raw:>9,.0f} {row.ratio:>6.2f} "
        f"({row.low:.2f}-{row.high:.2f})  {verdict}"
    ).rstrip()


@contextmanager
def schemas(conninfo: str, *names: str) -> Iterator[None]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conninfo", default=os.environ.get("COINECON_POSTGRES", DEFAULT_CONNINFO))
    parser.add_argument("--holders", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)))
    parser.add_argument("--quick", action="store_true", help="one round of one second")
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds, options.seconds = 1, 1.0
    workers = [int(w) for w in options.workers.split(",")]
    suffix = f"{os.getpid()}"
    ours, raw, again = (f"bench_{name}_{suffix}" for name in ("coinecon", "raw", "replay"))
    conninfo = options.conninfo
    try:
        psycopg.connect(conninfo).close()
    except psycopg.Error as error:
        print(f"PostgreSQL benchmark skipped: no server at {conninfo!r}: {error}")
        return 0
    print(
        f"PostgreSQL: {options.holders:,} viewers, 100 creators (Zipf-like), {TALLIES} tallies "
        f"and {SHARDS} shards; {options.rounds} round(s) of {options.seconds:g} s; gifts per "
        "second; ratio = coinecon / baseline, the median of the rounds' ratios (range)\n"
    )
    print(f"{'case':34} {'coinecon':>9} {'base':>9} {'ratio':>6} {'(range)':>13}  verdict")
    passed = total = 0

    def report(row: Row, target: float | None) -> None:
        nonlocal passed, total
        print(_line(row, target), flush=True)
        if target is not None:
            total += 1
            passed += row.ratio >= target

    with schemas(conninfo, ours, raw, again), tempfile.TemporaryDirectory() as logs:
        seed_coinecon(conninfo, ours, options.holders)
        seed_raw(conninfo, raw, options.holders)
        for count in workers:
            mine: list[float] = []
            minimal: list[float] = []
            same: list[float] = []
            for n in range(options.rounds):
                copy_schema(conninfo, ours, again)
                sides = (
                    ["coinecon", "replay", "raw"] if n % 2 == 0 else ["raw", "coinecon", "replay"]
                )
                for side in sides:
                    schema = {"coinecon": ours, "raw": raw, "replay": again}[side]
                    got = rate(
                        side,
                        conninfo,
                        schema,
                        count,
                        options.holders,
                        "zipf",
                        options.seconds,
                        Path(logs),
                    )
                    {"coinecon": mine, "raw": minimal, "replay": same}[side].append(got)
                # (b) wrote coinecon's rows, row for row: the copy caught up with the original.
                written, replayed = row_counts(conninfo, ours), row_counts(conninfo, again)
                if written != replayed:
                    raise RuntimeError(f"(b) wrote {replayed}, coinecon {written}")
            report(_row(f"{count} worker(s) vs (a) minimal", mine, minimal), TARGET)
            report(_row(f"{count} worker(s) vs (b) same rows", mine, same), None)
        one: list[float] = []
        eight: list[float] = []
        for n in range(options.rounds):
            for creators in ["one", "eight"] if n % 2 == 0 else ["eight", "one"]:
                got = rate(
                    "coinecon",
                    conninfo,
                    ours,
                    8,
                    options.holders,
                    creators,
                    options.seconds,
                    Path(logs),
                )
                (one if creators == "one" else eight).append(got)
        report(_row("8 workers: one creator vs eight", one, eight), HOT_TARGET)
    print(f"\ntargets: {passed} PASS, {total - passed} FAIL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
