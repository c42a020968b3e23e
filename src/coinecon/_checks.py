"""Checks shared across coinecon: attrs validators that raise its typed
errors, and the error for stored data it cannot read back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coinecon._ids import MAX_IDENTIFIER_LENGTH, check_identifier
from coinecon.clock import require_aware
from coinecon.errors import CoineconError, InvalidTypeError, StorageError, ValidationError

__all__ = [
    "UNREADABLE",
    "aware",
    "identifier",
    "instance_of",
    "optional_aware",
    "optional_identifier",
    "optional_instance_of",
    "period",
    "store",
    "stored_pairs",
    "unreadable",
]

Validator = Callable[[Any, Any, Any], None]


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def instance_of(kind: type | tuple[type, ...]) -> Validator:
    """Like ``attrs.validators.instance_of``, raising
    :class:`~coinecon.errors.InvalidTypeError` (a ``TypeError``) that names the field."""

    def check(_instance: object, attribute: Any, value: object) -> None:
        if not isinstance(value, kind):
            raise InvalidTypeError(
                f"{attribute.name} must be a {_names(kind)}, got {type(value).__name__} {value!r}"
            )

    return check


def optional_instance_of(kind: type | tuple[type, ...]) -> Validator:
    """:func:`instance_of` that also accepts ``None``."""
    inner = instance_of(kind)

    def check(instance: object, attribute: Any, value: object) -> None:
        if value is not None:
            inner(instance, attribute, value)

    return check


def identifier(what: str) -> Validator:
    """A validator that runs :func:`~coinecon._ids.check_identifier` on the
    value, naming it *what* in the error."""

    def check(_instance: object, _attribute: object, value: Any) -> None:
        # The test check_identifier starts with, repeated: attrs runs this for
        # every identifier field built (transactions, causes, events), and the
        # call it saves costs more than the test.
        if (
            type(value) is not str
            or not 0 < len(value) <= MAX_IDENTIFIER_LENGTH
            or not value.isprintable()
        ):
            check_identifier(value, what)

    return check


def optional_identifier(what: str) -> Validator:
    """:func:`identifier` that also accepts ``None``."""
    inner = identifier(what)

    def check(instance: object, attribute: object, value: Any) -> None:
        if value is not None:
            inner(instance, attribute, value)

    return check


def aware(what: str) -> Validator:
    """A validator that runs :func:`~coinecon.clock.require_aware` on the
    value, naming it *what* in the error."""

    def check(_instance: object, _attribute: object, value: Any) -> None:
        if type(value) is not datetime or value.tzinfo is not UTC:  # UTC: the usual case
            require_aware(value, what)

    return check


def optional_aware(what: str) -> Validator:
    """:func:`aware` that also accepts ``None``."""

    def check(_instance: object, _attribute: object, value: Any) -> None:
        if value is not None:
            require_aware(value, what)

    return check


def period(since: object, until: object) -> tuple[datetime | None, datetime | None]:
    """*since* and *until* as the bounds of a period ``[since, until)``: each
    ``None`` or an aware datetime, and the period not empty.

    Raises:
        InvalidTypeError, NaiveDatetimeError: a bound is not an aware datetime.
        ValidationError: *until* is not after *since*.
    """
    start = None if since is None else require_aware(since, "since")
    end = None if until is None else require_aware(until, "until")
    if start is not None and end is not None and end <= start:
        raise ValidationError(
            f"the period [since, until) is empty: until {end.isoformat()} is not after "
            f"since {start.isoformat()}"
        )
    return start, end


def stored_pairs(value: Any) -> Any:
    """*value* as a dict if it is a tuple of ``(key, value)`` pairs (how a
    frozen class keeps a mapping it was given, so that ``attrs.evolve`` can
    pass the field back through its converter), else *value* unchanged."""
    if isinstance(value, tuple) and all(
        isinstance(pair, tuple) and len(pair) == 2 for pair in value
    ):
        return dict(value)
    return value


def store(value: object) -> None:
    """Refuse *value* unless it looks like a :class:`~coinecon.ports.Store`
    (it has a ``unit_of_work`` method)."""
    if not callable(getattr(value, "unit_of_work", None)):
        raise InvalidTypeError(f"store must be a coinecon Store, got {value!r}")


UNREADABLE = (ValueError, TypeError, LookupError, CoineconError)
"""What turning stored data back into domain values raises when the data is
not what coinecon wrote: a value of the wrong type or form."""


def unreadable(what: str, error: Exception) -> StorageError:
    """The error for stored data (*what*) that coinecon cannot read back, with
    the *error* that reading it raised."""
    return StorageError(
        f"{what} cannot be read back (changed outside coinecon, or damaged): {error}"
    )
