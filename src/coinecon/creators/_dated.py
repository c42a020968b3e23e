"""Values that take effect at instants: a schedule of ``(effective, value)``
pairs, and the value in effect at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from coinecon.clock import require_aware
from coinecon.errors import InvalidTypeError, ValidationError

_V = TypeVar("_V")

Dated = tuple[tuple[datetime | None, _V], ...]
"""Values in order of the instant they take effect (``None``: from the start)."""


def schedule(value: Any, what: str, parse: Callable[[Any], _V]) -> Dated[_V]:
    """*value*, a collection of ``(effective, value)`` pairs, checked and
    sorted; each value read with *parse*.

    Raises:
        InvalidTypeError: for anything but such pairs.
        ValidationError: for two values from one instant, or from the start.
        NaiveDatetimeError: for an instant without a time zone.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidTypeError(f"{what} is a list of (effective, value) pairs, got {value!r}")
    pairs: list[tuple[datetime | None, _V]] = []
    for pair in value:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidTypeError(f"{what} holds (effective, value) pairs, got {pair!r}")
        effective, item = pair
        when = None if effective is None else require_aware(effective, f"{what}'s effective")
        pairs.append((when, parse(item)))
    starts = [when for when, _ in pairs]
    if starts.count(None) > 1:
        raise ValidationError(f"{what} has more than one value from the start (None)")
    dated = [when for when in starts if when is not None]
    if len(set(dated)) != len(dated):
        raise ValidationError(f"{what} has two values taking effect at one instant")
    return tuple(sorted(pairs, key=lambda pair: pair[0] or _START))


_START = datetime.min.replace(tzinfo=UTC)  # where a value "from the start" sorts


def in_effect(dated: Dated[_V], at: datetime | None) -> _V | None:
    """The value of *dated* in effect at *at* (``None``: the latest), or
    ``None`` if none is yet."""
    found = None
    for when, value in dated:
        if when is None or at is None or when <= at:
            found = value
    return found


def dates(value: Any, what: str, parse: Callable[[Any], _V]) -> Dated[_V]:
    """*value* as a schedule: a single value (in effect from the start) or
    ``(effective, value)`` pairs."""
    if isinstance(value, list | tuple):
        return schedule(value, what, parse)
    return ((None, parse(value)),)
