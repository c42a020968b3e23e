"""Validation of identifiers that callers pass in (holders, keys, causes)."""

from __future__ import annotations

import os
import random
import unicodedata

from coinecon.errors import InvalidIdentifierError, InvalidTypeError

MAX_IDENTIFIER_LENGTH = 200
"""The longest identifier accepted (holder ids, idempotency keys, causes...)."""


def check_identifier(value: object, what: str) -> str:
    """Return *value* if it is a usable identifier; raise a typed error otherwise.

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
        return value  # a subclass of str, such as a StrEnum member
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


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)

# Ids must be unique, not secret: a generator seeded from the OS, reseeded in
# every forked child, draws them faster than a system call per id would.
_random = random.Random(os.urandom(32))  # noqa: S311
if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def random_id() -> str:
    """A random version-4 UUID as 32 hex digits, like ``uuid.uuid4().hex``.

    The bits come from a generator seeded from the operating system (and
    reseeded in forked children): ids are unique, but not secrets.
    """
    return (_random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16).hex()
