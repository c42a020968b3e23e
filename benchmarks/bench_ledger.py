"""Ledger writes per second: coinecon against baselines it writes itself, in one run.

Run with ``python3 tasks.py bench`` (or ``.venv/bin/python benchmarks/bench_ledger.py``;
``--help`` for the options; docs/benchmarks.md says what each number means).

The workload (``_workload.py``): 10,000 holders, 100 creators with Zipf-like
popularity; gift-shaped spends of 1 to 50 coins (the creator earns half as
many diamonds, at least one) and, one command in ten, a purchase that credits
a new lot. The baselines:

(a) ``_raw_minimal.py``: the minimal correct double-entry write on raw
    sqlite3: a transaction row with its idempotency key UNIQUE, its postings,
    a guarded update of the wallet's balance and plain updates of the others.
(b) ``_raw_same_rows.py``: coinecon's own rows, written by a plain script.
(c) ``_plain_dict.py``: the bookkeeping of ``Wallets`` on ``MemoryStore`` in
    plain dicts and lists.

Each case runs in paired rounds: every contender once per round, on a fresh
copy of a seeded file, the order rotating from round to round; a ratio is
the median of the rounds' ratios, and the rates are the medians of the rounds.
Before measuring, a self-check proves that the baselines refuse an overdraft,
replay an idempotency key, and (b) writes what coinecon writes.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import _plain_dict
import _raw_minimal
import _raw_same_rows
from _workload import (
    HOLDERS,
    SEED_COINS,
    Command,
    commands,
    copy_file,
    gift_command,
    purchase_command,
    run,
    seed,
    seeded_file,
)
from profile_spend import NoStore

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SCHEMA_VERSION, SqliteStore
from coinecon.errors import IdempotencyConflict, InsufficientFunds
from coinecon.ledger.wallets import Wallets

BATCH = 1000  # commands per commit, batched
PAGES_COMMANDS = 200  # commands of the pass that counts WAL pages
THREADS = (1, 4, 16)


class Outcome(NamedTuple):
    """One contender's round: commands per second, the rows it wrote (SQLite),
    and the WAL pages it wrote per command (on a pass that counts them)."""

    rate: float
    rows: dict[str, int] | None = None
    pages: float | None = None


Runner = Callable[[list[Command]], Outcome]


class Setup(NamedTuple):
    directory: Path
    holders: int
    commands: int  # per round
    rounds: int
    coinecon_file: Path  # seeded by coinecon, checkpointed
    minimal_file: Path  # seeded by baseline (a)
    accounts: _raw_minimal.Accounts
    same_rows: bool  # whether (b) writes this coinecon's schema


def _timed(count: int, body: Callable[[], None]) -> float:
    """Commands per second of *body*, which runs *count* commands. The garbage
    of earlier rounds is collected first, so that no contender pays for another's."""
    gc.collect()
    start = time.perf_counter()
    body()
    return count / (time.perf_counter() - start)


def _chunks(items: list[Command], size: int) -> list[list[Command]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@contextlib.contextmanager
def wal_pages(path: Path, *, count: bool) -> Iterator[Callable[[], int]]:
    """While the block runs, a reader holds a snapshot of the SQLite file at
    *path* taken at its start, so that SQLite cannot checkpoint: every page
    written stays in the WAL as a frame. Yields what counts the frames written
    since. With *count* false, nothing is held and the count is 0."""
    if not count:
        yield lambda: 0
        return
    pin = sqlite3.connect(path, isolation_level=None)
    try:
        pin.execute("BEGIN")
        pin.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        frame = int(pin.execute("PRAGMA page_size").fetchone()[0]) + 24  # a page and its header
        wal = path.with_name(path.name + "-wal")

        def frames() -> int:
            size = wal.stat().st_size if wal.exists() else 0
            return max(size - 32, 0) // frame  # 32: the WAL's own header

        start = frames()
        yield lambda: frames() - start
    finally:
        pin.close()


# -- contenders -------------------------------------------------------------------


def coinecon_memory(setup: Setup) -> Runner:
    def round_(todo: list[Command]) -> Outcome:
        wallets = Wallets(MemoryStore())
        seed(wallets, setup.holders)

        def body() -> None:
            for command in todo:
                run(wallets, command)

        return Outcome(_timed(len(todo), body))

    return round_


def wallets_on_no_store() -> Runner:
    """``Wallets`` on a store that reads plausible values and keeps nothing
    (``profile_spend.NoStore``): the wallet service's own Python, the most a
    store of any kind could run at."""

    def round_(todo: list[Command]) -> Outcome:
        wallets = Wallets(NoStore())  # type: ignore[arg-type]

        def body() -> None:
            for command in todo:
                run(wallets, command)

        return Outcome(_timed(len(todo), body))

    return round_


def plain_dict(setup: Setup) -> Runner:
    def round_(todo: list[Command]) -> Outcome:
        books = _plain_dict.PlainBooks()
        books.seed(setup.holders)

        def body() -> None:
            for command in todo:
                books.run(command)

        return Outcome(_timed(len(todo), body))

    return round_


def _sqlite_rows(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return _raw_same_rows.row_counts(db)
    finally:
        db.close()


def coinecon_sqlite(
    setup: Setup, synchronous: str, *, batched: bool, pages: bool = False
) -> Runner:
    def round_(todo: list[Command]) -> Outcome:
        path = copy_file(setup.coinecon_file, setup.directory, "coinecon")
        before = _sqlite_rows(path) if setup.same_rows else None
        with (
            wal_pages(path, count=pages) as frames,
            open_store(path, synchronous, group_commit=False) as store,
        ):
            wallets = Wallets(store)

            def one_per_commit() -> None:
                for command in todo:
                    run(wallets, command)

            def in_batches() -> None:
                for chunk in _chunks(todo, BATCH):
                    with wallets.batch() as bulk:
                        for command in chunk:
                            run(bulk, command)

            rate = _timed(len(todo), in_batches if batched else one_per_commit)
            written = frames() / len(todo)
        if before is None:
            return Outcome(rate, None, written)
        return Outcome(rate, _raw_same_rows.written(before, _sqlite_rows(path)), written)

    return round_


class _RawBooks(Protocol):
    """What the raw baselines (a) and (b) offer a round."""

    def run_one(self, command: Command) -> object: ...
    def begin(self) -> None: ...
    def run(self, command: Command) -> object: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


def _run_raw(books: _RawBooks, todo: list[Command], *, batched: bool) -> float:
    """Commands per second of a raw baseline: one per commit, or in batches of
    :data:`BATCH` that a failure voids whole, as ``Wallets.batch()``'s."""

    def one_per_commit() -> None:
        for command in todo:
            books.run_one(command)

    def in_batches() -> None:
        for chunk in _chunks(todo, BATCH):
            books.begin()
            try:
                for command in chunk:
                    books.run(command)
            except BaseException:
                books.rollback()
                raise
            books.commit()

    return _timed(len(todo), in_batches if batched else one_per_commit)


def minimal(setup: Setup, synchronous: str, *, batched: bool, pages: bool = False) -> Runner:
    def round_(todo: list[Command]) -> Outcome:
        path = copy_file(setup.minimal_file, setup.directory, "minimal")
        with wal_pages(path, count=pages) as frames:
            db = _raw_minimal.connect(path, synchronous)
            books = _raw_minimal.MinimalBooks(db, setup.accounts)
            try:
                rate = _run_raw(books, todo, batched=batched)
            finally:
                db.close()
            return Outcome(rate, None, frames() / len(todo))

    return round_


def same_rows(setup: Setup, synchronous: str, *, batched: bool, pages: bool = False) -> Runner:
    def round_(todo: list[Command]) -> Outcome:
        path = copy_file(setup.coinecon_file, setup.directory, "same-rows")
        before = _sqlite_rows(path)
        with wal_pages(path, count=pages) as frames:
            db = _raw_same_rows.connect(path, synchronous)
            books = _raw_same_rows.RawBooks(db)
            try:
                rate = _run_raw(books, todo, batched=batched)
            finally:
                db.close()
            written = frames() / len(todo)
        return Outcome(rate, _raw_same_rows.written(before, _sqlite_rows(path)), written)

    return round_


def open_store(path: Path, synchronous: str, *, group_commit: bool) -> SqliteStore:
    """A ``SqliteStore`` with group commit on or off. Older coinecons had no
    ``group_commit`` parameter (and no group commit): TypeError for on, the
    plain store for off."""
    # Passed through a dict so that this type-checks with and without the parameter.
    options: dict[str, Any] = {"group_commit": group_commit}
    try:
        return SqliteStore(path, synchronous=synchronous, **options)
    except TypeError:
        if group_commit:
            raise
        return SqliteStore(path, synchronous=synchronous)


def group_commit_available(directory: Path) -> bool:
    """Whether ``SqliteStore`` takes ``group_commit=True``."""
    try:
        store = open_store(directory / "probe.db", "NORMAL", group_commit=True)
    except TypeError:
        return False
    store.close()
    return True


def coinecon_threads(setup: Setup, synchronous: str, threads: int) -> Runner:
    """*threads* threads share one group-commit store, each running its share
    of the commands (each command with its own key)."""

    def round_(todo: list[Command]) -> Outcome:
        path = copy_file(setup.coinecon_file, setup.directory, "group")
        with open_store(path, synchronous, group_commit=True) as store:
            wallets = Wallets(store)
            start = threading.Barrier(threads + 1)
            failures: list[BaseException] = []

            def work(share: list[Command]) -> None:
                start.wait()
                try:
                    for command in share:
                        run(wallets, command)
                except BaseException as error:  # noqa: BLE001 (reported below)
                    failures.append(error)

            workers = [
                threading.Thread(target=work, args=(todo[i::threads],)) for i in range(threads)
            ]
            for worker in workers:
                worker.start()
            gc.collect()
            start.wait()
            began = time.perf_counter()
            for worker in workers:
                worker.join()
            rate = len(todo) / (time.perf_counter() - began)
        if failures:
            raise failures[0]
        return Outcome(rate)

    return round_


# -- measuring --------------------------------------------------------------------


def sized(setup: Setup, synchronous: str) -> int:
    """Commands per round: a quarter at FULL, where every commit waits for the disk."""
    return setup.commands if synchronous == "NORMAL" else max(setup.commands // 4, 1)


def measure(
    setup: Setup, contenders: dict[str, Runner], synchronous: str = "NORMAL"
) -> dict[str, list[Outcome]]:
    """Each contender once per round on the round's commands, the order
    rotating, so drift on the machine hits all alike."""
    names = list(contenders)
    outcomes: dict[str, list[Outcome]] = {name: [] for name in names}
    for r in range(setup.rounds):
        todo = commands(sized(setup, synchronous), seed=r, holders=setup.holders)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            outcomes[name].append(contenders[name](todo))
        ours, *others = names
        for other in others:
            theirs = outcomes[other][-1].rows
            if theirs is not None and ours.startswith("coinecon") and other.startswith("(b)"):
                mine = outcomes[ours][-1].rows
                if mine != theirs:
                    sys.exit(f"coinecon and (b) wrote different rows: {mine} against {theirs}")
    return outcomes


def ratios(ours: list[Outcome], theirs: list[Outcome]) -> list[float]:
    return [a.rate / b.rate for a, b in zip(ours, theirs, strict=True)]


class Line(NamedTuple):
    case: str
    ours: float | None
    theirs: float | None
    ratios: list[float] | None
    target: float | None
    missing: str = "n/a (group commit not available)"  # why the rates are None


def print_header() -> None:
    print(
        f"{'case':<60}{'coinecon/s':>11}{'baseline/s':>11}{'ratio':>7}{'(range)':>13}"
        f"{'target':>9}  verdict"
    )


def print_line(line: Line) -> bool | None:
    """Print *line*; return whether it met its target (``None``: no target)."""
    if line.ours is None or line.theirs is None or line.ratios is None:
        print(f"{line.case:<60}  {line.missing}")
        return None
    ratio = statistics.median(line.ratios)
    spread = f"({min(line.ratios):.2f}-{max(line.ratios):.2f})"
    if line.target is None:
        target, verdict, met = "", "", None
    else:
        met = ratio >= line.target
        target, verdict = f">= {line.target:g}x", "PASS" if met else "FAIL"
    print(
        f"{line.case:<60}{line.ours:>11,.0f}{line.theirs:>11,.0f}{ratio:>7.2f}{spread:>13}"
        f"{target:>9}  {verdict}".rstrip()
    )
    return met


def rate(outcomes: list[Outcome]) -> float:
    return statistics.median(o.rate for o in outcomes)


def compare(case: str, ours: list[Outcome], theirs: list[Outcome], target: float | None) -> Line:
    return Line(case, rate(ours), rate(theirs), ratios(ours, theirs), target)


# -- the self-check ---------------------------------------------------------------


def _refused(error: type[BaseException], action: Callable[[], object]) -> bool:
    try:
        action()
    except error:
        return True
    return False


def check_minimal(directory: Path) -> None:
    """Baseline (a) refuses an overdraft, replays a key, and refuses another
    request under a used key; a refused command leaves no row behind."""
    accounts = _raw_minimal.create(directory / "check-minimal.db", holders=3, creators=2)
    db = _raw_minimal.connect(directory / "check-minimal.db", "NORMAL")
    books = _raw_minimal.MinimalBooks(db, accounts)
    try:
        first = books.run_one(gift_command("g1", 0, 1, 10, 5, 1))
        rows = _raw_minimal.row_counts(db)
        assert first[1] == SEED_COINS - 10, first
        assert books.run_one(gift_command("g1", 0, 1, 10, 5, 1)) == first, "no replay"
        assert _raw_minimal.row_counts(db) == rows, "a replay wrote rows"
        overdraft = gift_command("g2", 0, 1, SEED_COINS, 1, 2)
        assert _refused(_raw_minimal.Overdraft, lambda: books.run_one(overdraft)), "overdraft"
        other = gift_command("g1", 0, 1, 11, 5, 1)
        assert _refused(_raw_minimal.Conflict, lambda: books.run_one(other)), "conflict"
        assert _raw_minimal.row_counts(db) == rows, "a refused command wrote rows"
        bought = books.run_one(purchase_command("p1", 0, 100, 100, 1))
        assert books.run_one(purchase_command("p1", 0, 100, 100, 1)) == bought
        total = db.execute("SELECT sum(balance) FROM balances").fetchone()[0]
        assert total == 0, "coins or diamonds were created or lost"
    finally:
        db.close()


def check_plain_dict() -> None:
    """Baseline (c) refuses an overdraft, replays a key and refuses another request."""
    books = _plain_dict.PlainBooks()
    books.seed(3)
    first = books.run(gift_command("g1", 0, 1, 10, 5, 1))
    assert books.run(gift_command("g1", 0, 1, 10, 5, 1)) is first, "no replay"
    overdraft = gift_command("g2", 0, 1, SEED_COINS, 1, 2)
    journal = (len(books.transactions), len(books.postings))
    assert _refused(_plain_dict.Overdraft, lambda: books.run(overdraft)), "overdraft"
    other = gift_command("g1", 0, 1, 11, 5, 1)
    assert _refused(_plain_dict.Conflict, lambda: books.run(other)), "conflict"
    assert (len(books.transactions), len(books.postings)) == journal
    assert sum(books.balances.values()) == 0


_ID = re.compile(r"\b[0-9a-f]{32}\b")  # not a fingerprint's 64 digits
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def _masked(value: object) -> object:
    """*value* with its ids and times (which no two runs share) left out."""
    if isinstance(value, str):
        return _TIME.sub("<time>", _ID.sub("<id>", value))
    return value


def _books(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """What two files must agree on: every row of every table, byte for byte,
    but for ids and times (sorted: a table keyed by ids lists them in their order)."""
    db = sqlite3.connect(path)
    try:
        books = {}
        for table in _raw_same_rows.TABLES:
            rows = [tuple(map(_masked, line)) for line in db.execute(f"SELECT * FROM {table}")]
            books[table] = sorted(rows, key=repr)
        return books
    finally:
        db.close()


def check_same_rows(directory: Path) -> None:
    """Baseline (b) writes what coinecon writes (every balance, fingerprint and
    lot, and as many rows to every table), its file passes coinecon's
    ``verify()``, and it refuses an overdraft and replays a key."""
    template = seeded_file(directory / "check-template.db", holders=20)
    todo = commands(300, seed=99, holders=20)
    # A spend that empties holder 0's first lot, then one that takes from two lots.
    todo += [
        purchase_command("big-p", 0, 100, 100, 900),
        gift_command("big-g1", 0, 3, SEED_COINS - 10_000, 7, 901),
        gift_command("big-g2", 0, 3, 10_050, 7, 902),
    ]
    ours = copy_file(template, directory, "check-coinecon")
    theirs = copy_file(template, directory, "check-raw")
    before = _sqlite_rows(ours)
    with SqliteStore(ours) as store:
        wallets = Wallets(store)
        with wallets.batch() as bulk:
            for command in todo[:100]:
                run(bulk, command)
        for command in todo[100:]:
            run(wallets, command)
        assert _refused(
            InsufficientFunds, lambda: run(wallets, gift_command("x", 0, 1, SEED_COINS, 1, 0))
        )
    db = _raw_same_rows.connect(theirs, "NORMAL")
    books = _raw_same_rows.RawBooks(db)
    try:
        books.begin()
        for command in todo[:100]:
            books.run(command)
        books.commit()
        results = [books.run_one(command) for command in todo[100:]]
        assert [books.run_one(command) for command in todo[100:]] == results, "no replay"
        overdraft = gift_command("x", 0, 1, SEED_COINS, 1, 0)
        assert _refused(_raw_same_rows.Overdraft, lambda: books.run_one(overdraft))
        other = gift_command(todo[150].key, 1, 1, 49, 24, 0)
        assert _refused(_raw_same_rows.Conflict, lambda: books.run_one(other))
    finally:
        db.close()
    written = (_raw_same_rows.written(before, _sqlite_rows(p)) for p in (ours, theirs))
    assert next(written) == next(written), "(b) wrote other rows than coinecon"
    mine, yours = _books(ours), _books(theirs)
    for table, rows in mine.items():
        differ = [(a, b) for a, b in zip(rows, yours[table], strict=True) if a != b]
        assert not differ, f"(b) writes other {table} rows than coinecon: {differ[:3]}"
    with SqliteStore(theirs) as store:
        report = Wallets(store).verify()
        assert report.ok, report
        assert _refused(
            IdempotencyConflict,
            lambda: run(Wallets(store), gift_command(todo[150].key, 1, 1, 49, 24, 0)),
        )


# -- the report -------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="docs/benchmarks.md explains the baselines, the workload and the targets.",
    )
    parser.add_argument("--commands", type=int, default=2000, help="commands per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (medians taken)")
    parser.add_argument("--holders", type=int, default=HOLDERS, help="wallets in the workload")
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run that checks the script, not the speed"
    )
    parser.add_argument(
        "--only", choices=["memory"], help="run this case only (memory: Wallets on MemoryStore)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.commands, args.rounds, args.holders = 40, 1, 200
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        check_minimal(directory)
        check_plain_dict()
        same = SCHEMA_VERSION == _raw_same_rows.SCHEMA_VERSION
        if same:
            check_same_rows(directory)
        print(
            "self-check: (a) and (c) refuse an overdraft and replay a key; "
            + ("(b) writes coinecon's rows" if same else NO_SAME_ROWS)
        )
        minimal_file = directory / "minimal-template.db"
        holders: int = args.holders
        setup = Setup(
            directory,
            holders,
            args.commands,
            args.rounds,
            seeded_file(directory / "coinecon-template.db", holders),
            minimal_file,
            _raw_minimal.create(minimal_file, holders),
            same,
        )
        print(
            f"\n{holders:,} holders, {setup.commands:,} commands per round "
            f"({sized(setup, 'FULL'):,} at FULL), {setup.rounds} rounds; ratio = coinecon / "
            "baseline, the median of the rounds' ratios (range: lowest-highest)\n"
        )
        results = run_cases(setup, only=args.only)
    passed = sum(1 for r in results if r is True)
    failed = sum(1 for r in results if r is False)
    unknown = sum(1 for r in results if r is None)
    print(f"\ntargets: {passed} PASS, {failed} FAIL, {unknown} not measured")
    return 0


NO_SAME_ROWS = (
    f"(b) left out: it writes schema v{_raw_same_rows.SCHEMA_VERSION}, "
    f"this coinecon v{SCHEMA_VERSION}"
)


def same_rows_line(case: str, setup: Setup, done: dict[str, list[Outcome]]) -> Line:
    if not setup.same_rows:
        return Line(case, None, None, None, None, f"n/a {NO_SAME_ROWS}")
    return compare(case, done["coinecon"], done["(b)"], None)


def print_pages(setup: Setup) -> None:
    """Print the WAL pages each SQLite contender writes per command, one
    command per commit at NORMAL, on a short pass of its own (untimed: the
    WAL is kept from being checkpointed, so it grows as it would not)."""
    contenders = {
        "coinecon": coinecon_sqlite(setup, "NORMAL", batched=False, pages=True),
        "(a)": minimal(setup, "NORMAL", batched=False, pages=True),
        **(
            {"(b)": same_rows(setup, "NORMAL", batched=False, pages=True)}
            if setup.same_rows
            else {}
        ),
    }
    todo = commands(min(setup.commands, PAGES_COMMANDS), seed=setup.rounds, holders=setup.holders)
    counted = ", ".join(
        f"{name} {contender(todo).pages or 0:.1f}" for name, contender in contenders.items()
    )
    print(f"  WAL pages per command, one per commit at NORMAL ({len(todo)} commands): {counted}")


def run_cases(setup: Setup, only: str | None = None) -> list[bool | None]:
    """Measure and print every case (or the *only* one); return whether each
    target was met."""
    grouped = group_commit_available(setup.directory)
    print_header()
    results: list[bool | None] = []

    memory = measure(setup, {"coinecon": coinecon_memory(setup), "(c)": plain_dict(setup)})
    results.append(
        print_line(
            compare(
                "memory: Wallets on MemoryStore vs (c) plain dict",
                memory["coinecon"],
                memory["(c)"],
                0.25,
            )
        )
    )
    ceiling = measure(setup, {"none": wallets_on_no_store(), "(c)": plain_dict(setup)})
    print_line(compare(CEILING_MEMORY, ceiling["none"], ceiling["(c)"], None))
    if only == "memory":
        return results
    one_per_commit: dict[str, list[Outcome]] = {}
    for synchronous in ("NORMAL", "FULL"):
        done = measure(
            setup,
            {
                "coinecon": coinecon_sqlite(setup, synchronous, batched=False),
                "(a)": minimal(setup, synchronous, batched=False),
                **(
                    {"(b)": same_rows(setup, synchronous, batched=False)} if setup.same_rows else {}
                ),
            },
            synchronous,
        )
        label = f"SQLite {synchronous}, one command per commit"
        results.append(
            print_line(compare(f"{label} vs (a) minimal", done["coinecon"], done["(a)"], 0.5))
        )
        print_line(same_rows_line(f"{label} vs (b) same rows", setup, done))
        print_ceiling(setup, done)
        if synchronous == "NORMAL":
            one_per_commit = done
            print_pages(setup)
    batched = measure(
        setup,
        {
            "coinecon": coinecon_sqlite(setup, "NORMAL", batched=True),
            "(a)": minimal(setup, "NORMAL", batched=True),
            **({"(b)": same_rows(setup, "NORMAL", batched=True)} if setup.same_rows else {}),
        },
    )
    label = f"SQLite NORMAL, batched ({BATCH:,} per commit)"
    results.append(
        print_line(compare(f"{label} vs (a) minimal", batched["coinecon"], batched["(a)"], 0.3))
    )
    print_line(same_rows_line(f"{label} vs (b) same rows", setup, batched))
    print_ceiling(setup, batched)

    for synchronous, reference, name, target in (
        ("FULL", "coinecon", "coinecon one per commit", 3.0),
        ("NORMAL", "(a)", "(a) one per commit", 1.5),
    ):
        labels = {
            threads: f"group commit {synchronous}, {threads:>2} threads vs {name}"
            for threads in THREADS
        }
        goals = {threads: target if threads == max(THREADS) else None for threads in THREADS}
        if not grouped:
            for threads in THREADS:
                print_line(Line(labels[threads], None, None, None, goals[threads]))
                if goals[threads] is not None:
                    results.append(None)
            continue
        contenders = {
            "reference": (
                coinecon_sqlite(setup, synchronous, batched=False)
                if reference == "coinecon"
                else minimal(setup, synchronous, batched=False)
            ),
            **{str(t): coinecon_threads(setup, synchronous, t) for t in THREADS},
        }
        done = measure(setup, contenders, synchronous)
        for threads in THREADS:
            met = print_line(
                compare(labels[threads], done[str(threads)], done["reference"], goals[threads])
            )
            if goals[threads] is not None:
                results.append(met)
        if reference == "(a)" and setup.same_rows:
            # No group can share more than one commit of 1,000 commands does.
            best = rate(batched["(b)"]) / rate(one_per_commit["(a)"])
            print_line(
                Line(
                    CEILING_GROUP,
                    rate(batched["(b)"]),
                    rate(one_per_commit["(a)"]),
                    [best],
                    None,
                )
            )

    return results


CEILING_MEMORY = "  ceiling: Wallets on a store that keeps nothing vs (c)"
CEILING_ROWS = "  ceiling: (b) coinecon's rows, no Python around, vs (a)"
CEILING_GROUP = "  ceiling: (b) batched vs (a) one per commit"


def print_ceiling(setup: Setup, done: dict[str, list[Outcome]]) -> None:
    """Print what (b) makes of (a): coinecon's rows written with the
    cheapest Python, the most coinecon can reach on them."""
    if setup.same_rows:
        print_line(compare(CEILING_ROWS, done["(b)"], done["(a)"], None))


if __name__ == "__main__":
    sys.exit(main())
