"""Group commit: units of work of many threads share SQLite commits.

Each test arranges who waits for whom with events, not sleeps: a command is
held inside its unit of work (its ``new_id`` blocks) until another thread is
queued on the writer lock, so the two land in one group for certain.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from coinecon import InsufficientFunds, StorageError
from coinecon.adapters.sqlite import SqliteStore
from coinecon.adapters.sqlite import _group as group_module
from coinecon.adapters.sqlite._group import Group, GroupCommit
from coinecon.errors import InvalidTypeError
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import COIN, DIAMOND, purchase
from workload import CREATOR, buy, child_command, diamonds_for, send_gift

WAIT = 10.0  # seconds any event of these tests may take, at most


def count_commits(store: SqliteStore) -> list[Group]:
    """Record every group the store commits (or fails)."""
    lock: GroupCommit = store._lock
    ended: list[Group] = []
    end = lock._end

    def counting(group: Group) -> None:
        ended.append(group)
        end(group)

    lock._end = counting  # type: ignore[method-assign]
    return ended


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


class Held:
    """A ``new_id`` that holds the command asking for it until released:
    ids are made inside the command's unit of work, so the command then holds
    the writer lock and has some of its writes pending."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            self.reached.set()
            assert self.go.wait(WAIT)
        return f"held-{self.calls}"


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run *work* in a thread; its result or exception lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as error:  # noqa: BLE001 (handed to the test)
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def queued(store: SqliteStore, count: int = 1) -> Callable[[], bool]:
    """Whether *count* threads wait to run: for the writer lock (a unit of
    work), or in the queue of commands (``SqliteStore.run``)."""
    return lambda: store._lock._waiting + len(store._combiner._queue) >= count


def in_one_group(
    store: SqliteStore, first: Callable[[Wallets], object], *others: Callable[[], object]
) -> list[object]:
    """Run *first* (on wallets whose ``new_id`` holds it inside its unit of
    work), then *others* once it holds, and let it go only when all of them
    wait to run: they land in its group. Each one's result or error, in order."""
    held = Held()
    head = in_thread(lambda: first(Wallets(store, new_id=held)))
    assert held.reached.wait(WAIT)
    rest = [in_thread(other) for other in others]
    wait_until(queued(store, len(others)))
    held.go.set()
    outcomes = []
    for thread, outcome in [head, *rest]:
        thread.join(WAIT)
        (result,) = outcome
        outcomes.append(result)
    return outcomes


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "coins.db")


def test_group_commit_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    on = SqliteStore(tmp_path / "on.db")
    off = SqliteStore(tmp_path / "off.db", group_commit=False)
    read_only = SqliteStore(tmp_path / "on.db", read_only=True)
    assert on.group_commit
    assert not off.group_commit
    assert not read_only.group_commit  # a read-only store has nothing to commit
    assert repr(on) == f"SqliteStore({str(tmp_path / 'on.db')!r})"
    assert repr(off).endswith("group_commit=False)")
    with pytest.raises(InvalidTypeError, match="group_commit must be True or False"):
        SqliteStore(tmp_path / "x.db", group_commit=1)  # type: ignore[arg-type]


def test_two_commands_in_one_group_share_one_commit(store: SqliteStore) -> None:
    ended = count_commits(store)
    buy(Wallets(store), "seed", "bob", 100)
    ended.clear()
    first, second = in_one_group(
        store,
        lambda wallets: buy(wallets, "a", "alice", 10),
        lambda: send_gift(Wallets(store), "b", "bob", 30),
    )
    assert isinstance(first, str)
    assert isinstance(second, str)
    assert len(ended) == 1  # one COMMIT for both
    assert ended[0].members == 2
    wallets = Wallets(store)
    assert wallets.balance("alice", COIN) == COIN(10)
    assert wallets.balance("bob", COIN) == COIN(70)
    assert wallets.verify().ok


def test_a_failing_command_rolls_back_alone_with_its_own_error(store: SqliteStore) -> None:
    ended = count_commits(store)
    # bob has nothing: his gift is refused, inside alice's group.
    first, second = in_one_group(
        store,
        lambda wallets: buy(wallets, "a", "alice", 10),
        lambda: send_gift(Wallets(store), "b", "bob", 5),
    )
    assert isinstance(first, str)
    assert isinstance(second, InsufficientFunds)
    assert [group.members for group in ended] == [1]
    wallets = Wallets(store)
    assert wallets.balance("alice", COIN) == COIN(10)
    assert wallets.balance("bob", COIN) == COIN(0)
    # The refused command stored nothing: its key is free.
    buy(wallets, "bob-buys", "bob", 5)
    assert json.loads(send_gift(wallets, "b", "bob", 5))["balance"] == 0
    assert wallets.verify().ok


def test_one_key_twice_in_one_group_has_one_effect(store: SqliteStore) -> None:
    buy(Wallets(store), "seed", "alice", 100)
    ended = count_commits(store)
    first, second = in_one_group(
        store,
        lambda wallets: send_gift(wallets, "g", "alice", 40),
        lambda: send_gift(Wallets(store), "g", "alice", 40),
    )
    assert isinstance(first, str)
    assert first == second  # the replay answers the first result
    assert [group.members for group in ended] == [1]  # the replay wrote nothing
    wallets = Wallets(store)
    assert wallets.balance("alice", COIN) == COIN(60)
    earnings = AccountKey.earnings(CREATOR, DIAMOND)
    assert wallets.balances([earnings])[earnings] == diamonds_for(40)


def test_a_failed_group_commit_fails_every_member_and_keeps_nothing(store: SqliteStore) -> None:
    def break_the_commit() -> None:
        # A row whose foreign keys are checked only at COMMIT, which then fails.
        with store.unit_of_work() as uow:
            raw = uow._work().raw
            raw.execute("PRAGMA defer_foreign_keys = ON")
            raw.execute(
                "INSERT INTO postings (transaction_row, account_id, amount, balance_after) "
                "VALUES (424242, 424242, 1, 1)"
            )
            uow.commit()

    outcomes = in_one_group(store, lambda wallets: buy(wallets, "a", "alice", 10), break_the_commit)
    for error in outcomes:
        assert isinstance(error, StorageError)
        assert "FOREIGN KEY" in str(error)
    assert "the group commit this unit of work joined failed" in str(outcomes[0])
    wallets = Wallets(store)
    assert wallets.balance("alice", COIN) == COIN(0)
    assert wallets.verify().ok
    # Nothing was kept, so the key is free and the store works on.
    buy(wallets, "a", "alice", 10)
    assert wallets.balance("alice", COIN) == COIN(10)


def test_a_member_commits_its_group_itself_when_no_one_else_does(store: SqliteStore) -> None:
    """A thread counted as waiting may give up (its time-out): the members
    left waiting find the lock free and commit their group themselves."""
    lock = store._lock
    lock._waiting = 1  # a waiter that never comes
    started = time.monotonic()
    buy(Wallets(store), "a", "alice", 10)
    assert time.monotonic() - started >= 0.04  # it waited one poll for the waiter
    lock._waiting = 0
    with SqliteStore(store.path, read_only=True) as reader:
        assert Wallets(reader).balance("alice", COIN) == COIN(10)


def test_a_group_with_no_writes_ends_at_once_even_while_a_thread_waits(
    tmp_path: Path,
) -> None:
    """A query (or a replay, or a refused command) that ends while a thread
    is counted as waiting must not leave its group open: should that thread
    give up, no one would end the group, and the file's write lock would stay
    held against every other process."""
    path = tmp_path / "coins.db"
    store = SqliteStore(path)
    buy(Wallets(store), "seed", "alice", 10)
    lock = store._lock
    lock._waiting = 1  # a waiter that gives up before it gets the lock
    assert Wallets(store).balance("alice", COIN) == COIN(10)  # a query: no commit
    lock._waiting = 0
    assert lock.open_group is None
    with SqliteStore(path, timeout=0.5) as other:  # another process, as far as SQLite knows
        buy(Wallets(other), "other", "bob", 1)
    store.close()


def test_a_member_interrupted_while_it_waits_does_not_leave_its_group_open(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = store._lock
    lock._waiting = 1  # the next holder, queued, but it never comes

    def interrupted(_self: threading.Event, _timeout: float | None = None) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Event, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        buy(Wallets(store), "a", "alice", 10)
    monkeypatch.undo()
    lock._waiting = 0
    assert lock.open_group is None  # committed on the way out
    with SqliteStore(store.path, read_only=True) as reader:
        assert Wallets(reader).balance("alice", COIN) == COIN(10)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_afresh_rather_than_join_its_parents_group(
    store: SqliteStore,
) -> None:
    """A child forked while a group is open must not use the parent's group
    (its connection and transaction), its pooled connections, nor its locks,
    which another thread of the parent may hold."""
    lock = store._lock
    lock._waiting = 1  # keeps the group open after the commit below
    started = threading.Event()
    release = threading.Event()

    def member() -> None:
        with store.unit_of_work() as uow:
            uow.ledger.record(*_purchase())
            started.set()
            assert release.wait(WAIT)
            uow.commit()

    thread = threading.Thread(target=member)
    thread.start()
    assert started.wait(WAIT)
    parent_group = lock.open_group
    assert parent_group is not None
    store._give_back(store._connect())  # a pooled connection of the parent's
    (pooled,) = store._idle
    pid = os.fork()
    if pid == 0:  # the child: see what a new unit of work would use, then leave
        code = 1
        try:
            store.unit_of_work()
            fresh = store._lock
            untouched = pooled not in store._idle and pooled in store._inherited
            code = 0 if fresh is not lock and fresh.open_group is None and untouched else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    release.set()
    lock._waiting = 0
    thread.join(WAIT)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._lock is lock  # the parent's own store is untouched


def _purchase() -> tuple[Any, dict[AccountKey, int]]:
    alice = AccountKey.wallet("alice", COIN)
    issuance = AccountKey.issuance(COIN)
    return purchase("tx-a", "alice", 5), {issuance: -5, alice: 5}


def test_a_disk_full_in_one_member_rolls_back_that_member_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_FULL inside a member's savepoint undoes only that member: a
    member committed into the same group before it is answered and kept."""
    monkeypatch.setattr(group_module, "_POLL", 1.0)
    path = tmp_path / "coins.db"
    store = SqliteStore(path)
    lock = store._lock
    lock._waiting = 1
    first, first_outcome = in_thread(lambda: buy(Wallets(store), "a", "alice", 5))
    wait_until(lambda: lock.open_group is not None and lock.open_group.members == 1)
    lock._waiting = 0
    with pytest.raises(StorageError, match="full"), store.unit_of_work() as uow:  # noqa: PT012
        raw = uow._work().raw
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count = {pages + 1}")
        for n in range(2000):
            uow.ledger.record(
                purchase(f"tx-b{n}", f"bob{n}", 5),
                {AccountKey.issuance(COIN): -5 * (n + 1), AccountKey.wallet(f"bob{n}", COIN): 5},
            )
        uow.commit()
    first.join(WAIT)
    assert isinstance(first_outcome[0], str)
    store.close()
    with SqliteStore(path) as again:
        assert Wallets(again).balance("alice", COIN) == COIN(5)
        assert Wallets(again).verify().ok


def test_the_first_unit_of_work_of_a_group_rolls_back_alone_without_a_savepoint(
    store: SqliteStore,
) -> None:
    """The first unit of work of a group opens no savepoint: when it fails
    after writing, rolling the group's transaction back undoes it alone, and
    the thread waiting to join starts a group of its own."""
    started = threading.Event()
    go = threading.Event()

    def failing() -> None:
        with store.unit_of_work() as uow:
            uow.ledger.record(*_purchase())
            assert uow._savepoint is False  # type: ignore[attr-defined]
            started.set()
            assert go.wait(WAIT)
            raise RuntimeError("the caller's own error")

    first, first_outcome = in_thread(failing)
    assert started.wait(WAIT)
    second, second_outcome = in_thread(lambda: buy(Wallets(store), "b", "bob", 3))
    wait_until(queued(store))
    go.set()
    first.join(WAIT)
    second.join(WAIT)
    assert isinstance(first_outcome[0], RuntimeError)
    assert isinstance(second_outcome[0], str)
    wallets = Wallets(store)
    assert wallets.balance("alice", COIN) == COIN(0)
    assert wallets.balance("bob", COIN) == COIN(3)
    assert wallets.verify().ok


ALICE = AccountKey.wallet("alice", COIN)


@pytest.mark.parametrize("grouped", [True, False])
def test_run_returns_what_the_work_returns_and_raises_its_error(
    tmp_path: Path, grouped: bool
) -> None:
    store = SqliteStore(tmp_path / "run.db", group_commit=grouped)

    def write(uow: Any) -> int:
        uow.ledger.record(*_purchase())
        uow.commit()
        balance: int = uow.ledger.balances([ALICE])[ALICE]  # after its commit: goes on
        return balance

    assert store.run(write) == 5

    def fail(uow: Any) -> None:
        uow.ledger.record(
            purchase("tx-b", "bob", 5),
            {AccountKey.issuance(COIN): -10, AccountKey.wallet("bob", COIN): 5},
        )
        raise LookupError("the work's own error")

    with pytest.raises(LookupError, match="the work's own error"):
        store.run(fail)
    assert store.run(lambda uow: uow.ledger.balances([ALICE])) == {ALICE: 5}
    assert Wallets(store).balance("bob", COIN) == COIN(0)  # the failed work kept nothing
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.run(lambda _uow: None)


def test_when_the_first_queued_command_fails_the_others_run_in_a_group_of_their_own(
    store: SqliteStore,
) -> None:
    """The first command of a new group runs without a savepoint; when it
    fails, rolling back undoes the group's transaction whole, and the
    commands queued behind it go to a new group."""
    ended = count_commits(store)
    started = threading.Event()
    go = threading.Event()

    def failing(uow: Any) -> None:
        uow.ledger.record(*_purchase())
        started.set()
        assert go.wait(WAIT)
        raise LookupError("the first command's own error")

    first, first_outcome = in_thread(lambda: store.run(failing))
    assert started.wait(WAIT)
    others = [
        in_thread(functools.partial(buy, Wallets(store), f"b{n}", "bob", 1)) for n in range(3)
    ]
    wait_until(queued(store, 3))
    go.set()
    for thread, _ in [(first, None), *others]:
        thread.join(WAIT)
    assert isinstance(first_outcome[0], LookupError)
    assert all(isinstance(outcome[0], str) for _, outcome in others)
    assert [group.members for group in ended] == [0, 3]  # the failed one's, then the rest's
    wallets = Wallets(store)
    assert wallets.balance("alice", COIN) == COIN(0)
    assert wallets.balance("bob", COIN) == COIN(3)
    assert wallets.verify().ok


def test_a_command_run_by_the_queue_may_not_run_another_through_it(
    store: SqliteStore,
) -> None:
    def nested(_uow: Any) -> object:
        return store.run(lambda _inner: None)

    with pytest.raises(StorageError, match="would wait for itself"):
        store.run(nested)
    assert store.run(lambda _uow: "usable") == "usable"


def _gift(store: SqliteStore, key: str) -> str:
    return send_gift(Wallets(store), key, "bob", 10)


def test_queued_commands_run_back_to_back_in_one_group(store: SqliteStore) -> None:
    """Commands brought while one runs wait in the queue, and the thread
    running them takes them all into its group: one commit; a command that
    fails there rolls back alone with its own error."""
    ended = count_commits(store)
    buy(Wallets(store), "seed", "bob", 100)
    ended.clear()
    *kept, refused = in_one_group(
        store,
        lambda wallets: buy(wallets, "a", "alice", 10),
        *[functools.partial(_gift, store, f"g{n}") for n in range(3)],
        lambda: send_gift(Wallets(store), "r", "carol", 5),
    )
    assert all(isinstance(outcome, str) for outcome in kept)
    assert isinstance(refused, InsufficientFunds)
    assert [group.members for group in ended] == [4]
    wallets = Wallets(store)
    assert wallets.balance("bob", COIN) == COIN(70)
    assert wallets.verify().ok


def test_a_unit_of_work_goes_on_after_its_commit_in_a_new_group(store: SqliteStore) -> None:
    ended = count_commits(store)
    wallet = AccountKey.wallet("alice", COIN)
    with store.unit_of_work() as uow:
        assert uow.ledger.balances([wallet]) == {wallet: 0}
        uow.commit()  # nothing written: nothing to commit
        buy_in = Wallets(store)
        assert len(ended) == 1  # the read's group ended (discarded) at its commit
        buy(buy_in, "a", "alice", 10)  # the unit of work holds no lock now
        assert uow.ledger.balances([wallet]) == {wallet: 10}  # joined a new group
    assert Wallets(store).balance("alice", COIN) == COIN(10)


def test_many_threads_conserve_coins_and_share_commits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "coins.db", synchronous="FULL")
    ended = count_commits(store)
    threads, commands = 8, 40
    expected: dict[str, int] = {}
    earned = 0
    plans: list[list[tuple[str, str, str, int]]] = []
    for number in range(threads):
        rng = random.Random(number)
        holder = f"holder-{number}"
        balance = 0
        plan: list[tuple[str, str, str, int]] = []
        for step in range(commands):
            coins = rng.randint(1, 20)
            if coins <= balance and rng.random() < 0.6:
                plan.append((f"{holder}-{step}", "gift", holder, coins))
                balance -= coins
                earned += diamonds_for(coins)
            else:
                plan.append((f"{holder}-{step}", "credit", holder, coins))
                balance += coins
        expected[holder] = balance
        plans.append(plan)
    failures: list[BaseException] = []

    def run(plan: list[tuple[str, str, str, int]]) -> None:
        wallets = Wallets(store)
        try:
            for key, operation, holder, coins in plan:
                (buy if operation == "credit" else send_gift)(wallets, key, holder, coins)
        except BaseException as error:  # noqa: BLE001 (collected for the assertion)
            failures.append(error)

    workers = [threading.Thread(target=run, args=(plan,)) for plan in plans]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not failures
    committed = [group for group in ended if group.members]
    assert sum(group.members for group in committed) == threads * commands
    assert len(committed) < threads * commands  # commands shared commits
    wallets = Wallets(store)
    for holder, balance in expected.items():
        assert wallets.balance(holder, COIN) == COIN(balance)
    earnings = AccountKey.earnings(CREATOR, DIAMOND)
    assert wallets.balances([earnings])[earnings] == earned
    assert wallets.verify().ok


# -- a process killed while its threads share commits --------------------------------

KILL_THREADS = 6
KILL_COMMANDS = 200


def kill_plan(thread: int) -> list[tuple[str, str, str, int]]:
    rng = random.Random(thread)
    holder = f"holder-{thread}"
    balance = 0
    plan: list[tuple[str, str, str, int]] = []
    for step in range(KILL_COMMANDS):
        coins = rng.randint(1, 20)
        if coins <= balance and rng.random() < 0.6:
            plan.append((f"{holder}-{step}", "gift", holder, coins))
            balance -= coins
        else:
            plan.append((f"{holder}-{step}", "credit", holder, coins))
            balance += coins
    return plan


def child_main(argv: list[str]) -> int:
    """Run every thread's plan on the file; report each command once it returned."""
    (path,) = argv
    printing = threading.Lock()
    with SqliteStore(path) as store:

        def run(thread: int) -> None:
            wallets = Wallets(store)
            for key, operation, holder, coins in kill_plan(thread):
                result = (buy if operation == "credit" else send_gift)(wallets, key, holder, coins)
                with printing:
                    print(json.dumps([thread, key, result]), flush=True)  # noqa: T201

        workers = [threading.Thread(target=run, args=(n,)) for n in range(KILL_THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return 0


@pytest.mark.slow
@pytest.mark.parametrize("after", [50, 300, 700])
def test_a_kill_loses_only_commands_not_answered(tmp_path: Path, after: int) -> None:
    path = tmp_path / "coins.db"
    SqliteStore(path).close()
    process = subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, str(path)), stdout=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    answered: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if not line.endswith("\n"):
                break
            _thread, key, result = json.loads(line)
            answered[key] = result
            if len(answered) >= after:
                process.send_signal(signal.SIGKILL)
                break
        process.wait()
        assert process.stdout is not None
        for line in process.stdout:  # what it wrote before it died
            if line.endswith("\n"):
                _thread, key, result = json.loads(line)
                answered[key] = result
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with SqliteStore(path) as store:
        wallets = Wallets(store)
        assert wallets.verify().ok
        for thread in range(KILL_THREADS):
            plan = kill_plan(thread)
            with store.unit_of_work() as uow:
                kept = [uow.idempotency.get(key) is not None for key, *_ in plan]
            reported = sum(key in answered for key, *_ in plan)
            # Each thread's commands are kept in order, every answered one is
            # kept, and at most the one in flight at the kill is kept unanswered.
            count = sum(kept)
            assert kept == [True] * count + [False] * (len(plan) - count)
            assert reported <= count <= reported + 1
            for key, operation, holder, coins in plan[:reported]:
                run = buy if operation == "credit" else send_gift
                assert run(wallets, key, holder, coins) == answered[key]
