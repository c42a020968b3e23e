"""Recurrence rules read without walking their history.

dateutil walks a rule from its start to find an occurrence, so a promotion
started years ago, or a rule that never fires, costs more with every quote.
:class:`Recurrence` asks instead a copy of the rule that starts a whole
number of intervals later, just before the time in question: the same
occurrences from there on, found in a few steps. It refuses, when the
promotion is made, a rule with no occurrence within :data:`HORIZON` of its
start, or one that counts more than :data:`MAX_COUNT` occurrences.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

import dateutil.rrule
from dateutil.relativedelta import relativedelta

HORIZON = relativedelta(years=10)
"""A recurring promotion must start a window within this long of its start."""
MAX_COUNT = 10_000
"""The most occurrences a rule with ``COUNT`` may have (``UNTIL`` has no limit)."""

_STEPS = {"HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1), "WEEKLY": timedelta(weeks=1)}


_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_NEVER = "it has no occurrence within {years} years of the start, {start}"


def _first_day(parts: dict[str, str], start: datetime, horizon: datetime) -> datetime | None:
    """The first day from *start*'s to *horizon* that a rule's day parts
    (``BYMONTH``, ``BYMONTHDAY``, ``BYYEARDAY`` and the weekdays of
    ``BYDAY``) allow, as its midnight, or ``None`` if none does. It reads
    no ``BYWEEKNO`` and no ``INTERVAL``: the rule fires on no other day, if
    on these. A day at a time, in Python: dateutil itself, given a rule that
    never fires, looks for an occurrence up to the year 9999."""
    months = _numbers(parts.get("BYMONTH"))
    monthdays = _numbers(parts.get("BYMONTHDAY"))
    yeardays = _numbers(parts.get("BYYEARDAY"))
    weekdays = {
        _DAYS.index(day.lstrip("+-0123456789")) for day in parts.get("BYDAY", "").split(",") if day
    }
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= horizon:
        last = calendar.monthrange(day.year, day.month)[1]
        in_year = 366 if calendar.isleap(day.year) else 365
        yearday = day.timetuple().tm_yday
        if (
            (not months or day.month in months)
            and (not monthdays or day.day in monthdays or day.day - last - 1 in monthdays)
            and (not yeardays or yearday in yeardays or yearday - in_year - 1 in yeardays)
            and (not weekdays or day.weekday() in weekdays)
        ):
            return day
        day += timedelta(days=1)
    return None


def _numbers(value: str | None) -> set[int]:
    return {int(number) for number in value.split(",") if number} if value else set()


class Recurrence:
    """An RRULE *body* counted from *start* (naive wall time): the latest
    occurrence at or before a time, looked for from a recent start, and the
    first one.

    Raises:
        ValueError: for a rule that does not parse, one with no occurrence
            within :data:`HORIZON` of its start, or more than :data:`MAX_COUNT`
            occurrences by ``COUNT``.
    """

    def __init__(self, body: str, start: datetime) -> None:
        # dateutil reads BYWEEKDAY as BYDAY: so does everything here.
        body = re.sub("BYWEEKDAY=", "BYDAY=", body, flags=re.IGNORECASE)
        rule = dateutil.rrule.rrulestr(body, dtstart=start)
        assert isinstance(rule, dateutil.rrule.rrule)  # noqa: S101 (one RRULE gives one rule)
        self.rule = rule
        self.start = start
        parts = dict(part.split("=", 1) for part in body.upper().split(";") if part)
        self._frequency = parts["FREQ"]
        self._interval = int(parts.get("INTERVAL", "1"))
        if self._interval < 1:
            raise ValueError(f"INTERVAL={self._interval} is not a positive number of periods")
        self._week_start = _DAYS.index(parts.get("WKST", "MO"))
        count = parts.get("COUNT")
        if count is not None and int(count) > MAX_COUNT:
            raise ValueError(
                f"COUNT={int(count)} is more than {MAX_COUNT:,} occurrences; give UNTIL instead"
            )
        # With COUNT, the occurrences are counted from the start: walk them.
        self._shifts = count is None
        derived = _derived(parts, start)
        self._explicit = ";".join([body, *derived])
        self._recent: tuple[datetime, dateutil.rrule.rrule] | None = None
        # Without COUNT and UNTIL, which only end a rule, and ended at the
        # horizon instead: dateutil then stops looking there.
        endless = ";".join(f"{k}={v}" for k, v in parts.items() if k not in ("COUNT", "UNTIL"))
        horizon = start + HORIZON
        # A rule fires only on the days its day parts allow: look for the
        # first such day a day at a time, then, for an hourly rule, for the
        # occurrence from that day on rather than hour by hour from the start.
        day = _first_day(parts, start, horizon)
        if day is None:
            raise ValueError(_NEVER.format(years=HORIZON.years, start=start))
        since = max(day, start) if self._frequency == "HOURLY" else start
        if since > start:
            looked = dateutil.rrule.rrulestr(
                ";".join([endless, *derived]), dtstart=self._later(since)
            )
        else:
            looked = dateutil.rrule.rrulestr(endless, dtstart=start)
        assert isinstance(looked, dateutil.rrule.rrule)  # noqa: S101 (one RRULE)
        if looked.replace(until=horizon).after(start, inc=True) is None:
            raise ValueError(_NEVER.format(years=HORIZON.years, start=start))
        # None when UNTIL ends the rule before it fires.
        self.first: datetime | None = (
            self._from(since) if self._shifts and since > start else rule
        ).after(start, inc=True)

    def latest(self, wall: datetime, since: datetime | None) -> datetime | None:
        """The latest occurrence at or before *wall*, when one is at or after
        *since* (earlier ones are not looked for, and may not be found; all
        are when *since* is ``None``)."""
        shift = self._shifts and since is not None and since > self.start
        rule = self._from(since) if shift and since is not None else self.rule
        occurrence: datetime | None = rule.before(wall, inc=True)
        return occurrence

    def _from(self, since: datetime) -> dateutil.rrule.rrule:
        """The rule from the last start a whole number of intervals after its
        own that is at or before *since*: the same occurrences from there."""
        later = self._later(since)
        recent = self._recent
        if recent is not None and recent[0] == later:
            return recent[1]
        shifted = dateutil.rrule.rrulestr(self._explicit, dtstart=later)
        assert isinstance(shifted, dateutil.rrule.rrule)  # noqa: S101 (one RRULE)
        self._recent = (later, shifted)
        return shifted

    def _later(self, since: datetime) -> datetime:
        """The last start a whole number of intervals after the rule's own
        that is at or before *since*."""
        start = self.start
        interval = self._interval
        step = _STEPS.get(self._frequency)
        if step is not None:
            periods = max((since - start) // (step * interval), 0)
            later = start + step * interval * periods
            if self._frequency == "WEEKLY" and periods:
                # dateutil reads a weekly rule's first week from its start
                # only (BYSETPOS would count that part week's days): start the
                # copy at the beginning of its week instead, a whole week, all
                # of it after the rule's own start.
                days = (later.weekday() - self._week_start) % 7
                later = (later - timedelta(days=days)).replace(hour=0, minute=0, second=0)
        elif self._frequency == "MONTHLY":
            months = (since.year - start.year) * 12 + since.month - start.month - 1
            later = start + relativedelta(months=max(months, 0) // interval * interval)
        else:  # YEARLY
            years = since.year - start.year - 1
            later = start + relativedelta(years=max(years, 0) // interval * interval)
        return later


def _derived(parts: dict[str, str], start: datetime) -> list[str]:
    """The parts dateutil derives from a rule's start when they are not
    given (the time of day, the weekday of a weekly rule, the day of a
    monthly one...), as RRULE parts: a copy of the rule with them, started
    elsewhere, derives nothing from its own start."""
    frequency = parts["FREQ"]
    derived = []
    # Promotions recur at most hourly: the minute and second always come from
    # the start unless given, the hour unless the rule is hourly.
    if "BYHOUR" not in parts and frequency != "HOURLY":
        derived.append(f"BYHOUR={start.hour}")
    if "BYMINUTE" not in parts:
        derived.append(f"BYMINUTE={start.minute}")
    if "BYSECOND" not in parts:
        derived.append(f"BYSECOND={start.second}")
    if not any(p in parts for p in ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYEASTER")):
        if frequency == "YEARLY":
            if "BYMONTH" not in parts:
                derived.append(f"BYMONTH={start.month}")
            derived.append(f"BYMONTHDAY={start.day}")
        elif frequency == "MONTHLY":
            derived.append(f"BYMONTHDAY={start.day}")
        elif frequency == "WEEKLY":
            derived.append(f"BYDAY={_DAYS[start.weekday()]}")
    return derived
