"""The SQLite storage adapter: the embedded default, on one file, stdlib only.

Open a store on a file (it is created with the schema if it does not exist)
and use it like any :class:`~coinecon.ports.Store`::

    >>> import tempfile, pathlib
    >>> from coinecon.adapters.sqlite import SqliteStore
    >>> directory = tempfile.TemporaryDirectory()
    >>> with SqliteStore(pathlib.Path(directory.name) / "coins.db") as store:
    ...     with store.unit_of_work() as uow:
    ...         uow.ledger.accounts()
    {}
    >>> directory.cleanup()

How it keeps the port's contract:

* **One writer at a time.** A unit of work takes ``BEGIN IMMEDIATE`` when it is
  entered and holds the write lock until it ends, so what it read cannot change
  under it. Threads of one process queue on an in-process lock first; other
  processes wait on SQLite's lock. Past ``timeout`` seconds of waiting,
  :class:`~coinecon.errors.StorageError` is raised.
* **WAL mode.** Readers on other connections see the last committed state
  while a writer works; ``synchronous=NORMAL`` by default (durable at each
  checkpoint, never corrupt; pass ``synchronous="FULL"`` for durability at each
  commit).
* **Commit and rollback.** :meth:`SqliteUnitOfWork.commit` commits; the unit of
  work stays usable until its ``with`` block ends and starts a new transaction
  on its next read or write, which is rolled back unless committed again (as
  with :class:`~coinecon.adapters.memory.MemoryStore`).
* **Schema versions.** The file carries coinecon's ``application_id`` and its
  schema version in ``user_version``. An empty file gets the schema; an older
  version is migrated forward in one transaction; a newer version, a foreign
  database or a file that is not SQLite at all is refused with
  :class:`~coinecon.errors.StorageError`, and the file is left untouched.
* **Batched writes.** Holding the write lock, a unit of work keeps the
  balances and open lots it has read in memory, and sends postings, balance
  updates, lot updates and consumption items to SQLite in a few
  ``executemany`` calls: at commit, before a query that would see them, and
  every 10,000 rows. A write that can be refused (a duplicate id or key) is
  sent at once, so the call that causes it raises. A bulk job that runs many
  commands in one unit of work (``Wallets.batch()``) writes each account's
  balance once per flush instead of once per command.
* **Constraints.** The schema holds, for any writer of the file, that amounts,
  balances and money values are integers, that transaction, lot, event ids
  and idempotency keys are unique, that a lot's remaining coins stay within
  its amount, that transactions and postings are never updated or deleted,
  and (a trigger on new postings) that a debit takes a holder's account below
  zero only in a chargeback. The adapter refuses a transaction that does not
  sum to zero per asset when it is recorded, and a SQL query checks every
  transaction again once its postings are sent (a failure there rolls the
  whole unit of work back). SQL text is constant: every value is a bound
  parameter. A row changed outside coinecon into something it could not have
  written raises :class:`~coinecon.errors.StorageError` when it is read.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache, update_wrapper
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Final, ParamSpec, Self, TypeVar

from coinecon import _checks
from coinecon.adapters._sqlite_schema import APPLICATION_ID, MIGRATIONS, NO_DEBT_MESSAGE
from coinecon.clock import require_aware
from coinecon.errors import (
    InvalidAmountError,
    InvalidTypeError,
    StorageError,
    ValidationError,
)
from coinecon.events import OutboxEvent
from coinecon.idempotency import IdempotencyRecord, canonical_json
from coinecon.ledger import (
    AccountKey,
    AccountKind,
    Asset,
    Cause,
    HistoryEntry,
    Posting,
    RecordedPosting,
    Transaction,
    TransactionKind,
)
from coinecon.lots import Lot, LotConsumption, LotOrigin
from coinecon.money import MAX_MINOR_UNITS, Currency, Money
from coinecon.units import Unit

__all__ = ["SCHEMA_VERSION", "SqliteStore", "SqliteUnitOfWork"]

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""The schema version this coinecon writes; older files are migrated to it."""

_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_MAX_IDLE_CONNECTIONS = 16
_CHUNK = 100  # accounts per balance query: well below SQLite's 500 compound terms
_MAX_TIMEOUT = 86_400 * 365  # seconds; also keeps deadlines finite
_FLUSH_ROWS = 10_000  # buffered rows that make a unit of work send them
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

_P = ParamSpec("_P")
_R = TypeVar("_R")

# -- conversions ------------------------------------------------------------------

_AccountRow = tuple[str, str, str, str]


def _account_row(account: AccountKey) -> _AccountRow:
    asset = account.asset
    return (
        account.kind.value,
        account.owner,
        "unit" if isinstance(asset, Unit) else "money",
        asset.code,
    )


@lru_cache(maxsize=1024)
def _asset(asset_kind: str, code: str) -> Asset:
    # One object per asset read back: assets are immutable, and postings on
    # one object sum without hashing it (see Transaction's balance check).
    return Unit(code) if asset_kind == "unit" else Currency.of(code)


def _account(kind: str, owner: str, asset_kind: str, code: str) -> AccountKey:
    try:
        return AccountKey(AccountKind(kind), owner, _asset(asset_kind, code))
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"account {kind}:{owner}:{code} in the file", error) from error


def _time(value: datetime) -> str:
    # Fixed-width UTC text sorts like the instants it names.
    global _last_time  # noqa: PLW0603 (a one-entry cache, replaced whole)
    last = _last_time
    if value is last[0]:  # one command writes its time several times
        return last[1]
    aware = require_aware(value)
    text = _utc_text(aware, aware.utcoffset())
    _last_time = (aware, text)
    return text


_last_time: tuple[datetime | None, str] = (None, "")


@lru_cache(maxsize=256)
def _utc_text(value: datetime, _offset: timedelta | None) -> str:
    # The offset is part of the key: within one zone, the two readings of a
    # wall time that a clock change repeats compare equal but are an hour apart.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else _time(value)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_money(minor: int | None, currency: str | None) -> Money | None:
    if minor is None or currency is None:
        return None
    return Money.from_minor(minor, currency)


def _check_timeout(timeout: object) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidTypeError(f"timeout must be a number of seconds, got {timeout!r}")
    if not 0 < timeout < _MAX_TIMEOUT:
        raise ValidationError(
            f"timeout must be a positive number of seconds below {_MAX_TIMEOUT:,}, got {timeout!r}"
        )


def _check_path(path: object) -> str:
    if not isinstance(path, str | os.PathLike):
        raise InvalidTypeError(f"path must be a str or a path, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidTypeError(f"path must be text, not {type(text).__name__}")
    if text in {"", ":memory:"} or text.startswith("file:"):
        raise ValidationError(
            f"SqliteStore needs a file path, got {text!r}; "
            "use coinecon.adapters.memory.MemoryStore for a store in memory"
        )
    return text


def _check_synchronous(synchronous: object) -> None:
    if not isinstance(synchronous, str) or synchronous.upper() not in _SYNCHRONOUS:
        raise ValidationError(
            f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}"
        )


def _is_busy(error: sqlite3.Error) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _BUSY_CODES


_FAULTS = (sqlite3.Error, OverflowError)


def _fault(error: sqlite3.Error | OverflowError) -> StorageError:
    """The :class:`StorageError` for a failure of SQLite, or for a value
    beyond its 64-bit integers.

    Repository methods raise it through :func:`_guarded`, except the few that
    every command calls: they catch :data:`_FAULTS` themselves, which saves
    the wrapper's call on the hot path.
    """
    if isinstance(error, OverflowError):
        return StorageError(f"a value is beyond SQLite's 64-bit integers: {error}")
    return StorageError(f"SQLite failed: {error}")


def _guarded(
    method: Callable[Concatenate[Any, _P], _R],
) -> Callable[Concatenate[Any, _P], _R]:
    """Turn any SQLite failure inside *method* into :class:`StorageError`."""

    def guarded(self: Any, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except _FAULTS as error:
            raise _fault(error) from error

    update_wrapper(guarded, method)
    return guarded


# -- connections ------------------------------------------------------------------


class _Connection:
    """One SQLite connection and its cache of account ids.

    Ids learnt inside a transaction are forgotten if it rolls back: the row
    may have been created by it, and its id reused by another writer later.
    """

    __slots__ = ("ids", "keys", "learnt", "raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.ids: dict[AccountKey, int] = {}
        self.keys: dict[int, AccountKey] = {}
        self.learnt: list[AccountKey] = []

    def learn(self, account: AccountKey, account_id: int) -> None:
        self.ids[account] = account_id
        self.keys[account_id] = account
        self.learnt.append(account)

    def key(self, account_id: int, kind: str, owner: str, asset_kind: str, code: str) -> AccountKey:
        account = self.keys.get(account_id)
        if account is None:
            account = _account(kind, owner, asset_kind, code)
            self.learn(account, account_id)
        return account

    def forget(self, accounts: Sequence[AccountKey]) -> None:
        for account in accounts:
            account_id = self.ids.pop(account, None)
            if account_id is not None:
                self.keys.pop(account_id, None)

    def committed(self) -> None:
        self.learnt.clear()

    def rolled_back(self) -> None:
        self.forget(self.learnt)
        self.learnt.clear()


class _Pending:
    """What one SQLite transaction has read, and written but not yet sent.

    A unit of work holds the write lock from its first statement to its end,
    so nothing it read can change under it: balances and open lots, once read,
    are kept here and served from memory. Postings, balance updates, lot
    updates and consumption items are kept here too, and sent in a few
    ``executemany`` calls by :meth:`flush`: at commit, before any query that
    could see them, and whenever :data:`_FLUSH_ROWS` rows are waiting. Writes
    that can be refused for a duplicate id or key (transactions, new
    accounts, lots, consumptions, events) go to SQLite at once, so the
    refusal comes from the call that caused it; so does an idempotency record,
    unless its key was looked up and found free in this same transaction.
    """

    __slots__ = (
        "absent",
        "balances",
        "dirty",
        "items",
        "lot_updates",
        "lots",
        "postings",
        "records",
    )

    def __init__(self) -> None:
        self.balances: dict[AccountKey, int] = {}
        self.dirty: dict[int, int] = {}
        self.postings: list[tuple[int, int, int, int]] = []
        self.lots: dict[AccountKey, dict[str, Lot]] = {}
        self.lot_updates: dict[str, Lot] = {}
        self.items: list[tuple[str, int, str, int, int | None, str | None]] = []
        self.records: dict[str, IdempotencyRecord] = {}
        self.absent: set[str] = set()

    def waiting(self) -> int:
        """How many rows wait to be sent."""
        return (
            len(self.postings)
            + len(self.items)
            + len(self.dirty)
            + len(self.lot_updates)
            + len(self.records)
        )

    def flush(self, raw: sqlite3.Connection) -> None:
        """Send every waiting write, then check in SQL that every transaction
        recorded since the last flush sums to zero per asset.

        Raises:
            StorageError: if a transaction does not balance, or (refused by
                the schema's trigger) debits a holder's account below zero
                outside a chargeback.
        """
        if self.dirty:
            raw.executemany(_UPDATE_BALANCE, [(b, i) for i, b in self.dirty.items()])
            self.dirty.clear()
        # The check below reads the transactions whose postings are sent now.
        first = self.postings[0][0] if self.postings else None
        if self.postings:
            try:
                raw.executemany(_INSERT_POSTING, self.postings)
            except sqlite3.IntegrityError as error:
                if str(error) == NO_DEBT_MESSAGE:  # the trigger cannot say which posting
                    raise StorageError(_into_debt(raw, self.postings)) from error
                raise
            self.postings.clear()
        if self.lot_updates:
            raw.executemany(_UPDATE_LOT, [_lot_update(lot) for lot in self.lot_updates.values()])
            self.lot_updates.clear()
        if self.items:
            raw.executemany(_INSERT_CONSUMPTION_ITEM, self.items)
            self.items.clear()
        if self.records:
            raw.executemany(_INSERT_IDEMPOTENCY, map(_idempotency_row, self.records.values()))
            self.records.clear()
        if first is None:
            return
        unbalanced = raw.execute(_UNBALANCED, (first,)).fetchall()
        if unbalanced:
            found = ", ".join(
                f"{tid} sums to {total} {code} ({kind})" for tid, kind, code, total in unbalanced
            )
            more = "; there may be more" if len(unbalanced) == _SHOWN_UNBALANCED else ""
            raise StorageError(f"transactions do not balance: {found}{more}")


def _into_debt(raw: sqlite3.Connection, postings: Sequence[tuple[int, int, int, int]]) -> str:
    """What the schema's trigger refused: the first of *postings* that debits
    a holder's account below zero outside a chargeback."""
    for row, account_id, amount, after in postings:
        if amount < 0 and after < 0:
            kind, owner, code = raw.execute(
                "SELECT kind, owner, asset_code FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            transaction_id, transaction_kind = raw.execute(
                "SELECT id, kind FROM transactions WHERE row = ?", (row,)
            ).fetchone()
            if kind in _HOLDER_KINDS and transaction_kind != TransactionKind.CHARGEBACK.value:
                return (
                    f"transaction {transaction_id} takes {kind}:{owner}:{code} "
                    f"to {after}: below zero outside a chargeback"
                )
    return NO_DEBT_MESSAGE  # not among them: another writer's, in this same transaction


class SqliteStore:
    """A :class:`~coinecon.ports.Store` on one SQLite file.

    Args:
        path: the database file; created with the schema if missing or empty.
        timeout: the most seconds a unit of work waits for the write lock
            before :class:`~coinecon.errors.StorageError` is raised.
        synchronous: SQLite's ``synchronous`` setting: ``"NORMAL"`` (the
            default with WAL: a commit survives a crash of the process, and
            the file is never corrupt), ``"FULL"``, ``"EXTRA"`` or ``"OFF"``.
        read_only: open the file read-only: units of work can read (they
            begin a deferred transaction and take no write lock), and any
            write raises :class:`~coinecon.errors.StorageError`.

    Raises:
        InvalidTypeError: *path*, *timeout* or *read_only* has the wrong type.
        ValidationError: *path* names an in-memory database, *timeout* is not
            a positive number of seconds below a year, or *synchronous* is
            unknown.
        StorageError: the file cannot be opened or created, is not a SQLite
            database, belongs to another application, or has a schema newer
            than this coinecon knows (or older, when opened read-only).

    Connections are pooled and reused across units of work; close the store
    with :meth:`close` (or use it as a context manager) when done. A store may
    be shared by any number of threads; each process opens its own.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        synchronous: str = "NORMAL",
        read_only: bool = False,
    ) -> None:
        _check_timeout(timeout)
        _check_synchronous(synchronous)
        if type(read_only) is not bool:
            raise InvalidTypeError(f"read_only must be True or False, got {read_only!r}")
        self._path = _check_path(path)
        self._timeout = float(timeout)
        self._synchronous = synchronous.upper()
        self._read_only = read_only
        self._pool_lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._inherited: list[_Connection] = []
        self._pid = os.getpid()
        self._closed = False
        self._writer = threading.Lock()
        self._writer_thread: int | None = None
        connection = self._connect()
        try:
            self._prepare_schema(connection.raw)
        except BaseException:
            connection.raw.close()
            raise
        self._give_back(connection)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only."""
        return self._read_only

    def unit_of_work(self) -> SqliteUnitOfWork:
        """Open a unit of work on this store (use it as a context manager)."""
        if self._closed:
            raise StorageError(f"the store on {self._path} is closed")
        return SqliteUnitOfWork(self)

    def close(self) -> None:
        """Close every pooled connection; units of work still open close theirs
        when they end. The store cannot be used afterwards."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self._read_only else ""
        return f"SqliteStore({self._path!r}{mode})"

    # -- connections and locking ----------------------------------------------

    def _connect(self) -> _Connection:
        if self._read_only:
            target = Path(self._path).absolute().as_uri() + "?mode=ro"
        else:
            target = self._path
        try:
            raw = sqlite3.connect(
                target,
                timeout=self._timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=self._read_only,
                cached_statements=256,
            )
        except sqlite3.Error as error:
            raise StorageError(f"cannot open SQLite file {self._path!r}: {error}") from error
        try:
            # Constants from a fixed set, not values: PRAGMA takes no parameters.
            raw.execute(f"PRAGMA synchronous = {self._synchronous}")
            raw.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            raw.close()
            raise StorageError(f"cannot configure SQLite file {self._path!r}: {error}") from error
        return _Connection(raw)

    def _take_connection(self) -> _Connection:
        with self._pool_lock:
            if self._closed:
                raise StorageError(f"the store on {self._path} is closed")
            if self._pid != os.getpid():
                # A forked child must not touch its parent's connections, not
                # even to close them; keep them referenced and open fresh ones.
                self._inherited.extend(self._idle)
                self._idle = []
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, connection: _Connection) -> None:
        with self._pool_lock:
            if not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.raw.close()

    def _acquire_writer(self, deadline: float) -> None:
        if self._read_only:
            return
        me = threading.get_ident()
        if self._writer_thread == me:
            raise StorageError(
                "this thread already has a unit of work open on this store; SQLite allows "
                "one writer at a time, so a nested unit of work would wait for itself"
            )
        if not self._writer.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise StorageError(
                f"timed out after {self._timeout} s waiting for the write lock on {self._path}: "
                "another unit of work in this process held it"
            )
        self._writer_thread = me

    def _release_writer(self) -> None:
        if self._read_only:
            return
        self._writer_thread = None
        self._writer.release()

    def _begin(self, raw: sqlite3.Connection, deadline: float) -> None:
        statement = "BEGIN" if self._read_only else "BEGIN IMMEDIATE"
        delay = 0.001
        while True:
            try:
                raw.execute(statement)
            except sqlite3.Error as error:
                if not _is_busy(error):
                    raise StorageError(f"cannot begin a transaction: {error}") from error
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StorageError(
                        f"the database {self._path} stayed locked by another writer for more "
                        f"than the time-out of {self._timeout} s ({error})"
                    ) from error
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.05)
            else:
                return

    # -- schema ------------------------------------------------------------------

    def _prepare_schema(self, raw: sqlite3.Connection) -> None:
        try:
            version = self._check_schema(raw)
            if version == SCHEMA_VERSION:
                if not self._read_only:
                    self._use_wal(raw)
                return
            if self._read_only:
                raise StorageError(
                    f"{self._path} has schema version {version} and needs migrating to "
                    f"version {SCHEMA_VERSION}; open it once without read_only"
                )
            self._use_wal(raw)
            self._migrate(raw)
        except sqlite3.Error as error:
            raise StorageError(f"cannot use {self._path!r} as a coinecon store: {error}") from error

    def _check_schema(self, raw: sqlite3.Connection) -> int:
        """The schema version of the file, after refusing foreign and newer ones."""
        application_id = raw.execute("PRAGMA application_id").fetchone()[0]
        version: int = raw.execute("PRAGMA user_version").fetchone()[0]
        if application_id == 0 and version == 0:
            tables = raw.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
            if tables:
                raise StorageError(
                    f"{self._path} is a SQLite database of another application: it has "
                    f"{tables} schema objects but no coinecon marker (application_id)"
                )
        elif application_id != APPLICATION_ID:
            raise StorageError(
                f"{self._path} is a SQLite database of another application "
                f"(application_id {application_id:#x}, coinecon uses {APPLICATION_ID:#x})"
            )
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self._path} has schema version {version}, newer than version "
                f"{SCHEMA_VERSION} that this coinecon knows; upgrade coinecon to open it"
            )
        return version

    def _use_wal(self, raw: sqlite3.Connection) -> None:
        if raw.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            mode = raw.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StorageError(f"cannot switch {self._path} to WAL mode (got {mode!r})")

    def _migrate(self, raw: sqlite3.Connection) -> None:
        self._begin(raw, time.monotonic() + self._timeout)
        try:
            # Another process may have migrated while this one waited.
            version = self._check_schema(raw)
            for step in MIGRATIONS[version:]:
                for statement in step:
                    raw.execute(statement)
            # Integers from this module, not values: PRAGMA takes no parameters.
            raw.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
            raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise


class SqliteUnitOfWork:
    """A unit of work on a :class:`SqliteStore`; see :class:`coinecon.ports.UnitOfWork`.

    Attributes:
        ledger: accounts, transactions and postings.
        lots: lots and what spends took from them.
        idempotency: the first result of each idempotency key.
        outbox: events awaiting delivery.
    """

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._read_only = store._read_only  # noqa: SLF001
        self._connection: _Connection | None = None
        # The connection while a healthy transaction is open: what _work and
        # _writing check first.
        self._ready: _Connection | None = None
        self._in_transaction = False
        self._ended = False
        self._broken = False
        self._pending = _Pending()
        self.ledger = _Ledger(self)
        self.lots = _Lots(self)
        self.idempotency = _Idempotency(self)
        self.outbox = _Outbox(self)

    def __enter__(self) -> Self:
        if self._connection is not None or self._ended:
            raise StorageError("a unit of work can be entered only once")
        store = self._store
        deadline = time.monotonic() + store._timeout  # noqa: SLF001
        store._acquire_writer(deadline)  # noqa: SLF001
        try:
            connection = store._take_connection()  # noqa: SLF001
            try:
                store._begin(connection.raw, deadline)  # noqa: SLF001
            except BaseException:
                store._give_back(connection)  # noqa: SLF001
                raise
        except BaseException:
            store._release_writer()  # noqa: SLF001
            raise
        self._connection = connection
        self._began(connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            self.rollback()
        finally:
            self._connection = None
            self._ended = True
            if connection.raw.in_transaction:
                # The rollback failed: closing is the rollback of last resort,
                # and a connection in that state must not be reused.
                connection.raw.close()
            else:
                self._store._give_back(connection)  # noqa: SLF001
            self._store._release_writer()  # noqa: SLF001

    def commit(self) -> None:
        """Make every write so far durable and visible; later reads and writes
        run in a new transaction, rolled back unless committed again."""
        connection = self._require_active()
        if not self._in_transaction:
            return
        self._check_alive(connection)
        self._send(connection)
        try:
            connection.raw.execute("COMMIT")
        except sqlite3.Error as error:
            self._abandon(connection)
            raise StorageError(f"commit failed: {error}") from error
        self._ready = None
        self._in_transaction = False
        self._pending = _Pending()
        connection.committed()

    def rollback(self) -> None:
        """Discard every write since the last commit."""
        connection = self._connection
        if connection is None:
            return
        self._ready = None
        self._in_transaction = False
        self._pending = _Pending()
        try:
            if connection.raw.in_transaction:
                connection.raw.execute("ROLLBACK")
        except sqlite3.Error as error:
            raise StorageError(f"rollback failed: {error}") from error
        else:
            self._broken = False
        finally:
            connection.rolled_back()

    def _require_active(self) -> _Connection:
        connection = self._connection
        if connection is None:
            raise StorageError("the unit of work is not active: use it in a 'with' block")
        return connection

    def _check_alive(self, connection: _Connection) -> None:
        if self._broken or not connection.raw.in_transaction:
            raise StorageError(
                "SQLite rolled this unit of work back after an earlier error; "
                "its writes are lost: leave the 'with' block and start again"
            )

    def _began(self, connection: _Connection) -> None:
        self._in_transaction = True
        self._ready = connection

    def _work(self) -> _Connection:
        """The connection, inside a transaction (begun anew after a commit)."""
        connection = self._ready
        if connection is not None and connection.raw.in_transaction:
            return connection  # every repository call passes here: keep it short
        connection = self._require_active()
        if self._in_transaction:
            self._check_alive(connection)
        else:
            store = self._store
            store._begin(connection.raw, time.monotonic() + store._timeout)  # noqa: SLF001
            self._began(connection)
        return connection

    def _writing(self) -> _Connection:
        """Like :meth:`_work`, for a write: a read-only store refuses it here,
        before anything is kept in memory."""
        connection = self._ready
        if connection is not None and connection.raw.in_transaction and not self._read_only:
            return connection
        if self._read_only:
            raise StorageError(f"{self._store.path} is open read-only: it takes no writes")
        return self._work()

    def _read(self) -> _Connection:
        """The connection, inside a transaction, with every waiting write sent
        (for queries that read what the writes change)."""
        connection = self._work()
        if self._pending.waiting():
            self._send(connection)
        return connection

    def _send(self, connection: _Connection) -> None:
        try:
            self._pending.flush(connection.raw)
        except _FAULTS as error:
            self._abandon(connection)
            raise StorageError(
                f"SQLite refused the writes of this unit of work, which is rolled back: {error}"
            ) from error
        except BaseException:
            self._abandon(connection)
            raise

    def _abandon(self, connection: _Connection) -> None:
        """Roll the whole SQLite transaction back after a failure that may
        have left part of a write behind. The unit of work then refuses every
        read, write and commit until :meth:`rollback` succeeds (explicitly, or
        at the end of the ``with`` block)."""
        self._pending = _Pending()
        self._ready = None
        self._broken = True
        try:
            # If this fails too, the end of the 'with' block tries again and,
            # failing that, closes the connection (closing rolls back).
            with contextlib.suppress(sqlite3.Error):
                if connection.raw.in_transaction:
                    connection.raw.execute("ROLLBACK")
        finally:
            connection.rolled_back()


# -- repositories -------------------------------------------------------------------

_INSERT_TRANSACTION = (
    "INSERT INTO transactions (id, kind, occurred_at, idempotency_key, cause_type, cause_id, "
    "metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_ACCOUNT = (
    "INSERT INTO accounts (kind, owner, asset_kind, asset_code, balance) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, owner, asset_kind, asset_code) DO UPDATE SET balance = excluded.balance "
    "RETURNING id"
)
_UPDATE_BALANCE = "UPDATE accounts SET balance = ? WHERE id = ?"
_INSERT_POSTING = (
    "INSERT INTO postings (transaction_row, account_id, amount, balance_after) VALUES (?, ?, ?, ?)"
)
_HOLDER_KINDS = frozenset(kind.value for kind in AccountKind if kind.holder_owned)
_SHOWN_UNBALANCED = 10  # the most an error message lists
# At each flush, one pass over the postings sent since the last one sums each
# transaction per asset (CROSS JOIN keeps SQLite to this order: the new
# postings first, by the index on transaction_row, rather than every posting
# of every account). A sum needs a transaction's every posting, so no
# constraint or trigger of the schema can check it row by row.
_UNBALANCED = (
    "SELECT (SELECT id FROM transactions WHERE row = p.transaction_row), a.asset_kind, "
    "a.asset_code, SUM(p.amount) "
    "FROM postings AS p CROSS JOIN accounts AS a ON a.id = p.account_id "
    "WHERE p.transaction_row >= ? "
    "GROUP BY p.transaction_row, a.asset_kind, a.asset_code HAVING SUM(p.amount) != 0 "
    f"ORDER BY p.transaction_row LIMIT {_SHOWN_UNBALANCED}"
)
_UPDATE_LOT = (
    "UPDATE lots SET origin = ?, amount = ?, remaining = ?, created_at = ?, transaction_id = ?, "
    "value_minor = ?, value_currency = ?, value_recognised = ?, expires_at = ? "
    "WHERE id = ? AND account_kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ?"
)
_INSERT_IDEMPOTENCY = (
    "INSERT INTO idempotency (key, fingerprint, result, created_at) VALUES (?, ?, ?, ?)"
)
_INSERT_CONSUMPTION_ITEM = (
    "INSERT INTO lot_consumption_items (transaction_id, position, lot_id, amount, "
    "value_minor, value_currency) VALUES (?, ?, ?, ?, ?, ?)"
)
_ACCOUNT_BY_KEY = (
    "SELECT id, kind, owner, asset_kind, asset_code, balance FROM accounts "
    "WHERE kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ?"
)
_TRANSACTION_COLUMNS = (
    "t.row, t.id, t.kind, t.occurred_at, t.idempotency_key, t.cause_type, t.cause_id, t.metadata"
)
# The postings of some transactions with their accounts (add a WHERE on
# p.transaction_row), as _posting reads them.
_POSTINGS_WITH_ACCOUNTS = (
    "SELECT p.transaction_row, a.id, a.kind, a.owner, a.asset_kind, a.asset_code, p.amount "
    "FROM postings AS p JOIN accounts AS a ON a.id = p.account_id "
)


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


@cache
def _balances_by_id(count: int) -> str:
    return f"SELECT id, balance FROM accounts WHERE id IN ({_placeholders(count)})"


def _check_record(transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> list[int]:
    """The balance after each posting of *transaction*, in order; refuse
    balances after that are missing or not 64-bit integers, before anything
    of the transaction is written.

    That the postings balance is :class:`Transaction`'s own check, and SQL's
    when they are sent (see :meth:`_Pending.flush`).
    """
    afters = []
    for posting in transaction.postings:
        after = balances_after.get(posting.account)
        if type(after) is not int or not -MAX_MINOR_UNITS <= after <= MAX_MINOR_UNITS:
            if after is None:
                raise StorageError(f"no balance after given for {posting.account}")
            raise StorageError(
                f"the balance after of {posting.account} is not a 64-bit integer: {after!r}"
            )
        afters.append(after)
    return afters


class _Ledger:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            connection = uow._work()  # noqa: SLF001
            known = uow._pending.balances  # noqa: SLF001
            try:
                return {account: known[account] for account in accounts}
            except KeyError:
                pass  # read the accounts not read yet in this transaction
            wanted = list(dict.fromkeys(accounts))
            missing = [account for account in wanted if account not in known]
            known.update(self._load_balances(connection, missing))
            return {account: known[account] for account in wanted}
        except _FAULTS as error:
            raise _fault(error) from error

    @staticmethod
    def _load_balances(connection: _Connection, wanted: list[AccountKey]) -> dict[AccountKey, int]:
        ids = connection.ids
        known = [ids.get(account) for account in wanted]
        raw = connection.raw
        if None not in known and len(wanted) <= _CHUNK:
            found = dict(raw.execute(_balances_by_id(len(known)), known).fetchall())
            return {account: found.get(ids[account], 0) for account in wanted}
        result = dict.fromkeys(wanted, 0)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            by_row = {_account_row(account): account for account in chunk}
            sql = " UNION ALL ".join([_ACCOUNT_BY_KEY] * len(by_row))
            parameters = [value for row in by_row for value in row]
            for account_id, *row, balance in raw.execute(sql, parameters):
                account = by_row[tuple(row)]
                result[account] = balance
                if account not in ids:
                    connection.learn(account, account_id)
        return result

    def record(self, transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            connection = uow._writing()  # noqa: SLF001
            afters = _check_record(transaction, balances_after)
            raw = connection.raw
            cause = transaction.cause
            try:
                row = raw.execute(
                    _INSERT_TRANSACTION,
                    (
                        transaction.id,
                        transaction.kind._value_,  # what .value returns, without the property
                        _time(transaction.occurred_at),
                        transaction.idempotency_key,
                        cause.type,
                        cause.id,
                        canonical_json(transaction.metadata) if transaction.metadata else "[]",
                    ),
                ).lastrowid
            except sqlite3.IntegrityError as error:
                raise StorageError(f"transaction {transaction.id!r} already exists") from error
            assert row is not None  # noqa: S101 (an INSERT into a rowid table)
            # Past this point a failure may leave part of the transaction written:
            # the whole unit of work is rolled back instead.
            try:
                self._write(uow, connection, row, transaction.postings, afters)
            except BaseException:
                uow._abandon(connection)  # noqa: SLF001
                raise
        except _FAULTS as error:
            raise _fault(error) from error

    @staticmethod
    def _write(
        uow: SqliteUnitOfWork,
        connection: _Connection,
        row: int,
        postings: Sequence[Posting],
        afters: Sequence[int],
    ) -> None:
        pending = uow._pending  # noqa: SLF001
        ids = connection.ids
        known = pending.balances
        dirty = pending.dirty
        waiting = pending.postings
        for posting, after in zip(postings, afters, strict=True):
            account = posting.account
            account_id = ids.get(account)
            if account_id is None:
                account_id = connection.raw.execute(
                    _UPSERT_ACCOUNT, (*_account_row(account), after)
                ).fetchone()[0]
                connection.learn(account, account_id)
            else:
                dirty[account_id] = after
            known[account] = after
            waiting.append((row, account_id, posting.amount, after))
        if pending.waiting() >= _FLUSH_ROWS:
            uow._send(connection)  # noqa: SLF001

    @_guarded
    def get(self, transaction_id: str) -> Transaction | None:
        header = (
            self._uow._read()  # noqa: SLF001
            .raw.execute(
                f"SELECT {_TRANSACTION_COLUMNS} FROM transactions AS t WHERE t.id = ?",
                (transaction_id,),
            )
            .fetchone()
        )
        if header is None:
            return None
        return self._load({header[0]: header})[header[0]]

    @_guarded
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
        connection = self._uow._read()  # noqa: SLF001
        if limit < 1:
            raise InvalidAmountError(f"limit must be at least 1, got {limit}")
        account_id = connection.ids.get(account)
        raw = connection.raw
        if account_id is None:
            found = raw.execute(_ACCOUNT_BY_KEY, _account_row(account)).fetchone()
            if found is None:
                return []
            account_id = found[0]
            connection.learn(account, account_id)
        where = ["p.account_id = ?"]
        parameters: list[object] = [account_id]
        if before is not None:
            where.append("p.sequence < ?")
            parameters.append(before)
        if kinds is not None:
            values = sorted({kind.value for kind in kinds})
            if not values:
                return []
            where.append(f"t.kind IN ({_placeholders(len(values))})")
            parameters.extend(values)
        if since is not None:
            where.append("t.occurred_at >= ?")
            parameters.append(_time(since))
        if until is not None:
            where.append("t.occurred_at < ?")
            parameters.append(_time(until))
        parameters.append(limit)
        lines = raw.execute(
            f"SELECT p.sequence, p.amount, p.balance_after, {_TRANSACTION_COLUMNS} "
            "FROM postings AS p JOIN transactions AS t ON t.row = p.transaction_row "
            f"WHERE {' AND '.join(where)} ORDER BY p.sequence DESC LIMIT ?",
            parameters,
        ).fetchall()
        if not lines:
            return []
        transactions = self._load({line[3]: line[3:] for line in lines})
        return [
            HistoryEntry.of(
                RecordedPosting(sequence, transactions[row].id, account, amount, balance_after),
                transactions[row],
            )
            for sequence, amount, balance_after, row, *_ in lines
        ]

    def _load(self, headers: Mapping[int, Sequence[Any]]) -> dict[int, Transaction]:
        connection = self._uow._read()  # noqa: SLF001
        rows = list(headers)
        postings: dict[int, list[Posting]] = {row: [] for row in rows}
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            for line in connection.raw.execute(
                f"{_POSTINGS_WITH_ACCOUNTS}"
                f"WHERE p.transaction_row IN ({_placeholders(len(chunk))}) ORDER BY p.sequence",
                chunk,
            ):
                postings[line[0]].append(_posting(connection, line))
        return {row: _transaction(headers[row], postings[row]) for row in rows}

    @_guarded
    def transactions(self) -> Iterator[Transaction]:
        last = _last(self._uow, "SELECT max(row) FROM transactions")
        return self._transactions(last)

    def _transactions(self, last: int) -> Iterator[Transaction]:
        sql = (
            f"SELECT {_TRANSACTION_COLUMNS} FROM transactions AS t "
            "WHERE t.row > ? AND t.row <= ? ORDER BY t.row LIMIT ?"
        )
        for connection, headers in _pages(self._uow, sql, last):
            postings: dict[int, list[Posting]] = {header[0]: [] for header in headers}
            lines = _guarded_fetch(
                connection.raw,
                f"{_POSTINGS_WITH_ACCOUNTS}"
                "WHERE p.transaction_row BETWEEN ? AND ? ORDER BY p.sequence",
                (headers[0][0], headers[-1][0]),
            )
            for line in lines:
                postings[line[0]].append(_posting(connection, line))
            for header in headers:
                yield _transaction(header, postings[header[0]])

    @_guarded
    def postings(self) -> Iterator[RecordedPosting]:
        return self._postings(_last(self._uow, "SELECT max(sequence) FROM postings"))

    def _postings(self, last: int) -> Iterator[RecordedPosting]:
        sql = (
            "SELECT p.sequence, t.id, a.id, a.kind, a.owner, a.asset_kind, a.asset_code, "
            "p.amount, p.balance_after FROM postings AS p "
            "JOIN transactions AS t ON t.row = p.transaction_row "
            "JOIN accounts AS a ON a.id = p.account_id "
            "WHERE p.sequence > ? AND p.sequence <= ? ORDER BY p.sequence LIMIT ?"
        )
        for connection, lines in _pages(self._uow, sql, last):
            for sequence, transaction_id, account_id, *account, amount, after in lines:
                key = connection.key(account_id, *account)
                yield RecordedPosting(sequence, transaction_id, key, amount, after)

    @_guarded
    def accounts(self) -> dict[AccountKey, int]:
        connection = self._uow._read()  # noqa: SLF001
        lines = connection.raw.execute(
            "SELECT id, kind, owner, asset_kind, asset_code, balance FROM accounts ORDER BY id"
        ).fetchall()
        return {
            connection.key(account_id, kind, owner, asset_kind, code): balance
            for account_id, kind, owner, asset_kind, code, balance in lines
        }


_PAGE = 1000  # rows per query when a repository streams a whole table


def _last(uow: SqliteUnitOfWork, sql: str) -> int:
    """The highest key a whole-table stream will yield: the rows there are
    when it is asked for (``0`` for an empty table)."""
    last: int | None = uow._read().raw.execute(sql).fetchone()[0]  # noqa: SLF001
    return last or 0


def _pages(uow: SqliteUnitOfWork, sql: str, last: int) -> Iterator[tuple[_Connection, list[Any]]]:
    """Run *sql* page by page, keyset-paginated, while *uow* stays active.

    The first column of *sql* is the integer key it orders by; its three
    parameters are the key to start after, the last key to read (so rows
    added while the stream is read are not yielded) and the page size. Every
    page is read through the unit of work, so a stream consumed after the
    unit of work ended raises :class:`~coinecon.errors.StorageError` rather
    than read from a connection that another unit of work may hold.
    """
    after = 0
    while after < last:
        connection = uow._read()  # noqa: SLF001
        lines = _guarded_fetch(connection.raw, sql, (after, last, _PAGE))
        if lines:
            yield connection, lines
        if len(lines) < _PAGE:
            return
        after = lines[-1][0]


def _guarded_fetch(raw: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    try:
        return raw.execute(sql, parameters).fetchall()
    except _FAULTS as error:
        raise _fault(error) from error


def _posting(connection: _Connection, line: Sequence[Any]) -> Posting:
    _row, account_id, kind, owner, asset_kind, code, amount = line
    account = connection.key(account_id, kind, owner, asset_kind, code)
    try:
        return Posting(account, amount)
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"a posting on {account} in the file", error) from error


def _transaction(header: Sequence[Any], postings: list[Posting]) -> Transaction:
    _row, id_, kind, occurred_at, idempotency_key, cause_type, cause_id, metadata = header
    try:
        return Transaction(
            id=id_,
            kind=TransactionKind(kind),
            postings=tuple(postings),
            occurred_at=_parse_time(occurred_at),
            idempotency_key=idempotency_key,
            cause=Cause(cause_type, cause_id),
            metadata=tuple((key, value) for key, value in json.loads(metadata)),
        )
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"transaction {id_!r} in the file", error) from error


_LOT_COLUMNS = (
    "id, account_kind, owner, asset_kind, asset_code, origin, amount, remaining, created_at, "
    "transaction_id, value_minor, value_currency, value_recognised, expires_at"
)


def _lot_values(lot: Lot) -> tuple[object, ...]:
    value = lot.value
    return (
        lot.id,
        *_account_row(lot.account),
        lot.origin.value,
        lot.amount,
        lot.remaining,
        _time(lot.created_at),
        lot.transaction_id,
        None if value is None else value.minor,
        None if value is None else value.currency.code,
        lot.value_recognised,
        _optional_time(lot.expires_at),
    )


def _lot_update(lot: Lot) -> tuple[object, ...]:
    """The parameters of :data:`_UPDATE_LOT` for *lot*."""
    values = _lot_values(lot)
    return (*values[5:], *values[:5])


def _moved(lot: Lot, account: AccountKey) -> str:
    return f"lot {lot.id!r} belongs to {account}; a lot cannot move to {lot.account}"


def _lot(line: Sequence[Any]) -> Lot:
    (
        id_,
        kind,
        owner,
        asset_kind,
        code,
        origin,
        amount,
        remaining,
        created_at,
        transaction_id,
        value_minor,
        value_currency,
        value_recognised,
        expires_at,
    ) = line
    account = _account(kind, owner, asset_kind, code)
    try:
        return Lot(
            id=id_,
            account=account,
            origin=LotOrigin(origin),
            amount=amount,
            remaining=remaining,
            created_at=_parse_time(created_at),
            transaction_id=transaction_id,
            value=_optional_money(value_minor, value_currency),
            value_recognised=value_recognised,
            expires_at=None if expires_at is None else _parse_time(expires_at),
        )
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"lot {id_!r} in the file", error) from error


class _Lots:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    @_guarded
    def add(self, lot: Lot) -> None:
        uow = self._uow
        raw = uow._writing().raw  # noqa: SLF001
        try:
            raw.execute(
                f"INSERT INTO lots ({_LOT_COLUMNS}) VALUES ({_placeholders(14)})",
                _lot_values(lot),
            )
        except sqlite3.IntegrityError as error:
            if error.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE":
                raise StorageError(f"lot {lot.id!r} already exists") from error
            raise StorageError(f"lot {lot.id!r} breaks a constraint: {error}") from error
        pending = uow._pending  # noqa: SLF001
        cached = pending.lots.get(lot.account)
        if cached is not None and lot.remaining > 0:
            cached[lot.id] = lot  # the newest lot comes last, as in the table

    def update(self, lot: Lot) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            connection = uow._writing()  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            cached = pending.lots.get(lot.account)
            if cached is not None and lot.id in cached:
                if lot.remaining > 0:
                    cached[lot.id] = lot  # keeps its place
                else:
                    del cached[lot.id]
                pending.lot_updates[lot.id] = lot
                return
            # Any other lot (not served from memory, emptied earlier, or claimed for
            # another account): send what waits, write it now, and read the
            # account's open lots afresh next time.
            uow._send(connection)  # noqa: SLF001
            raw = connection.raw
            if raw.execute(_UPDATE_LOT, _lot_update(lot)).rowcount == 0:
                line = raw.execute(
                    "SELECT account_kind, owner, asset_kind, asset_code FROM lots WHERE id = ?",
                    (lot.id,),
                ).fetchone()
                if line is None:
                    raise StorageError(f"lot {lot.id!r} does not exist")
                raise StorageError(_moved(lot, _account(*line)))
            pending.lots.pop(lot.account, None)
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def get(self, lot_id: str) -> Lot | None:
        raw = self._uow._read().raw  # noqa: SLF001
        line = raw.execute(f"SELECT {_LOT_COLUMNS} FROM lots WHERE id = ?", (lot_id,)).fetchone()
        return None if line is None else _lot(line)

    def open_lots(self, account: AccountKey) -> list[Lot]:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            raw = uow._work().raw  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            cached = pending.lots.get(account)
            if cached is None:
                lines = raw.execute(
                    f"SELECT {_LOT_COLUMNS} FROM lots WHERE account_kind = ? AND owner = ? "
                    "AND asset_kind = ? AND asset_code = ? AND remaining > 0 ORDER BY row",
                    _account_row(account),
                ).fetchall()
                cached = {line[0]: _lot(line) for line in lines}
                pending.lots[account] = cached
            return list(cached.values())
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def expired(self, now: datetime, *, limit: int) -> list[Lot]:
        raw = self._uow._read().raw  # noqa: SLF001
        if limit < 1:
            return []
        lines = raw.execute(
            f"SELECT {_LOT_COLUMNS} FROM lots WHERE remaining > 0 AND expires_at IS NOT NULL "
            "AND expires_at <= ? ORDER BY expires_at, id LIMIT ?",
            (_time(now), limit),
        ).fetchall()
        return [_lot(line) for line in lines]

    @_guarded
    def all(self) -> Iterator[Lot]:
        return self._all(_last(self._uow, "SELECT max(row) FROM lots"))

    def _all(self, last: int) -> Iterator[Lot]:
        sql = (
            f"SELECT row, {_LOT_COLUMNS} FROM lots WHERE row > ? AND row <= ? ORDER BY row LIMIT ?"
        )
        for _connection, lines in _pages(self._uow, sql, last):
            for line in lines:
                yield _lot(line[1:])

    def record_consumption(self, transaction_id: str, consumed: Sequence[LotConsumption]) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            raw = uow._writing().raw  # noqa: SLF001
            try:
                raw.execute(
                    "INSERT INTO lot_consumptions (transaction_id) VALUES (?)", (transaction_id,)
                )
            except sqlite3.IntegrityError as error:
                raise StorageError(f"consumption of {transaction_id!r} already recorded") from error
            rows: list[tuple[str, int, str, int, int | None, str | None]] = []  # all or none wait
            for position, item in enumerate(consumed):
                value = item.value
                if value is None:
                    rows.append((transaction_id, position, item.lot_id, item.amount, None, None))
                else:
                    rows.append(
                        (
                            transaction_id,
                            position,
                            item.lot_id,
                            item.amount,
                            value.minor,
                            value.currency.code,
                        )
                    )
            uow._pending.items.extend(rows)  # noqa: SLF001
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def consumption(self, transaction_id: str) -> list[LotConsumption]:
        raw = self._uow._read().raw  # noqa: SLF001
        lines = raw.execute(
            "SELECT lot_id, amount, value_minor, value_currency FROM lot_consumption_items "
            "WHERE transaction_id = ? ORDER BY position",
            (transaction_id,),
        ).fetchall()
        try:
            return [
                LotConsumption(lot_id, amount, _optional_money(minor, currency))
                for lot_id, amount, minor, currency in lines
            ]
        except _checks.UNREADABLE as error:
            raise _checks.unreadable(
                f"the consumption of {transaction_id!r} in the file", error
            ) from error


class _Idempotency:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    def get(self, key: str) -> IdempotencyRecord | None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            raw = uow._work().raw  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            waiting = pending.records.get(key)
            if waiting is not None:
                return waiting
            line = raw.execute(
                "SELECT key, fingerprint, result, created_at FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
            if line is None:
                pending.absent.add(key)
                return None
            return _idempotency_record(line)
        except _FAULTS as error:
            raise _fault(error) from error

    def add(self, record: IdempotencyRecord) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            raw = uow._writing().raw  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            key = record.key
            if key in pending.absent:
                # Looked up in this transaction and not found, under the write
                # lock: the key is free, and the row can wait for the next flush.
                pending.absent.discard(key)
                pending.records[key] = record
                return
            if key in pending.records:
                raise StorageError(f"idempotency key {key!r} already exists")
            try:
                raw.execute(_INSERT_IDEMPOTENCY, _idempotency_row(record))
            except sqlite3.IntegrityError as error:
                raise StorageError(f"idempotency key {key!r} already exists") from error
        except _FAULTS as error:
            raise _fault(error) from error


def _idempotency_record(line: Sequence[Any]) -> IdempotencyRecord:
    try:
        return IdempotencyRecord(line[0], line[1], line[2], _parse_time(line[3]))
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(
            f"the idempotency record of {line[0]!r} in the file", error
        ) from error


def _idempotency_row(record: IdempotencyRecord) -> tuple[str, str, str, str]:
    return (record.key, record.fingerprint, record.result, _time(record.created_at))


def _event(line: Sequence[Any]) -> OutboxEvent:
    id_, type_, occurred_at, payload, transaction_id = line
    try:
        return OutboxEvent(id_, type_, _parse_time(occurred_at), payload, transaction_id)
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"event {id_!r} in the file", error) from error


class _Outbox:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    def add(self, event: OutboxEvent) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            raw = self._uow._writing().raw  # noqa: SLF001
            try:
                raw.execute(
                    "INSERT INTO outbox (id, type, occurred_at, payload, transaction_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        event.id,
                        event.type,
                        _time(event.occurred_at),
                        event.payload,
                        event.transaction_id,
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise StorageError(f"event {event.id!r} already exists") from error
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def pending(self, *, limit: int) -> list[OutboxEvent]:
        raw = self._uow._work().raw  # noqa: SLF001
        if limit < 1:
            return []
        lines = raw.execute(
            "SELECT id, type, occurred_at, payload, transaction_id FROM outbox "
            "WHERE delivered_at IS NULL ORDER BY row LIMIT ?",
            (limit,),
        ).fetchall()
        return [_event(line) for line in lines]

    @_guarded
    def mark_delivered(self, event_ids: Collection[str], at: datetime) -> None:
        raw = self._uow._writing().raw  # noqa: SLF001
        delivered_at = _time(at)
        raw.executemany(
            "UPDATE outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
            [(delivered_at, event_id) for event_id in event_ids],
        )
