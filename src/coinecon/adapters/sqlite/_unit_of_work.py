"""The SQLite unit of work: one SQLite transaction (or, with group commit, a
savepoint of the group's), the writes waiting in it, and its end."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from types import TracebackType
from typing import TYPE_CHECKING, Self

from coinecon.adapters.sqlite._documents import _Records
from coinecon.adapters.sqlite._group import RELEASE, ROLLBACK_TO, Group
from coinecon.adapters.sqlite._ledger import _Ledger
from coinecon.adapters.sqlite._lots import _Lots
from coinecon.adapters.sqlite._records import _Idempotency, _Outbox
from coinecon.adapters.sqlite._rows import _FAULTS
from coinecon.adapters.sqlite._session import _Connection, _Pending
from coinecon.errors import StorageError

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._store import SqliteStore


class SqliteUnitOfWork:
    """A unit of work on a :class:`SqliteStore`; see :class:`coinecon.ports.UnitOfWork`.

    Attributes:
        ledger: accounts, transactions and postings.
        lots: lots and what spends took from them.
        idempotency: the first result of each idempotency key.
        outbox: events awaiting delivery.
        records: the services' records.
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
        self.records = _Records(self)

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


class _GroupedUnitOfWork(SqliteUnitOfWork):
    """A unit of work of a store with group commit: it runs alone, in a
    savepoint of the group's transaction, and its commit is the group's (see
    :mod:`coinecon.adapters.sqlite._group`).

    After :meth:`commit` (and after :meth:`rollback`) it holds nothing: its
    next read or write joins the group open then, in a savepoint of its own.
    """

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self._lock = store._lock  # noqa: SLF001
        self._group: Group | None = None
        self._mark = 0  # how many account ids the connection had learnt at the savepoint
        self._savepoint = False  # False for the first unit of work of its group
        self._active = False

    def __enter__(self) -> Self:
        if self._active or self._ended:
            raise StorageError("a unit of work can be entered only once")
        self._join()
        self._active = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._active:
            return
        try:
            self.rollback()
        except StorageError:
            if exc_type is None:
                raise
            # The caller's own error is the one to see.
        finally:
            self._active = False
            self._ended = True

    def commit(self) -> None:
        """Make every write so far durable and visible, with the other units
        of work of the group; return once the group's commit is done."""
        group = self._release()
        if group is not None:
            self._lock.leave(group, wait=True)

    def _release(self) -> Group | None:
        """Send this unit of work's writes and release them into its group
        (which commits them later); the group, or ``None`` if it holds
        nothing of this unit of work."""
        if not self._active:
            raise StorageError("the unit of work is not active: use it in a 'with' block")
        group = self._group
        if group is None:
            return None
        connection = group.connection
        self._check_alive(connection)
        self._send(connection)
        if self._savepoint:
            try:
                connection.raw.execute(RELEASE)
            except sqlite3.Error as error:
                self._abandon(connection)
                raise StorageError(f"commit failed: {error}") from error
        group.members += 1
        self._detach()
        return group

    def rollback(self) -> None:
        """Discard every write since the last commit. If the group holds
        writes of others that this unit of work may have read, wait until
        the group's commit is done."""
        group = self._discard()
        if group is not None:
            self._lock.leave(group, wait=group.members > 0)

    def _discard(self) -> Group | None:
        """Undo this unit of work's writes in its group; the group, or
        ``None`` if it was in none."""
        group = self._group
        if group is None:
            return None
        connection = group.connection
        self._pending = _Pending()
        self._ready = None
        if not group.done.is_set():
            try:
                self._undo(connection.raw, release=True)
            except sqlite3.Error as error:
                self._lock.fail(group, StorageError(f"rollback failed: {error}"))
            else:
                connection.rolled_back_to(self._mark)
                self._broken = False
        self._detach()
        return group

    def _require_active(self) -> _Connection:
        if not self._active:
            raise StorageError("the unit of work is not active: use it in a 'with' block")
        return self._work()

    def _work(self) -> _Connection:
        connection = self._ready
        if connection is not None and connection.raw.in_transaction:
            return connection  # every repository call passes here: keep it short
        if not self._active:
            raise StorageError("the unit of work is not active: use it in a 'with' block")
        group = self._group
        if group is None:  # after a commit or rollback
            return self._rejoin()
        if group.done.is_set():
            self._broken = True
        self._check_alive(group.connection)
        return group.connection

    def _rejoin(self) -> _Connection:
        """Start again after a commit or rollback: join the group open now."""
        return self._join()

    def _join(self) -> _Connection:
        store = self._store
        deadline = time.monotonic() + store._timeout  # noqa: SLF001
        lock = self._lock
        lock.acquire(deadline, store._timeout)  # noqa: SLF001
        try:
            group, savepoint = lock.join(deadline)
        except BaseException:
            lock.release()
            raise
        return self._enter(group, savepoint=savepoint)

    def _enter(self, group: Group, *, savepoint: bool) -> _Connection:
        """Work in *group* from now on (in a savepoint of it, if *savepoint*)."""
        connection = group.connection
        self._group = group
        self._connection = connection
        self._savepoint = savepoint
        self._mark = len(connection.learnt)
        self._broken = False
        self._began(connection)
        return connection

    def _detach(self) -> None:
        self._group = None
        self._connection = None
        self._ready = None
        self._in_transaction = False
        self._pending = _Pending()

    def _undo(self, raw: sqlite3.Connection, *, release: bool) -> None:
        """Undo this unit of work's writes: back to its savepoint (released
        too if *release*), or, for the first unit of work of its group, the
        group's whole transaction, which holds nothing else.

        Raises:
            sqlite3.Error: if SQLite refused, or had ended the group's
                transaction itself (others' writes are lost with it).
        """
        if self._savepoint:
            if not raw.in_transaction:
                raise sqlite3.OperationalError("SQLite ended the transaction")
            raw.execute(ROLLBACK_TO)
            if release:
                raw.execute(RELEASE)
        elif raw.in_transaction:
            raw.execute("ROLLBACK")

    def _abandon(self, connection: _Connection) -> None:
        """Roll this unit of work's savepoint back after a failure that may
        have left part of a write behind; the group goes on. The unit of work
        refuses every read, write and commit until :meth:`rollback`."""
        self._pending = _Pending()
        self._ready = None
        self._broken = True
        group = self._group
        if group is None or group.done.is_set():
            return
        try:
            self._undo(connection.raw, release=False)
        except sqlite3.Error as error:
            self._lock.fail(group, StorageError(f"SQLite lost the group's transaction: {error}"))
        else:
            connection.rolled_back_to(self._mark)
