"""Retention: ``Wallets.prune`` forgets idempotency records and delivered
events older than a time, and never breaks a replay inside the window."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.adapters.sqlite.schema import _JOURNAL_COLUMNS
from coinecon.clock import ManualClock
from coinecon.errors import InvalidTypeError, NaiveDatetimeError, ValidationError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.journal import Cause
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import PruneResult, Wallets
from coinecon.ports import Store
from coinecon.testing.contract import COIN, T0

DAY = timedelta(days=1)


class Sink:
    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def deliver(self, event: OutboxEvent) -> None:
        self.events.append(event)


def bonus(wallets: Wallets, key: str, coins: int = 5) -> str:
    return wallets.credit(
        key, holder="ann", amount=COIN(coins), origin=LotOrigin.BONUS, cause=Cause("bonus", key)
    ).transaction_id


def test_a_replay_inside_the_window_answers_and_one_outside_runs_anew(store: Store) -> None:
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock)
    first = bonus(wallets, "old")
    clock.advance(3 * DAY)
    recent = bonus(wallets, "recent")
    clock.advance(DAY)
    assert wallets.prune(older_than=clock.now() - 2 * DAY) == PruneResult(records=1, events=0)
    assert bonus(wallets, "recent") == recent  # inside the window: a replay
    again = bonus(wallets, "old")  # outside: the key is free, the command runs anew
    assert again != first
    assert wallets.balance("ann", COIN) == COIN(15)
    assert wallets.verify().ok
    assert bonus(wallets, "old") == again  # and is remembered again
    assert wallets.prune(older_than=clock.now() - 2 * DAY) == PruneResult(records=0, events=0)


def test_delivered_events_and_the_records_they_stood_for(store: Store) -> None:
    """An event delivered stays deliverable no more; one not delivered stays
    pending, with its payload, even when its command's record is forgotten."""
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock)
    bonus(wallets, "a")
    sink = Sink()
    assert wallets.deliver_events(sink) == 1
    waiting = wallets.credit(
        "b", holder="ann", amount=COIN(5), origin=LotOrigin.BONUS, cause=Cause("bonus", "b")
    )
    clock.advance(8 * DAY)
    result = wallets.prune(older_than=clock.now() - 7 * DAY)
    assert result.records == 2
    # SQLite keeps events on their transactions' rows; the memory store forgets them.
    assert result.events == (1 if isinstance(store, MemoryStore) else 0)
    later = Sink()
    assert wallets.deliver_events(later) == 1
    assert later.events[0].payload == waiting.to_json()
    assert wallets.deliver_events(later) == 0
    assert wallets.verify().ok


def test_prune_refuses_a_time_that_is_not_in_the_past(store: Store) -> None:
    clock = ManualClock(T0)
    wallets = Wallets(store, clock=clock)
    bonus(wallets, "a")
    with pytest.raises(ValidationError, match="after now"):
        wallets.prune(older_than=T0 + timedelta(seconds=1))
    with pytest.raises(NaiveDatetimeError):
        wallets.prune(older_than=datetime(2026, 1, 1))  # noqa: DTZ001 (the point)
    with pytest.raises(InvalidTypeError):
        wallets.prune(older_than="2026-01-01")  # type: ignore[arg-type]
    assert wallets.prune(older_than=T0) == PruneResult(records=0, events=0)
    assert bonus(wallets, "a") == bonus(wallets, "a")


def test_the_schema_lets_a_record_be_forgotten_and_nothing_else_change(tmp_path: Path) -> None:
    path = tmp_path / "books.db"
    with SqliteStore(path) as store:
        wallets = Wallets(store, clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
        bonus(wallets, "a")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for column in _JOURNAL_COLUMNS.split(", "):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(f"UPDATE transactions SET {column} = {column}")
        for change in (
            "fingerprint = 'x', result = result",
            "result = 'x', fingerprint = fingerprint",
            "event_payload = 'x'",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="only forgotten"):
                db.execute(f"UPDATE transactions SET {change}")
        db.execute(
            "UPDATE transactions SET event_payload = result, fingerprint = NULL, result = NULL"
        )
        assert db.execute(
            "SELECT count(*) FROM transactions WHERE fingerprint IS NULL AND event_payload != ''"
        ).fetchone() == (1,)
