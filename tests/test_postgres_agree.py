"""MemoryStore and PostgresStore agree, command by command and unit of work by
unit of work: the random runs of ``test_stores_agree`` with PostgreSQL in
place of SQLite (fewer examples: each takes a fresh schema)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coinecon import ManualClock
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.postgres import PostgresStore
from coinecon.ledger.journal import RecordedPosting
from coinecon.ledger.wallets import Wallets
from coinecon.testing.contract import T0
from postgres_kit import fresh_store
from test_stores_agree import (
    _outcome,
    _PortRun,
    _Sink,
    _snapshot,
    counter_ids,
    credit_op,
    op,
    unit,
)


def ranks(store: PostgresStore) -> dict[int, int]:
    """Each posting's sequence on *store*, by its place among them (from 1):
    what MemoryStore numbers it (PostgreSQL numbers a transaction's postings
    from its row times 65536)."""
    with store.unit_of_work() as uow:
        return {p.sequence: n for n, p in enumerate(uow.ledger.postings(), start=1)}


def renumber(value: Any, places: dict[int, int]) -> Any:
    """*value* with the sequences in it (of postings, and first in history
    lines) replaced by their :func:`ranks`, and the name of its subclass of
    StorageError (a duplicate key it reports as one that a retry may mend)
    by StorageError's."""
    if value == "RetryableStorageError":
        return "StorageError"
    if isinstance(value, RecordedPosting):
        return RecordedPosting(
            places[value.sequence],
            value.transaction_id,
            value.account,
            value.amount,
            value.balance_after,
        )
    if isinstance(value, dict):
        return {key: renumber(item, places) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [renumber(item, places) for item in value]
        if items and type(value[0]) is int and value[0] in places:
            items[0] = places[value[0]]
        return type(value)(items) if isinstance(value, list) else tuple(items)
    return value


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    first=st.lists(credit_op, min_size=1, max_size=4),
    rest=st.lists(op, min_size=1, max_size=12),
)
def test_memory_and_postgres_agree_on_random_commands(
    first: list[tuple[Any, ...]], rest: list[tuple[Any, ...]]
) -> None:
    """Credits, spends, gifts, sweeps, clock moves, deliveries and batches
    give the same outcomes, balances, lots, history, events, streams and
    verify() on both adapters."""
    with fresh_store(pool_size=2) as postgres:
        runs = []
        for store in (MemoryStore(), postgres):
            clock = ManualClock(T0)
            runs.append((Wallets(store, clock=clock, new_id=counter_ids()), clock, _Sink()))
        for step in [*first, *rest]:
            outcomes = [_outcome(w, c, s, step) for w, c, s in runs]
            event(f"{step[0]} {outcomes[0][0]}")
            places = ranks(postgres)
            assert outcomes[0] == renumber(outcomes[1], places), step
            snaps = [_snapshot(w, c) for w, c, _ in runs]
            snaps[1] = renumber(snaps[1], places)
            for key in snaps[0]:
                assert snaps[0][key] == snaps[1][key], (key, step)
            assert snaps[0]["verify"][0], snaps[0]["verify"]
        assert [e.id for e in runs[0][2].events] == [e.id for e in runs[1][2].events]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=st.lists(unit, min_size=1, max_size=5))
def test_memory_and_postgres_ports_agree_on_random_units_of_work(
    units: list[tuple[list[Any], str]],
) -> None:
    """Random writes inside units of work, commits, rollbacks and exceptions
    leave MemoryStore and PostgresStore with the same state."""
    with fresh_store(pool_size=2) as postgres:
        runs = [_PortRun(MemoryStore()), _PortRun(postgres)]
        for steps, end in units:
            outcomes = [run.unit(steps, end) for run in runs]
            places = ranks(postgres)
            assert outcomes[0] == renumber(outcomes[1], places), (steps, end)
            dumps = [run.dump() for run in runs]
            dumps[1] = renumber(dumps[1], places)
            for key in dumps[0]:
                assert dumps[0][key] == dumps[1][key], key
