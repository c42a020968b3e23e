"""The in-memory storage adapter: complete, thread-safe, with real rollback.

Nothing survives the process; use it for tests, simulations and examples::

    >>> from coinecon.adapters.memory import MemoryStore
    >>> store = MemoryStore()
    >>> with store.unit_of_work() as uow:
    ...     uow.ledger.accounts()
    {}

One unit of work runs at a time (a lock is held from ``__enter__`` to
``__exit__``), so a unit of work is isolated exactly as the port requires. As
with SQLite, a thread that opens a second unit of work on the store while its
first is open is refused with :class:`~coinecon.errors.StorageError` rather
than left to wait for itself.
Every write is recorded in an undo log; rolling back replays it backwards, so
a failed unit of work leaves the store as it was, at the cost of its own writes
only.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from coinecon.errors import InvalidAmountError, StorageError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    AccountKey,
    HistoryEntry,
    RecordedPosting,
    Transaction,
    TransactionKind,
)
from coinecon.ledger.lots import Lot, LotConsumption

__all__ = ["MemoryStore", "MemoryUnitOfWork"]


class _State:
    """Everything the store holds, plus the lock that serialises units of work."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None  # the thread holding the lock
        self.balances: dict[AccountKey, int] = {}
        self.transactions: dict[str, Transaction] = {}
        self.postings: list[RecordedPosting] = []
        self.by_account: dict[AccountKey, list[int]] = {}  # indexes into postings
        self.lots: dict[str, Lot] = {}
        self.lots_by_account: dict[AccountKey, list[str]] = {}
        self.consumption: dict[str, list[LotConsumption]] = {}
        self.idempotency: dict[str, IdempotencyRecord] = {}
        self.outbox: dict[str, OutboxEvent] = {}
        self.delivered: dict[str, datetime] = {}


class MemoryStore:
    """An in-memory :class:`~coinecon.ports.Store`."""

    def __init__(self) -> None:
        self._state = _State()

    def unit_of_work(self) -> MemoryUnitOfWork:
        """Open a unit of work on this store."""
        return MemoryUnitOfWork(self._state)

    def __repr__(self) -> str:
        return f"MemoryStore(transactions={len(self._state.transactions)})"


class MemoryUnitOfWork:
    """A unit of work on a :class:`MemoryStore`; see :class:`coinecon.ports.UnitOfWork`."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._undo: list[Callable[[], object]] = []
        self._active = False
        self._ended = False
        self.ledger = _Ledger(self)
        self.lots = _Lots(self)
        self.idempotency = _Idempotency(self)
        self.outbox = _Outbox(self)

    def __enter__(self) -> Self:
        if self._active or self._ended:
            raise StorageError("a unit of work can be entered only once")
        state = self._state
        me = threading.get_ident()
        if state.owner == me:
            raise StorageError(
                "this thread already has a unit of work open on this store; "
                "a nested unit of work would wait for itself"
            )
        state.lock.acquire()
        state.owner = me
        self._active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._active = False
            self._ended = True
            self._state.owner = None
            self._state.lock.release()

    def commit(self) -> None:
        """Keep every write made so far; later writes start a new undo log."""
        self._require_active()
        self._undo.clear()

    def rollback(self) -> None:
        """Undo every write since the last commit."""
        while self._undo:
            self._undo.pop()()

    def _require_active(self) -> _State:
        if not self._active:
            raise StorageError("the unit of work is not active: use it in a 'with' block")
        return self._state

    def _on_rollback(self, undo: Callable[[], object]) -> None:
        self._undo.append(undo)


class _Ledger:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        state = self._uow._require_active()  # noqa: SLF001
        return {account: state.balances.get(account, 0) for account in accounts}

    def record(self, transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> None:
        state = self._uow._require_active()  # noqa: SLF001
        if transaction.id in state.transactions:
            raise StorageError(f"transaction {transaction.id!r} already exists")
        missing = [p.account for p in transaction.postings if p.account not in balances_after]
        if missing:
            raise StorageError(f"no balance after given for {missing}")
        previous = {p.account: state.balances.get(p.account) for p in transaction.postings}
        start = len(state.postings)
        sequence = state.postings[-1].sequence if state.postings else 0
        for posting in transaction.postings:
            sequence += 1
            state.postings.append(
                RecordedPosting(
                    sequence,
                    transaction.id,
                    posting.account,
                    posting.amount,
                    balances_after[posting.account],
                )
            )
            state.by_account.setdefault(posting.account, []).append(len(state.postings) - 1)
            state.balances[posting.account] = balances_after[posting.account]
        state.transactions[transaction.id] = transaction

        def undo() -> None:
            del state.transactions[transaction.id]
            for recorded in state.postings[start:]:
                state.by_account[recorded.account].pop()
            del state.postings[start:]
            for account, balance in previous.items():
                if balance is None:
                    del state.balances[account]
                else:
                    state.balances[account] = balance

        self._uow._on_rollback(undo)  # noqa: SLF001

    def get(self, transaction_id: str) -> Transaction | None:
        return self._uow._require_active().transactions.get(transaction_id)  # noqa: SLF001

    def history(
        self,
        account: AccountKey,
        *,
        limit: int,
        before: int | None = None,
        kinds: Collection[TransactionKind] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[HistoryEntry]:
        state = self._uow._require_active()  # noqa: SLF001
        if limit < 1:
            raise InvalidAmountError(f"limit must be at least 1, got {limit}")
        if kinds is not None and not kinds:
            return []
        indexes = state.by_account.get(account, [])
        end = len(indexes)
        if before is not None:
            end = bisect.bisect_left(indexes, before, key=lambda i: state.postings[i].sequence)
        entries: list[HistoryEntry] = []
        for position in range(end - 1, -1, -1):
            recorded = state.postings[indexes[position]]
            transaction = state.transactions[recorded.transaction_id]
            if kinds is not None and transaction.kind not in kinds:
                continue
            if since is not None and transaction.occurred_at < since:
                continue
            if until is not None and transaction.occurred_at >= until:
                continue
            entries.append(HistoryEntry.of(recorded, transaction))
            if len(entries) == limit:
                break
        return entries

    def transactions(self) -> Iterator[Transaction]:
        return iter(list(self._uow._require_active().transactions.values()))  # noqa: SLF001

    def postings(self) -> Iterator[RecordedPosting]:
        return iter(list(self._uow._require_active().postings))  # noqa: SLF001

    def accounts(self) -> dict[AccountKey, int]:
        return dict(self._uow._require_active().balances)  # noqa: SLF001


class _Lots:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, lot: Lot) -> None:
        state = self._uow._require_active()  # noqa: SLF001
        if lot.id in state.lots:
            raise StorageError(f"lot {lot.id!r} already exists")
        state.lots[lot.id] = lot
        state.lots_by_account.setdefault(lot.account, []).append(lot.id)

        def undo() -> None:
            del state.lots[lot.id]
            state.lots_by_account[lot.account].pop()

        self._uow._on_rollback(undo)  # noqa: SLF001

    def update(self, lot: Lot) -> None:
        state = self._uow._require_active()  # noqa: SLF001
        previous = state.lots.get(lot.id)
        if previous is None:
            raise StorageError(f"lot {lot.id!r} does not exist")
        if previous.account != lot.account:
            raise StorageError(_moved(lot, previous.account))
        state.lots[lot.id] = lot

        def undo() -> None:
            state.lots[lot.id] = previous

        self._uow._on_rollback(undo)  # noqa: SLF001

    def get(self, lot_id: str) -> Lot | None:
        return self._uow._require_active().lots.get(lot_id)  # noqa: SLF001

    def open_lots(self, account: AccountKey) -> list[Lot]:
        state = self._uow._require_active()  # noqa: SLF001
        lots = (state.lots[i] for i in state.lots_by_account.get(account, []))
        return [lot for lot in lots if lot.remaining > 0]

    def expired(self, now: datetime, *, limit: int) -> list[Lot]:
        state = self._uow._require_active()  # noqa: SLF001
        if limit < 1:
            return []
        due = [lot for lot in state.lots.values() if lot.remaining > 0 and lot.is_expired(now)]
        due.sort(key=_soonest)
        return due[:limit]

    def lapsed(self, account: AccountKey, now: datetime) -> list[Lot]:
        state = self._uow._require_active()  # noqa: SLF001
        lots = (state.lots[i] for i in state.lots_by_account.get(account, []))
        due = [lot for lot in lots if lot.remaining > 0 and lot.is_expired(now)]
        due.sort(key=_soonest)
        return due

    def all(self) -> Iterator[Lot]:
        return iter(list(self._uow._require_active().lots.values()))  # noqa: SLF001

    def record_consumption(self, transaction_id: str, consumed: Sequence[LotConsumption]) -> None:
        state = self._uow._require_active()  # noqa: SLF001
        if transaction_id in state.consumption:
            raise StorageError(f"consumption of {transaction_id!r} already recorded")
        state.consumption[transaction_id] = list(consumed)
        self._uow._on_rollback(lambda: state.consumption.pop(transaction_id))  # noqa: SLF001

    def consumption(self, transaction_id: str) -> list[LotConsumption]:
        state = self._uow._require_active()  # noqa: SLF001
        return list(state.consumption.get(transaction_id, []))


class _Idempotency:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def get(self, key: str) -> IdempotencyRecord | None:
        return self._uow._require_active().idempotency.get(key)  # noqa: SLF001

    def add(self, record: IdempotencyRecord) -> None:
        state = self._uow._require_active()  # noqa: SLF001
        if record.key in state.idempotency:
            raise StorageError(f"idempotency key {record.key!r} already exists")
        state.idempotency[record.key] = record
        self._uow._on_rollback(lambda: state.idempotency.pop(record.key))  # noqa: SLF001


class _Outbox:
    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, event: OutboxEvent) -> None:
        state = self._uow._require_active()  # noqa: SLF001
        if event.id in state.outbox:
            raise StorageError(f"event {event.id!r} already exists")
        state.outbox[event.id] = event
        self._uow._on_rollback(lambda: state.outbox.pop(event.id))  # noqa: SLF001

    def pending(self, *, limit: int) -> list[OutboxEvent]:
        state = self._uow._require_active()  # noqa: SLF001
        waiting = (e for e in state.outbox.values() if e.id not in state.delivered)
        return [e for _, e in zip(range(limit), waiting, strict=False)]

    def mark_delivered(self, event_ids: Collection[str], at: datetime) -> None:
        state = self._uow._require_active()  # noqa: SLF001
        newly = [i for i in event_ids if i in state.outbox and i not in state.delivered]
        for event_id in newly:
            state.delivered[event_id] = at

        def undo() -> None:
            for event_id in newly:
                del state.delivered[event_id]

        self._uow._on_rollback(undo)  # noqa: SLF001


def _soonest(lot: Lot) -> tuple[datetime, str]:
    """Sorts lots that expire by expiry, then id."""
    assert lot.expires_at is not None  # noqa: S101 (only lots that expire are sorted)
    return lot.expires_at, lot.id


def _moved(lot: Lot, account: AccountKey) -> str:
    return f"lot {lot.id!r} belongs to {account}; a lot cannot move to {lot.account}"
