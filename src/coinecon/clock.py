"""Time: the :class:`Clock` port, a system clock and a manual clock for tests.

Every time coinecon handles is timezone-aware; a naive ``datetime`` is refused
with :class:`~coinecon.errors.NaiveDatetimeError`::

    >>> from datetime import datetime, timedelta, timezone
    >>> from coinecon import ManualClock
    >>> clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> clock.advance(timedelta(hours=1))
    datetime.datetime(2026, 1, 1, 1, 0, tzinfo=datetime.timezone.utc)
    >>> ManualClock(datetime(2026, 1, 1))
    Traceback (most recent call last):
    ...
    coinecon.errors.NaiveDatetimeError: start must be timezone-aware, got naive 2026-01-01 00:00:00
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from coinecon.errors import InvalidTypeError, NaiveDatetimeError, ValidationError

__all__ = ["Clock", "ManualClock", "SystemClock", "as_utc", "require_aware"]


def require_aware(value: object, name: str = "datetime") -> datetime:
    """Return *value* if it is a timezone-aware ``datetime``; raise otherwise.

    Raises:
        InvalidTypeError: if *value* is not a ``datetime``, or its time zone
            gives no valid UTC offset.
        NaiveDatetimeError: if it has no time zone.
    """
    if not isinstance(value, datetime):
        raise InvalidTypeError(f"{name} must be a datetime, got {type(value).__name__}")
    try:
        offset = value.utcoffset()
    except (TypeError, ValueError) as error:  # a tzinfo that returns nonsense
        raise InvalidTypeError(
            f"{name} has a time zone with no valid UTC offset: {error}"
        ) from error
    if offset is None:
        raise NaiveDatetimeError(f"{name} must be timezone-aware, got naive {value}")
    return value


def as_utc(value: object, name: str = "datetime") -> datetime:
    """*value*, which must be aware (see :func:`require_aware`), as the same
    instant in UTC.

    Two times of one time zone compare by their wall clocks: across a change
    of the clocks, 01:10 EST (after) compares before 01:30 EDT. Compared in
    UTC, instants compare as instants::

        >>> from datetime import datetime, timedelta, timezone
        >>> as_utc(datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))))
        datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    aware = require_aware(value, name)
    if aware.tzinfo is UTC:
        return aware
    try:
        return aware.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999, in UTC it falls outside
        raise ValidationError(
            f"{name} {aware.isoformat()} has no UTC time within years 1 to 9999"
        ) from None


@runtime_checkable
class Clock(Protocol):
    """Where coinecon gets the current time from.

    Implementations return a timezone-aware ``datetime``. Pass a
    :class:`ManualClock` in tests and simulations to control time.
    """

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to; safe to share between threads.

    Args:
        start: the initial time (timezone-aware).
    """

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def set(self, when: datetime) -> datetime:
        """Move the clock to *when* (forwards or backwards) and return it."""
        aware = require_aware(when, "when")
        with self._lock:
            self._now = aware
        return aware

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by *delta* and return the new time.

        Raises:
            ValidationError: if *delta* is negative, or takes the clock past
                ``datetime.max``.
            InvalidTypeError: if *delta* is not a ``timedelta``.
        """
        if not isinstance(delta, timedelta):
            raise InvalidTypeError(f"delta must be a timedelta, got {type(delta).__name__}")
        if delta < timedelta(0):
            raise ValidationError(f"a clock only advances forwards, got {delta}")
        with self._lock:
            try:
                self._now = self._now + delta
            except OverflowError:
                raise ValidationError(
                    f"advancing {self._now} by {delta} goes beyond the last datetime"
                ) from None
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"
