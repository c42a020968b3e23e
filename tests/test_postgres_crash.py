"""A process killed in the middle of its commands, and a backend terminated
in the middle of a unit of work, leave clean, complete books on PostgreSQL.

The child runs credits and gifts on shared wallets and reports each one after
it returns; the parent kills it with SIGKILL after some reports. The server
rolls back the transaction in flight: the books hold every reported command,
at most one more (the kill may land between a commit and its report), and
verify clean; replaying every command then returns the first results.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

import psycopg
import pytest

from coinecon import ManualClock
from coinecon.adapters.postgres import ConnectionLostError, PostgresStore, PostgresUnitOfWork
from coinecon.ledger.lots import Lot, LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import COIN, T0, purchase, record, wallet
from postgres_kit import conninfo, fresh_store
from workload import child_command, run_command

Command = list[str | int]
_R = TypeVar("_R")


def plan(seed: int, steps: int) -> list[Command]:
    rng = random.Random(seed)
    commands: list[Command] = []
    for n in range(steps):
        holder = rng.choice(["alice", "bob"])
        if n < 4 or rng.random() < 0.5:
            commands.append([f"c-{n}", "credit", holder, rng.randint(5, 20)])
        else:
            commands.append([f"g-{n}", "gift", holder, rng.randint(1, 5)])
    return commands


def child_main(argv: list[str]) -> int:
    """Run the plan, reporting each command's result; never ends on its own."""
    conninfo, schema, seed = argv
    with PostgresStore(conninfo, schema=schema, pool_size=1) as store:
        wallets = Wallets(store)
        for command in plan(int(seed), 10_000):
            try:
                result = run_command(wallets, command)
            except Exception as error:  # noqa: BLE001 (a refused gift is reported too)
                result = f"error: {type(error).__name__}"
            print(json.dumps([command[0], result]), flush=True)  # noqa: T201
    return 0


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    with fresh_store(pool_size=2) as store:
        yield store


@pytest.mark.parametrize("seed", [1, 2])
def test_a_process_killed_mid_command_leaves_clean_books(store: PostgresStore, seed: int) -> None:
    process = subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, conninfo(), store.schema, str(seed)),
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    reported: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            key, result = json.loads(line)
            reported[key] = result
            if len(reported) == 40 + 17 * seed:
                process.kill()
                break
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    steps = plan(seed, len(reported) + 1)
    report = Wallets(store).verify()
    assert report.ok, str(report)
    with store.unit_of_work() as uow:
        keys = {t.idempotency_key for t in uow.ledger.transactions()}
    done = {key for key, result in reported.items() if not result.startswith("error")}
    in_flight = str(steps[len(reported)][0])
    assert done <= keys <= done | {in_flight}
    # Replays answer as the first runs did, and change nothing.
    wallets = Wallets(store)
    for command in steps[: len(reported)]:
        if not reported[str(command[0])].startswith("error"):
            assert run_command(wallets, command) == reported[str(command[0])]
    with store.unit_of_work() as uow:
        assert {t.idempotency_key for t in uow.ledger.transactions()} == keys


class _Spy:
    """A store that runs work on a PostgresStore and remembers its unit of work."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.uow: PostgresUnitOfWork | None = None

    def unit_of_work(self) -> PostgresUnitOfWork:
        return self.store.unit_of_work()

    def run(self, work: Callable[[PostgresUnitOfWork], _R]) -> _R:
        def spied(uow: PostgresUnitOfWork) -> _R:
            self.uow = uow
            return work(uow)

        return self.store.run(spied)


class _KillingClock:
    """A clock that terminates the backend of the spied unit of work the
    first time a command asks it the time (mid-command: after its replay
    check, before its writes)."""

    def __init__(self, spy: _Spy) -> None:
        self.spy = spy
        self.kills = 0

    def now(self) -> datetime:
        if self.kills == 0 and self.spy.uow is not None:
            self.kills += 1
            pid = self.spy.uow.connection().info.backend_pid
            with psycopg.connect(conninfo(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return T0


def test_a_backend_terminated_mid_command_is_retried_whole(store: PostgresStore) -> None:
    run_command(Wallets(store, clock=ManualClock(T0)), ["c-0", "credit", "alice", 50])
    spy = _Spy(store)
    clock = _KillingClock(spy)
    wallets = Wallets(spy, clock=clock)
    first = run_command(wallets, ["g-1", "gift", "alice", 5])
    assert clock.kills == 1
    assert run_command(wallets, ["g-1", "gift", "alice", 5]) == first
    report = Wallets(store).verify()
    assert report.ok, str(report)
    assert wallets.balance("alice", COIN).amount == 45
    with store.unit_of_work() as uow:
        assert [t.idempotency_key for t in uow.ledger.transactions()] == ["c-0", "g-1"]


def test_a_backend_terminated_mid_unit_of_work_is_a_typed_error(store: PostgresStore) -> None:
    run_command(Wallets(store), ["c-0", "credit", "alice", 50])
    with store.unit_of_work() as uow:
        record(uow, purchase("tx-1", "alice", 5))
        with psycopg.connect(conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (uow.connection().info.backend_pid,))
        with pytest.raises(ConnectionLostError):
            uow.lots.add(Lot.new("lot-1", wallet("alice"), LotOrigin.BONUS, 5, T0, "tx-1"))
    with store.unit_of_work() as uow:
        assert uow.ledger.get("tx-1") is None
        assert uow.lots.get("lot-1") is None
    report = Wallets(store).verify()
    assert report.ok, str(report)
