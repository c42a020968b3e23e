"""The SQLite repository of the services' records (table ``records``)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING

from coinecon.adapters.sqlite._rows import _guarded, _time
from coinecon.errors import InvalidAmountError, StorageError
from coinecon.records import Record

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork

_COLUMNS = "kind, id, owner, created_at, version, body"
_GET = f"SELECT {_COLUMNS} FROM records WHERE kind = ? AND id = ?"
_INSERT = f"INSERT INTO records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
_UPDATE = (
    "UPDATE records SET version = ?, body = ? WHERE kind = ? AND id = ? AND version = ? "
    "AND owner = ? AND created_at = ?"
)
_DELETE = "DELETE FROM records WHERE kind = ? AND id = ?"
_OF_OWNER = (
    f"SELECT {_COLUMNS} FROM records "
    "WHERE kind = ? AND owner = ? AND created_at >= ? AND created_at < ? "
)
_NEWEST_FIRST = _OF_OWNER + "ORDER BY created_at DESC, id DESC LIMIT ?"
_OLDEST_FIRST = _OF_OWNER + "ORDER BY created_at, id LIMIT ?"


def _record(row: tuple[str, str, str, str, int, str]) -> Record:
    kind, record_id, owner, created_at, version, body = row
    return Record(kind, record_id, owner, datetime.fromisoformat(created_at), version, body)


class _Records:
    """See :class:`coinecon.ports.RecordRepository`."""

    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    @_guarded
    def get(self, kind: str, record_id: str) -> Record | None:
        row = self._uow._work().raw.execute(_GET, (kind, record_id)).fetchone()  # noqa: SLF001
        return None if row is None else _record(row)

    @_guarded
    def add(self, record: Record) -> None:
        if not isinstance(record, Record):
            raise StorageError(f"a record is a Record, got {record!r}")
        raw = self._uow._writing().raw  # noqa: SLF001
        if record.version != 1:
            raise StorageError(
                f"a new record is at version 1; {record.kind}:{record.id} is at {record.version}"
            )
        try:
            raw.execute(
                _INSERT,
                (record.kind, record.id, record.owner, _time(record.created_at), 1, record.body),
            )
        except sqlite3.IntegrityError:  # the primary key: SQLite undid this statement only
            raise StorageError(f"record {record.kind}:{record.id} already exists") from None

    @_guarded
    def update(self, record: Record) -> None:
        if not isinstance(record, Record):
            raise StorageError(f"a record is a Record, got {record!r}")
        raw = self._uow._writing().raw  # noqa: SLF001
        changed = raw.execute(
            _UPDATE,
            (
                record.version,
                record.body,
                record.kind,
                record.id,
                record.version - 1,
                record.owner,
                _time(record.created_at),
            ),
        ).rowcount
        if changed:
            return
        row = raw.execute(_GET, (record.kind, record.id)).fetchone()
        if row is None:
            raise StorageError(f"record {record.kind}:{record.id} does not exist")
        stored = _record(row)
        if record.version != stored.version + 1:
            raise StorageError(
                f"record {record.kind}:{record.id} is at version {stored.version}; an update "
                f"stores version {stored.version + 1}, not {record.version} (read it again)"
            )
        raise StorageError(f"record {record.kind}:{record.id} keeps its owner and creation time")

    @_guarded
    def remove(self, kind: str, record_id: str) -> None:
        raw = self._uow._writing().raw  # noqa: SLF001
        if not raw.execute(_DELETE, (kind, record_id)).rowcount:
            raise StorageError(f"record {kind}:{record_id} does not exist")

    @_guarded
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
        if type(limit) is not int or limit < 1:
            raise InvalidAmountError(f"limit must be a positive int, got {limit!r}")
        raw = self._uow._work().raw  # noqa: SLF001
        start = "" if since is None else _time(since)
        end = "\uffff" if until is None else _time(until)
        sql = _OLDEST_FIRST if oldest_first else _NEWEST_FIRST
        return [_record(row) for row in raw.execute(sql, (kind, owner, start, end, limit))]
