"""Many threads and several processes writing one SQLite file at once."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.lots import Lot, LotOrigin
from coinecon.ledger.verification import verify_books
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import COIN, T0, purchase, record, wallet
from workload import check_books_after, child_command, run_commands

# Run in spawned processes through the builtin exec, so the child needs nothing
# from this test module (which pytest imports under a name the child cannot).
WORKER = """
from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger.lots import Lot, LotOrigin
from coinecon.testing.contract import T0, purchase, record, wallet

with SqliteStore(path, timeout=30) as store:
    for i in range(rounds):
        with store.unit_of_work() as uow:
            transaction = purchase(f"{tag}-{i}", "alice", 1)
            record(uow, transaction)
            uow.lots.add(Lot.new(f"lot-{tag}-{i}", wallet("alice"), LotOrigin.BONUS, 1, T0,
                                 transaction.id))
            uow.commit()
"""


def work(store: SqliteStore, tag: str, rounds: int, failures: list[BaseException]) -> None:
    try:
        for i in range(rounds):
            with store.unit_of_work() as uow:
                transaction = purchase(f"{tag}-{i}", "alice", 1)
                record(uow, transaction)
                uow.lots.add(
                    Lot.new(
                        f"lot-{tag}-{i}", wallet("alice"), LotOrigin.BONUS, 1, T0, transaction.id
                    )
                )
                uow.commit()
    except BaseException as error:  # noqa: BLE001 (the main thread reports it)
        failures.append(error)


def check_books(path: Path, total: int) -> None:
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        balances = uow.ledger.balances([wallet("alice"), AccountKey.issuance(COIN)])
        assert balances == {wallet("alice"): total, AccountKey.issuance(COIN): -total}
        postings = list(uow.ledger.postings())
        running = [p.balance_after for p in postings if p.account == wallet("alice")]
        assert running == list(range(1, total + 1))
        report = verify_books(
            uow.ledger.transactions(), postings, uow.ledger.accounts(), uow.lots.all()
        )
    assert report.ok, str(report)
    assert report.transactions == total


def test_threads_on_separate_stores_of_one_file(tmp_path: Path) -> None:
    # Separate store objects share no in-process lock: only SQLite's lock and
    # the busy retries keep them apart.
    path = tmp_path / "coins.db"
    stores = [SqliteStore(path, timeout=30) for _ in range(4)]
    failures: list[BaseException] = []
    try:
        threads = [
            threading.Thread(target=work, args=(stores[n % 4], f"t{n}", 20, failures))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for store in stores:
            store.close()
    assert failures == []
    check_books(path, 8 * 20)


@pytest.mark.slow
def test_processes_and_threads_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "coins.db"
    with SqliteStore(path):
        pass
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=exec,
            args=(WORKER, {"path": str(path), "tag": f"p{n}", "rounds": 40}),
        )
        for n in range(3)
    ]
    failures: list[BaseException] = []
    for process in processes:
        process.start()
    with SqliteStore(path, timeout=30) as store:
        threads = [
            threading.Thread(target=work, args=(store, f"t{n}", 40, failures)) for n in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for process in processes:
        process.join(timeout=120)
    assert failures == []
    assert [process.exitcode for process in processes] == [0, 0, 0]
    check_books(path, 6 * 40)


# -- the same, through the wallet service -------------------------------------------
#
# Workers credit coins, send gift-shaped spends (coins spent, diamonds earned by a
# creator in the same transaction) and run small batches, all on three shared
# wallets. Wallets start empty and spends are often larger than what is there, so
# many spends are refused with InsufficientFunds; each worker also makes one
# spend that nothing could cover, so refusals are certain. Every worker reports
# the commands that succeeded; the books must hold exactly those.


def child_main(argv: list[str]) -> int:
    """Entry point of a spawned worker process (see workload.child_command)."""
    path, tag, rounds, seed = argv
    with SqliteStore(path, timeout=30) as store:
        print("ready", flush=True)  # noqa: T201 (then wait for the parent's go)
        sys.stdin.readline()
        outcome = run_commands(Wallets(store), tag, int(rounds), int(seed))
    print(json.dumps(outcome))  # noqa: T201 (the parent reads it)
    return 0


def check_service_books(path: Path, outcomes: list[dict[str, Any]]) -> list[str]:
    with SqliteStore(path) as store:
        return check_books_after(store, outcomes)


@pytest.mark.slow
def test_processes_and_threads_credit_and_spend_through_wallets(tmp_path: Path) -> None:
    path = tmp_path / "coins.db"
    SqliteStore(path).close()
    rounds = 250
    processes = [
        subprocess.Popen(  # noqa: S603 (our own interpreter, our own arguments)
            child_command(__file__, str(path), f"p{n}", str(rounds), str(n)),
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

        def thread_work(store: SqliteStore, tag: str, seed: int) -> None:
            try:
                outcomes.append(run_commands(Wallets(store), tag, rounds, seed))
            except BaseException as error:  # noqa: BLE001 (the main thread reports it)
                failures.append(error)

        with SqliteStore(path, timeout=30) as shared, SqliteStore(path, timeout=30) as own:
            # Two threads share a store (its in-process lock, then SQLite's); one
            # has a store of its own (SQLite's lock only).
            threads = [
                threading.Thread(target=thread_work, args=(shared, "t0", 10)),
                threading.Thread(target=thread_work, args=(shared, "t1", 11)),
                threading.Thread(target=thread_work, args=(own, "t2", 12)),
            ]
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
    # Every worker had its certain refusal; random ones come on top.
    assert all(outcome["refused"] >= 1 for outcome in outcomes)
    assert sum(len(outcome["committed"]) for outcome in outcomes) > 6 * rounds // 2
    order = check_service_books(path, outcomes)
    workers = [key.split("-")[0] for key in order]
    switches = sum(a != b for a, b in itertools.pairwise(workers))
    # The workers really ran at once: their commits interleave in the ledger.
    assert switches >= 10, f"the workers ran one after another ({switches} switches)"
