"""When something is offered: always, in one window, or in recurring windows.

A promotion of a price book and a gift of a catalog share this one value::

    >>> from datetime import datetime, timedelta
    >>> from zoneinfo import ZoneInfo
    >>> berlin = ZoneInfo("Europe/Berlin")
    >>> evenings = Availability(
    ...     start=datetime(2026, 1, 2, 18, tzinfo=berlin), rrule="FREQ=WEEKLY;BYDAY=FR",
    ...     duration=timedelta(hours=4), timezone="Europe/Berlin",
    ... )
    >>> evenings.is_open_at(datetime(2026, 3, 6, 21, 59, tzinfo=berlin))
    True
    >>> evenings.is_open_at(datetime(2026, 3, 6, 22, 0, tzinfo=berlin))
    False
    >>> ALWAYS.is_open_at(datetime(2026, 3, 6, tzinfo=berlin))
    True
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import dateutil.rrule

from coinecon._recurrence import HORIZON, MAX_COUNT, Recurrence
from coinecon.clock import require_aware
from coinecon.errors import InvalidScheduleError

__all__ = ["ALWAYS", "HORIZON", "MAX_COUNT", "Availability", "time_zone"]

# Rules that recur more often than hourly would make evaluating a window slow
# (every occurrence since the start is walked) and no real offer needs them.
_TOO_FREQUENT = {"SECONDLY", "MINUTELY"}


def time_zone(value: tzinfo | str) -> tzinfo:
    """*value* as a ``tzinfo``: itself, or the IANA zone it names.

    Raises:
        InvalidScheduleError: for an unknown name, or anything else.
    """
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidScheduleError(f"unknown time zone {value!r}") from None
    if not isinstance(value, tzinfo):
        raise InvalidScheduleError(f"a time zone must be a tzinfo or a name, got {value!r}")
    return value


def _optional_aware(value: datetime | None) -> datetime | None:
    return None if value is None else require_aware(value, "a window bound")


def _zone_name(zone: tzinfo) -> str:
    """The IANA name of *zone*, as JSON keeps it."""
    if zone is UTC:
        return "UTC"
    if isinstance(zone, ZoneInfo):
        return zone.key
    raise InvalidScheduleError(
        f"only UTC or a zoneinfo.ZoneInfo can be written as JSON, got {zone!r}"
    )


@final
@attrs.frozen
class Availability:
    """When something is offered.

    Args:
        start: offered from this instant (inclusive); also where a recurrence
            starts counting. ``None``: from the beginning.
        end: offered until this instant (exclusive). ``None``: with no end.
        rrule: an RFC 5545 recurrence rule (``"FREQ=WEEKLY;BYDAY=FR"``),
            evaluated as wall-clock times in *timezone* from *start*; it is
            then offered only during ``[occurrence, occurrence + duration)``.
            Needs *start* and *duration*. At most hourly: no ``MINUTELY`` or
            ``SECONDLY`` frequency, and at most one ``BYMINUTE`` and one
            ``BYSECOND`` value (several ``BYHOUR`` values are fine). Bound it
            with *end* rather than ``UNTIL``, whose value would have to be a
            local wall-clock time. A rule must fire within ten years of
            *start* (``HORIZON``, ten years) and count at most 10,000 occurrences
            with ``COUNT`` (``MAX_COUNT``). Whether a window is open is
            found from the last few periods, however long ago *start* was.
        duration: how long each recurring window lasts (elapsed time).
        timezone: the time zone the rule is read in (a ``tzinfo`` or an IANA
            name; default UTC).

    Raises:
        InvalidScheduleError: for a rule that does not parse, recurs more
            often than hourly or never fires; a rule without a start or a
            positive duration; a duration without a rule; an unknown time zone.
        NaiveDatetimeError: for a bound without a time zone.
    """

    start: datetime | None = attrs.field(default=None, converter=_optional_aware)
    end: datetime | None = attrs.field(default=None, converter=_optional_aware)
    rrule: str | None = attrs.field(default=None)
    duration: timedelta | None = attrs.field(default=None)
    timezone: tzinfo = attrs.field(default=UTC, converter=time_zone)
    _rule: Recurrence | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_rule", self._parse_rule())

    def _parse_rule(self) -> Recurrence | None:
        if self.rrule is None:
            if self.duration is not None:
                raise InvalidScheduleError("a duration needs a recurrence rule")
            return None
        text = self.rrule
        if not isinstance(text, str):
            raise InvalidScheduleError("rrule must be a string")
        body = text.strip().removeprefix("RRULE:")
        if not body or "\n" in body or ":" in body or "DTSTART" in body.upper():
            raise InvalidScheduleError(
                "rrule must be one RRULE such as 'FREQ=WEEKLY;BYDAY=FR' "
                f"(the recurrence starts at start=), got {text!r}"
            )
        if self.start is None:
            raise InvalidScheduleError("a recurring window needs a start to count from")
        if not isinstance(self.duration, timedelta) or self.duration <= timedelta(0):
            raise InvalidScheduleError(
                f"a recurring window needs a positive duration, got {self.duration!r}"
            )
        anchor = self.start.astimezone(self.timezone).replace(tzinfo=None)
        try:
            parsed = dateutil.rrule.rrulestr(body, dtstart=anchor)
        except (ValueError, TypeError) as error:
            raise InvalidScheduleError(f"rrule {text!r} does not parse: {error}") from None
        if not isinstance(parsed, dateutil.rrule.rrule):  # pragma: no cover (one RRULE, one rule)
            raise InvalidScheduleError(f"rrule {text!r} is not one rule")
        _check_frequency(body)
        try:
            return Recurrence(body, anchor)
        except ValueError as error:
            raise InvalidScheduleError(f"rrule {text!r} is refused: {error}") from None

    @property
    def always(self) -> bool:
        """Whether it is offered at every instant."""
        return self.start is None and self.end is None and self.rrule is None

    def is_open_at(self, now: datetime) -> bool:
        """Whether *now* is inside the window(s).

        Raises:
            NaiveDatetimeError: if *now* has no time zone.
        """
        now = require_aware(now, "now")
        if self.start is not None and now < self.start:
            return False
        if self.end is not None and now >= self.end:
            return False
        if self._rule is None or self.duration is None:
            return True
        wall = now.astimezone(self.timezone).replace(tzinfo=None)
        # Only a window that began within its duration of now can hold now
        # (a day more for a change of the clocks between them).
        try:
            since = (now - self.duration - timedelta(days=1)).astimezone(self.timezone)
        except OverflowError:  # a window longer than the calendar: read the whole rule
            occurrence = self._rule.latest(wall, None)
        else:
            occurrence = self._rule.latest(wall, since.replace(tzinfo=None))
        if occurrence is None:
            return False
        began = occurrence.replace(tzinfo=self.timezone).astimezone(UTC)
        return now < began + self.duration

    def first_open(self) -> datetime | None:
        """The first instant it is offered, or ``None`` if it never is (an
        empty window, or a rule without occurrences inside it)."""
        if self.start is not None and self.end is not None and self.end <= self.start:
            return None
        if self._rule is None:
            return self.start or datetime.min.replace(tzinfo=UTC)
        first = self._rule.first
        if first is None:  # UNTIL ended the rule before it fired
            return None
        began = first.replace(tzinfo=self.timezone).astimezone(UTC)
        if self.end is not None and began >= self.end:
            return None
        return began

    def to_data(self) -> dict[str, Any]:
        """As JSON (the duration in whole seconds, the zone by its IANA name)."""
        duration = None
        if self.duration is not None:
            seconds = self.duration.total_seconds()
            if self.duration != timedelta(seconds=int(seconds)):
                raise InvalidScheduleError(
                    f"only a duration of whole seconds can be written as JSON, got {self.duration}"
                )
            duration = int(seconds)
        return {
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "rrule": self.rrule,
            "duration_seconds": duration,
            "timezone": _zone_name(self.timezone),
        }

    @classmethod
    def from_data(cls, data: Any) -> Availability:
        """What :meth:`to_data` wrote."""
        seconds = data["duration_seconds"]
        return cls(
            start=None if data["start"] is None else datetime.fromisoformat(data["start"]),
            end=None if data["end"] is None else datetime.fromisoformat(data["end"]),
            rrule=data["rrule"],
            duration=None if seconds is None else timedelta(seconds=seconds),
            timezone=UTC if data["timezone"] == "UTC" else data["timezone"],
        )


ALWAYS = Availability()
"""Offered at every instant."""


def _check_frequency(body: str) -> None:
    """Refuse a rule (one that parsed) that can fire more often than hourly:
    a minutely or secondly frequency, or several minutes or seconds in a rule
    of any frequency (``FREQ=HOURLY;BYMINUTE=0,30`` fires twice an hour).
    Several hours (``BYHOUR``) with one minute each stay at most hourly."""
    parts = dict(part.split("=", 1) for part in body.upper().split(";") if part)
    frequency = parts.get("FREQ", "")
    if frequency in _TOO_FREQUENT:
        raise InvalidScheduleError(f"a window may recur at most hourly, got {frequency}")
    for field in ("BYMINUTE", "BYSECOND"):
        values = {int(v) for v in parts.get(field, "").split(",") if v}
        if len(values) > 1:
            raise InvalidScheduleError(
                f"a window may recur at most hourly, but "
                f"{field}={parts[field]} gives {len(values)} occurrences in an hour"
            )
