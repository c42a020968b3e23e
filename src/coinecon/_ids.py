"""Validation of identifiers that callers pass in (holders, keys, causes)."""

from __future__ import annotations

from coinecon.errors import InvalidIdentifierError, InvalidTypeError

MAX_IDENTIFIER_LENGTH = 200
"""The longest identifier accepted (holder ids, idempotency keys, causes...)."""


def check_identifier(value: object, what: str) -> str:
    """Return *value* if it is a usable identifier; raise a typed error otherwise.

    An identifier is a non-empty string of at most :data:`MAX_IDENTIFIER_LENGTH`
    characters without control characters. Quotes, SQL fragments and any other
    printable text are allowed: storage keeps them as data, never as code.
    """
    if not isinstance(value, str):
        raise InvalidTypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidIdentifierError(f"{what} must not be empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifierError(
            f"{what} is {len(value)} characters long; at most {MAX_IDENTIFIER_LENGTH} are allowed"
        )
    if not value.isprintable():
        raise InvalidIdentifierError(f"{what} {value!r} contains control characters")
    return value
