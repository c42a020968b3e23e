"""MemoryStore and SqliteStore agree, command by command and unit of work by
unit of work, and the edge cases a review of the memory store, lapsed lots and
the trusted builders found (each was a bug, fixed with its test): a spend's
``also`` legs on a wallet, times of one zone across a clock change, history
cursors beyond 64 bits, naive times given to the memory store.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from books_dump import dump
from coinecon import ManualClock, Money
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import CoineconError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import AccountKey, Cause, Posting, TransactionKind
from coinecon.ledger.lots import Lot, LotConsumption, LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.ports import Store
from coinecon.testing.contract import COIN, DIAMOND, T0, transaction

HOLDERS = ("alice", "bob")


@contextmanager
def both_stores() -> Iterator[tuple[MemoryStore, SqliteStore]]:
    with tempfile.TemporaryDirectory(prefix="coinecon-agree-") as directory:
        sqlite = SqliteStore(Path(directory) / "coins.db")
        try:
            yield MemoryStore(), sqlite
        finally:
            sqlite.close()


def counter_ids() -> Any:
    numbers = itertools.count(1)
    return lambda: f"id{next(numbers):08d}"


# -- 1. a spend's `also` legs may debit any wallet ---------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_also_cannot_debit_another_holders_wallet(kind: str, tmp_path: Path) -> None:
    """A spend by alice whose ``also`` legs debit bob's wallet would let her
    spend his coins (his balance dropping while his lots stay whole): refused,
    and nothing changes."""
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "c.db")
    wallets = Wallets(store, clock=ManualClock(T0))
    wallets.credit(
        "b1", holder="bob", amount=DIAMOND(100), origin=LotOrigin.BONUS, cause=Cause("b", "1")
    )
    wallets.credit(
        "a1", holder="alice", amount=COIN(10), origin=LotOrigin.BONUS, cause=Cause("b", "2")
    )
    with suppress(CoineconError):
        wallets.spend(
            "s1",
            holder="alice",
            amount=COIN(5),
            cause=Cause("gift", "g1"),
            also=(
                Posting(AccountKey.wallet("bob", DIAMOND), -100),
                Posting(AccountKey.spent(DIAMOND), 100),
            ),
        )
    assert wallets.balance("bob", DIAMOND) == DIAMOND(100)
    report = wallets.verify()
    assert report.ok, str(report)


# -- 2. lapse compared by wall time within one time zone ---------------------

NEW_YORK = ZoneInfo("America/New_York")
# The autumn fall-back: 01:30 EDT (fold 0) is 05:30 UTC; 01:10 EST (fold 1)
# is 06:10 UTC, forty minutes later, though its wall time is earlier.
EXPIRES_EDT = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)
LATER_EST = datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NEW_YORK)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_lot_lapses_at_its_instant_in_a_zone_with_a_clock_change(
    kind: str, tmp_path: Path
) -> None:
    """A lot expiring at 01:30 EDT has lapsed at 01:10 EST (40 minutes later,
    after the clocks went back). Python compares two datetimes of one tzinfo
    by wall time, ignoring fold: lots keep their times in UTC, and the wallet
    service reads its clock in UTC, so every store sees it lapsed."""
    assert LATER_EST.astimezone(UTC) > EXPIRES_EDT.astimezone(UTC)
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "c.db")
    clock = ManualClock(datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK))
    wallets = Wallets(store, clock=clock)
    wallets.credit(
        "p1",
        holder="alice",
        amount=COIN(30),
        origin=LotOrigin.PROMOTION,
        cause=Cause("p", "1"),
        expires_at=EXPIRES_EDT,
    )
    clock.set(LATER_EST)
    assert wallets.balance("alice", COIN) == COIN(0)
    assert wallets.lots("alice", COIN) == []


def test_lot_is_expired_compares_instants_in_one_zone() -> None:
    """The domain check itself: ``Lot.is_expired`` at an instant 40 minutes
    after expiry (same ZoneInfo, other side of the fall-back) says False."""
    wallet = AccountKey.wallet("alice", COIN)
    lot = Lot.new(
        "lot-1",
        wallet,
        LotOrigin.PROMOTION,
        10,
        datetime(2026, 10, 31, tzinfo=NEW_YORK),
        "tx-1",
        expires_at=EXPIRES_EDT,
    )
    assert lot.is_expired(LATER_EST)


def test_memory_history_since_compares_instants_in_one_zone() -> None:
    """History filters: a transaction at 01:10 EST (06:10 UTC) is after
    ``since`` = 01:30 EDT (05:30 UTC). SQLite (UTC text) includes it; the
    memory store compares wall times and leaves it out."""
    with both_stores() as (memory, sqlite):
        found = []
        for store in (memory, sqlite):
            with store.unit_of_work() as uow:
                tx = transaction(
                    "tx-1",
                    TransactionKind.BONUS,
                    (AccountKey.issuance(COIN), -5),
                    (AccountKey.wallet("alice", COIN), 5),
                    at=LATER_EST,
                )
                uow.ledger.record(
                    tx, {AccountKey.issuance(COIN): -5, AccountKey.wallet("alice", COIN): 5}
                )
                uow.commit()
            with store.unit_of_work() as uow:
                entries = uow.ledger.history(
                    AccountKey.wallet("alice", COIN), limit=10, since=EXPIRES_EDT
                )
            found.append([e.transaction_id for e in entries])
        assert found[0] == found[1] == ["tx-1"]


# -- 3. a history cursor beyond 64 bits --------------------------------------


def test_a_cursor_beyond_64_bits_is_read_alike() -> None:
    """A cursor of 19 digits beyond SQLite's 64-bit integers is no cursor the
    service gave out: refused as InvalidIdentifierError on every store."""
    with both_stores() as (memory, sqlite):
        outcomes: list[int | str] = []
        for store in (memory, sqlite):
            wallets = Wallets(store, clock=ManualClock(T0))
            wallets.credit(
                "a1", holder="alice", amount=COIN(1), origin=LotOrigin.BONUS, cause=Cause("b", "1")
            )
            try:
                page = wallets.history(
                    AccountKey.wallet("alice", COIN), cursor="9999999999999999999"
                )
                outcomes.append(len(page.entries))
            except CoineconError as error:
                outcomes.append(type(error).__name__)
        assert outcomes == ["InvalidIdentifierError", "InvalidIdentifierError"]


# -- 4. MemoryStore and SqliteStore side by side ----------------------------


class _Boom(Exception):
    """Raised inside a batch to abandon it."""


credit_op = st.tuples(
    st.just("credit"),
    st.sampled_from(HOLDERS),
    st.integers(1, 50),
    st.sampled_from([LotOrigin.BONUS, LotOrigin.PROMOTION, LotOrigin.ADJUSTMENT]),
    st.none() | st.integers(0, 120),  # minutes to expiry (0: refused, expires now)
    st.integers(0, 12),  # key
)
spend_op = st.tuples(
    st.just("spend"),
    st.sampled_from(HOLDERS),
    st.integers(1, 30),
    st.booleans(),  # a gift with a creator leg
    st.integers(0, 20),
)
simple_op = st.one_of(
    credit_op,
    spend_op,
    st.tuples(st.just("advance"), st.integers(0, 90)),
    st.tuples(st.just("expire"), st.integers(1, 3)),
    st.tuples(st.just("deliver"), st.integers(1, 4)),
)
op = st.one_of(
    simple_op,
    st.tuples(
        st.just("batch"),
        st.lists(
            st.one_of(credit_op, spend_op, st.tuples(st.just("expire"), st.integers(1, 3))),
            max_size=5,
        ),
        st.sampled_from(["ok", "raise", "fail-inside"]),
    ),
)


class _Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def deliver(self, event: Any) -> None:
        self.events.append(event)


def _run(wallets: Wallets, clock: ManualClock, sink: _Sink, step: tuple[Any, ...]) -> Any:
    name = step[0]
    if name == "credit":
        _, holder, coins, origin, expiry, key = step
        return wallets.credit(
            f"k{key}",
            holder=holder,
            amount=COIN(coins),
            origin=origin,
            cause=Cause("c", f"k{key}"),
            expires_at=None if expiry is None else clock.now() + timedelta(minutes=expiry),
            metadata={"staff": "sam", "reason": "test"} if origin is LotOrigin.ADJUSTMENT else None,
        )
    if name == "spend":
        _, holder, coins, gift, key = step
        also = (
            (
                Posting(AccountKey.issuance(DIAMOND), -coins),
                Posting(AccountKey.earnings("eve", DIAMOND), coins),
            )
            if gift
            else ()
        )
        return wallets.spend(
            f"s{key}",
            holder=holder,
            amount=COIN(coins),
            cause=Cause("s", f"k{key}"),
            kind=TransactionKind.GIFT if gift else TransactionKind.SPEND,
            also=also,
        )
    if name == "advance":
        return clock.advance(timedelta(minutes=step[1]))
    if name == "expire":
        return wallets.expire(limit=step[1])
    if name == "deliver":
        return wallets.deliver_events(sink, limit=step[1])
    if name == "batch":
        _, steps, how = step
        with wallets.batch() as bulk:
            for inner in steps:
                with suppress(CoineconError):
                    _run(bulk, clock, sink, inner)
            if how == "raise":
                raise _Boom
            if how == "fail-inside":
                with suppress(CoineconError):
                    bulk.spend("kx", holder="nobody", amount=COIN(1), cause=Cause("s", "x"))
        return None
    raise AssertionError(name)


def _outcome(wallets: Wallets, clock: ManualClock, sink: _Sink, step: tuple[Any, ...]) -> Any:
    try:
        return ("ok", _run(wallets, clock, sink, step))
    except (CoineconError, _Boom) as error:
        return ("error", type(error).__name__)


def _accounts() -> list[AccountKey]:
    accounts = [AccountKey.wallet(h, COIN) for h in HOLDERS]
    accounts += [AccountKey.issuance(COIN), AccountKey.spent(COIN), AccountKey.expired(COIN)]
    accounts += [AccountKey.earnings("eve", DIAMOND), AccountKey.issuance(DIAMOND)]
    return accounts


def _history(wallets: Wallets, account: AccountKey, **filters: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    cursor = None
    while True:
        page = wallets.history(account, limit=3, cursor=cursor, **filters)
        rows += [
            (
                e.sequence,
                e.transaction_id,
                e.kind,
                e.occurred_at,
                e.amount,
                e.balance_after,
                e.cause,
                e.counterparties,
                e.idempotency_key,
                e.metadata,
            )
            for e in page.entries
        ]
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def _snapshot(wallets: Wallets, clock: ManualClock) -> dict[str, Any]:
    store = wallets._store
    now = clock.now()
    snap: dict[str, Any] = {}
    for holder in HOLDERS:
        snap[f"balance {holder}"] = wallets.balance(holder, COIN)
        snap[f"lots {holder}"] = wallets.lots(holder, COIN)
    snap["balances"] = wallets.balances(_accounts())
    for account in _accounts():
        snap[f"history {account}"] = _history(wallets, account)
        snap[f"expiries {account}"] = _history(wallets, account, kinds={TransactionKind.EXPIRY})
        snap[f"window {account}"] = _history(
            wallets, account, since=now - timedelta(minutes=60), until=now
        )
    with store.unit_of_work() as uow:
        snap["all lots"] = list(uow.lots.all())
        snap["pending"] = [
            (e.id, e.type, e.occurred_at, e.payload, e.transaction_id)
            for e in uow.outbox.pending(limit=10_000)
        ]
        snap["transactions"] = list(uow.ledger.transactions())
        snap["postings"] = list(uow.ledger.postings())
        snap["accounts"] = uow.ledger.accounts()
        snap["expired"] = uow.lots.expired(now, limit=1000)
        for holder in HOLDERS:
            snap[f"lapsed {holder}"] = uow.lots.lapsed(AccountKey.wallet(holder, COIN), now)
        snap["consumption"] = {t.id: uow.lots.consumption(t.id) for t in snap["transactions"]}
    report = wallets.verify()
    snap["verify"] = (report.ok, report.problems)
    return snap


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    first=st.lists(credit_op, min_size=1, max_size=4),
    rest=st.lists(op, min_size=1, max_size=25),
)
def test_memory_and_sqlite_agree_on_random_commands(
    first: list[tuple[Any, ...]], rest: list[tuple[Any, ...]]
) -> None:
    """random credits (with expiries), spends, gifts, sweeps, clock
    moves, deliveries and batches (kept, raised out of, or poisoned by a
    failed command) give the same outcomes, balances, lots, history pages,
    filters, pending events, streams and verify() on both adapters."""
    with both_stores() as stores:
        runs = []
        for store in stores:
            clock = ManualClock(T0)
            runs.append((Wallets(store, clock=clock, new_id=counter_ids()), clock, _Sink()))
        for step in [*first, *rest]:
            outcomes = [_outcome(w, c, s, step) for w, c, s in runs]
            event(
                f"{step[0]} {outcomes[0]}"
                if step[0] in ("spend", "batch") and outcomes[0][0] == "error"
                else f"{step[0]} {outcomes[0][0]}"
            )
            assert outcomes[0] == outcomes[1], step
            snaps = [_snapshot(w, c) for w, c, _ in runs]
            for key in snaps[0]:
                assert snaps[0][key] == snaps[1][key], (key, step)
            assert snaps[0]["verify"][0], snaps[0]["verify"]
        assert [e.id for e in runs[0][2].events] == [e.id for e in runs[1][2].events]


# -- 5. the ports side by side, inside one unit of work ----------------------


port_op = st.one_of(
    st.tuples(st.just("tx"), st.sampled_from(HOLDERS), st.integers(1, 9)),
    st.tuples(
        st.just("lot"), st.sampled_from(HOLDERS), st.integers(1, 9), st.none() | st.integers(1, 5)
    ),
    st.tuples(st.just("take"), st.integers(0, 8), st.integers(1, 4)),
    st.tuples(st.just("event"), st.integers(0, 6)),
    st.tuples(st.just("deliver"), st.integers(0, 8)),
    st.tuples(st.just("idem"), st.integers(0, 4)),
    st.tuples(st.just("consume"), st.integers(0, 8), st.integers(0, 8)),
    st.tuples(st.just("history"), st.sampled_from(HOLDERS)),
    st.tuples(st.just("open"), st.sampled_from(HOLDERS)),
    st.tuples(st.just("stream")),
    st.just(("commit",)),
    st.just(("rollback",)),
)
unit = st.tuples(st.lists(port_op, max_size=12), st.sampled_from(["exit", "commit", "raise"]))


class _PortRun:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.ids = itertools.count(1)
        self.lots: list[str] = []
        self.txs: list[str] = []
        self.events: list[str] = []

    def apply(self, uow: Any, step: tuple[Any, ...]) -> Any:
        name = step[0]
        if name == "tx":
            _, holder, coins = step
            n = next(self.ids)
            wallet, source = AccountKey.wallet(holder, COIN), AccountKey.issuance(COIN)
            before = uow.ledger.balances([wallet, source])
            tx = transaction(
                f"tx-{n}",
                TransactionKind.BONUS,
                (source, -coins),
                (wallet, coins),
                at=T0 + timedelta(minutes=n),
            )
            self.txs.append(tx.id)
            return uow.ledger.record(
                tx, {source: before[source] - coins, wallet: before[wallet] + coins}
            )
        if name == "lot":
            _, holder, coins, expiry = step
            n = next(self.ids)
            self.lots.append(f"lot-{n}")
            return uow.lots.add(
                Lot.new(
                    f"lot-{n}",
                    AccountKey.wallet(holder, COIN),
                    LotOrigin.BONUS,
                    coins,
                    T0,
                    "tx-0",
                    expires_at=None if expiry is None else T0 + timedelta(minutes=expiry),
                )
            )
        if name == "take":
            _, index, coins = step
            if index >= len(self.lots):
                return "no lot"
            lot = uow.lots.get(self.lots[index])
            if lot is None or lot.remaining < coins:
                return "nothing"
            return uow.lots.update(lot.take(coins)[0])
        if name == "event":
            n = next(self.ids)
            self.events.append(f"ev-{n}")
            about = self.txs[step[1]] if step[1] < len(self.txs) else None
            return uow.outbox.add(
                OutboxEvent(f"ev-{n}", "t.x", T0 + timedelta(minutes=n), f"p{n}", about)
            )
        if name == "deliver":
            if step[1] >= len(self.events):
                return "no event"
            return uow.outbox.mark_delivered([self.events[step[1]]], T0)
        if name == "idem":
            return uow.idempotency.add(IdempotencyRecord(f"key-{step[1]}", "f", "r", T0))
        if name == "consume":
            _, t, lot_index = step
            if t >= len(self.txs) or lot_index >= len(self.lots):
                return "none"
            return uow.lots.record_consumption(
                self.txs[t], [LotConsumption(self.lots[lot_index], 1)]
            )
        if name == "history":
            return [
                (e.transaction_id, e.amount, e.balance_after)
                for e in uow.ledger.history(AccountKey.wallet(step[1], COIN), limit=50)
            ]
        if name == "open":
            return uow.lots.open_lots(AccountKey.wallet(step[1], COIN))
        if name == "stream":
            return (
                [t.id for t in uow.ledger.transactions()],
                [
                    (p.transaction_id, p.account, p.amount, p.balance_after)
                    for p in uow.ledger.postings()
                ],
                list(uow.lots.all()),
            )
        if name == "commit":
            return uow.commit()
        if name == "rollback":
            return uow.rollback()
        raise AssertionError(name)

    def unit(self, steps: list[tuple[Any, ...]], end: str) -> list[Any]:
        outcomes: list[Any] = []
        try:
            with self.store.unit_of_work() as uow:
                for step in steps:
                    try:
                        outcomes.append(self.apply(uow, step))
                    except CoineconError as error:
                        outcomes.append(type(error).__name__)
                if end == "commit":
                    uow.commit()
                elif end == "raise":
                    raise _Boom  # noqa: TRY301
        except _Boom:
            outcomes.append("boom")
        return outcomes

    def dump(self) -> dict[str, Any]:
        """What the store's ports read back (:func:`books_dump.dump`), and
        what its lot repository says of lapsed, expired and open lots."""
        dumped = dump(self.store, [f"key-{n}" for n in range(5)])
        later = T0 + timedelta(minutes=3)
        with self.store.unit_of_work() as uow:
            # Consumptions are recorded for ids with no transaction too.
            dumped["consumption"] = {t: uow.lots.consumption(t) for t in self.txs}
            dumped["expired"] = uow.lots.expired(later, limit=100)
            for holder in HOLDERS:
                wallet = AccountKey.wallet(holder, COIN)
                dumped[f"lapsed {holder}"] = uow.lots.lapsed(wallet, later)
                dumped[f"open {holder}"] = uow.lots.open_lots(wallet)
        return dumped


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=st.lists(unit, min_size=1, max_size=5))
def test_ports_agree_on_random_units_of_work(units: list[tuple[list[Any], str]]) -> None:
    """random writes inside units of work (lots added and taken from
    twice, commits then rollbacks in the same unit of work, an exception at
    the end, history read in between so the memory index is built then cut
    back) leave MemoryStore and SqliteStore with the same state."""
    with both_stores() as (memory, sqlite):
        runs = [_PortRun(memory), _PortRun(sqlite)]
        for steps, end in units:
            outcomes = [run.unit(steps, end) for run in runs]
            assert outcomes[0] == outcomes[1], (steps, end)
            dumps = [run.dump() for run in runs]
            for key in dumps[0]:
                assert dumps[0][key] == dumps[1][key], key


# -- 6. threads ----------------------------------------------------------------


def test_threads_sharing_a_memory_store_never_overdraw() -> None:
    """eight threads crediting expiring lots, spending and sweeping on
    one MemoryStore (clock moving) keep the books exact: every successful
    spend is covered, no wallet goes below zero, verify() is clean."""
    store = MemoryStore()
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock)
    spent: list[int] = []
    credited: list[int] = []
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for n in range(150):
                key = f"t{thread}-{n}"
                if n % 3 == 0:
                    wallets.credit(
                        key,
                        holder="alice",
                        amount=COIN(7),
                        origin=LotOrigin.PROMOTION,
                        cause=Cause("c", key),
                        expires_in=timedelta(seconds=30 + n % 7),
                    )
                    credited.append(7)
                elif n % 11 == 0:
                    wallets.expire(limit=2)
                else:
                    with suppress(CoineconError):
                        wallets.spend(key, holder="alice", amount=COIN(3), cause=Cause("s", key))
                        spent.append(3)
                if thread == 0:
                    clock.advance(timedelta(seconds=1))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    wallet = AccountKey.wallet("alice", COIN)
    books = wallets.balances([wallet, AccountKey.expired(COIN)])
    assert books[wallet] >= 0
    assert books[wallet] == sum(credited) - sum(spent) - books[AccountKey.expired(COIN)]
    report = wallets.verify()
    assert report.ok, str(report)


# -- 7. naive datetimes ------------------------------------------------------

NAIVE = datetime(2026, 1, 1)  # noqa: DTZ001 (the point of the test)


@pytest.mark.parametrize(
    "call",
    [
        "lapsed",
        "expired",
        "mark_delivered",
    ],
)
def test_memory_refuses_naive_times_like_sqlite(call: str) -> None:
    """A naive ``now`` in ``lapsed``/``expired`` and a naive delivery time in
    ``mark_delivered`` are refused (NaiveDatetimeError) by both stores, even
    when there is nothing to return."""
    with both_stores() as stores:
        outcomes = []
        for store in stores:
            try:
                with store.unit_of_work() as uow:
                    if call == "lapsed":
                        uow.lots.lapsed(AccountKey.wallet("alice", COIN), NAIVE)
                    elif call == "expired":
                        uow.lots.expired(NAIVE, limit=5)
                    else:
                        uow.outbox.add(OutboxEvent("ev-1", "t.x", T0, "{}"))
                        uow.outbox.mark_delivered(["ev-1"], NAIVE)
                outcomes.append("accepted")
            except CoineconError as error:
                outcomes.append(type(error).__name__)
        assert outcomes[0] == outcomes[1]


# -- 8. trusted builders -------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(1, 10**6),
    value=st.none() | st.integers(0, 10**6),
    takes=st.lists(st.integers(1, 10**6), min_size=1, max_size=6),
)
def test_lot_take_builds_what_the_constructors_accept(
    amount: int, value: int | None, takes: list[int]
) -> None:
    """``Lot._with`` and ``_consumption`` (trusted builders behind
    ``Lot.take``) only ever build values the public constructors accept and
    rebuild equal; the value recognised over a whole lot is its value."""
    lot = Lot.new(
        "lot-1",
        AccountKey.wallet("alice", COIN),
        LotOrigin.PURCHASE if value is not None else LotOrigin.BONUS,
        amount,
        T0,
        "tx-1",
        value=None if value is None else Money.from_minor(value, "USD"),
    )
    for wanted in [*takes, amount]:
        coins = min(wanted, lot.remaining)
        if coins == 0:
            break
        after, consumed = lot.take(coins)
        assert attrs.evolve(after) == after  # evolve runs the constructor's checks
        assert LotConsumption(consumed.lot_id, consumed.amount, consumed.value) == consumed
        lot = after
    if lot.remaining == 0 and value is not None:
        assert lot.value_recognised == value
