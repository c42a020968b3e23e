"""Records: what the services keep besides the ledger, as versioned documents.

A purchase and its payment, a provider's event, a holder's profile (age
attestation, consent, budget), a dispute's case: each is a :class:`Record`,
a JSON document of one *kind* with an *id*, found by that id or by its
*owner* (the holder it belongs to, or the record it hangs from) and the time
it was created. Its *version* starts at 1 and rises by one with each update,
so that an update made from a stale read is refused rather than lost.

The service that owns a kind of record reads and writes it in the same unit
of work as the transactions it records: a purchase's status changes in the
very transaction that credits its coins. The storage port is
:class:`~coinecon.ports.RecordRepository`::

    >>> from datetime import UTC, datetime
    >>> record = Record.new("purchase", "p-1", "alice", datetime(2026, 1, 1, tzinfo=UTC),
    ...                     {"status": "charging"})
    >>> record.version, record.data
    (1, {'status': 'charging'})
    >>> record.changed({"status": "completed"}).version
    2
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, final

import attrs

from coinecon._checks import identifier
from coinecon.clock import require_aware
from coinecon.errors import FloatNotAllowedError, InvalidTypeError, ValidationError
from coinecon.ledger.idempotency import canonical_json

if TYPE_CHECKING:
    from coinecon.ports import RecordRepository

__all__ = ["Record", "put"]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.utcoffset() is not None:
        return value.astimezone(UTC)
    return value


def _aware(_instance: object, _attribute: object, value: Any) -> None:
    require_aware(value, "a record's created_at")


def _version(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int or value < 1:
        raise InvalidTypeError(f"a record's version is an int from 1, got {value!r}")


def _body(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidTypeError(f"a record's body is JSON text, got {type(value).__name__}")


@final
@attrs.frozen
class Record:
    """A service's record: a JSON document of one kind.

    Attributes:
        kind: what it is (``"purchase"``, ``"holder"``...).
        id: unique within its kind.
        owner: the holder it belongs to, or the record it hangs from; what
            :meth:`~coinecon.ports.RecordRepository.of_owner` finds it by.
        created_at: when it was first stored (UTC).
        version: 1 when new, one more with each update.
        body: the document, as canonical JSON text.
    """

    kind: str = attrs.field(validator=identifier("record kind"))
    id: str = attrs.field(validator=identifier("record id"))
    owner: str = attrs.field(validator=identifier("record owner"))
    created_at: datetime = attrs.field(converter=_utc, validator=_aware)
    version: int = attrs.field(validator=_version)
    body: str = attrs.field(validator=_body)

    @classmethod
    def new(
        cls,
        kind: str,
        record_id: str,
        owner: str,
        created_at: datetime,
        data: Mapping[str, Any],
    ) -> Record:
        """A record at version 1 holding *data* (JSON values: no floats)."""
        return cls(kind, record_id, owner, created_at, 1, _json(data))

    @property
    def data(self) -> dict[str, Any]:
        """The document, parsed anew on each call."""
        parsed = json.loads(self.body)
        if not isinstance(parsed, dict):
            raise ValidationError(f"record {self.kind}:{self.id} is not a JSON object")
        return parsed

    def changed(self, data: Mapping[str, Any]) -> Record:
        """This record holding *data*, one version on: what an update stores."""
        return attrs.evolve(self, version=self.version + 1, body=_json(data))


def _json(data: Mapping[str, Any]) -> str:
    if not isinstance(data, Mapping):
        raise InvalidTypeError(f"a record holds a mapping, got {type(data).__name__}")
    _no_floats(data)
    return canonical_json(dict(data))


def _no_floats(value: object) -> None:
    """Refuse a float anywhere in *value*: amounts in records are exact."""
    if isinstance(value, float):
        raise FloatNotAllowedError(f"a record holds no floats (amounts are exact), got {value!r}")
    if isinstance(value, Mapping):
        for item in value.values():
            _no_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _no_floats(item)


def put(repository: RecordRepository, record: Record) -> None:
    """Store *record* in *repository*: added if it is new (version 1), else
    over the version before it (a stale one is refused)."""
    if record.version == 1:
        repository.add(record)
    else:
        repository.update(record)
