"""The SQLite unit of work: one SQLite transaction (or, with group commit, a
savepoint of the group's), the writes waiting in it, and its end."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

from coinecon.adapters.sqlite._group import MAX_GROUP, RELEASE, ROLLBACK_TO, SAVEPOINT, Group
from coinecon.adapters.sqlite._ledger import _Ledger
from coinecon.adapters.sqlite._lots import _Lots
from coinecon.adapters.sqlite._records import _Idempotency, _Outbox
from coinecon.adapters.sqlite._rows import _FAULTS
from coinecon.adapters.sqlite._session import _Connection, _Pending
from coinecon.errors import StorageError

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._store import SqliteStore

_R = TypeVar("_R")


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
        if group is None:  # after a commit or rollback: join the group open now
            return self._join()
        if group.done.is_set():
            self._broken = True
        self._check_alive(group.connection)
        return group.connection

    def _join(self) -> _Connection:
        store = self._store
        deadline = time.monotonic() + store._timeout  # noqa: SLF001
        lock = self._lock
        lock.acquire(deadline, store._timeout)  # noqa: SLF001
        try:
            group, self._savepoint = lock.join(deadline)
        except BaseException:
            lock.release()
            raise
        connection = group.connection
        self._group = group
        self._connection = connection
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


class _CombinedUnitOfWork(_GroupedUnitOfWork):
    """The unit of work of one queued command (:meth:`SqliteStore.run`), run
    by the thread that combines the queue. That thread holds the writer lock
    and the group for the whole batch, so this unit of work only opens and
    ends savepoints; the combining thread commits the group."""

    def __init__(self, store: SqliteStore, group: Group, *, savepoint: bool) -> None:
        super().__init__(store)
        self._home = group
        self.wrote = False  # whether it committed writes into the group
        self._attach(savepoint=savepoint)
        self._active = True

    def _attach(self, *, savepoint: bool = True) -> _Connection:
        """Start work in the group: in a savepoint, or, for the first command
        of a new group, in its transaction itself (rolled back whole, it
        undoes that command alone)."""
        group = self._home
        if group.done.is_set():
            raise StorageError("the group this command joined failed; nothing of it was kept")
        connection = group.connection
        if savepoint:
            try:
                connection.raw.execute(SAVEPOINT)
            except sqlite3.Error as error:
                failure = StorageError(f"cannot open a savepoint: {error}")
                self._lock.fail(group, failure)
                raise failure from error
        self._group = group
        self._connection = connection
        self._savepoint = savepoint
        self._mark = len(connection.learnt)
        self._broken = False
        self._began(connection)
        return connection

    def __enter__(self) -> Self:
        return self  # entered when made

    def commit(self) -> None:
        """Release this command's writes into the group; the combining
        thread commits the group, and only then answers the caller."""
        if self._release() is not None:
            self.wrote = True

    def rollback(self) -> None:
        """Discard every write since the last commit (back to the savepoint)."""
        self._discard()

    def _work(self) -> _Connection:
        connection = self._ready
        if connection is not None and connection.raw.in_transaction:
            return connection
        if not self._active:
            raise StorageError("the unit of work is not active: use it in a 'with' block")
        group = self._group
        if group is None:  # after its commit or rollback: a new savepoint in the same group
            return self._attach()
        if group.done.is_set():
            self._broken = True
        self._check_alive(group.connection)
        return group.connection


class _Request:
    """One command waiting to be run by the combining thread."""

    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[SqliteUnitOfWork], object]) -> None:
        self.work = work
        self.result: object = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class Combiner:
    """Runs the commands of many threads back to back (flat combining).

    A thread that brings a command when no other is combining becomes the
    combining thread: it takes the writer lock once, runs every command
    queued meanwhile in one group, each in its own savepoint (a command that
    fails rolls back alone, and its caller gets its error), lets the group
    commit (as a unit of work's commit does), and only then answers every
    caller. The others wait on their own event: nothing is handed from
    thread to thread while the commands run.
    """

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._guard = threading.Lock()
        self._queue: list[_Request] = []
        self._running = False
        self._leader: int | None = None  # the thread running the queue

    def run(self, work: Callable[[SqliteUnitOfWork], _R]) -> _R:
        """Run *work* with a unit of work of its own; return what it returns
        once its writes are durable, or raise its error."""
        if self._leader == threading.get_ident():
            raise StorageError(
                "a command run by this store's queue may not run another through it: "
                "it would wait for itself"
            )
        request = _Request(work)
        with self._guard:
            self._queue.append(request)
            lead = not self._running
            self._running = True
        if lead:
            self._lead()
        else:
            request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]

    def _lead(self) -> None:
        self._leader = threading.get_ident()
        try:
            self._combine()
        finally:
            self._leader = None

    def _combine(self) -> None:
        while True:
            with self._guard:
                if not self._queue:
                    self._running = False
                    return
            try:
                self._batch()
            except BaseException:
                with self._guard:  # an interrupt: no one is left combining
                    waiting, self._queue = self._queue, []
                    self._running = False
                for request in waiting:
                    request.error = StorageError("the thread running this command was interrupted")
                    request.done.set()
                raise

    def _take(self, room: int) -> list[_Request]:
        with self._guard:
            batch = self._queue[:room]
            del self._queue[: len(batch)]
        return batch

    def _batch(self) -> None:
        store = self._store
        lock = store._lock  # noqa: SLF001
        deadline = time.monotonic() + store._timeout  # noqa: SLF001
        try:
            lock.acquire(deadline, store._timeout)  # noqa: SLF001
        except StorageError as error:
            self._fail(self._take(MAX_GROUP), error)
            return
        fresh = lock.open_group is None
        try:
            group = lock.hold(deadline)
        except BaseException as error:
            lock.release()
            failure = error if isinstance(error, StorageError) else StorageError(str(error))
            self._fail(self._take(MAX_GROUP), failure)
            if not isinstance(error, Exception):
                raise
            return
        taken: list[_Request] = []
        wrote: list[_Request] = []
        try:
            while len(taken) < MAX_GROUP and not group.done.is_set():
                batch = self._take(MAX_GROUP - len(taken))
                if not batch:
                    break
                for index, request in enumerate(batch):
                    if not group.connection.raw.in_transaction:
                        # The first command rolled the new group's transaction
                        # back whole: the others go to a group of their own.
                        with self._guard:
                            self._queue[:0] = batch[index:]
                        break
                    taken.append(request)
                    if group.done.is_set():
                        request.error = StorageError(
                            "the group this command joined failed; nothing of it was kept"
                        )
                        continue
                    self._one(store, group, request, wrote, savepoint=not fresh)
                    fresh = False
                else:
                    continue
                break
        finally:
            try:
                lock.leave(group, wait=True)
            except StorageError as error:
                for request in wrote:
                    request.result = None
                    request.error = error
            for request in taken:
                request.done.set()

    @staticmethod
    def _one(
        store: SqliteStore,
        group: Group,
        request: _Request,
        wrote: list[_Request],
        *,
        savepoint: bool,
    ) -> None:
        try:
            uow = _CombinedUnitOfWork(store, group, savepoint=savepoint)
            with uow:
                request.result = request.work(uow)
            if uow.wrote:
                wrote.append(request)
        except BaseException as error:
            request.error = error  # handed to its caller
            if not isinstance(error, Exception):
                raise  # an interrupt of this thread stops the batch too

    @staticmethod
    def _fail(requests: list[_Request], error: StorageError) -> None:
        for request in requests:
            request.error = error
            request.done.set()
