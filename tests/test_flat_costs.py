"""Costs that stay flat as the books grow: what the code holds or reads does
not grow with the size of the ledger where it should not (behaviours, not
timings: ``benchmarks/scale.py`` times them)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dateutil.relativedelta import relativedelta

from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore, _session
from coinecon.clock import ManualClock
from coinecon.ledger.journal import Cause, TransactionKind
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import Wallets
from coinecon.money.money import Money
from coinecon.ports import Store
from coinecon.testing.contract import COIN, T0, purchase, record

if TYPE_CHECKING:
    import pytest

HOLDERS = 5


def grow(store: Store, commands: int, start: int = 0) -> None:
    """*commands* more commands on :data:`HOLDERS` wallets: purchases and
    the spends of what they bought, so that accounts stay few."""
    wallets = Wallets(store, clock=ManualClock(T0))
    with wallets.batch() as bulk:
        for n in range(start, start + commands, 2):
            holder = f"holder-{n % HOLDERS}"
            bulk.credit(
                f"buy-{n}",
                holder=holder,
                amount=COIN(10),
                origin=LotOrigin.PURCHASE,
                cause=Cause("purchase", f"p-{n}"),
                value=Money.from_minor(10, "USD"),
                metadata={"order": f"order-{n}"},
            )
            bulk.spend(
                f"spend-{n}",
                holder=holder,
                amount=COIN(10),
                cause=Cause("gift", f"g-{n}"),
                kind=TransactionKind.GIFT,
            )


def peak_of(action: Callable[[], object]) -> int:
    """The most memory *action* held at once, in bytes."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_verify_holds_no_more_for_a_ledger_four_times_as_long(store: Store) -> None:
    """``verify()`` streams the ledger: from 4,000 to 16,000 transactions (on
    the same five wallets), its peak memory grows by less than a quarter
    (what it holds is a page of rows at a time), where a ledger held whole
    (about 1 KB a transaction) would add 12 MB."""
    wallets = Wallets(store, clock=ManualClock(T0))
    grow(store, 4000)
    assert wallets.verify().ok
    small = peak_of(wallets.verify)
    grow(store, 12000, start=4000)
    report = wallets.verify()
    assert report.ok
    assert report.transactions == 16000
    large = peak_of(wallets.verify)
    assert large < small * 1.25, (small, large)


def test_a_memory_stream_yields_what_was_stored_when_asked() -> None:
    """A stream of the memory store is made as it is read: what is recorded
    meanwhile is not yielded; a rollback ends it only where it cuts back what
    the stream was to yield, and the writes made after it are never yielded."""
    store = MemoryStore()
    grow(store, 4)
    with store.unit_of_work() as uow:
        stored = [t.id for t in uow.ledger.transactions()]
        transactions = uow.ledger.transactions()
        postings = uow.ledger.postings()
        lots = uow.lots.all()
        first = next(transactions)
        record(uow, purchase("tx-later", "bob", 5))
        assert [first.id, *(t.id for t in transactions)] == stored
        # Each purchase and spend also moves money: four postings a command.
        assert len(list(postings)) == 16
        assert len(list(lots)) == 2
        uow.commit()
        committed = [*stored, "tx-later"]
        # A rollback of writes the stream was not to yield leaves it whole.
        transactions, postings = uow.ledger.transactions(), uow.ledger.postings()
        assert next(transactions).id == committed[0]
        assert next(postings).sequence == 1
        record(uow, purchase("tx-gone", "carol", 5))
        uow.rollback()
        record(uow, purchase("tx-after", "dave", 5))
        assert [t.id for t in transactions] == committed[1:]
        assert [p.sequence for p in postings] == list(range(2, 19))
        # A rollback of writes it was to yield ends it where they began.
        uow.rollback()
        record(uow, purchase("tx-gone-too", "erin", 5))
        transactions, postings = uow.ledger.transactions(), uow.ledger.postings()
        assert [next(transactions).id for _ in range(2)] == committed[:2]
        uow.rollback()
        record(uow, purchase("tx-after-too", "fred", 5))
        assert [t.id for t in transactions] == committed[2:]
        assert len(list(postings)) == 18


def test_expire_sends_its_writes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``expire()`` on SQLite lets every lot's writes wait and sends them at
    its commit, with one balance check, however many lots are due."""
    clock = ManualClock(T0)
    with SqliteStore(tmp_path / "books.db") as store:
        wallets = Wallets(store, clock=clock)
        with wallets.batch() as bulk:
            for n in range(60):
                bulk.credit(
                    f"c-{n}",
                    holder=f"holder-{n % 7}",
                    amount=COIN(5),
                    origin=LotOrigin.PROMOTION,
                    cause=Cause("promo", str(n)),
                    expires_in=relativedelta(days=1),
                )
        clock.set(T0 + relativedelta(days=2))
        flushes: list[int] = []
        flush = _session._Pending.flush

        def counted(pending: _session._Pending, raw: object) -> None:
            flushes.append(pending.waiting())
            flush(pending, raw)  # type: ignore[arg-type]

        monkeypatch.setattr(_session._Pending, "flush", counted)
        assert len(wallets.expire()) == 60
        assert len([waiting for waiting in flushes if waiting]) == 1
        monkeypatch.undo()
        assert wallets.balance("holder-0", COIN) == COIN(0)
        assert wallets.verify().ok


def test_a_connection_remembers_a_bounded_number_of_account_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound, a connection forgets the account ids it learnt at the
    end of a transaction, and reads them again as needed: the books stay
    right."""
    monkeypatch.setattr(_session, "_MAX_IDS", 20)
    with SqliteStore(tmp_path / "books.db", group_commit=False) as store:
        wallets = Wallets(store, clock=ManualClock(T0))
        for n in range(60):
            holder = f"holder-{n}"
            wallets.credit(
                f"c-{n}",
                holder=holder,
                amount=COIN(5),
                origin=LotOrigin.BONUS,
                cause=Cause("bonus", str(n)),
            )
            wallets.spend(f"s-{n}", holder=holder, amount=COIN(2), cause=Cause("gift", str(n)))
            with store.unit_of_work() as uow:
                connection = uow._ready
                assert connection is not None
                assert len(connection.ids) <= 20 + 3
        assert wallets.balance("holder-0", COIN) == COIN(3)
        assert wallets.verify().ok


def test_the_memory_stores_tables_stay_tracked_by_the_garbage_collector() -> None:
    """A plain dict of atoms is untracked by a collection and tracked anew
    (as a young object, read whole by the next collections) when a record is
    added; the store's tables of records, events, deliveries and lot places
    stay tracked, so a collection does not read them while they are old."""
    store = MemoryStore()
    grow(store, 20)
    state = store._state
    gc.collect()
    tables = (state.idempotency, state.outbox, state.delivered, state.lot_order)
    assert all(gc.is_tracked(table) for table in tables)
    plain = dict(state.idempotency)
    gc.collect()
    assert not gc.is_tracked(plain)  # what the tables would be
