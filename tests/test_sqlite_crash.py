"""A process killed in the middle of its commands leaves a clean, complete file.

A child process runs a plan of commands on a SQLite file through the wallet
service: credits and gift-shaped spends, each in its own transaction, and
``Wallets.batch()`` blocks of several commands. After each step has returned
(for a batch: after its ``with`` block committed), the child writes the step's
results to its stdout, one line per step. The parent kills it with SIGKILL at
some moment: after a number of reports, while a command's unit of work is open,
or inside a batch after all its commands ran but before it committed. Then the
file must open, pass SQLite's integrity check and ``verify()``, hold every step
the child reported and nothing else (at most the one step in flight at the kill,
whole, when the kill may have landed between its commit and its report), replay
every reported command to the same result, and take new work.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any, TypedDict

import pytest

from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.wallets import Wallets
from coinecon.money.units import Unit
from coinecon.testing.contract import COIN, DIAMOND
from workload import CREATOR, child_command, diamonds_for, run_command

pytestmark = pytest.mark.slow

HOLDERS = ("alice", "bob", "carol", "dave")

# (idempotency key, "credit" or "gift", holder, coins)
Command = tuple[str, str, str, int]


class Step(TypedDict):
    """One transaction's worth of commands: a single command, or a batch."""

    batch: bool
    commands: list[Command]


def run_step(wallets: Wallets, step: Step) -> dict[str, str]:
    if not step["batch"]:
        (command,) = step["commands"]
        return {command[0]: run_command(wallets, command)}
    with wallets.batch() as bulk:
        return {command[0]: run_command(bulk, command) for command in step["commands"]}


def make_plan(seed: int, steps: int, *, batch_at: int = -1, batch_size: int = 0) -> list[Step]:
    """A random plan whose spends never exceed what the wallet holds then, with
    a batch of *batch_size* commands at step *batch_at* if asked."""
    rng = random.Random(seed)
    balances = dict.fromkeys(HOLDERS, 0)
    plan: list[Step] = []
    for index in range(steps):
        size = rng.randint(2, 8) if rng.random() < 0.25 else 1
        if index == batch_at:
            size = batch_size
        commands: list[Command] = []
        for position in range(size):
            key = f"step-{index}-{position}"
            holder = rng.choice(HOLDERS)
            coins = rng.randint(1, 30)
            if coins <= balances[holder] and rng.random() < 0.5:
                balances[holder] -= coins
                commands.append((key, "gift", holder, coins))
            else:
                balances[holder] += coins
                commands.append((key, "credit", holder, coins))
        plan.append(Step(batch=size > 1, commands=commands))
    return plan


# -- the child --------------------------------------------------------------------


def wal_size(path: str) -> int:
    try:
        return Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def child_main(argv: list[str]) -> int:
    """Run the plan; pause for the kill where asked.

    Arguments: the database, the plan file, where to pause: ``none``,
    ``batch <step>`` (inside that batch, after its commands ran) or ``id <n>``
    (at the n-th id the service asks for: ids are made inside a command's
    unit of work, so some of its writes are pending), and how long the ids the
    service makes are.
    """
    path, plan_file, pause, pause_at_text, id_length = argv
    pause_at = int(pause_at_text)
    plan: list[Step] = [
        Step(batch=raw["batch"], commands=[(k, o, h, int(c)) for k, o, h, c in raw["commands"]])
        for raw in json.loads(Path(plan_file).read_text())
    ]
    wal_before = wal_size(path)

    def stop_here() -> None:
        marker = {"paused": pause, "wal_before": wal_before, "wal": wal_size(path)}
        print(json.dumps(marker), flush=True)  # noqa: T201 (the parent reads it)
        time.sleep(600)  # the parent kills this process now
        sys.exit("the parent never killed this process")

    calls = 0

    def new_id() -> str:
        nonlocal calls
        calls += 1
        if pause == "id" and calls == pause_at:
            stop_here()
        return f"id-{calls}-".ljust(int(id_length), "x")

    with SqliteStore(path) as store:
        wallets = Wallets(store, new_id=new_id)
        for index, step in enumerate(plan):
            if pause == "batch" and index == pause_at:
                wal_before = wal_size(path)
                with wallets.batch() as bulk:
                    for command in step["commands"]:
                        run_command(bulk, command)
                    stop_here()
            results = run_step(wallets, step)
            print(json.dumps({"step": index, "results": results}), flush=True)  # noqa: T201
    print(json.dumps({"finished": True}), flush=True)  # noqa: T201
    return 0


# -- the parent -------------------------------------------------------------------


class Crash(TypedDict):
    reports: dict[int, dict[str, str]]
    paused: dict[str, Any] | None


def run_and_kill(
    tmp_path: Path,
    plan: list[Step],
    *,
    pause: str = "none",
    at: int = 0,
    after: int = 0,
    id_length: int = 0,
) -> Crash:
    """Run *plan* in a child; SIGKILL it when it pauses, or after *after*
    reports; return every complete report it wrote and its pause marker."""
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    arguments = [str(tmp_path / "coins.db"), str(plan_file), pause, str(at), str(id_length)]
    process = subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, *arguments),
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    reports: dict[int, dict[str, str]] = {}
    paused: dict[str, Any] | None = None
    finished = False

    def take(lines: Iterable[str], *, stop: bool) -> None:
        nonlocal paused, finished
        for line in lines:
            if not line.endswith("\n"):
                continue  # cut short by the kill: its step counts as unreported
            message = json.loads(line)
            if "paused" in message:
                paused = message
            elif "finished" in message:
                finished = True
            else:
                reports[message["step"]] = message["results"]
            if stop and (paused is not None or (after and len(reports) >= after)):
                return

    try:
        assert process.stdout is not None
        take(process.stdout, stop=True)
        process.kill()
        process.wait()
        take(process.stdout, stop=False)  # what it wrote before it died
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert not finished, "the child ran the whole plan before it was killed"
    if sys.platform != "win32":
        assert process.returncode == -signal.SIGKILL
    return Crash(reports=reports, paused=paused)


def expected_balances(commands: Iterable[Command]) -> dict[AccountKey, int]:
    balances = {
        **{AccountKey.wallet(h, COIN): 0 for h in HOLDERS},
        AccountKey.issuance(COIN): 0,
        AccountKey.spent(COIN): 0,
        AccountKey.issuance(DIAMOND): 0,
        AccountKey.earnings(CREATOR, DIAMOND): 0,
    }
    for _key, operation, holder, coins in commands:
        wallet = AccountKey.wallet(holder, COIN)
        if operation == "credit":
            balances[wallet] += coins
            balances[AccountKey.issuance(COIN)] -= coins
        else:
            balances[wallet] -= coins
            balances[AccountKey.spent(COIN)] += coins
            balances[AccountKey.issuance(DIAMOND)] -= diamonds_for(coins)
            balances[AccountKey.earnings(CREATOR, DIAMOND)] += diamonds_for(coins)
    return balances


def keys_of(steps: Iterable[Step]) -> set[str]:
    return {command[0] for step in steps for command in step["commands"]}


def check_books(store: SqliteStore, commands: list[Command]) -> None:
    """The store holds exactly *commands*, each with its lot (credits) and its
    event, and verifies clean."""
    report = Wallets(store).verify()
    assert report.ok, str(report)
    assert report.transactions == len(commands)
    with store.unit_of_work() as uow:
        transactions = list(uow.ledger.transactions())
        accounts = uow.ledger.accounts()
        lots = list(uow.lots.all())
        events = uow.outbox.pending(limit=len(commands) + 10)
    assert sorted(t.idempotency_key for t in transactions) == sorted(c[0] for c in commands)
    assert len(lots) == sum(c[1] == "credit" for c in commands)
    assert sorted(str(e.transaction_id) for e in events) == sorted(t.id for t in transactions)
    expected = expected_balances(commands)
    # The coins' side, account by account (verify() checked the money side).
    coins = {a for a in accounts if isinstance(a.asset, Unit)}
    assert coins <= set(expected)
    assert {account: accounts.get(account, 0) for account in expected} == expected


def check_after_crash(tmp_path: Path, plan: list[Step], crash: Crash, *, in_doubt: bool) -> int:
    """Check the file the killed child left; return how many steps it reported.

    With *in_doubt*, the kill may have landed between a step's commit and its
    report, so that one step may be there, but only whole.
    """
    reports = crash["reports"]
    done = len(reports)
    assert sorted(reports) == list(range(done)), "steps are reported in order"
    path = tmp_path / "coins.db"
    with SqliteStore(path) as store:
        with closing(sqlite3.connect(path)) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        with store.unit_of_work() as uow:
            stored = {t.idempotency_key for t in uow.ledger.transactions()}
        committed = keys_of(plan[:done])
        in_flight = keys_of(plan[done : done + 1])
        if in_doubt and stored == committed | in_flight:
            done += 1
        else:
            assert stored == committed, (
                f"missing: {sorted(committed - stored)[:5]}, "
                f"not reported: {sorted(stored - committed)[:5]}"
            )
        check_books(store, [c for step in plan[:done] for c in step["commands"]])

        # Every reported command replays to the result the child saw, changing nothing.
        wallets = Wallets(store)
        commands = {c[0]: c for step in plan for c in step["commands"]}
        for results in reports.values():
            for key, result in results.items():
                assert run_command(wallets, commands[key]) == result
        assert wallets.verify().transactions == sum(len(s["commands"]) for s in plan[:done])

        # The file takes new work: retry the step in doubt (a replay if it
        # committed) and carry on with the plan.
        first = len(reports)
        for step in plan[first : first + 3]:
            run_step(wallets, step)
        check_books(store, [c for step in plan[: first + 3] for c in step["commands"]])
    return first


@pytest.mark.parametrize(("seed", "after"), [(1, 1), (2, 23), (3, 120), (4, 400)], ids=str)
def test_killed_after_some_reports(tmp_path: Path, seed: int, after: int) -> None:
    # The child runs on while the parent reads its reports, so the kill lands
    # anywhere: inside a command, inside a batch, in a commit, between steps.
    plan = make_plan(seed, 3000)
    crash = run_and_kill(tmp_path, plan, after=after)
    assert crash["paused"] is None
    assert check_after_crash(tmp_path, plan, crash, in_doubt=True) >= after


@pytest.mark.parametrize("call", [1, 5, 137])
def test_killed_inside_a_unit_of_work(tmp_path: Path, call: int) -> None:
    plan = make_plan(10 + call, 3000)
    crash = run_and_kill(tmp_path, plan, pause="id", at=call)
    assert crash["paused"] is not None
    check_after_crash(tmp_path, plan, crash, in_doubt=False)


def test_killed_inside_a_batch(tmp_path: Path) -> None:
    plan = make_plan(20, 40, batch_at=30, batch_size=8)
    crash = run_and_kill(tmp_path, plan, pause="batch", at=30)
    assert crash["paused"] is not None
    assert check_after_crash(tmp_path, plan, crash, in_doubt=False) == 30


def test_killed_inside_a_batch_that_spilled_to_the_log(tmp_path: Path) -> None:
    # A batch this large (with long ids) outgrows SQLite's page cache (2 MB by
    # default), so its uncommitted pages are written to the write-ahead log
    # before the kill; recovery must ignore them.
    plan = make_plan(21, 15, batch_at=10, batch_size=2000)
    crash = run_and_kill(tmp_path, plan, pause="batch", at=10, id_length=190)
    paused = crash["paused"]
    assert paused is not None
    assert paused["wal"] > paused["wal_before"], "the batch did not reach the log"
    assert check_after_crash(tmp_path, plan, crash, in_doubt=False) == 10
