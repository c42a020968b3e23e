"""Idempotency: request fingerprints and the records that make replays safe.

Every command carries an idempotency key. The first time a key is seen, the
command runs and its result is stored with a fingerprint of the request. A
replay with the same request returns the stored result and changes nothing; the
same key with a different request raises
:class:`~coinecon.errors.IdempotencyConflict`::

    >>> fingerprint("spend", {"holder": "alice", "coins": 5}) == fingerprint(
    ...     "spend", {"coins": 5, "holder": "alice"})
    True
    >>> fingerprint("spend", {"holder": "alice", "coins": 5}) == fingerprint(
    ...     "spend", {"holder": "alice", "coins": 6})
    False
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

import attrs

from coinecon._checks import aware
from coinecon.errors import IdempotencyConflict, InvalidTypeError

__all__ = ["IdempotencyRecord", "canonical_json", "fingerprint"]


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise InvalidTypeError(f"cannot fingerprint a {type(value).__name__}")


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), allow_nan=False, default=_default
)
# The C encoder behind json.dumps, made once rather than on every call (what
# JSONEncoder.encode does); the same output, as the test suite checks.
_make_c_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_SORT_KEYS, _SKIP_KEYS, _ALLOW_NAN = True, False, False
_C_ENCODER = (
    None
    if _make_c_encoder is None
    else _make_c_encoder(
        None,  # no circular-reference markers: values here are trees
        _default,
        json.encoder.encode_basestring_ascii,
        None,  # no indent
        ":",
        ",",
        _SORT_KEYS,
        _SKIP_KEYS,
        _ALLOW_NAN,
    )
)


def canonical_json(value: object) -> str:
    """Serialise JSON-compatible *value* canonically (sorted keys, no spaces).

    A ``datetime`` is written in ISO 8601::

        >>> from datetime import timezone
        >>> canonical_json({"b": [1, True, None], "a": datetime(2026, 1, 1, tzinfo=timezone.utc)})
        '{"a":"2026-01-01T00:00:00+00:00","b":[1,true,null]}'

    Raises:
        InvalidTypeError: for what JSON cannot hold exactly: NaN or an
            infinity, a key that is not a string or a number, keys that do not
            sort (``1`` and ``"a"``), an ``int`` too long to write, a circular
            value, or any other type.
    """
    if _C_ENCODER is not None and not isinstance(value, str):
        try:
            return "".join(_C_ENCODER(value, 0))
        except RecursionError:
            pass  # a circular or very deep value: let the checking encoder say which
        except InvalidTypeError:
            raise
        except (TypeError, ValueError) as error:
            raise _not_json(error) from error
    try:
        return _ENCODER.encode(value)
    except InvalidTypeError:
        raise
    except (TypeError, ValueError, RecursionError) as error:
        raise _not_json(error) from error


def _not_json(error: Exception) -> InvalidTypeError:
    return InvalidTypeError(f"cannot write this value as JSON: {error}")


def fingerprint(command: str, request: Mapping[str, Any]) -> str:
    """A stable fingerprint of a command's name and request fields.

    It is the SHA-256 hex digest of both, which decides whether two requests
    are the same, then ``|`` and a short digest of each field, which says
    which fields differ when they are not
    (:class:`~coinecon.errors.IdempotencyConflict`)::

        >>> first = fingerprint("spend", {"holder": "ann", "amount": 5})
        >>> second = fingerprint("spend", {"holder": "ann", "amount": 6})
        >>> len(first.split("|")[0]), same_request(first, second), differing(first, second)
        (64, False, ('amount',))
    """
    payload = canonical_json({"command": command, "request": request})
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return with_fields(digest, {key: canonical_json(value) for key, value in request.items()})


def with_fields(digest: str, fields: Mapping[str, str]) -> str:
    """*digest* and a short digest of each field (given as its canonical
    JSON), as :func:`fingerprint` writes them."""
    shorts = {key: _short(text) for key, text in fields.items()}
    return f"{digest}|{canonical_json(shorts)}"


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def same_request(one: str, other: str) -> bool:
    """Whether two fingerprints are of the same request (their digests agree;
    the field digests only explain a difference)."""
    return one.partition("|")[0] == other.partition("|")[0]


def differing(one: str, other: str) -> tuple[str, ...]:
    """The fields whose values differ between the requests of two
    fingerprints, sorted (empty if either was written without its fields)."""
    first, second = _fields(one), _fields(other)
    if first is None or second is None:
        return ()
    return tuple(sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k)))


def _fields(text: str) -> dict[str, str] | None:
    _, separator, fields = text.partition("|")
    if not separator:
        return None
    try:
        parsed = json.loads(fields)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


@final
@attrs.frozen
class IdempotencyRecord:
    """What was stored the first time an idempotency key was used.

    Attributes:
        key: the idempotency key.
        fingerprint: the fingerprint of the first request.
        result: the first result, as canonical JSON.
        created_at: when the first request committed.
    """

    key: str
    fingerprint: str
    result: str
    created_at: datetime = attrs.field(validator=aware("created_at"))

    @classmethod
    def _of(
        cls, key: str, fingerprint: str, result: str, created_at: datetime
    ) -> IdempotencyRecord:
        """A record whose caller has checked *created_at* as the constructor
        would: the wallet service, for each command it records, and a store
        giving back a record it was given."""
        record = object.__new__(cls)
        set_key, set_fingerprint, set_result, set_created_at = _RECORD_SETTERS
        set_key(record, key)
        set_fingerprint(record, fingerprint)
        set_result(record, result)
        set_created_at(record, created_at)
        return record

    def replay(self, fingerprint: str) -> str:
        """Return the stored result for a replay with *fingerprint*.

        Raises:
            IdempotencyConflict: if the request differs from the first one.
        """
        if not same_request(fingerprint, self.fingerprint):
            raise IdempotencyConflict(self.key, differing(fingerprint, self.fingerprint))
        return self.result


# Each slot's own setter: several times faster than object.__setattr__, which
# looks the slot up on every call (IdempotencyRecord._of runs for every command).
_RECORD_SETTERS = tuple(
    IdempotencyRecord.__dict__[name].__set__
    for name in ("key", "fingerprint", "result", "created_at")
)
