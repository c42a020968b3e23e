"""The storage ports: what a backend must provide for coinecon to run on it.

A backend provides a :class:`Store`, whose :meth:`Store.unit_of_work` opens a
:class:`UnitOfWork`. Inside it, the repositories read and write; nothing is
visible to anyone else until :meth:`UnitOfWork.commit`, and leaving the
``with`` block without committing rolls everything back::

    with store.unit_of_work() as uow:
        balances = uow.ledger.balances([wallet])
        ...
        uow.ledger.record(transaction, new_balances)
        uow.commit()

The contract, precisely (the suite in :mod:`coinecon.testing.contract` checks
every point against any backend):

* **Isolation.** A unit of work that writes runs as if alone: between its first
  read and its commit or rollback, no other unit of work changes what it read
  (the memory adapter holds a lock; SQLite takes ``BEGIN IMMEDIATE``). Readers
  never see half a unit of work.
* **Atomicity.** ``commit()`` makes every write of the unit of work durable at
  once; an exception, ``rollback()`` or leaving without ``commit()`` discards all
  of them. A unit of work cannot be used after it ended.
* **Balances.** ``ledger.balances`` is O(1) per account whatever the length of
  its history: the backend keeps running balances, updated by
  ``ledger.record``. ``record`` stores the transaction, one
  :class:`~coinecon.ledger.journal.RecordedPosting` per posting with the next sequence
  numbers (strictly increasing across the ledger, in posting order) and the
  given balances after, and sets those balances. The backend does not decide
  rules; it stores what the service has checked. It may refuse anything its own
  constraints catch (a negative wallet, an unbalanced transaction) with a
  :class:`~coinecon.errors.CoineconError`.
* **Identity.** Transaction ids, lot ids, event ids and idempotency keys are
  unique; recording a duplicate raises
  :class:`~coinecon.errors.StorageError` (and nothing is written).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.ledger.journal import (
    AccountKey,
    HistoryEntry,
    RecordedPosting,
    Transaction,
    TransactionKind,
)
from coinecon.ledger.lots import Lot, LotConsumption, LotOrigin, SpendOrder
from coinecon.records import Record

__all__ = [
    "IdempotencyRepository",
    "LedgerRepository",
    "LotRepository",
    "OutboxRepository",
    "RecordRepository",
    "Store",
    "UnitOfWork",
]


class LedgerRepository(Protocol):
    """Accounts with running balances, transactions and postings."""

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        """The current balance of each of *accounts* (0 for an account never
        posted to). Every requested account is a key of the result."""
        ...

    def record(self, transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> None:
        """Store *transaction* and its postings, and set the balance of every
        account it touches to *balances_after*.

        Raises:
            StorageError: if a transaction with the same id exists, or
                *balances_after* lacks an account the transaction touches.
        """
        ...

    def get(self, transaction_id: str) -> Transaction | None:
        """The transaction with this id, or ``None``."""
        ...

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
        """Up to *limit* history entries of *account*, newest first.

        Args:
            account: the account.
            limit: the most entries to return (at least 1).
            before: only entries whose sequence is below this (the keyset
                cursor: pass the last sequence of the previous page).
            kinds: only entries of these transaction kinds.
            since: only entries that occurred at or after this time.
            until: only entries that occurred before this time.
        """
        ...

    def transactions(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Transaction]:
        """Every transaction, in the order recorded, as stored when this is
        called: transactions recorded while the iterator is read are not
        yielded.

        An adapter may stream them from storage as they are consumed:
        consume the iterator inside the unit of work.

        Args:
            since: only transactions that occurred at or after this time.
            until: only transactions that occurred before this time.

        While the transactions were recorded in the order of their times
        (the usual case), a period is a range of them: an adapter should
        find its ends (by bisecting), not read the whole ledger.
        """
        ...

    def postings(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[RecordedPosting]:
        """Every recorded posting, in sequence order (streamed, like
        :meth:`transactions`); with *since* or *until*, the postings of the
        transactions :meth:`transactions` gives for them."""
        ...

    def accounts(self) -> dict[AccountKey, int]:
        """Every account ever posted to, with its stored running balance."""
        ...

    def accounts_of(self, owner: str) -> dict[AccountKey, int]:
        """The accounts of *owner* ever posted to (of every kind, unit and
        currency), with their stored running balances, as :meth:`accounts`
        gives them; read without reading every account where the storage can.
        """
        ...


class LotRepository(Protocol):
    """The lots that make up wallet balances, and what spends took from them."""

    def add(self, lot: Lot) -> None:
        """Store a new lot.

        Raises:
            StorageError: if a lot with the same id exists.
        """
        ...

    def update(self, lot: Lot) -> None:
        """Replace the stored lot with the same id (its remaining coins and
        recognised value change as it is consumed).

        Raises:
            StorageError: if no lot has this id, or if the stored lot belongs
                to another account (coins never move between wallets).
        """
        ...

    def get(self, lot_id: str) -> Lot | None:
        """The lot with this id, or ``None``."""
        ...

    def open_lots(self, account: AccountKey) -> list[Lot]:
        """The lots of *account* with coins remaining, in creation order."""
        ...

    def spendable(
        self, account: AccountKey, order: SpendOrder, now: datetime, coins: int
    ) -> list[Lot]:
        """The lots of *account* a spend of *coins* at *now* takes from: its
        open lots that have not lapsed at *now*, in *order*
        (:meth:`SpendOrder.key <coinecon.ledger.lots.SpendOrder.key>`), up to
        the first at which their remaining coins reach *coins*; all of them
        when they hold fewer. What :func:`~coinecon.ledger.lots.covering`
        returns from the open lots sorted by *order*.

        An adapter reads the lots from indexes in *order* and stops there
        (the SQLite adapter keeps two: one in the order of creation, one of
        the spend groups in expiry order, which it reads group by group): a
        spend's cost must not grow with the wallet's other lots. It sees the writes of its own unit
        of work, like :meth:`open_lots`.
        """
        ...

    def mergeable(self, account: AccountKey, origin: LotOrigin) -> Lot | None:
        """The lot of *account* a credit of free coins of *origin* that do not
        expire may be added to: among its open lots that neither expire nor
        were bought, the newest :data:`~coinecon.ledger.lots.MERGE_WINDOW`
        (by creation time, then id), the newest of *origin*; ``None`` if
        there is none. What :func:`~coinecon.ledger.lots.merge_candidate`
        returns from the account's open lots, read from an index of the
        newest (the SQLite adapter's spend groups), not from all of them. It
        sees the writes of its own unit of work, like :meth:`open_lots`.
        """
        ...

    def expired(self, now: datetime, *, limit: int) -> list[Lot]:
        """Up to *limit* lots with coins remaining whose expiry is at or before
        *now*, soonest expiry first (then by lot id)."""
        ...

    def lapsed(self, account: AccountKey, now: datetime) -> list[Lot]:
        """The lots of *account* with coins remaining whose expiry is at or
        before *now*, soonest expiry first (then by lot id): what
        :meth:`expired` would return for this one account, without a limit.

        The wallet service calls it on every command and every balance read:
        an adapter answers it from an index on the account and expiry (or
        from the account's open lots it already holds), not by scanning the
        account's lots. It sees the writes of its own unit of work, like
        :meth:`open_lots`.
        """
        ...

    def all(self) -> Iterator[Lot]:
        """Every lot, in creation order (streamed, like
        :meth:`LedgerRepository.transactions`)."""
        ...

    def record_consumption(self, transaction_id: str, consumed: Sequence[LotConsumption]) -> None:
        """Remember which lots *transaction_id* consumed, and how much.

        Raises:
            InvalidAmountError: if *consumed* is empty (a consumption lists at
                least one lot).
            StorageError: if a consumption of *transaction_id* is recorded already.
        """
        ...

    def consumption(self, transaction_id: str) -> list[LotConsumption]:
        """What *transaction_id* consumed, in the order recorded."""
        ...


class IdempotencyRepository(Protocol):
    """The first result of every idempotency key."""

    def get(self, key: str) -> IdempotencyRecord | None:
        """The record of *key*, or ``None``."""
        ...

    def add(self, record: IdempotencyRecord) -> None:
        """Store a new record.

        Raises:
            StorageError: if the key exists.
        """
        ...

    def prune(self, older_than: datetime) -> int:
        """Forget the records created before *older_than*; return how many.

        A key forgotten is free again: a command that uses it runs anew. A
        record created at or after *older_than* is never forgotten, so a
        replay within the retention window answers as before. The
        transactions the commands recorded stay in the ledger.
        """
        ...


class OutboxRepository(Protocol):
    """Events stored with their transaction, awaiting delivery."""

    def add(self, event: OutboxEvent) -> None:
        """Store a new event.

        Raises:
            StorageError: if an event with the same id exists.
        """
        ...

    def pending(self, *, limit: int) -> list[OutboxEvent]:
        """Up to *limit* undelivered events, oldest first."""
        ...

    def mark_delivered(self, event_ids: Collection[str], at: datetime) -> None:
        """Mark events as delivered."""
        ...

    def prune(self, older_than: datetime) -> int:
        """Forget the delivered events that occurred before *older_than*;
        return how many. An event not delivered yet is never forgotten.

        An adapter that keeps a transaction's event on the transaction's row
        (the SQLite adapter does) keeps it there with the journal, which is
        never pruned: delivering it already made it cost nothing more, and
        this counts only the events it forgets.
        """
        ...


class RecordRepository(Protocol):
    """The services' records (purchases, provider events, profiles, cases):
    versioned JSON documents, by kind and id (see :mod:`coinecon.records`)."""

    def get(self, kind: str, record_id: str) -> Record | None:
        """The record of *kind* with this id, or ``None``."""
        ...

    def add(self, record: Record) -> None:
        """Store a new record.

        Raises:
            StorageError: if a record of its kind has its id, or its version
                is not 1.
        """
        ...

    def update(self, record: Record) -> None:
        """Replace the stored record of *record*'s kind and id with it.

        Raises:
            StorageError: if there is none, if *record*'s version is not the
                stored one's plus one (it was changed from a stale read), or
                if its owner or creation time differ from the stored one's
                (they are what it is found by, and never change).
        """
        ...

    def remove(self, kind: str, record_id: str) -> None:
        """Forget the record of *kind* with this id (a marker whose work is
        done, such as a purchase no longer waiting for its provider).

        Raises:
            StorageError: if there is none.
        """
        ...

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
        """Up to *limit* records of *kind* and *owner*, newest first (by
        creation time, then id), or oldest first; with *since*, only those
        created at or after it; with *until*, only those created before it.
        An adapter answers it from an index on (kind, owner, creation time),
        so its cost follows what it returns.
        """
        ...


class UnitOfWork(Protocol):
    """One atomic, isolated piece of work over the repositories.

    A context manager: entering begins the work, leaving without
    :meth:`commit` rolls it back.
    """

    @property
    def ledger(self) -> LedgerRepository:
        """Accounts, balances, transactions and postings."""
        ...

    @property
    def lots(self) -> LotRepository:
        """Lots and what spends consumed."""
        ...

    @property
    def idempotency(self) -> IdempotencyRepository:
        """Idempotency records."""
        ...

    @property
    def outbox(self) -> OutboxRepository:
        """The event outbox."""
        ...

    @property
    def records(self) -> RecordRepository:
        """The services' records."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make every write of this unit of work durable and visible."""
        ...

    def rollback(self) -> None:
        """Discard every write of this unit of work."""
        ...


class Store(Protocol):
    """A storage backend: the factory of units of work.

    A store may also offer ``run(work)``, which runs ``work(uow)`` with a
    unit of work of its own and returns what it returns, exactly as ``with
    store.unit_of_work() as uow: return work(uow)`` would (the work commits,
    or not, itself). :class:`~coinecon.ledger.wallets.Wallets` runs its
    commands through it when the store has it, which lets a store run the
    commands of many threads back to back
    (:meth:`~coinecon.adapters.sqlite.SqliteStore.run` does).
    """

    def unit_of_work(self) -> UnitOfWork:
        """Open a new unit of work (use it as a context manager)."""
        ...
