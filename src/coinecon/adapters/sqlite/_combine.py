"""Commands run back to back (flat combining): the queue behind
:meth:`SqliteStore.run <coinecon.adapters.sqlite.SqliteStore.run>`, the thread
that runs it, and the unit of work each queued command gets."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Self, TypeVar

from coinecon.adapters.sqlite._group import MAX_GROUP, SAVEPOINT, Group
from coinecon.adapters.sqlite._session import _Connection
from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork, _GroupedUnitOfWork
from coinecon.errors import StorageError

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._store import SqliteStore

_R = TypeVar("_R")


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
        return self._enter(group, savepoint=savepoint)

    def _rejoin(self) -> _Connection:
        """Start again after a commit or rollback: a new savepoint in the
        same group (the combining thread holds the lock and the group)."""
        return self._attach(savepoint=True)

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
