"""Many threads and processes writing one PostgreSQL schema at once, through
the wallet service: the books hold exactly the commands that succeeded."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from coinecon.adapters.postgres import PostgresStore
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.verification import verify_books
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import COIN, DIAMOND
from postgres_kit import conninfo, fresh_store
from workload import (
    CREATOR,
    check_books_after,
    child_command,
    diamonds_for,
    run_command,
    run_commands,
)


def child_main(argv: list[str]) -> int:
    """Entry point of a spawned worker process (see workload.child_command)."""
    conninfo, schema, tag, rounds, seed = argv
    with PostgresStore(conninfo, schema=schema, pool_size=2) as store:
        print("ready", flush=True)  # noqa: T201 (then wait for the parent's go)
        sys.stdin.readline()
        outcome = run_commands(Wallets(store), tag, int(rounds), int(seed))
    print(json.dumps(outcome))  # noqa: T201 (the parent reads it)
    return 0


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    with fresh_store(pool_size=8) as store:
        yield store


def test_threads_credit_and_spend_the_same_wallets(store: PostgresStore) -> None:
    outcomes: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def work(tag: str, seed: int) -> None:
        try:
            start.wait()
            outcomes.append(run_commands(Wallets(store), tag, 60, seed))
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=work, args=(f"t{n}", n)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(outcome["refused"] >= 1 for outcome in outcomes)
    order = check_books_after(store, outcomes)
    workers = [key.split("-")[0] for key in order]
    assert sum(a != b for a, b in itertools.pairwise(workers)) >= 10


@pytest.mark.slow
def test_processes_and_threads_credit_and_spend_the_same_wallets(store: PostgresStore) -> None:
    rounds = 80
    processes = [
        subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
            child_command(__file__, conninfo(), store.schema, f"p{n}", str(rounds), str(n)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    outcomes: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"

        def work(tag: str, seed: int) -> None:
            try:
                outcomes.append(run_commands(Wallets(store), tag, rounds, seed))
            except BaseException as error:  # noqa: BLE001 (reported below)
                failures.append(error)

        threads = [threading.Thread(target=work, args=(f"t{n}", 10 + n)) for n in range(3)]
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for process in processes:
            out, _ = process.communicate(timeout=120)
            assert process.returncode == 0, "a worker process failed: see its stderr"
            outcomes.append(json.loads(out))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert failures == []
    assert len(outcomes) == 6
    assert all(outcome["refused"] >= 1 for outcome in outcomes)
    order = check_books_after(store, outcomes)
    workers = [key.split("-")[0] for key in order]
    assert sum(a != b for a, b in itertools.pairwise(workers)) >= 10


def test_many_viewers_gift_one_creator_at_once(store: PostgresStore) -> None:
    """The hot creator: senders credit and gift at once; the creator's
    earnings and the platform's accounts come out exact."""
    viewers = [f"viewer-{n}" for n in range(8)]
    wallets = Wallets(store)
    for viewer in viewers:
        run_command(wallets, [f"buy-{viewer}", "credit", viewer, 100])
    failures: list[BaseException] = []
    start = threading.Barrier(len(viewers))

    def gift(viewer: str) -> None:
        try:
            start.wait()
            mine = Wallets(store)
            for n in range(10):
                run_command(mine, [f"{viewer}-{n}", "gift", viewer, 3])
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=gift, args=(viewer,)) for viewer in viewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    earned = len(viewers) * 10 * diamonds_for(3)
    with store.unit_of_work() as uow:
        creator = AccountKey.earnings(CREATOR, DIAMOND)
        assert uow.ledger.balances([creator]) == {creator: earned}
        assert uow.ledger.balances([AccountKey.spent(COIN)]) == {
            AccountKey.spent(COIN): len(viewers) * 30
        }
        history = uow.ledger.history(creator, limit=1000)
        assert [entry.balance_after for entry in history] == list(
            range(earned, 0, -diamonds_for(3))
        )
        spent = uow.ledger.history(AccountKey.spent(COIN), limit=1000)
        assert [entry.balance_after for entry in spent] == list(range(len(viewers) * 30, 0, -3))
        report = verify_books(
            uow.ledger.transactions(),
            uow.ledger.postings(),
            uow.ledger.accounts(),
            uow.lots.all(),
        )
    assert report.ok, str(report)
