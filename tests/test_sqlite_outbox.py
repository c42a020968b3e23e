"""Outbox events on SQLite: stored with their command, delivered after commit at
least once, across restarts of the store and of the process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from coinecon import ManualClock
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import InsufficientFunds, StorageError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import T0
from workload import buy, child_command, send_gift


class Sink:
    """Keeps what it is given; raises on the *fail_at*-th delivery (1-based)."""

    def __init__(self, fail_at: int = 0) -> None:
        self.delivered: list[OutboxEvent] = []
        self.calls = 0
        self.fail_at = fail_at

    def deliver(self, event: OutboxEvent) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError("the broker is down")
        self.delivered.append(event)


def write_events(path: Path) -> list[tuple[str, str]]:
    """Run commands on a fresh file; return the (type, payload) of each event a
    committed command must have written, in commit order."""
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        expected = [
            ("coins.credited", buy(wallets, "p1", "alice", 100)),
            ("coins.credited", buy(wallets, "p2", "bob", 50)),
            ("coins.spent", send_gift(wallets, "g1", "alice", 30)),
        ]
        send_gift(wallets, "g1", "alice", 30)  # a replay writes no event
        with pytest.raises(InsufficientFunds):
            send_gift(wallets, "g2", "bob", 1000)  # a refused command writes none
        with pytest.raises(StorageError), wallets.batch() as bulk:  # noqa: PT012
            buy(bulk, "p3", "carol", 5)
            with pytest.raises(InsufficientFunds):
                send_gift(bulk, "g3", "carol", 6)  # voids the batch and its events
        with wallets.batch() as bulk:
            expected.append(("coins.credited", buy(bulk, "p4", "carol", 7)))
            expected.append(("coins.spent", send_gift(bulk, "g4", "carol", 2)))
        expected.append(("coins.spent", send_gift(wallets, "g5", "bob", 10)))
    return expected


def delivered(path: Path) -> list[bool]:
    """Whether each event in the file was marked delivered, oldest first: the
    events on transactions' rows (delivered up to the cursor, or listed as
    delivered beyond it), then those in the outbox table."""
    with closing(sqlite3.connect(path)) as raw:
        (cursor,) = raw.execute("SELECT delivered_to FROM outbox_cursor").fetchone()
        ahead = {row for (row,) in raw.execute("SELECT * FROM outbox_delivered_ahead")}
        on_rows = [
            row <= cursor or row in ahead
            for (row,) in raw.execute(
                "SELECT row FROM transactions WHERE event_id IS NOT NULL ORDER BY row"
            )
        ]
        apart = [at is not None for (at,) in raw.execute("SELECT delivered_at FROM outbox")]
    return on_rows + apart


def test_events_are_delivered_across_restarts_at_least_once(tmp_path: Path) -> None:
    path = tmp_path / "coins.db"
    expected = write_events(path)
    assert len(expected) == 6

    # A new store on the file finds the events; the sink fails on the third.
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(T0 + timedelta(hours=1)))
        failing = Sink(fail_at=3)
        with pytest.raises(ConnectionError):
            wallets.deliver_events(failing)
    assert [(e.type, e.payload) for e in failing.delivered] == expected[:2]
    # Marked as delivered: exactly the two the sink took.
    assert delivered(path) == [True] * 2 + [False] * 4

    # After another restart, a retry delivers the rest: the one that failed first.
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(T0 + timedelta(hours=2)))
        retry = Sink()
        assert wallets.deliver_events(retry) == 4
        assert [(e.type, e.payload) for e in retry.delivered] == expected[2:]
        # Each event names the transaction it describes.
        for event in failing.delivered + retry.delivered:
            assert event.transaction_id is not None
            transaction = wallets.transaction(event.transaction_id)
            assert transaction is not None
            assert json.loads(event.payload)["transaction_id"] == transaction.id
    events = failing.delivered + retry.delivered
    assert len({e.id for e in events}) == 6
    assert all(delivered(path))

    # What was delivered stays delivered, whoever opens the file next.
    with SqliteStore(path) as store:
        again = Sink()
        assert Wallets(store).deliver_events(again) == 0
        assert again.calls == 0


def test_delivery_in_pieces_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "coins.db"
    expected = write_events(path)
    seen: list[tuple[str, str]] = []
    for piece in (2, 2, 2, 0):
        with SqliteStore(path) as store:
            sink = Sink()
            assert Wallets(store).deliver_events(sink, limit=2) == piece
            seen += [(e.type, e.payload) for e in sink.delivered]
    assert seen == expected


# -- a delivering process killed between delivering an event and marking it -------


def child_main(argv: list[str]) -> int:
    """Deliver events, logging each to *log*; die by SIGKILL right after the
    *die_at*-th one was delivered, before it could be marked delivered."""
    path, log, die_at = argv[0], Path(argv[1]), int(argv[2])

    class DyingSink:
        def __init__(self) -> None:
            self.calls = 0

        def deliver(self, event: OutboxEvent) -> None:
            self.calls += 1
            with log.open("a") as file:
                file.write(event.id + "\n")
                file.flush()
                os.fsync(file.fileno())
            if self.calls == die_at:
                os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    with SqliteStore(path) as store:
        Wallets(store).deliver_events(DyingSink())
    return 0


@pytest.mark.slow
def test_an_event_delivered_by_a_killed_process_is_delivered_again(tmp_path: Path) -> None:
    path = tmp_path / "coins.db"
    log = tmp_path / "delivered.log"
    expected = write_events(path)
    with SqliteStore(path) as store, store.unit_of_work() as uow:
        ids = [event.id for event in uow.outbox.pending(limit=100)]
    assert len(ids) == len(expected)
    child = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
        child_command(__file__, str(path), str(log), "3"),
        timeout=60,
        check=False,
    )
    assert child.returncode != 0
    if sys.platform != "win32":
        assert child.returncode == -signal.SIGKILL
    # The child delivered three events and marked the first two.
    assert log.read_text().splitlines() == ids[:3]

    with SqliteStore(path) as store:
        sink = Sink()
        assert Wallets(store).deliver_events(sink) == 4
    # The third is delivered again (at least once); the marked two are not.
    assert [e.id for e in sink.delivered] == ids[2:]
