"""The PostgreSQL storage adapter: for hosts that run many app servers on one
database. An optional extra (``pip install coinecon[postgres]``, psycopg 3
and psycopg_pool); nothing else in coinecon imports it.

Open a store on a server (the schema is created and migrated on first use)
and use it like any :class:`~coinecon.ports.Store`::

    from coinecon.adapters.postgres import PostgresStore

    with PostgresStore("host=db dbname=app user=app", schema="coinecon") as store:
        wallets = Wallets(store)
        ...

How it keeps the port's contract:

* **A pool, a schema.** The store holds a :class:`psycopg_pool.ConnectionPool`
  (its own, or the host's); each unit of work takes one connection from
  ``__enter__`` to ``__exit__``. Every table lives in the store's schema,
  named in every statement (its connections also set ``search_path`` to it,
  ``TimeZone`` to UTC and the time-outs given). Every value is a bound
  parameter; the schema name, checked, is the only identifier put in SQL.
* **READ COMMITTED and row locks.** ``ledger.balances`` locks the rows of
  the wallets and creator payable accounts it reads (``SELECT ... FOR NO KEY
  UPDATE``, in the order of their ids, made first if missing), and so does
  reading a wallet's lots: a holder's balance and lots cannot change between
  their read and the unit of work's commit, so the check and the write are
  one. Deadlocks and serialization failures surface as
  :class:`RetryableStorageError`, which :meth:`PostgresStore.run` retries a
  bounded number of times, with jittered pauses.
* **The hot creator, and the platform's accounts.** The accounts that
  nearly every command touches (the platform's: issuance, spent, clearing,
  revenue, deferred revenue...) and those that every gift to a creator
  credits (the creator's earnings) are never locked to be read or credited:
  each keeps its balance in ``shards`` rows (16 by default); a unit of work
  adds its change to the row of its connection's shard (``balance = balance
  + delta``, the change the service computed from the balance it read), and
  a read sums them. Thousands of viewers gifting one creator queue on no row
  but their own wallets'. A debit of a creator's earnings (a conversion)
  takes the account row's lock (debits take turns; credits never wait) and
  checks that the balance is still at least the one it was checked against
  (else the work runs again). Postings on these
  accounts store no balance after (it would need the lock this avoids):
  readers add it up in sequence order, ``postings()`` as it streams,
  ``history()`` with a window sum over the account's postings (so its cost
  grows with the account's history). The services' records (a creator's
  tallies) are read without a lock and updated with their version; an update
  from a stale read is a :class:`RetryableStorageError`, and ``run``'s retry
  reads records under a lock, so it cannot lose that race again.
* **Few round trips.** The first statement of a transaction carries its
  ``BEGIN`` (pipeline mode); a transaction's row, postings and balance
  changes are one statement; writes that only a lost race can refuse (the
  idempotency record of a key the unit of work found free, the event of a
  transaction it recorded, what that transaction consumed, the lots it read
  and changed) are sent with the ``COMMIT``, in one round trip: a race lost
  there fails the commit, whole, with :class:`RetryableStorageError`.
* **Idempotency races.** Keys, transaction, lot and event ids are unique
  keys written with ``ON CONFLICT DO NOTHING``: a duplicate is refused with
  :class:`RetryableStorageError` (a :class:`~coinecon.errors.StorageError`)
  without spoiling the transaction (or, sent with the commit, fails it).
  A replay racing its original waits for it on the key's index entry, is
  refused, and (through ``run``) runs again in a fresh transaction, where it
  finds the original's record and returns its result.
* **Sequences.** A transaction takes a row number from a sequence once its
  accounts are locked; its postings are numbered ``row * 65536 + place``, so
  they follow each other, in the order of the transactions, and a holder's
  postings are in the order of its balances.
* **Streams.** ``transactions()``, ``postings()`` and ``lots.all()`` read
  through server-side cursors declared when called: they yield what the
  transaction saw then, a thousand rows per fetch.
* **Constraints.** The schema holds, for any writer, that amounts are
  non-zero 64-bit integers, ids and keys unique, a lot's remaining coins
  within its amount, that transactions, postings and consumptions are never
  updated or deleted, and (a trigger) that a debit takes a wallet below zero,
  or a credit a creator's payable account above it, only in a chargeback or
  refund. (A creator's earnings are sharded: their postings carry no balance
  for the trigger to check, and their floor is kept by the check above.)
* **Reading while others write.** Each statement reads what was committed
  when it began (READ COMMITTED): a unit of work that reads the whole books
  while commands commit (``Wallets.verify()``) may see a transaction in one
  stream and not in the next; verify a quiet database, or a replica.
* **Failures.** Any failure of PostgreSQL raises
  :class:`~coinecon.errors.StorageError`: :class:`StorageTimeoutError` past
  ``statement_timeout`` or ``lock_timeout``, :class:`ConnectionLostError`
  when the connection drops (the server rolls the transaction back: nothing
  is half-written).
* **Schema versions.** ``coinecon_schema`` lists the versions applied. A
  store reads the version first and leaves a current schema alone (so a
  read-only connection, a hot standby, opens it); pending migrations run in
  one transaction under an advisory lock, so two processes starting together
  migrate once; a schema newer than :data:`SCHEMA_VERSION` is refused.
"""

from coinecon.adapters.postgres._rows import (
    ConnectionLostError,
    RetryableStorageError,
    StorageTimeoutError,
)
from coinecon.adapters.postgres._schema import SCHEMA_VERSION
from coinecon.adapters.postgres._store import PostgresStore
from coinecon.adapters.postgres._unit_of_work import PostgresUnitOfWork

__all__ = [
    "SCHEMA_VERSION",
    "ConnectionLostError",
    "PostgresStore",
    "PostgresUnitOfWork",
    "RetryableStorageError",
    "StorageTimeoutError",
]
