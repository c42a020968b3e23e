"""Many threads and several processes writing one SQLite file at once."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from coinecon.adapters.sqlite import SqliteStore
from coinecon.ledger import AccountKey
from coinecon.lots import Lot, LotOrigin
from coinecon.testing.contract import COIN, T0, purchase, record, wallet
from coinecon.verification import verify_books

# Run in spawned processes through the builtin exec, so the child needs nothing
# from this test module (which pytest imports under a name the child cannot).
WORKER = """
from coinecon.adapters.sqlite import SqliteStore
from coinecon.lots import Lot, LotOrigin
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
