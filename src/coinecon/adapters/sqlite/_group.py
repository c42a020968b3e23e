"""Group commit: the units of work of many threads share one SQLite commit.

Each unit of work still runs alone: it holds the store's writer lock from its
first statement to its ``commit()`` (or its end), inside a savepoint of the
*group*'s transaction, so a unit of work that fails rolls back alone. What the
units of work of a group share is the ``COMMIT``, and with it the one costly
step of a commit (the write to the disk at ``synchronous=FULL``, the WAL
append and locking at ``NORMAL``).

Who commits: the unit of work that finishes when no other thread waits for
the writer lock (or when the group is full) commits the group, then wakes
every member. A member that finishes while others wait hands the lock on and
waits for the group's commit: its ``commit()`` returns only once the group is
durable, so a caller is answered only after its writes are committed, exactly
as with one commit per unit of work, and a crash loses only units of work
that were not answered yet. If the group's ``COMMIT`` fails, every member's
``commit()`` raises :class:`~coinecon.errors.StorageError`.

A unit of work that ends without committing (a replay, a query, a refused
command) waits for the group too when the group holds others' writes, since
what it read may be one of them: it answers nothing that could still be lost.
A group that holds no writes is ended at once.

What sharing costs: a unit of work may read the writes of those committed
before it in its group, which become durable with the group's commit (a
caller is answered only after it, but what a unit of work does *inside* its
block, such as calling out to another system, may act on writes that a crash
would still lose: act on the outside after the commit, as the wallet service
does); and a ``commit()`` returns once the group's commit is done, so it waits
for the units of work that joined the group after it to end. A unit of work
must therefore never wait, inside its block, for another thread's command to
return: with group commit the two would wait for each other.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable

from coinecon.adapters.sqlite._session import _Connection
from coinecon.errors import StorageError

MAX_GROUP = 1000
"""The most units of work one group commit holds."""

_POLL = 0.05  # seconds between a member's checks that its group has a committer
SAVEPOINT = "SAVEPOINT coinecon_unit_of_work"
ROLLBACK_TO = "ROLLBACK TO coinecon_unit_of_work"
RELEASE = "RELEASE coinecon_unit_of_work"


class Group:
    """One shared SQLite transaction and the units of work that joined it."""

    __slots__ = ("connection", "done", "error", "members")

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.members = 0  # units of work whose writes the transaction holds
        self.done = threading.Event()  # set once committed or failed
        self.error: StorageError | None = None


class GroupCommit:
    """The writer lock of a store and the group its units of work join.

    Args:
        take_connection: a pooled connection for a new group.
        give_back: return a connection to the pool once its group ended.
        begin: begin the write transaction of a new group (``BEGIN
            IMMEDIATE``, waiting for other processes until the deadline).
        describe: the store, for error messages.
    """

    def __init__(
        self,
        take_connection: Callable[[], _Connection],
        give_back: Callable[[_Connection], None],
        begin: Callable[[sqlite3.Connection, float], None],
        describe: str,
    ) -> None:
        self._take_connection = take_connection
        self._give_back = give_back
        self._begin = begin
        self._describe = describe
        self._writer = threading.Lock()
        self._holder: int | None = None  # the thread that holds the writer lock
        self._count = threading.Lock()
        self._waiting = 0  # threads blocked on the writer lock
        self._open: Group | None = None

    @property
    def open_group(self) -> Group | None:
        """The group units of work join now, if one is open."""
        return self._open

    # -- the writer lock ------------------------------------------------------

    def acquire(self, deadline: float, timeout: float) -> None:
        """Take the writer lock, waiting until *deadline* (a monotonic time)."""
        me = threading.get_ident()
        if self._holder == me:
            raise StorageError(
                "this thread already has a unit of work open on this store; SQLite allows "
                "one writer at a time, so a nested unit of work would wait for itself"
            )
        if not self._writer.acquire(blocking=False):
            with self._count:
                self._waiting += 1
            try:
                acquired = self._writer.acquire(timeout=max(deadline - time.monotonic(), 0.0))
            finally:
                with self._count:
                    self._waiting -= 1
            if not acquired:
                raise StorageError(
                    f"timed out after {timeout} s waiting for the write lock on "
                    f"{self._describe}: another unit of work in this process held it"
                )
        self._holder = me

    def release(self) -> None:
        """Give the writer lock up."""
        self._holder = None
        self._writer.release()

    # -- groups (every method below runs holding the writer lock) --------------

    def join(self, deadline: float) -> tuple[Group, bool]:
        """The open group, or a new one (its transaction begun), and whether
        a savepoint was opened for the joining unit of work. The first unit
        of work of a group needs none: the transaction holds nothing else,
        and rolling it back whole undoes that unit of work alone."""
        group = self._open
        if group is None:
            return self.hold(deadline), False
        try:
            group.connection.raw.execute(SAVEPOINT)
        except sqlite3.Error as error:
            failure = StorageError(f"cannot open a savepoint: {error}")
            self.fail(group, failure)
            raise failure from error
        return group, True

    def hold(self, deadline: float) -> Group:
        """The open group, or a new one (its transaction begun), with no
        savepoint opened: for the thread that runs queued commands, which
        opens one per command itself."""
        group = self._open
        if group is None:
            connection = self._take_connection()
            try:
                self._begin(connection.raw, deadline)
            except BaseException:
                self._give_back(connection)
                raise
            group = Group(connection)
            self._open = group
        return group

    def leave(self, group: Group, *, wait: bool) -> None:
        """Give the writer lock up after a unit of work of *group* ended
        (its savepoint released or rolled back): commit the group if no one
        else is waiting to join it (or it is full), and otherwise, if *wait*,
        wait until another member commits it.

        Raises:
            StorageError: if the group's commit failed and this unit of work
                had to wait for it.
        """
        if group.done.is_set():  # failed while this unit of work was in it
            self.release()
            self._raise_if_failed(group, wait=wait)
            return
        if not group.members:
            # Nothing to share: end it now. Left open for a waiter that may
            # give up, it would hold the file's write lock with no one to end it.
            try:
                self._discard(group)
            finally:
                self.release()
            return
        with self._count:
            waiting = self._waiting
        if waiting and group.members < MAX_GROUP:
            self.release()
            if wait:
                self._await(group)
            return
        try:
            self._commit(group)
        finally:
            self.release()
        self._raise_if_failed(group, wait=True)

    def fail(self, group: Group, error: StorageError) -> None:
        """End *group* without committing: SQLite lost its transaction, or a
        savepoint could not be rolled back. Every member is told *error*."""
        group.error = error
        raw = group.connection.raw
        with contextlib.suppress(sqlite3.Error):
            if raw.in_transaction:
                raw.execute("ROLLBACK")
        self._end(group)

    # -- helpers ---------------------------------------------------------------

    def _await(self, group: Group) -> None:
        try:
            while not group.done.wait(_POLL):
                # The thread expected to commit may have given up waiting for
                # the lock (its time-out): whoever finds the lock free and the
                # group still open commits it.
                self._commit_if_idle(group)
        except BaseException:
            # Interrupted while waiting: do not leave the group open for no one.
            self._commit_if_idle(group)
            raise
        self._raise_if_failed(group, wait=True)

    def _commit_if_idle(self, group: Group) -> None:
        """Commit *group* if no unit of work holds the lock and it is still open."""
        if self._writer.acquire(blocking=False):
            self._holder = threading.get_ident()
            try:
                if self._open is group:
                    self._commit(group)
            finally:
                self.release()

    @staticmethod
    def _raise_if_failed(group: Group, *, wait: bool) -> None:
        if wait and group.error is not None:
            raise StorageError(
                f"the group commit this unit of work joined failed, so none of its "
                f"writes were kept: {group.error}"
            )

    def _commit(self, group: Group) -> None:
        raw = group.connection.raw
        try:
            raw.execute("COMMIT")
        except sqlite3.Error as error:
            self.fail(group, StorageError(f"commit failed: {error}"))
            return
        group.connection.committed()
        self._end(group)

    def _discard(self, group: Group) -> None:
        """End a group that holds no writes (every member rolled back)."""
        raw = group.connection.raw
        try:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
        except sqlite3.Error as error:
            self.fail(group, StorageError(f"rollback failed: {error}"))
            return
        self._end(group)

    def _end(self, group: Group) -> None:
        connection = group.connection
        if self._open is group:
            self._open = None
        if group.error is not None:
            connection.rolled_back()
        if connection.raw.in_transaction:
            # The rollback failed: closing is the rollback of last resort, and
            # a connection in that state must not be reused.
            connection.raw.close()
        else:
            self._give_back(connection)
        group.done.set()
