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

Rolling back costs a unit of work its own writes only, and writing pays
almost nothing for it: what is only ever added (transactions, postings,
lots, consumptions, idempotency records, events, deliveries) is cut back to
its length when the unit of work began or last committed, and what changes
in place (balances, lots taken from) is restored from the values saved when
the unit of work first changed them.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import weakref
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from coinecon.clock import as_utc, require_aware
from coinecon.errors import InvalidAmountError, InvalidTypeError, StorageError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    AccountKey,
    HistoryEntry,
    RecordedPosting,
    Transaction,
    TransactionKind,
)
from coinecon.ledger.lots import (
    MERGE_WINDOW,
    Lot,
    LotConsumption,
    LotOrigin,
    SpendOrder,
    covering,
    merge_candidate,
)
from coinecon.records import Record

__all__ = ["MemoryStore", "MemoryUnitOfWork"]

_T = TypeVar("_T")
_ORDERS = tuple(SpendOrder)
# The places in _State.marks() of the tables prune() forgets from.
_IDEMPOTENCY_MARK, _OUTBOX_MARK, _DELIVERED_MARK = 4, 5, 6
# A wallet with at most this many lots in its list is served from the list;
# one with more, from its spend index (see _State.spend_index).
_FEW_LOTS = 32
_NO_END = 2**63 - 1  # above every sequence

# An event as stored: its type, time, payload and transaction id. Records and
# events are kept as tuples of text and times, which the garbage collector
# stops tracking: a store of millions of them costs it nothing to scan.
_Event = tuple[str, datetime, str, str | None]
_Record = tuple[str, str, datetime]  # an idempotency record: fingerprint, result, time


class _Table(dict[str, Any]):
    """A dict the garbage collector never stops tracking.

    The collector stops tracking a plain dict whose keys and values are all
    atoms (text, numbers, times, and tuples of them), and tracks it again,
    as a new object, when one is added: each collection after that reads the
    whole dict, so the store's tables of records, events and deliveries
    would cost every collection in proportion to their size. A table of its
    own type is tracked once, and ages out of the young generations like any
    other object.
    """

    __slots__ = ()


class _PostingLog:
    """The recorded postings, in sequence order.

    Kept as columns, one list per field of
    :class:`~coinecon.ledger.journal.RecordedPosting`: a posting costs no
    object of its own until it is read. The index of positions by account,
    which :meth:`positions` serves to history queries, is brought up to date
    when one asks, not on every write.
    """

    __slots__ = (
        "_by_account",
        "_by_kind",
        "_indexed",
        "accounts",
        "amounts",
        "balances",
        "ids",
        "kinds",
        "sequences",
    )

    def __init__(self) -> None:
        self.sequences: list[int] = []
        self.ids: list[str] = []  # of the transactions
        self.accounts: list[AccountKey] = []
        self.amounts: list[int] = []
        self.balances: list[int] = []  # after each posting
        self.kinds: list[TransactionKind | None] = []  # of the transactions
        self._by_account: dict[AccountKey, list[int]] = {}  # positions
        self._by_kind: dict[tuple[AccountKey, TransactionKind], list[int]] = {}  # positions
        self._indexed = 0  # positions below this are in _by_account

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, position: int) -> RecordedPosting:
        return RecordedPosting(
            self.sequences[position],
            self.ids[position],
            self.accounts[position],
            self.amounts[position],
            self.balances[position],
        )

    def __iter__(self) -> Iterator[RecordedPosting]:
        return map(
            RecordedPosting, self.sequences, self.ids, self.accounts, self.amounts, self.balances
        )

    def __delitem__(self, positions: slice) -> None:
        """Remove a tail of the log (``del log[-2:]``); only a tail can go."""
        start, stop, step = positions.indices(len(self))
        if stop != len(self) or step != 1:
            raise IndexError("only the last postings of the log can be removed")
        self.truncate(start)

    def append(self, posting: RecordedPosting, kind: TransactionKind | None = None) -> None:
        """Add *posting* at the end, whatever its sequence (of a transaction
        of *kind*: ``None`` for one that is not there)."""
        self.kinds.append(kind)
        self.sequences.append(posting.sequence)
        self.ids.append(posting.transaction_id)
        self.accounts.append(posting.account)
        self.amounts.append(posting.amount)
        self.balances.append(posting.balance_after)

    def record(
        self,
        transaction_id: str,
        kind: TransactionKind,
        accounts: list[AccountKey],
        amounts: list[int],
        after: list[int],
    ) -> None:
        """Add the postings of *transaction_id* (of *kind*) on *accounts* of
        *amounts*, with the balances *after* them, numbered from the last
        sequence on."""
        sequences = self.sequences
        last = sequences[-1] if sequences else 0
        count = len(accounts)
        sequences.extend(range(last + 1, last + 1 + count))
        self.kinds.extend([kind] * count)
        self.ids.extend([transaction_id] * count)
        self.accounts.extend(accounts)
        self.amounts.extend(amounts)
        self.balances.extend(after)

    def truncate(self, length: int) -> None:
        """Keep the first *length* postings only."""
        if self._indexed > length:
            index, by_kind, accounts, kinds = (
                self._by_account,
                self._by_kind,
                self.accounts,
                self.kinds,
            )
            for position in range(self._indexed - 1, length - 1, -1):
                index[accounts[position]].pop()
                kind = kinds[position]
                if kind is not None:
                    by_kind[accounts[position], kind].pop()
            self._indexed = length
        for column in (
            self.sequences,
            self.ids,
            self.accounts,
            self.amounts,
            self.balances,
            self.kinds,
        ):
            del column[length:]

    def positions(self, account: AccountKey) -> list[int]:
        """The positions of *account*'s postings, in sequence order."""
        self._index()
        return self._by_account.get(account, [])

    def positions_of_kind(self, account: AccountKey, kind: TransactionKind) -> list[int]:
        """The positions of *account*'s postings of transactions of *kind*,
        in sequence order."""
        self._index()
        return self._by_kind.get((account, kind), [])

    def _index(self) -> None:
        index, by_kind, accounts, kinds = self._by_account, self._by_kind, self.accounts, self.kinds
        for position in range(self._indexed, len(accounts)):
            account = accounts[position]
            index.setdefault(account, []).append(position)
            kind = kinds[position]
            if kind is not None:
                by_kind.setdefault((account, kind), []).append(position)
        self._indexed = len(accounts)


class _State:
    """Everything the store holds, plus the lock that serialises units of work."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: int | None = None  # the thread holding the lock
        self.balances: dict[AccountKey, int] = {}
        # Each owner's accounts, in the order they were opened (the keys of
        # a dict): what accounts_of reads, whatever the number of holders.
        self.owned: dict[str, dict[AccountKey, None]] = {}
        self.transactions: dict[str, Transaction] = {}
        self.journal: list[Transaction] = []  # the transactions in order, to stream
        self.first_sequences: list[int] = []  # of each transaction in the journal
        # Where the journal left the order of its transactions' times, if it
        # did: until then a time is a place in it, found by bisecting.
        self.disordered_at: int | None = None
        self.postings = _PostingLog()
        self.lots: dict[str, Lot] = {}
        self.lot_ids: list[str] = []  # the lots' ids in order, to stream
        self.lot_order: dict[str, int] = _Table()  # each lot's place in lot_ids
        # (expiry, id) of lots that expire, soonest first: entries of lots that
        # are exhausted or expire at another time since are passed over, and
        # those of exhausted lots dropped at the commit that exhausted them.
        self.expiring: list[tuple[datetime, str]] = []
        # The streams being read, by what they read: a rollback that cuts back
        # what one was to yield ends it there.
        self.streams: dict[str, weakref.WeakSet[_Limit]] = {
            "journal": weakref.WeakSet(),
            "postings": weakref.WeakSet(),
            "lots": weakref.WeakSet(),
        }
        self.lots_by_account: dict[AccountKey, list[str]] = {}
        # The open lots of a wallet with many, as the keys of an order
        # (SpendOrder.key, which ends with the lot's id), sorted: built when a
        # spend first needs them, kept as lots are added and change. Entries
        # of lots that are gone, empty or keyed otherwise since are passed
        # over, and dropped by the read that passes them.
        self.spend_index: dict[tuple[AccountKey, SpendOrder], list[tuple[Any, ...]]] = {}
        self.consumption: dict[str, Sequence[LotConsumption]] = {}
        self.idempotency: dict[str, _Record] = _Table()
        self.outbox: dict[str, _Event] = _Table()
        self.delivered: dict[str, datetime] = _Table()
        # The services' records by (kind, id), and each (kind, owner)'s
        # (created_at, id) keys, sorted.
        self.records: dict[tuple[str, str], Record] = {}
        self.records_of: dict[tuple[str, str], list[tuple[datetime, str]]] = {}

    def marks(self) -> tuple[int, int, int, int, int, int, int]:
        """The lengths of what is only ever added to, to cut it back to."""
        return (
            len(self.transactions),
            len(self.postings.sequences),
            len(self.lots),
            len(self.consumption),
            len(self.idempotency),
            len(self.outbox),
            len(self.delivered),
        )

    def cut_back(self, marks: tuple[int, ...], kept: Collection[AccountKey] = ()) -> None:
        """Forget what was added since :meth:`marks` returned *marks*: dicts
        are only ever added to, so their newest entries are the last ones.
        The lists of open lots of the accounts in *kept* are left to the
        caller, who restores them."""
        transactions, postings, lots, consumption, idempotency, outbox, delivered = marks
        for kind, length in (("journal", transactions), ("postings", postings), ("lots", lots)):
            for limit in self.streams[kind]:
                limit.value = min(limit.value, length)
        _shorten(self.transactions, transactions)
        del self.journal[transactions:]
        del self.first_sequences[transactions:]
        if self.disordered_at is not None and self.disordered_at >= transactions:
            self.disordered_at = None
        if len(self.postings.sequences) != postings:
            self.postings.truncate(postings)
        by_account = self.lots_by_account
        while len(self.lots) > lots:
            lot = self.lots.popitem()[1]
            del self.lot_order[lot.id]
            if lot.account not in kept:
                by_account[lot.account].pop()
            if lot.expires_at is not None:
                self.forget_expiry(lot.expires_at, lot.id)
        del self.lot_ids[lots:]
        _shorten(self.consumption, consumption)
        _shorten(self.idempotency, idempotency)
        _shorten(self.outbox, outbox)
        _shorten(self.delivered, delivered)

    def limit(self, kind: str, length: int) -> _Limit:
        """How far a new stream over *kind* (``"journal"``, ``"postings"`` or
        ``"lots"``) reads: what is stored now, less what a rollback cuts."""
        limit = _Limit(length)
        self.streams[kind].add(limit)
        return limit

    def remember_expiry(self, when: datetime, lot_id: str) -> None:
        entry = (when, lot_id)
        expiring = self.expiring
        at = bisect.bisect_left(expiring, entry)
        if at == len(expiring) or expiring[at] != entry:
            expiring.insert(at, entry)

    def forget_expiry(self, when: datetime, lot_id: str) -> None:
        entry = (when, lot_id)
        expiring = self.expiring
        at = bisect.bisect_left(expiring, entry)
        if at < len(expiring) and expiring[at] == entry:
            del expiring[at]

    def index_lot(self, lot: Lot) -> None:
        """Enter *lot*, new or changed, in the spend indexes of its account
        that are built (an entry already there is not entered twice)."""
        index = self.spend_index
        if not index:
            return
        for order in _ORDERS:
            entries = index.get((lot.account, order))
            if entries is not None:
                entry = order.key(lot)
                at = bisect.bisect_left(entries, entry)
                if at == len(entries) or entries[at] != entry:
                    entries.insert(at, entry)

    def in_order(self, account: AccountKey, order: SpendOrder) -> list[tuple[Any, ...]]:
        """The spend index of *account* in *order*, built if it is not."""
        entries = self.spend_index.get((account, order))
        if entries is None:
            lots = self.lots
            entries = sorted(
                [
                    order.key(lot)
                    for lot in map(lots.__getitem__, self.lots_by_account.get(account, ()))
                    if lot.remaining > 0
                ]
            )
            self.spend_index[account, order] = entries
        return entries

    def drop_exhausted(self, changed: Sequence[Lot]) -> None:
        """Drop the lots of *changed* (by id) that are now exhausted from the
        lists of open lots and of expiring lots: a wallet's open lots cost in
        proportion to the lots it holds, not to those it ever held."""
        lots = self.lots
        dropped: dict[AccountKey, set[str]] = {}
        for old in changed:
            lot = lots.get(old.id)
            if lot is None or lot.remaining:
                continue
            dropped.setdefault(lot.account, set()).add(lot.id)
            for when in {old.expires_at, lot.expires_at}:
                if when is not None:
                    self.forget_expiry(when, lot.id)
        for account, ids in dropped.items():
            self.lots_by_account[account] = [
                lot_id for lot_id in self.lots_by_account[account] if lot_id not in ids
            ]


def _shorten(entries: dict[str, Any], length: int) -> None:
    while len(entries) > length:
        entries.popitem()


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
        self._active = False
        self._ended = False
        # The lengths to cut back to (_State.marks), taken at the first write
        # after entering or committing: None while nothing was written since.
        self._marks: tuple[int, ...] | None = None
        # What the unit of work changed in place, as it was before.
        self._old_balances: list[tuple[list[AccountKey], list[int | None]]] = []
        self._old_lots: list[Lot] = []
        # A wallet's list of open lots as it was before this unit of work
        # first dropped an emptied lot from it (see _Lots.open_lots).
        self._old_lists: dict[AccountKey, list[str]] = {}
        # What prune() forgot, by table, to put back on a rollback.
        self._pruned: list[tuple[dict[str, Any], list[tuple[str, Any]]]] = []
        # Each record this unit of work stored or removed, and what it replaced
        # (None: it was new), to put back on a rollback.
        self._old_records: list[tuple[Record, Record | None, bool]] = []
        self.ledger = _Ledger(self)
        self.lots = _Lots(self)
        self.idempotency = _Idempotency(self)
        self.outbox = _Outbox(self)
        self.records = _Records(self)

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
        """Keep every write made so far; rolling back later undoes only later writes."""
        if not self._active:
            raise _not_active()
        self._old_balances.clear()
        if self._old_lots:
            self._state.drop_exhausted(self._old_lots)
            self._old_lots.clear()
        self._old_lists.clear()
        self._pruned.clear()
        self._old_records.clear()
        self._marks = None

    def rollback(self) -> None:
        """Undo every write since the last commit."""
        marks = self._marks
        if marks is None:
            return  # nothing written since
        self._marks = None
        state = self._state
        balances = state.balances
        for accounts, before in reversed(self._old_balances):
            for account, balance in zip(reversed(accounts), reversed(before), strict=True):
                if balance is None:
                    balances.pop(account, None)  # new with this unit of work
                    state.owned[account.owner].pop(account, None)
                else:
                    balances[account] = balance
        self._old_balances.clear()
        lots = state.lots
        for lot in reversed(self._old_lots):  # before cutting back: keeps the order of lots
            lots[lot.id] = lot
        if state.spend_index:
            for lot in self._old_lots:
                if lot.remaining:
                    state.index_lot(lot)  # its entries may have been dropped
        self._old_lots.clear()
        saved = self._old_lists
        state.cut_back(marks, kept=saved)
        for account, ids in saved.items():  # without the lots cut back
            state.lots_by_account[account] = [lot_id for lot_id in ids if lot_id in lots]
        saved.clear()
        for table, forgotten in reversed(self._pruned):
            table.update(forgotten)
        self._pruned.clear()
        records = state.records
        for record, previous, removed in reversed(self._old_records):
            if removed:
                records[record.kind, record.id] = record
                bisect.insort(
                    state.records_of[record.kind, record.owner], (record.created_at, record.id)
                )
            elif previous is None:
                del records[record.kind, record.id]
                keys = state.records_of[record.kind, record.owner]
                keys.remove((record.created_at, record.id))
            else:
                records[record.kind, record.id] = previous
        self._old_records.clear()

    def _forget(self, table: dict[str, Any], mark: int, keys: Collection[str]) -> None:
        """Remove *keys* from *table*, whose place in :meth:`_State.marks` is
        *mark*. Those stored before this unit of work wrote are kept for a
        rollback, and the mark lowered so that a rollback cuts back only what
        was added after them; those it added are simply gone."""
        marks = self._marks
        assert marks is not None  # noqa: S101 (the caller wrote first)
        stored = marks[mark]
        old: list[tuple[str, Any]] = []
        for position, key in enumerate(list(table)):
            if key in keys:
                value = table.pop(key)
                if position < stored:
                    old.append((key, value))
        self._pruned.append((table, old))
        self._marks = (*marks[:mark], stored - len(old), *marks[mark + 1 :])

    def _first_write(self) -> None:
        """Refuse a write unless active; mark what a rollback cuts back to.
        Repositories call it while :attr:`_marks` is ``None``: a unit of work
        that wrote since its last commit is active."""
        if not self._active:
            raise _not_active()
        self._marks = self._state.marks()


class _Limit:
    """How many items a stream may still yield, lowered by rollbacks."""

    __slots__ = ("__weakref__", "value")

    def __init__(self, value: int) -> None:
        self.value = value


def _stream(
    uow: MemoryUnitOfWork, limit: _Limit, item: Callable[[int], _T], start: int = 0
) -> Iterator[_T]:
    """The items stored when the stream was asked for (``item(start)``,
    ``item(start + 1)``...), made one at a time as they are consumed, while
    *uow* stays active: holding one costs nothing however large the books. A
    rollback that cuts back some of them ends the stream there; the later
    writes of others are never yielded."""
    position = start
    while True:
        if not uow._active:  # noqa: SLF001
            raise _not_active()
        if position >= limit.value:
            return
        yield item(position)
        position += 1


def _not_active() -> StorageError:
    return StorageError("the unit of work is not active: use it in a 'with' block")


class _Ledger:
    __slots__ = ("_state", "_uow")

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow
        self._state = uow._state  # noqa: SLF001

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        balances = self._state.balances
        return {account: balances.get(account, 0) for account in accounts}

    def record(self, transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> None:
        uow = self._uow
        if uow._marks is None:  # noqa: SLF001
            uow._first_write()  # noqa: SLF001
        state = self._state
        transactions = state.transactions
        transaction_id = transaction.id
        if transaction_id in transactions:
            raise StorageError(f"transaction {transaction_id!r} already exists")
        # Plain loops: dict calls made from Python code beat map() over them,
        # an account key's hash being Python code.
        accounts: list[AccountKey] = []
        amounts: list[int] = []
        after: list[int] = []
        before: list[int | None] = []
        missing = []
        for posting in transaction.postings:
            account = posting.account
            accounts.append(account)
            amounts.append(posting.amount)
            try:
                after.append(balances_after[account])
            except KeyError:
                missing.append(account)
        if missing:
            raise StorageError(f"no balance after given for {missing}")
        balances = state.balances
        for account, balance in zip(accounts, after, strict=True):
            old = balances.get(account)
            if old is None:  # the account opens
                owned = state.owned.get(account.owner)
                if owned is None:
                    owned = state.owned[account.owner] = {}
                owned[account] = None
            before.append(old)
            balances[account] = balance
        uow._old_balances.append((accounts, before))  # noqa: SLF001
        log = state.postings
        journal = state.journal
        if (
            journal
            and state.disordered_at is None
            and _instant(transaction.occurred_at) < _instant(journal[-1].occurred_at)
        ):
            state.disordered_at = len(journal)  # the first recorded out of time order
        state.first_sequences.append(log.sequences[-1] + 1 if log.sequences else 1)
        log.record(transaction_id, transaction.kind, accounts, amounts, after)
        transactions[transaction_id] = transaction
        journal.append(transaction)

    def get(self, transaction_id: str) -> Transaction | None:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        return self._state.transactions.get(transaction_id)

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
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        state = self._state
        if limit < 1:
            raise InvalidAmountError(f"limit must be at least 1, got {limit}")
        if kinds is not None and not kinds:
            return []
        # Compared as instants (UTC), as SQLite compares its UTC text.
        since = None if since is None else as_utc(since, "since")
        until = None if until is None else as_utc(until, "until")
        log = state.postings
        timed = since is not None or until is not None
        if (kinds is not None or timed) and (not timed or state.disordered_at is None):
            return self._filtered(account, limit, before, kinds, since, until)
        positions = log.positions(account)
        end = len(positions)
        if before is not None:
            sequences = log.sequences
            end = bisect.bisect_left(positions, before, key=lambda i: sequences[i])
        entries: list[HistoryEntry] = []
        for index in range(end - 1, -1, -1):
            recorded = log[positions[index]]
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

    def _filtered(
        self,
        account: AccountKey,
        limit: int,
        before: int | None,
        kinds: Collection[TransactionKind] | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[HistoryEntry]:
        """:meth:`history` with filters, from the positions of the account's
        postings by kind, and the times as places in the journal (which is
        in the order of its times)."""
        state = self._state
        log = state.postings
        sequences = log.sequences
        low = 0 if since is None else self._sequence_at(since)
        high = _NO_END if until is None else self._sequence_at(until)
        if before is not None:
            high = min(high, before)
        found: list[int] = []
        for kind in TransactionKind if kinds is None else set(kinds):
            positions = log.positions_of_kind(account, kind)
            end = bisect.bisect_left(positions, high, key=sequences.__getitem__)
            start = bisect.bisect_left(positions, low, 0, end, key=sequences.__getitem__)
            found += positions[max(start, end - limit) : end]
        found.sort(reverse=True)
        entries = []
        for position in found[:limit]:
            recorded = log[position]
            entries.append(HistoryEntry.of(recorded, state.transactions[recorded.transaction_id]))
        return entries

    def _sequence_at(self, when: datetime) -> int:
        """The first sequence of the first transaction that occurred at or
        after *when*, or :data:`_NO_END`."""
        state = self._state
        journal = state.journal
        at = bisect.bisect_left(journal, when, key=_occurred_at)
        return state.first_sequences[at] if at < len(journal) else _NO_END

    def transactions(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Transaction]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        state = self._state
        journal = state.journal
        limit = state.limit("journal", len(journal))
        if since is None and until is None:
            return _stream(self._uow, limit, journal.__getitem__)
        since, until, start, end = self._period(
            since, until, lambda when: bisect.bisect_left(journal, when, key=_occurred_at)
        )
        if end is not None:
            limit.value = min(limit.value, end)
        stream = _stream(self._uow, limit, journal.__getitem__, start)
        return (t for t in stream if _within(t.occurred_at, since, until))

    def postings(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[RecordedPosting]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        state = self._state
        log = state.postings
        limit = state.limit("postings", len(log))
        if since is None and until is None:
            return _stream(self._uow, limit, log.__getitem__)
        sequences = log.sequences
        since, until, start, end = self._period(
            since, until, lambda when: bisect.bisect_left(sequences, self._sequence_at(when))
        )
        if end is not None:
            limit.value = min(limit.value, end)
        transactions = state.transactions
        stream = _stream(self._uow, limit, log.__getitem__, start)
        return (
            posting
            for posting in stream
            if (transaction := transactions.get(posting.transaction_id)) is not None
            and _within(transaction.occurred_at, since, until)
        )

    def _period(
        self, since: datetime | None, until: datetime | None, place: Callable[[datetime], int]
    ) -> tuple[datetime | None, datetime | None, int, int | None]:
        """*since* and *until* in UTC, and where the period starts and ends in
        a table whose place for a time *place* finds by bisecting it: while
        the journal is in the order of its times; from 0 to the end (``None``)
        otherwise, and the stream compares times."""
        since = None if since is None else as_utc(since, "since")
        until = None if until is None else as_utc(until, "until")
        if self._state.disordered_at is not None:
            return since, until, 0, None
        start = 0 if since is None else place(since)
        return since, until, start, None if until is None else place(until)

    def accounts(self) -> dict[AccountKey, int]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        return dict(self._state.balances)

    def accounts_of(self, owner: str) -> dict[AccountKey, int]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        state = self._state
        balances = state.balances
        return {account: balances[account] for account in state.owned.get(owner, ())}


class _Lots:
    __slots__ = ("_state", "_uow")

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow
        self._state = uow._state  # noqa: SLF001

    def add(self, lot: Lot) -> None:
        if self._uow._marks is None:  # noqa: SLF001
            self._uow._first_write()  # noqa: SLF001
        state = self._state
        if lot.id in state.lots:
            raise StorageError(f"lot {lot.id!r} already exists")
        state.lots[lot.id] = lot
        state.lot_order[lot.id] = len(state.lot_ids)
        state.lot_ids.append(lot.id)
        if lot.expires_at is not None:
            state.remember_expiry(lot.expires_at, lot.id)
        ids = state.lots_by_account.get(lot.account)
        if ids is None:
            state.lots_by_account[lot.account] = [lot.id]
        else:
            ids.append(lot.id)
        if state.spend_index and lot.remaining > 0:
            state.index_lot(lot)

    def update(self, lot: Lot) -> None:
        uow = self._uow
        if uow._marks is None:  # noqa: SLF001
            uow._first_write()  # noqa: SLF001
        lots = self._state.lots
        previous = lots.get(lot.id)
        if previous is None:
            raise StorageError(f"lot {lot.id!r} does not exist")
        # By identity first: the keys of one account are usually one object.
        if previous.account is not lot.account and previous.account != lot.account:
            raise StorageError(_moved(lot, previous.account))
        uow._old_lots.append(previous)  # noqa: SLF001
        lots[lot.id] = lot
        if not previous.remaining and lot.remaining:
            self._reopen(lot)
        if (
            self._state.spend_index
            and lot.remaining
            and (
                not previous.remaining
                or lot.expires_at != previous.expires_at
                or lot.created_at != previous.created_at
                or lot.origin is not previous.origin
            )
        ):
            self._state.index_lot(lot)  # its keys changed, or it holds coins again
        if lot.expires_at is not None and (
            lot.expires_at != previous.expires_at or not previous.remaining
        ):
            self._state.remember_expiry(lot.expires_at, lot.id)

    def _reopen(self, lot: Lot) -> None:
        """Put *lot*, emptied before and holding coins again, back among its
        account's open lots (in the order of creation), if it was dropped."""
        state = self._state
        order = state.lot_order
        ids = state.lots_by_account[lot.account]
        at = bisect.bisect_left(ids, order[lot.id], key=order.__getitem__)
        if at == len(ids) or ids[at] != lot.id:
            saved = self._uow._old_lists  # noqa: SLF001
            if lot.account not in saved:
                saved[lot.account] = list(ids)
            ids.insert(at, lot.id)

    def get(self, lot_id: str) -> Lot | None:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        return self._state.lots.get(lot_id)

    def open_lots(self, account: AccountKey) -> list[Lot]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        state = self._state
        ids = state.lots_by_account.get(account)
        if ids is None:
            return []
        lots = state.lots
        found = [lot for lot in map(lots.__getitem__, ids) if lot.remaining > 0]
        if len(found) < len(ids):
            # Drop the emptied lots now, not only at the commit, so that a long
            # unit of work (a batch) on one wallet does not read them again;
            # kept for a rollback if this unit of work may have emptied them.
            uow = self._uow
            if uow._marks is not None and account not in uow._old_lists:  # noqa: SLF001
                uow._old_lists[account] = list(ids)  # noqa: SLF001
            ids[:] = [lot.id for lot in found]
        return found

    def expired(self, now: datetime, *, limit: int) -> list[Lot]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        now = as_utc(now, "now")
        if limit < 1:
            return []
        lots = self._state.lots
        due: list[Lot] = []
        for when, lot_id in self._state.expiring:
            if when > now or len(due) == limit:
                break
            lot = lots.get(lot_id)
            if lot is not None and lot.remaining > 0 and lot.expires_at == when:
                due.append(lot)  # else rolled back, exhausted, or its expiry moved
        return due

    def lapsed(self, account: AccountKey, now: datetime) -> list[Lot]:
        if type(now) is not datetime or now.tzinfo is not UTC:  # UTC: the usual case
            now = as_utc(now, "now")
        state = self._state
        ids = state.lots_by_account.get(account)
        if not ids:
            if not self._uow._active:  # noqa: SLF001
                raise _not_active()
            return []
        if len(ids) <= _FEW_LOTS:
            unspent = self.open_lots(account)
            due = [lot for lot in unspent if lot.expires_at is not None and lot.expires_at <= now]
        else:
            if not self._uow._active:  # noqa: SLF001
                raise _not_active()
            # Expiring lots come first in this order, soonest first.
            due = []
            with contextlib.closing(self._walk(account, SpendOrder.EXPIRING_FIRST)) as walk:
                for lot in walk:
                    expires = lot.expires_at
                    if expires is None or expires > now:
                        break
                    due.append(lot)
        if len(due) > 1:
            due.sort(key=_soonest)
        return due

    def spendable(
        self, account: AccountKey, order: SpendOrder, now: datetime, coins: int
    ) -> list[Lot]:
        if type(now) is not datetime or now.tzinfo is not UTC:  # UTC: the usual case
            now = as_utc(now, "now")
        if not isinstance(order, SpendOrder):
            raise InvalidTypeError(f"order must be a SpendOrder, got {order!r}")
        ids = self._state.lots_by_account.get(account)
        if not ids or len(ids) <= _FEW_LOTS:
            return covering(order.sort(self.open_lots(account)), coins, now)
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        with contextlib.closing(self._walk(account, order)) as walk:
            return covering(walk, coins, now)

    def mergeable(self, account: AccountKey, origin: LotOrigin) -> Lot | None:
        if not isinstance(origin, LotOrigin):
            raise InvalidTypeError(f"origin must be a LotOrigin, got {origin!r}")
        ids = self._state.lots_by_account.get(account)
        if not ids or len(ids) <= _FEW_LOTS:
            return merge_candidate(self.open_lots(account), origin)
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        # The lasting free lots are one range of the expiring-first index:
        # group 1 (lasting), subgroup 0 (not bought), newest last.
        state = self._state
        entries = state.in_order(account, SpendOrder.EXPIRING_FIRST)
        lots = state.lots
        key = SpendOrder.EXPIRING_FIRST.key
        newest: list[Lot] = []
        for position in range(bisect.bisect_left(entries, (1, 1)) - 1, -1, -1):
            entry = entries[position]
            if entry[:2] != (1, 0) or len(newest) == MERGE_WINDOW:
                break
            lot = lots.get(entry[-1])
            if (
                lot is not None
                and lot.remaining > 0
                and key(lot) == entry
                and (lot.account is account or lot.account == account)
            ):
                newest.append(lot)
        return merge_candidate(newest, origin)

    def _walk(self, account: AccountKey, order: SpendOrder) -> Generator[Lot]:
        """The open lots of *account* in *order*, from its spend index; the
        entries passed over on the way are dropped when the walk ends."""
        state = self._state
        entries = state.in_order(account, order)
        lots = state.lots
        key = order.key
        kept: list[tuple[Any, ...]] = []
        examined = 0
        try:
            for entry in entries:
                examined += 1
                lot = lots.get(entry[-1])
                if (
                    lot is None
                    or lot.remaining <= 0
                    or key(lot) != entry
                    or (lot.account is not account and lot.account != account)
                ):
                    # Rolled back, emptied, entered again with other keys, or
                    # rolled back and its id reused for another wallet's lot.
                    continue
                kept.append(entry)
                yield lot
        finally:
            if len(kept) < examined:
                entries[:examined] = kept

    def all(self) -> Iterator[Lot]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        state = self._state
        lots, ids = state.lots, state.lot_ids
        limit = state.limit("lots", len(ids))
        return _stream(self._uow, limit, lambda position: lots[ids[position]])

    def record_consumption(self, transaction_id: str, consumed: Sequence[LotConsumption]) -> None:
        if not consumed:
            raise InvalidAmountError("a consumption lists at least one lot; this one is empty")
        if self._uow._marks is None:  # noqa: SLF001
            self._uow._first_write()  # noqa: SLF001
        consumption = self._state.consumption
        if transaction_id in consumption:
            raise StorageError(f"consumption of {transaction_id!r} already recorded")
        # A tuple as it is (the wallet service passes one); anything else copied.
        consumption[transaction_id] = consumed if type(consumed) is tuple else tuple(consumed)

    def consumption(self, transaction_id: str) -> list[LotConsumption]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        return list(self._state.consumption.get(transaction_id, ()))


class _Idempotency:
    __slots__ = ("_state", "_uow")

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow
        self._state = uow._state  # noqa: SLF001

    def get(self, key: str) -> IdempotencyRecord | None:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        found = self._state.idempotency.get(key)
        if found is None:
            return None
        digest, result, created_at = found
        return IdempotencyRecord._of(key, digest, result, created_at)  # noqa: SLF001 (as added)

    def add(self, record: IdempotencyRecord) -> None:
        if self._uow._marks is None:  # noqa: SLF001
            self._uow._first_write()  # noqa: SLF001
        records = self._state.idempotency
        if record.key in records:
            raise StorageError(f"idempotency key {record.key!r} already exists")
        records[record.key] = (record.fingerprint, record.result, record.created_at)

    def prune(self, older_than: datetime) -> int:
        older_than = as_utc(older_than, "older_than")
        uow = self._uow
        if uow._marks is None:  # noqa: SLF001
            uow._first_write()  # noqa: SLF001
        records = self._state.idempotency
        old = [key for key, (_, _, created_at) in records.items() if created_at < older_than]
        uow._forget(records, _IDEMPOTENCY_MARK, set(old))  # noqa: SLF001
        return len(old)


class _Outbox:
    __slots__ = ("_state", "_uow")

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow
        self._state = uow._state  # noqa: SLF001

    def add(self, event: OutboxEvent) -> None:
        if self._uow._marks is None:  # noqa: SLF001
            self._uow._first_write()  # noqa: SLF001
        outbox = self._state.outbox
        if event.id in outbox:
            raise StorageError(f"event {event.id!r} already exists")
        outbox[event.id] = (event.type, event.occurred_at, event.payload, event.transaction_id)

    def pending(self, *, limit: int) -> list[OutboxEvent]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        state = self._state
        delivered = state.delivered
        waiting = (item for item in state.outbox.items() if item[0] not in delivered)
        return [
            OutboxEvent._of(event_id, *event)  # noqa: SLF001 (as added)
            for _, (event_id, event) in zip(range(limit), waiting, strict=False)
        ]

    def mark_delivered(self, event_ids: Collection[str], at: datetime) -> None:
        require_aware(at, "delivery time")
        if self._uow._marks is None:  # noqa: SLF001
            self._uow._first_write()  # noqa: SLF001
        state = self._state
        for event_id in event_ids:
            if event_id in state.outbox and event_id not in state.delivered:
                state.delivered[event_id] = at

    def prune(self, older_than: datetime) -> int:
        older_than = as_utc(older_than, "older_than")
        uow = self._uow
        if uow._marks is None:  # noqa: SLF001
            uow._first_write()  # noqa: SLF001
        state = self._state
        delivered = state.delivered
        old = [
            event_id
            for event_id, (_, occurred_at, _, _) in state.outbox.items()
            if occurred_at < older_than and event_id in delivered
        ]
        forgotten = set(old)
        uow._forget(state.outbox, _OUTBOX_MARK, forgotten)  # noqa: SLF001
        uow._forget(state.delivered, _DELIVERED_MARK, forgotten)  # noqa: SLF001
        return len(old)


class _Records:
    """The services' records; see :class:`coinecon.ports.RecordRepository`."""

    def __init__(self, uow: MemoryUnitOfWork) -> None:
        self._uow = uow
        self._state = uow._state  # noqa: SLF001

    def get(self, kind: str, record_id: str) -> Record | None:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        return self._state.records.get((kind, record_id))

    def add(self, record: Record) -> None:
        uow = self._uow
        if uow._marks is None:  # noqa: SLF001
            uow._first_write()  # noqa: SLF001
        if not isinstance(record, Record):
            raise StorageError(f"a record is a Record, got {record!r}")
        state = self._state
        key = (record.kind, record.id)
        if key in state.records:
            raise StorageError(f"record {record.kind}:{record.id} already exists")
        if record.version != 1:
            raise StorageError(
                f"a new record is at version 1; {record.kind}:{record.id} is at {record.version}"
            )
        state.records[key] = record
        bisect.insort(
            state.records_of.setdefault((record.kind, record.owner), []),
            (record.created_at, record.id),
        )
        uow._old_records.append((record, None, False))  # noqa: SLF001

    def update(self, record: Record) -> None:
        uow = self._uow
        if uow._marks is None:  # noqa: SLF001
            uow._first_write()  # noqa: SLF001
        if not isinstance(record, Record):
            raise StorageError(f"a record is a Record, got {record!r}")
        records = self._state.records
        key = (record.kind, record.id)
        stored = records.get(key)
        if stored is None:
            raise StorageError(f"record {record.kind}:{record.id} does not exist")
        _check_update(stored, record)
        records[key] = record
        uow._old_records.append((record, stored, False))  # noqa: SLF001

    def remove(self, kind: str, record_id: str) -> None:
        uow = self._uow
        if uow._marks is None:  # noqa: SLF001
            uow._first_write()  # noqa: SLF001
        state = self._state
        stored = state.records.pop((kind, record_id), None)
        if stored is None:
            raise StorageError(f"record {kind}:{record_id} does not exist")
        state.records_of[kind, stored.owner].remove((stored.created_at, record_id))
        uow._old_records.append((stored, None, True))  # noqa: SLF001

    def of_owner(
        self,
        kind: str,
        owner: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int,
        oldest_first: bool = False,
    ) -> list[Record]:
        if not self._uow._active:  # noqa: SLF001
            raise _not_active()
        if type(limit) is not int or limit < 1:
            raise InvalidAmountError(f"limit must be a positive int, got {limit!r}")
        keys = self._state.records_of.get((kind, owner), [])
        start = 0 if since is None else bisect.bisect_left(keys, (_instant(since), ""))
        end = len(keys) if until is None else bisect.bisect_left(keys, (_instant(until), ""))
        records = self._state.records
        if oldest_first:
            chosen = keys[start : min(end, start + limit)]
        else:
            chosen = list(reversed(keys[max(start, end - limit) : end]))
        return [records[kind, key[1]] for key in chosen]


def _check_update(stored: Record, record: Record) -> None:
    """Refuse an update of *stored* to *record* that does not follow it."""
    if record.version != stored.version + 1:
        raise StorageError(
            f"record {record.kind}:{record.id} is at version {stored.version}; an update "
            f"stores version {stored.version + 1}, not {record.version} (read it again)"
        )
    if record.owner != stored.owner or record.created_at != stored.created_at:
        raise StorageError(f"record {record.kind}:{record.id} keeps its owner and creation time")


def _occurred_at(transaction: Transaction) -> datetime:
    return _instant(transaction.occurred_at)


def _instant(when: datetime) -> datetime:
    """*when* in UTC: two times in one zone compare by their wall clocks
    (``fold`` aside), which a clock set back an hour in autumn repeats."""
    return when if when.tzinfo is UTC else when.astimezone(UTC)


def _within(when: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or when >= since) and (until is None or when < until)


def _soonest(lot: Lot) -> tuple[datetime, str]:
    """Sorts lots that expire by expiry, then id."""
    assert lot.expires_at is not None  # noqa: S101 (only lots that expire are sorted)
    return lot.expires_at, lot.id


def _moved(lot: Lot, account: AccountKey) -> str:
    return f"lot {lot.id!r} belongs to {account}; a lot cannot move to {lot.account}"
