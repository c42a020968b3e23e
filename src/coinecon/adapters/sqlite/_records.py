"""The SQLite idempotency and outbox repositories."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coinecon.adapters.sqlite._rows import (
    _FAULTS,
    _event,
    _fault,
    _guarded,
    _idempotency_record,
    _idempotency_row,
    _time,
)
from coinecon.adapters.sqlite._session import _FINGERPRINT, _RESULT, _TIME
from coinecon.adapters.sqlite._sql import _EVENT_EXISTS, _IDEMPOTENCY_RECORD, _INSERT_IDEMPOTENCY

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._store import SqliteUnitOfWork


from collections.abc import Collection
from datetime import datetime

from coinecon.errors import (
    StorageError,
)
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord


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
            command = pending.commands.get(key)
            if command is not None and command[_FINGERPRINT] is not None:
                return _idempotency_record(
                    (key, command[_FINGERPRINT], command[_RESULT], command[_TIME])
                )
            line = raw.execute(_IDEMPOTENCY_RECORD, (key, key)).fetchone()
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
            command = pending.commands.get(key)
            if command is not None and command[_FINGERPRINT] is not None:
                raise StorageError(f"idempotency key {key!r} already exists")
            if key in pending.absent:
                # Looked up in this transaction and not found, under the write
                # lock: the key is free, and the record can wait for the next
                # flush, on its command's transaction if that waits too.
                pending.absent.discard(key)
                if command is not None and command[_TIME] == _time(record.created_at):
                    command[_FINGERPRINT] = record.fingerprint
                    command[_RESULT] = record.result
                else:
                    pending.records[key] = record
                return
            if key in pending.records or raw.execute(_IDEMPOTENCY_RECORD, (key, key)).fetchone():
                raise StorageError(f"idempotency key {key!r} already exists")
            raw.execute(_INSERT_IDEMPOTENCY, _idempotency_row(record))
        except _FAULTS as error:
            raise _fault(error) from error


class _Outbox:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    def add(self, event: OutboxEvent) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            raw = uow._writing().raw  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            event_id = event.id
            if event_id in pending.events or raw.execute(_EVENT_EXISTS, (event_id,)).fetchone():
                raise StorageError(f"event {event_id!r} already exists")
            pending.events[event_id] = (
                event_id,
                event.type,
                _time(event.occurred_at),
                event.payload,
                event.transaction_id,
            )
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def pending(self, *, limit: int) -> list[OutboxEvent]:
        raw = self._uow._read().raw  # noqa: SLF001
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
        uow = self._uow
        uow._writing()  # noqa: SLF001 (a read-only store refuses here)
        raw = uow._read().raw  # noqa: SLF001 (events waiting to be sent are sent first)
        delivered_at = _time(at)
        raw.executemany(
            "UPDATE outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
            [(delivered_at, event_id) for event_id in event_ids],
        )
