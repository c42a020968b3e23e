"""Gifts per second: CoinEconomy.send_gift against the minimal correct raw
write of the same gift, in one run.

Run with ``python3 tasks.py bench`` (or ``.venv/bin/python
benchmarks/bench_gifts.py``; ``--help`` for the options).

The workload is the ledger benchmark's (``_workload.py``): 10,000 viewers,
each with one purchased lot worth money, and 100 creators whose popularity is
Zipf-like (the most popular receives about a fifth of all gifts); a gift
costs 1 to 50 coins (the catalog has a gift at each price) and the creator
earns half, the fraction carried.

Baseline (g), ``RawGifts`` below, is the minimal correct gift on raw
sqlite3: one transaction row (its idempotency key UNIQUE); the sender's
wallet read and debited, guarded, with the money value of the coins taken
in proportion (a wallet keeps its coins and what they were bought for); the
creator's carry and earnings; the four platform balances (coins spent,
deferred revenue, revenue, the creator unit's issuance); and the six
postings with their running balances. It keeps no lots, no events, no
profiles, and checks no catalog, region, age or eligibility; coinecon does
all of those. Baseline (d), ``PlainGifts``, is the same bookkeeping in
Python dicts, for the in-memory case.

Each case runs in paired rounds, the order rotating, on fresh copies of
files seeded once; a ratio is the median of the rounds' ratios. One gift at
a time, the benchmark also prints a ceiling: coinecon's own statements for
the round's gifts, recorded as it ran them, replayed by raw sqlite3 on a copy
of the same starting file with no Python around them.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from _workload import CREATORS, HOLDERS, SEED_COINS, SEED_VALUE, commands, creator_name, holder_name
from bench_purchases import Row, _line, _Recording, _row

from coinecon import AccountKey, AccountKind, Cause, Currency, LotOrigin, ManualClock, Money
from coinecon.__main__ import _book as demo_book
from coinecon.adapters.fake_payments import FakePaymentGateway
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.economy import CoinEconomy
from coinecon.gifts import Gift, GiftCatalog, GiftPolicy
from coinecon.ports import Store
from coinecon.recharge import EligibilityPolicy

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
TARGET = 0.5  # coinecon at least half the rate of (g), on SQLite
MEMORY_TARGET = 0.25  # and a quarter of (d) in memory
CATALOG = GiftCatalog([Gift(f"g{price}", f"Gift {price}", price) for price in range(1, 51)])


class Send(NamedTuple):
    """One gift to send."""

    key: str
    sender: str
    creator: str
    gift: str
    coins: int


def gifts(count: int, seed: int, holders: int = HOLDERS) -> list[Send]:
    """*count* gifts of the workload (its purchases left out) from *holders* viewers."""
    made = [
        c for c in commands(count * 2, seed=seed, holders=holders, prefix=f"gift-{seed}") if c.gift
    ]
    return [
        Send(c.key, c.holder_name, c.creator_name, f"g{c.coins}", c.coins) for c in made[:count]
    ]


def new_economy(store: Store, tallies: int = 1) -> CoinEconomy:
    """The benchmark's economy on *store*: the demo price book, the gift
    catalog, no age checks, each creator's gifts in *tallies* records."""
    clock = ManualClock(T0)
    return CoinEconomy(
        price_book=demo_book(),
        store=store,
        gateway=FakePaymentGateway(clock=clock),
        clock=clock,
        eligibility=EligibilityPolicy(require_age=False),
        catalog=CATALOG,
        gift_policy=GiftPolicy(creator_must_be_adult=False, tallies=tallies),
    )


def seed(economy: CoinEconomy, holders: int) -> None:
    """Each viewer one purchased lot worth money; each creator enrolled."""
    value = Money.from_minor(SEED_VALUE, "USD")
    with economy.wallets.batch() as bulk:
        for h in range(holders):
            bulk.credit(
                f"seed-{h}",
                holder=holder_name(h),
                amount=economy.unit(SEED_COINS),
                origin=LotOrigin.PURCHASE,
                cause=Cause("purchase", f"seed-{h}"),
                value=value,
            )
    with economy.batch() as bulk:
        for c in range(CREATORS):
            bulk.enroll_creator(f"enroll-{c}", creator=creator_name(c), region="US")


def send(economy: CoinEconomy, gift: Send) -> None:
    key, sender, creator, gift_id, _ = gift
    economy.send_gift(sender, creator, gift_id, context="live-1", region="US", idempotency_key=key)


# -- baseline (g): the minimal correct gift on raw sqlite3 --------------------------------------

_SCHEMA = (
    (
        "CREATE TABLE wallets (id INTEGER PRIMARY KEY, coins INTEGER NOT NULL CHECK (coins >= 0),"
        " value INTEGER NOT NULL)"
    ),
    (
        "CREATE TABLE creators (id INTEGER PRIMARY KEY, earned INTEGER NOT NULL,"
        " carry INTEGER NOT NULL)"
    ),
    "CREATE TABLE balances (account INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
    (
        "CREATE TABLE transactions (id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,"
        " created_at TEXT NOT NULL, sender INTEGER NOT NULL, creator INTEGER NOT NULL,"
        " coins INTEGER NOT NULL)"
    ),
    (
        "CREATE TABLE postings (transaction_id INTEGER NOT NULL, leg INTEGER NOT NULL,"
        " account INTEGER NOT NULL, amount INTEGER NOT NULL, balance_after INTEGER NOT NULL,"
        " PRIMARY KEY (transaction_id, leg)) WITHOUT ROWID"
    ),
)
_ADD = "UPDATE balances SET balance = balance + ? WHERE account = ? RETURNING balance"
# Accounts of the postings: wallets and creators by their own ids, offset.
_SPENT, _DEFERRED, _REVENUE, _ISSUANCE = range(4)
_WALLET, _EARNINGS = 1_000_000, 2_000_000


class RawGifts:
    """Baseline (g); see the module's documentation."""

    def __init__(self, path: Path, holders: int, synchronous: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute(f"PRAGMA synchronous = {synchronous}")
        if not self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            for statement in _SCHEMA:
                self.db.execute(statement)
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO wallets VALUES (?, ?, ?)",
                [(h, SEED_COINS, SEED_VALUE) for h in range(holders)],
            )
            self.db.executemany(
                "INSERT INTO creators VALUES (?, 0, 0)", [(c,) for c in range(CREATORS)]
            )
            self.db.executemany("INSERT INTO balances VALUES (?, 0)", [(a,) for a in range(4)])
            self.db.execute("COMMIT")

    def send(self, key: str, sender: int, creator: int, coins: int, *, alone: bool = True) -> str:
        """Send one gift, in a transaction of its own unless not *alone*
        (in a batch: a savepoint, so that a refused gift undoes itself)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE" if alone else "SAVEPOINT gift")
        end, undo = ("COMMIT", "ROLLBACK") if alone else ("RELEASE gift", "ROLLBACK TO gift")
        try:
            transaction = db.execute(
                "INSERT INTO transactions (idempotency_key, created_at, sender, creator, coins)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, T0.isoformat(), sender, creator, coins),
            ).lastrowid
        except sqlite3.IntegrityError:
            db.execute(undo)
            return "replayed"
        held, value = db.execute(
            "SELECT coins, value FROM wallets WHERE id = ?", (sender,)
        ).fetchone()
        if held < coins:
            db.execute(undo)
            return "refused"
        worth = value * coins // held
        left = db.execute(
            "UPDATE wallets SET coins = coins - ?, value = value - ? WHERE id = ? AND coins >= ?"
            " RETURNING coins",
            (coins, worth, sender, coins),
        ).fetchone()[0]
        (carry,) = db.execute("SELECT carry FROM creators WHERE id = ?", (creator,)).fetchone()
        earned, carry = divmod(carry + coins, 2)  # half a coin's worth, carried
        earnings = db.execute(
            "UPDATE creators SET earned = earned + ?, carry = ? WHERE id = ? RETURNING earned",
            (earned, carry, creator),
        ).fetchone()[0]
        legs = [(_WALLET + sender, -coins, left), (_EARNINGS + creator, earned, earnings)]
        for account, amount in (
            (_SPENT, coins),
            (_DEFERRED, worth),
            (_REVENUE, -worth),
            (_ISSUANCE, -earned),
        ):
            if amount:
                legs.append((account, amount, db.execute(_ADD, (amount, account)).fetchone()[0]))
        db.executemany(
            "INSERT INTO postings VALUES (?, ?, ?, ?, ?)",
            [(transaction, n, a, m, b) for n, (a, m, b) in enumerate(legs) if m],
        )
        db.execute(end)
        return "sent"

    def send_many(self, batch: list[tuple[str, int, int, int]]) -> None:
        """*batch* in one transaction, each gift in a savepoint."""
        self.db.execute("BEGIN IMMEDIATE")
        for gift in batch:
            self.send(*gift, alone=False)
        self.db.execute("COMMIT")


# -- baseline (d): the same bookkeeping in dicts ---------------------------------------------------


class PlainGifts:
    """Baseline (d): (g)'s bookkeeping in Python dicts, plus what coinecon
    keeps in memory that (g) does not: each wallet's lots, consumed oldest
    first, each recognising its value as its coins go, and an outbox."""

    def __init__(self, holders: int) -> None:
        self.lots = {h: [[SEED_COINS, SEED_COINS, SEED_VALUE, 0]] for h in range(holders)}
        self.balances: dict[object, int] = {}
        self.carry = [0] * CREATORS
        self.keys: dict[str, tuple[object, ...]] = {}
        self.journal: list[tuple[object, ...]] = []
        self.outbox: list[tuple[object, ...]] = []

    def _post(self, account: object, amount: int) -> int:
        after = self.balances.get(account, 0) + amount
        self.balances[account] = after
        return after

    def send(self, key: str, sender: int, creator: int, coins: int) -> tuple[object, ...]:
        known = self.keys.get(key)
        if known is not None:
            return known
        lots = self.lots[sender]
        if sum(lot[1] for lot in lots) < coins:
            raise ValueError("overdraft")
        worth, wanted = 0, coins
        for lot in lots:
            take = min(wanted, lot[1])
            lot[1] -= take
            recognised = lot[2] * (lot[0] - lot[1]) // lot[0]
            worth += recognised - lot[3]
            lot[3] = recognised
            wanted -= take
            if not wanted:
                break
        earned, self.carry[creator] = divmod(self.carry[creator] + coins, 2)
        legs = (
            (("wallet", sender), -coins),
            ("spent", coins),
            ("deferred", worth),
            ("revenue", -worth),
            ("issuance", -earned),
            (("earnings", creator), earned),
        )
        postings = tuple((a, m, self._post(a, m)) for a, m in legs if m)
        result = (len(self.journal), postings)
        self.journal.append((key, sender, creator, coins, postings))
        self.outbox.append(("gift.sent", result))
        self.keys[key] = result
        return result


# -- measuring -------------------------------------------------------------------------------------


def _timed(count: int, body: Callable[[], None]) -> float:
    gc.collect()
    start = time.perf_counter()
    body()
    return count / (time.perf_counter() - start)


def _ids(gift: Send) -> tuple[str, int, int, int]:
    key, sender, creator, _, coins = gift
    return key, int(sender.rsplit("-", 1)[1]), int(creator.rsplit("-", 1)[1]), coins


class Files:
    """A seeded file per side, made once; each round works on copies."""

    def __init__(self, directory: Path, holders: int) -> None:
        self.directory = directory
        self.ours = directory / "seeded-coinecon.db"
        with SqliteStore(self.ours) as store:
            seed(new_economy(store), holders)
        _checkpoint(self.ours)
        self.theirs = directory / "seeded-raw.db"
        RawGifts(self.theirs, holders, "NORMAL").db.close()
        _checkpoint(self.theirs)
        self._copies = itertools.count()

    def copy(self, template: Path) -> Path:
        target = self.directory / f"round-{next(self._copies)}.db"
        target.write_bytes(template.read_bytes())
        return target


def _checkpoint(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def sqlite_case(
    name: str,
    files: Files,
    *,
    synchronous: str,
    threads: int,
    batch: int,
    count: int,
    holders: int,
    rounds: int,
) -> tuple[Row, Row | None]:
    """coinecon's row (and, one gift at a time, its ceiling's) over *rounds*."""
    ours: list[float] = []
    theirs: list[float] = []
    ceilings: list[float] = []
    for round_ in range(rounds):
        todo = gifts(count, seed=round_, holders=holders)

        def coinecon(todo: list[Send] = todo) -> None:
            store = SqliteStore(files.copy(files.ours), synchronous=synchronous)
            economy = new_economy(store)
            chunks = [todo[n::threads] for n in range(threads)]

            def work(chunk: list[Send]) -> None:
                for gift in chunk:
                    send(economy, gift)

            def body() -> None:
                if batch > 1:
                    for start in range(0, len(todo), batch):
                        with economy.batch() as bulk:
                            for gift in todo[start : start + batch]:
                                send(bulk, gift)
                elif threads == 1:
                    work(todo)
                else:
                    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
                    for worker in workers:
                        worker.start()
                    for worker in workers:
                        worker.join()

            ours.append(_timed(count, body))
            assert economy.verify().ok
            store.close()

        def raw(todo: list[Send] = todo) -> None:
            baseline = RawGifts(files.copy(files.theirs), holders, synchronous)
            plain = [_ids(gift) for gift in todo]

            def body() -> None:
                if batch > 1:
                    for start in range(0, len(plain), batch):
                        baseline.send_many(plain[start : start + batch])
                else:
                    for gift in plain:
                        baseline.send(*gift)

            theirs.append(_timed(count, body))
            baseline.db.close()

        def ceiling(todo: list[Send] = todo) -> None:
            log = _recorded(files, synchronous, todo)
            ceilings.append(_timed(count, _replayer(files, synchronous, log)))

        contenders = [coinecon, raw] + ([ceiling] if threads == 1 and batch == 1 else [])
        turn = round_ % len(contenders)
        for contender in contenders[turn:] + contenders[:turn]:
            contender()
    row = _row(name, ours, theirs)
    return row, (
        _row("  ceiling: its statements, no Python", ceilings, theirs) if ceilings else None
    )


def _recorded(files: Files, synchronous: str, todo: list[Send]) -> list[tuple[str, Any, bool]]:
    """The statements coinecon's connection ran for *todo*, with their parameters."""
    store = SqliteStore(files.copy(files.ours), synchronous=synchronous)
    [connection] = store._idle  # noqa: SLF001  # the one it opened, pooled
    wrapped = _Recording(connection.raw)
    connection.raw = wrapped  # type: ignore[assignment]
    economy = new_economy(store)
    log: list[tuple[str, Any, bool]] = []
    wrapped.log = log
    for gift in todo:
        send(economy, gift)
    wrapped.log = None
    assert store._idle == [connection], "one connection, one thread"  # noqa: SLF001
    store.close()
    return log


def _replayer(
    files: Files, synchronous: str, log: list[tuple[str, Any, bool]]
) -> Callable[[], None]:
    db = sqlite3.connect(files.copy(files.ours), isolation_level=None, cached_statements=256)
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA temp_store = MEMORY")

    def body() -> None:
        for sql, parameters, many in log:
            if many:
                db.executemany(sql, parameters)
            else:
                db.execute(sql, parameters).fetchall()

    return body


def memory_case(count: int, holders: int, rounds: int) -> Row:
    ours: list[float] = []
    theirs: list[float] = []
    for round_ in range(rounds):
        todo = gifts(count, seed=round_, holders=holders)

        def coinecon(todo: list[Send] = todo) -> None:
            economy = new_economy(MemoryStore())
            seed(economy, holders)

            def body() -> None:
                for gift in todo:
                    send(economy, gift)

            ours.append(_timed(count, body))

        def plain(todo: list[Send] = todo) -> None:
            books = PlainGifts(holders)
            ids = [_ids(gift) for gift in todo]

            def body() -> None:
                for gift in ids:
                    books.send(*gift)

            theirs.append(_timed(count, body))

        for contender in (coinecon, plain) if round_ % 2 == 0 else (plain, coinecon):
            contender()
    return _row("memory: CoinEconomy on MemoryStore vs (d)", ours, theirs)


def self_check(directory: Path) -> None:
    """(g) and (d) refuse an overdraft, replay a key without writing, and
    earn creators exactly what coinecon earns them."""
    todo = gifts(200, seed=99, holders=100)
    raw = RawGifts(directory / "check-g.db", 100, "NORMAL")
    plain = PlainGifts(100)
    economy = new_economy(MemoryStore())
    seed(economy, 100)
    mapped = [
        (k, int(s.rsplit("-", 1)[1]) % 100, int(c.rsplit("-", 1)[1]), n) for k, s, c, _, n in todo
    ]
    for key, sender, creator, coins in mapped:
        assert raw.send(key, sender, creator, coins) == "sent"
        plain.send(key, sender, creator, coins)
        economy.send_gift(
            holder_name(sender),
            creator_name(creator),
            f"g{coins}",
            context="c",
            region="US",
            idempotency_key=key,
        )
    assert raw.send(*mapped[0]) == "replayed"
    assert plain.send(*mapped[0]) == plain.keys[mapped[0][0]]
    assert raw.send("too-much", 1, 1, SEED_COINS + 1) == "refused"
    for creator in range(CREATORS):
        earned = raw.db.execute("SELECT earned FROM creators WHERE id = ?", (creator,)).fetchone()[
            0
        ]
        assert earned == economy.earnings(creator_name(creator)).amount
        assert earned == plain.balances.get(("earnings", creator), 0)
    # (d) recognises value as coinecon does, lot by lot; (g) in proportion to
    # what the wallet holds, each gift rounded down: within a cent a gift.
    ours = -economy.wallets.balances([_revenue()])[_revenue()]
    assert -plain.balances.get("revenue", 0) == ours
    raw_revenue = -raw.db.execute(
        "SELECT balance FROM balances WHERE account = ?", (_REVENUE,)
    ).fetchone()[0]
    assert 0 <= ours - raw_revenue <= len(mapped)
    print("self-check: (g) and (d) refuse, replay and earn creators what coinecon does\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (checks, not numbers)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gifts", type=int, default=1000, help="gifts per round at NORMAL")
    arguments = parser.parse_args(argv)
    rounds, count = (1, 60) if arguments.quick else (arguments.rounds, arguments.gifts)
    holders = 500 if arguments.quick else HOLDERS
    full = max(count // 5, 10)
    batched = count * 5
    with tempfile.TemporaryDirectory() as directory:
        self_check(Path(directory))
    print(
        f"{holders:,} viewers, {CREATORS} creators (Zipf-like); gifts per round: {count} at "
        f"NORMAL, {full} at FULL, {batched} batched ({min(1000, batched)} a commit); "
        f"{rounds} round(s); ratio = coinecon / baseline, the median of the rounds' ratios\n"
    )
    print(f"{'case':48} {'coinecon/s':>11} {'base/s':>9} {'ratio':>6} {'(range)':>13}  verdict")
    passed = total = 0

    def report(row: Row, target: float) -> None:
        nonlocal passed, total
        verdict = "PASS" if row.ratio >= target else "FAIL"
        passed += verdict == "PASS"
        total += 1
        print(f"{_line(row)}  >= {target}x {verdict}")

    report(memory_case(count, holders, rounds), MEMORY_TARGET)
    with tempfile.TemporaryDirectory() as directory:
        files = Files(Path(directory), holders)
        cases = [
            ("SQLite NORMAL, one gift per commit vs (g)", "NORMAL", 1, 1, count),
            ("SQLite FULL, one gift per commit vs (g)", "FULL", 1, 1, full),
            ("SQLite NORMAL, batched vs (g) batched", "NORMAL", 1, 1000, batched),
            ("group commit FULL, 16 threads vs (g) one/commit", "FULL", 16, 1, full),
        ]
        for name, synchronous, threads, batch, gifts_ in cases:
            row, ceiling = sqlite_case(
                name,
                files,
                synchronous=synchronous,
                threads=threads,
                batch=min(batch, gifts_),
                count=gifts_,
                holders=holders,
                rounds=rounds,
            )
            report(row, TARGET)
            if ceiling is not None:
                print(_line(ceiling))
    print(f"\ntargets: {passed} PASS, {total - passed} FAIL")
    return 0


def _revenue() -> AccountKey:
    return AccountKey.system(AccountKind.REVENUE, Currency.of("USD"))


if __name__ == "__main__":
    sys.exit(main())
