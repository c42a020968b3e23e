"""Validation of identifiers that callers pass in (holders, keys, causes)."""

from __future__ import annotations

import os
import random
import time
import unicodedata

from coinecon.errors import InvalidIdentifierError, InvalidTypeError

MAX_IDENTIFIER_LENGTH = 200
"""The longest identifier accepted (holder ids, idempotency keys, causes...)."""


def check_identifier(value: object, what: str) -> str:
    """Return *value* if it is a usable identifier (a ``str`` subclass, such as
    a ``StrEnum`` member, as plain ``str``); raise a typed error otherwise.

    An identifier is a non-empty string of at most :data:`MAX_IDENTIFIER_LENGTH`
    printable characters (``str.isprintable()``: no control characters, no
    invisible formatting characters, surrogates or separators). Quotes, SQL fragments and any other
    printable text are allowed: storage keeps them as data, never as code.
    """
    if type(value) is str and 0 < len(value) <= MAX_IDENTIFIER_LENGTH and value.isprintable():
        return value  # the usual case, in one test
    if not isinstance(value, str):
        raise InvalidTypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidIdentifierError(f"{what} must not be empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifierError(
            f"{what} is {len(value)} characters long; at most {MAX_IDENTIFIER_LENGTH} are allowed"
        )
    if value.isprintable():
        return str(value)  # a subclass of str, such as a StrEnum member: as plain text
    position, character = next((i, c) for i, c in enumerate(value) if not c.isprintable())
    kind = _UNPRINTABLE.get(unicodedata.category(character), "a character that is not printable")
    raise InvalidIdentifierError(
        f"{what} {value!r} contains {kind}, U+{ord(character):04X}, at position {position}; "
        "identifiers are printable text"
    )


# Why str.isprintable() refuses a character, by its Unicode category.
_UNPRINTABLE = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Zs": "a space other than ' '",
}


_VERSION_7 = 0x7000 << 64  # the version nibble of a UUID's seventh byte
_VARIANT = 0x8000 << 48  # the RFC 9562 variant bits of its ninth byte
_RANDOM_LOW = (1 << 62) - 1  # the 62 random bits below the variant
_RANDOM_HIGH = (1 << 12) - 1  # the 12 random bits after the version

# Ids must be unique, not secret: a generator seeded from the OS, reseeded in
# every forked child, draws them faster than a system call per id would.
_random = random.Random(os.urandom(32))  # noqa: S311
if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def random_id() -> str:
    """A new id: a version-7 UUID (RFC 9562) as 32 hex digits.

    Its first 48 bits are the Unix time in milliseconds and the other 74 are
    random (from a generator seeded from the operating system, and reseeded
    in forked children): ids are unique, but not secrets. Being ordered by
    time, new ids land at the end of the indexes that hold them, which keeps
    a store's writes on a few pages instead of one random page per index.
    """
    bits = _random.getrandbits(74)
    return (
        (
            (time.time_ns() // 1_000_000) << 80
            | _VERSION_7
            | (bits >> 62) << 64
            | _VARIANT
            | bits & _RANDOM_LOW
        )
        .to_bytes(16)
        .hex()
    )
