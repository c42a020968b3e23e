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

* **One writer at a time.** A unit of work runs alone from its first read to
  its commit (or its end), so what it read cannot change under it. Threads of
  one process queue on an in-process lock first; other processes wait on
  SQLite's lock (``BEGIN IMMEDIATE``). Past ``timeout`` seconds of waiting,
  :class:`~coinecon.errors.StorageError` is raised.
* **Group commit** (the default, ``group_commit=True``). The units of work of
  many threads share one SQLite transaction and its commit, each in a
  savepoint of its own; a ``commit()`` returns once the shared commit is
  durable. :meth:`SqliteStore.run` queues commands and runs them back to back
  in one thread. "Group commit" in the storage docs says what it costs.
* **WAL mode.** Readers on other connections see the last committed state
  while a writer works; ``synchronous=NORMAL`` by default (durable at each
  checkpoint, never corrupt; pass ``synchronous="FULL"`` for durability at each
  commit).
* **Commit and rollback.** :meth:`SqliteUnitOfWork.commit` commits; the unit of
  work stays usable until its ``with`` block ends and starts anew on its next
  read or write, rolled back unless committed again (as with
  :class:`~coinecon.adapters.memory.MemoryStore`).
* **Schema versions.** The file carries coinecon's ``application_id`` and its
  schema version in ``user_version``. An empty file gets the schema; an older
  version is migrated forward in one transaction; a newer version, a foreign
  database or a file that is not SQLite at all is refused with
  :class:`~coinecon.errors.StorageError`, and the file is left untouched.
* **Batched writes.** Holding the write lock, a unit of work keeps the
  balances and open lots it has read in memory, and sends transaction rows
  (with their command's idempotency record and event), postings, balance
  updates, lot updates, consumptions and events to SQLite in a few
  ``executemany`` calls: at commit, before a query that would see them, and
  every 10,000 rows. A write that can be refused (a duplicate id or key) is
  checked when it is made, so the call that causes it raises. A bulk job that
  runs many commands in one unit of work (``Wallets.batch()``) writes each
  account's balance once per flush instead of once per command.
* **Constraints.** The schema holds, for any writer of the file, that amounts,
  balances and money values are integers, that transaction, lot, event ids
  and idempotency keys are unique, that a lot's remaining coins stay within
  its amount, that transactions, postings and consumptions are never updated
  or deleted,
  and (a trigger on new postings) that a debit takes a holder's account below
  zero only in a chargeback. The adapter refuses a transaction that does not
  sum to zero per asset when it is recorded, and a SQL query checks every
  transaction again once its postings are sent (a failure there rolls the
  whole unit of work back). SQL text is constant: every value is a bound
  parameter. A row changed outside coinecon into something it could not have
  written raises :class:`~coinecon.errors.StorageError` when it is read.
"""

from coinecon.adapters.sqlite._store import SCHEMA_VERSION, SqliteStore
from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork

__all__ = ["SCHEMA_VERSION", "SqliteStore", "SqliteUnitOfWork"]
