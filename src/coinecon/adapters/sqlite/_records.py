"""The SQLite idempotency and outbox repositories."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from coinecon.adapters.sqlite._rows import (
    _FAULTS,
    _event,
    _fault,
    _guarded,
    _idempotency_record,
    _idempotency_row,
    _time,
)
from coinecon.adapters.sqlite._session import (
    _EVENT_ID,
    _EVENT_PAYLOAD,
    _EVENT_TYPE,
    _FINGERPRINT,
    _RESULT,
    _ROW,
    _TIME,
)
from coinecon.adapters.sqlite._sql import (
    _EVENT_EXISTS,
    _FIRST_UNDELIVERED_ROW,
    _IDEMPOTENCY_RECORD,
    _INSERT_IDEMPOTENCY,
    _LAST_ROW,
    _PENDING_EVENTS,
    _placeholders,
)

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork


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

    @_guarded
    def prune(self, older_than: datetime) -> int:
        uow = self._uow
        uow._writing()  # noqa: SLF001 (a read-only store refuses here)
        raw = uow._read().raw  # noqa: SLF001 (what waits is sent first)
        before = _time(older_than)
        on_rows = raw.execute(_FORGET_RECORDS, (before,)).rowcount
        return on_rows + raw.execute(_FORGET_OWN_RECORDS, (before,)).rowcount


# A command's record is forgotten from its transaction's row (an event whose
# payload was the record's result keeps it); the scan follows the index of
# the records kept, so it costs what is kept, not what was forgotten.
_FORGET_RECORDS = (
    "UPDATE transactions INDEXED BY transactions_by_command "
    "SET event_payload = CASE WHEN event_id IS NOT NULL AND event_payload IS NULL "
    "THEN result ELSE event_payload END, fingerprint = NULL, result = NULL "
    "WHERE fingerprint IS NOT NULL AND occurred_at < ?"
)
_FORGET_OWN_RECORDS = "DELETE FROM idempotency WHERE created_at < ?"
_FORGET_EVENTS = "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND occurred_at < ?"


class _Outbox:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    @_guarded
    def prune(self, older_than: datetime) -> int:
        uow = self._uow
        uow._writing()  # noqa: SLF001 (a read-only store refuses here)
        raw = uow._read().raw  # noqa: SLF001 (what waits is sent first)
        return raw.execute(_FORGET_EVENTS, (_time(older_than),)).rowcount

    def add(self, event: OutboxEvent) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            connection = uow._writing()  # noqa: SLF001
            raw = connection.raw
            pending = uow._pending  # noqa: SLF001
            event_id = event.id
            if (
                event_id in pending.events
                or event_id in pending.events_on_rows
                or raw.execute(_EVENT_EXISTS, (event_id, event_id, event_id)).fetchone()
            ):
                raise StorageError(f"event {event_id!r} already exists")
            at = _time(event.occurred_at)
            transaction_id = event.transaction_id
            waiting = None if transaction_id is None else pending.transactions.get(transaction_id)
            last = pending.last_event
            if (
                waiting is not None
                and waiting[_EVENT_ID] is None
                and waiting[_TIME] == at
                and (last is None or (waiting[_ROW], 0) > last)
            ):
                # The event of a transaction that waits to be written, and that
                # comes after every event added so far: on its row.
                pending.last_event = (cast("int", waiting[_ROW]), 0)
                # Its transaction's id, which is indexed already: '' says so.
                waiting[_EVENT_ID] = "" if event_id == transaction_id else event_id
                waiting[_EVENT_TYPE] = event.type
                waiting[_EVENT_PAYLOAD] = (
                    None if event.payload == waiting[_RESULT] else event.payload
                )
                pending.events_on_rows.add(event_id)
                return
            # In the outbox table, it comes after the events on the rows
            # written so far, and after the table's earlier events.
            after = connection.next_row - 1 if connection.next_row else None
            if after is None:
                after = raw.execute(_LAST_ROW).fetchone()[0]
            pending.last_event = (after, 1)
            pending.events[event_id] = (
                event_id,
                event.type,
                at,
                event.payload,
                transaction_id,
                after,
            )
        except _FAULTS as error:
            raise _fault(error) from error

    @_guarded
    def pending(self, *, limit: int) -> list[OutboxEvent]:
        raw = self._uow._read().raw  # noqa: SLF001
        if limit < 1:
            return []
        lines = raw.execute(_PENDING_EVENTS, (limit,)).fetchall()
        return [_event(line) for line in lines]

    @_guarded
    def mark_delivered(self, event_ids: Collection[str], at: datetime) -> None:
        uow = self._uow
        uow._writing()  # noqa: SLF001 (a read-only store refuses here)
        raw = uow._read().raw  # noqa: SLF001 (events waiting to be sent are sent first)
        delivered_at = _time(at)
        wanted = list(dict.fromkeys(event_ids))
        raw.executemany(
            "UPDATE outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
            [(delivered_at, event_id) for event_id in wanted],
        )
        (cursor,) = raw.execute("SELECT delivered_to FROM outbox_cursor").fetchone()
        rows: list[tuple[int]] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = _placeholders(len(chunk))
            rows += raw.execute(
                f"SELECT row FROM transactions WHERE event_id IN ({marks}) AND event_id != '' "
                f"AND row > ? UNION ALL SELECT row FROM transactions WHERE id IN ({marks}) "
                "AND event_id = '' AND row > ?",
                (*chunk, cursor, *chunk, cursor),
            ).fetchall()
        if not rows:
            return
        raw.executemany(
            "INSERT OR IGNORE INTO outbox_delivered_ahead (transaction_row) VALUES (?)", rows
        )
        # The cursor moves up to the first event on a row not delivered yet.
        (first,) = raw.execute(_FIRST_UNDELIVERED_ROW).fetchone()
        if first is None:
            (to,) = raw.execute(
                "SELECT max(transaction_row) FROM outbox_delivered_ahead"
            ).fetchone()
        else:
            to = first - 1
        if to > cursor:
            raw.execute("UPDATE outbox_cursor SET delivered_to = ?", (to,))
            raw.execute("DELETE FROM outbox_delivered_ahead WHERE transaction_row <= ?", (to,))
