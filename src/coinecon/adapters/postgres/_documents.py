"""The PostgreSQL idempotency, outbox and record repositories."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING

from coinecon.adapters.postgres._rows import RetryableStorageError, event, idempotency_record
from coinecon.clock import as_utc, require_aware
from coinecon.errors import InvalidAmountError, StorageError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.records import Record

if TYPE_CHECKING:
    from coinecon.adapters.postgres._unit_of_work import PostgresUnitOfWork

_IDEMPOTENCY_GET = "SELECT key, fingerprint, result, created_at FROM {s}.idempotency WHERE key = %s"
# A key taken by a unit of work not committed yet makes this one wait for
# it; if it commits, nothing is inserted, and the race surfaces as a
# RetryableStorageError, whose retry finds the record and replays it.
_IDEMPOTENCY_ADD = """
    INSERT INTO {s}.idempotency (key, fingerprint, result, created_at) VALUES (%s, %s, %s, %s)
    ON CONFLICT (key) DO NOTHING
"""
_IDEMPOTENCY_INSERT = """
    INSERT INTO {s}.idempotency (key, fingerprint, result, created_at) VALUES (%s, %s, %s, %s)
"""
_IDEMPOTENCY_PRUNE = "DELETE FROM {s}.idempotency WHERE created_at < %s"
_EVENT_ADD = """
    INSERT INTO {s}.outbox (id, type, occurred_at, payload, transaction_id)
    VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING
"""
_EVENT_INSERT = """
    INSERT INTO {s}.outbox (id, type, occurred_at, payload, transaction_id)
    VALUES (%s, %s, %s, %s, %s)
"""
_PENDING = """
    SELECT id, type, occurred_at, payload, transaction_id FROM {s}.outbox
    WHERE delivered_at IS NULL ORDER BY row LIMIT %s
"""
_DELIVERED = """
    UPDATE {s}.outbox SET delivered_at = %s WHERE id = ANY(%s::text[]) AND delivered_at IS NULL
"""
_OUTBOX_PRUNE = "DELETE FROM {s}.outbox WHERE delivered_at IS NOT NULL AND occurred_at < %s"
_RECORD_COLUMNS = "kind, id, owner, created_at, version, body"
_RECORD_GET = f"SELECT {_RECORD_COLUMNS} FROM {{s}}.records WHERE kind = %s AND id = %s"
_RECORD_GET_LOCKED = _RECORD_GET + " FOR NO KEY UPDATE"
_RECORD_ADD = f"""
    INSERT INTO {{s}}.records ({_RECORD_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT (kind, id) DO NOTHING
"""
_RECORD_UPDATE = """
    UPDATE {s}.records SET version = %s, body = %s
    WHERE kind = %s AND id = %s AND version = %s AND owner = %s AND created_at = %s
"""
_RECORD_REMOVE = "DELETE FROM {s}.records WHERE kind = %s AND id = %s"
_OF_OWNER = f"""
    SELECT {_RECORD_COLUMNS} FROM {{s}}.records
    WHERE kind = %(kind)s AND owner = %(owner)s
        AND created_at >= coalesce(%(since)s::timestamptz, '-infinity')
        AND created_at < coalesce(%(until)s::timestamptz, 'infinity')
"""
_NEWEST_FIRST = _OF_OWNER + " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
_OLDEST_FIRST = _OF_OWNER + " ORDER BY created_at, id LIMIT %(limit)s"


class _Idempotency:
    """See :class:`coinecon.ports.IdempotencyRepository`."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    def get(self, key: str) -> IdempotencyRecord | None:
        uow = self._uow
        uow.flush()
        line = uow.execute(_IDEMPOTENCY_GET, (key,)).fetchone()
        if line is None:
            uow.free_keys.add(key)
            return None
        return idempotency_record(line)

    def add(self, record: IdempotencyRecord) -> None:
        """Store *record*: with the commit when this transaction found its
        key free (a concurrent command that takes it first fails the commit
        with :class:`RetryableStorageError`, and the retry replays), else
        at once."""
        uow = self._uow
        key = record.key
        values = (key, record.fingerprint, record.result, record.created_at)
        if ("idempotency", key) in uow.deferred:
            raise RetryableStorageError(f"idempotency key {key!r} already exists")
        if key in uow.free_keys:
            uow.free_keys.discard(key)
            uow.defer("idempotency", key, _IDEMPOTENCY_INSERT, values)
            return
        if uow.execute(_IDEMPOTENCY_ADD, values).rowcount != 1:
            raise RetryableStorageError(f"idempotency key {key!r} already exists")

    def prune(self, older_than: datetime) -> int:
        self._uow.flush()
        self._uow.free_keys.clear()
        cursor = self._uow.execute(_IDEMPOTENCY_PRUNE, (as_utc(older_than, "older_than"),))
        return cursor.rowcount


class _Outbox:
    """See :class:`coinecon.ports.OutboxRepository`."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    def add(self, event: OutboxEvent) -> None:
        """Store *event*: with the commit when it takes the id of a
        transaction this unit of work recorded (as the wallet service's
        events do; one already there with that id fails the commit), else
        at once."""
        uow = self._uow
        values = (event.id, event.type, event.occurred_at, event.payload, event.transaction_id)
        if ("event", event.id) in uow.deferred:
            raise RetryableStorageError(f"event {event.id!r} already exists")
        if event.id == event.transaction_id and event.id in uow.recorded:
            uow.defer("event", event.id, _EVENT_INSERT, values)
            return
        uow.flush()  # the events deferred come first: events keep the order added
        if uow.execute(_EVENT_ADD, values).rowcount != 1:
            raise RetryableStorageError(f"event {event.id!r} already exists")

    def pending(self, *, limit: int) -> list[OutboxEvent]:
        self._uow.connection()
        self._uow.flush()
        if limit < 1:
            return []
        return [event(line) for line in self._uow.execute(_PENDING, (limit,))]

    def mark_delivered(self, event_ids: Collection[str], at: datetime) -> None:
        require_aware(at, "delivery time")
        self._uow.flush()
        self._uow.execute(_DELIVERED, (at, list(event_ids)))

    def prune(self, older_than: datetime) -> int:
        self._uow.flush()
        cursor = self._uow.execute(_OUTBOX_PRUNE, (as_utc(older_than, "older_than"),))
        return cursor.rowcount


class _Records:
    """See :class:`coinecon.ports.RecordRepository`."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    def get(self, kind: str, record_id: str) -> Record | None:
        """The record, read without a lock (an update from a stale read is
        refused with :class:`RetryableStorageError`); locked, when the unit
        of work runs again after a race it lost (``lock_records``), so that
        the retry cannot lose it again."""
        uow = self._uow
        text = _RECORD_GET_LOCKED if uow.lock_records else _RECORD_GET
        line = uow.execute(text, (kind, record_id)).fetchone()
        return None if line is None else Record(*line)

    def add(self, record: Record) -> None:
        self._uow.connection()
        if not isinstance(record, Record):
            raise StorageError(f"a record is a Record, got {record!r}")
        if record.version != 1:
            raise StorageError(
                f"a new record is at version 1; {record.kind}:{record.id} is at {record.version}"
            )
        values = (
            record.kind,
            record.id,
            record.owner,
            record.created_at,
            record.version,
            record.body,
        )
        if self._uow.execute(_RECORD_ADD, values).rowcount != 1:
            raise RetryableStorageError(f"record {record.kind}:{record.id} already exists")

    def update(self, record: Record) -> None:
        self._uow.connection()
        if not isinstance(record, Record):
            raise StorageError(f"a record is a Record, got {record!r}")
        changed = self._uow.execute(
            _RECORD_UPDATE,
            (
                record.version,
                record.body,
                record.kind,
                record.id,
                record.version - 1,
                record.owner,
                record.created_at,
            ),
        ).rowcount
        if changed == 1:
            return
        stored = self.get(record.kind, record.id)
        # A record changed or removed since it was read is a race lost to a
        # concurrent unit of work (this one read it without a lock): the work
        # runs again, reading it anew.
        if stored is None:
            raise RetryableStorageError(f"record {record.kind}:{record.id} does not exist")
        if record.version != stored.version + 1:
            stale = RetryableStorageError if record.version <= stored.version else StorageError
            raise stale(
                f"record {record.kind}:{record.id} is at version {stored.version}; an update "
                f"stores version {stored.version + 1}, not {record.version} (read it again)"
            )
        raise StorageError(f"record {record.kind}:{record.id} keeps its owner and creation time")

    def remove(self, kind: str, record_id: str) -> None:
        if self._uow.execute(_RECORD_REMOVE, (kind, record_id)).rowcount != 1:
            raise RetryableStorageError(f"record {kind}:{record_id} does not exist")

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
        self._uow.connection()
        if type(limit) is not int or limit < 1:
            raise InvalidAmountError(f"limit must be a positive int, got {limit!r}")
        lines = self._uow.execute(
            _OLDEST_FIRST if oldest_first else _NEWEST_FIRST,
            {
                "kind": kind,
                "owner": owner,
                "since": None if since is None else as_utc(since, "since"),
                "until": None if until is None else as_utc(until, "until"),
                "limit": limit,
            },
        )
        return [Record(*line) for line in lines]
