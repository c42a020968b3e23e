"""The SQLite store: connections, the writer lock, schema set-up and migrations."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

from coinecon.adapters.sqlite._combine import Combiner
from coinecon.adapters.sqlite._group import GroupCommit
from coinecon.adapters.sqlite._rows import _is_busy
from coinecon.adapters.sqlite._session import _Connection
from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork, _GroupedUnitOfWork
from coinecon.adapters.sqlite.schema import APPLICATION_ID, MIGRATIONS
from coinecon.errors import (
    InvalidTypeError,
    StorageError,
    ValidationError,
)

_R = TypeVar("_R")

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""The schema version this coinecon writes; older files are migrated to it."""

_SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_MAX_IDLE_CONNECTIONS = 16
_MAX_TIMEOUT = 86_400 * 365  # seconds; also keeps deadlines finite


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
    if Path(text).is_dir():
        raise ValidationError(f"{text!r} is a directory; SqliteStore needs a file path in one")
    folder = Path(text).absolute().parent
    if not folder.is_dir():
        raise ValidationError(
            f"the folder {str(folder)!r} of {text!r} does not exist; create it first"
        )
    return text


def _check_synchronous(synchronous: object) -> None:
    if not isinstance(synchronous, str) or synchronous.upper() not in _SYNCHRONOUS:
        raise ValidationError(
            f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}"
        )


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
        group_commit: let the units of work of many threads share one
            SQLite commit (see "Group commit" in the module's docs): each runs
            alone in its own savepoint and its ``commit()`` returns once the
            shared commit is durable. On by default; ``False`` gives each unit
            of work a transaction of its own from entry to exit.

    Raises:
        InvalidTypeError: *path*, *timeout*, *read_only* or *group_commit*
            has the wrong type.
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
        group_commit: bool = True,
    ) -> None:
        _check_timeout(timeout)
        _check_synchronous(synchronous)
        if type(read_only) is not bool:
            raise InvalidTypeError(f"read_only must be True or False, got {read_only!r}")
        if type(group_commit) is not bool:
            raise InvalidTypeError(f"group_commit must be True or False, got {group_commit!r}")
        self._path = _check_path(path)
        self._timeout = float(timeout)
        self._synchronous = synchronous.upper()
        self._read_only = read_only
        self._pool_lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._inherited: list[_Connection] = []
        self._pid = os.getpid()
        self._closed = False
        self._group_commit = group_commit and not read_only
        self._lock = GroupCommit(
            self._take_connection, self._give_back, self._begin, describe=self._path
        )
        self._combiner = Combiner(self)
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

    @property
    def group_commit(self) -> bool:
        """Whether units of work share commits (never for a read-only store)."""
        return self._group_commit

    def unit_of_work(self) -> SqliteUnitOfWork:
        """Open a unit of work on this store (use it as a context manager)."""
        self._check_usable()
        if self._group_commit:
            return _GroupedUnitOfWork(self)
        return SqliteUnitOfWork(self)

    def run(self, work: Callable[[SqliteUnitOfWork], _R]) -> _R:
        """Run *work* with a unit of work of its own and return what it
        returns, as ``with store.unit_of_work() as uow: return work(uow)``
        would (*work* commits, or not, as it would inside that block).

        With group commit, the commands of many threads are queued and run
        back to back by one of them (the first to find no one running the
        queue), in one group, each in its own savepoint: no lock is handed
        from thread to thread while they run. Each caller gets its result,
        or its own error, once the group's commit is durable; if that commit
        fails, every command that wrote gets
        :class:`~coinecon.errors.StorageError`. :class:`~coinecon.ledger.wallets.Wallets`
        runs its commands this way on a store that offers it.
        """
        self._check_usable()
        if not self._group_commit:
            with self.unit_of_work() as uow:
                return work(uow)
        return self._combiner.run(work)

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
        if not self._group_commit and not self._read_only:
            mode += ", group_commit=False"
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
            raw.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.Error as error:
            raw.close()
            raise StorageError(f"cannot configure SQLite file {self._path!r}: {error}") from error
        return _Connection(raw)

    def _check_usable(self) -> None:
        """Refuse a closed store; in a forked child, start afresh first."""
        if self._closed:
            raise StorageError(f"the store on {self._path} is closed")
        if self._pid != os.getpid():
            self._forked()

    def _forked(self) -> None:
        """In a forked child: leave the parent's connections, its open group
        and its locks alone (another thread of the parent may have held them
        at the fork; a child must not touch its parent's connections, not even
        to close them), keeping them referenced; start afresh."""
        self._pool_lock = threading.Lock()
        self._inherited.extend(self._idle)
        self._idle = []
        group = self._lock.open_group
        if group is not None:
            self._inherited.append(group.connection)
        self._lock = GroupCommit(
            self._take_connection, self._give_back, self._begin, describe=self._path
        )
        self._combiner = Combiner(self)
        self._pid = os.getpid()

    def _take_connection(self) -> _Connection:
        with self._pool_lock:
            if self._closed:
                raise StorageError(f"the store on {self._path} is closed")
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
        if not self._read_only:
            self._lock.acquire(deadline, self._timeout)

    def _release_writer(self) -> None:
        if not self._read_only:
            self._lock.release()

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
