"""Recurring promotions read without walking their history: the latest
occurrence found from a recent start is the one dateutil finds by walking from
the rule's own start, and rules that never fire are refused when made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dateutil.rrule
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from coinecon import _recurrence
from coinecon._recurrence import HORIZON, Recurrence, _first_day
from coinecon.errors import InvalidPromotionError
from coinecon.pricing import Promotion, PromotionKind

DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
FREQUENCIES = ["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
# How far after the start the time asked about may lie: a walk from the start
# must stay quick enough to check against.
REACH = {"HOURLY": 400, "DAILY": 4000, "WEEKLY": 8000, "MONTHLY": 12000, "YEARLY": 12000}


@st.composite
def rules(draw: st.DrawFn) -> tuple[str, str]:
    """An RRULE body of the kinds promotions use, and its frequency."""
    frequency = draw(st.sampled_from(FREQUENCIES))
    parts = [f"FREQ={frequency}", f"INTERVAL={draw(st.integers(1, 3))}"]
    if draw(st.booleans()):
        if frequency in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            nth = draw(st.sampled_from(["1", "2", "-1", "4"]))
            days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=2, unique=True))
            parts.append("BYDAY=" + ",".join(nth + day for day in days))
        else:
            days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))
            parts.append("BYDAY=" + ",".join(days))
    if frequency != "WEEKLY" and draw(st.booleans()):
        monthdays = draw(
            st.lists(
                st.sampled_from([1, 15, 28, 29, 30, 31, -1]), min_size=1, max_size=2, unique=True
            )
        )
        parts.append("BYMONTHDAY=" + ",".join(map(str, monthdays)))
    if draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
        parts.append("BYMONTH=" + ",".join(map(str, months)))
    if frequency != "HOURLY" and draw(st.booleans()):
        hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True))
        parts.append("BYHOUR=" + ",".join(map(str, hours)))
    if draw(st.booleans()):
        parts.append(f"BYMINUTE={draw(st.integers(0, 59))}")
    bydays = any(p.startswith("BYDAY") for p in parts)
    if frequency in ("MONTHLY", "YEARLY") and bydays and draw(st.booleans()):
        parts.append(f"BYSETPOS={draw(st.sampled_from([1, -1]))}")
    return ";".join(parts), frequency


@settings(max_examples=300, deadline=None)
@given(
    rules(),
    st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1)),  # noqa: DTZ001 (wall times)
    st.floats(0, 1),
    st.integers(1, 24 * 40),
)
def test_the_latest_occurrence_is_the_one_a_walk_from_the_start_finds(
    rule: tuple[str, str], start: datetime, reach: float, hours_back: int
) -> None:
    body, frequency = rule
    start = start.replace(microsecond=0)
    walked = dateutil.rrule.rrulestr(body, dtstart=start)
    assert isinstance(walked, dateutil.rrule.rrule)
    try:
        recurrence: Recurrence | None = Recurrence(body, start)
    except ValueError:
        recurrence = None
    assume(recurrence is not None)
    assert recurrence is not None
    wall = start + timedelta(days=REACH[frequency] * reach)
    since = wall - timedelta(hours=hours_back)
    expected = walked.before(wall, inc=True)
    found = recurrence.latest(wall, since)
    if expected is not None and expected >= since:
        assert found == expected, (body, start, wall, since)
    else:
        assert found is None or found < since, (body, start, wall, since, found)


def _hourly(start: datetime, rule: str = "FREQ=HOURLY") -> Promotion:
    return Promotion(
        "hourly",
        PromotionKind.BONUS_COINS,
        bonus_coins=5,
        start=start,
        rrule=rule,
        duration=timedelta(minutes=30),
    )


def test_a_promotion_started_long_ago_opens_and_closes_on_time() -> None:
    promotion = _hourly(datetime(1926, 1, 1, 0, 10, tzinfo=UTC))
    assert promotion.is_active_at(datetime(2026, 6, 1, 12, 39, tzinfo=UTC))
    assert not promotion.is_active_at(datetime(2026, 6, 1, 12, 40, tzinfo=UTC))
    assert not promotion.is_active_at(datetime(2026, 6, 1, 12, 9, tzinfo=UTC))
    assert promotion.is_active_at(datetime(2026, 6, 1, 12, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    "rule",
    ["FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31"],
)
def test_a_rule_that_never_fires_is_refused_when_made(rule: str) -> None:
    with pytest.raises(InvalidPromotionError, match="no occurrence within 10 years"):
        _hourly(datetime(2026, 1, 1, tzinfo=UTC), rule)


def test_a_rule_that_fires_only_every_few_years_is_kept() -> None:
    leap = _hourly(datetime(2026, 1, 1, tzinfo=UTC), "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29")
    assert leap.first_window_start() == datetime(2028, 2, 29, tzinfo=UTC)
    assert leap.is_active_at(datetime(2032, 2, 29, 0, 29, tzinfo=UTC))


def test_a_count_beyond_the_limit_is_refused() -> None:
    with pytest.raises(InvalidPromotionError, match="COUNT=10001 is more than 10,000"):
        _hourly(datetime(2026, 1, 1, tzinfo=UTC), "FREQ=HOURLY;COUNT=10001")
    most = _hourly(datetime(2026, 1, 1, tzinfo=UTC), "FREQ=HOURLY;COUNT=10000")
    assert most.is_active_at(datetime(2027, 2, 21, 15, 0, tzinfo=UTC))  # the 10,000th
    assert not most.is_active_at(datetime(2027, 2, 21, 16, 0, tzinfo=UTC))
    counted = _hourly(datetime(2026, 1, 1, tzinfo=UTC), "FREQ=DAILY;COUNT=3")
    assert counted.is_active_at(datetime(2026, 1, 3, 0, 1, tzinfo=UTC))
    assert not counted.is_active_at(datetime(2026, 1, 4, 0, 1, tzinfo=UTC))


def wall(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A naive wall-clock time, as rules are read in."""
    return datetime(year, month, day, hour, minute)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("body", "since", "later"),
    [
        ("FREQ=HOURLY", wall(2026, 6, 1, 12, 45), wall(2026, 6, 1, 12, 10)),
        ("FREQ=HOURLY;INTERVAL=5", wall(2026, 1, 2, 0, 0), wall(2026, 1, 1, 20, 10)),
        ("FREQ=DAILY;INTERVAL=2", wall(2026, 1, 8, 0, 0), wall(2026, 1, 7, 0, 10)),
        # Weekly: the Monday (WKST) of that week, so that its whole week is read.
        ("FREQ=WEEKLY", wall(2026, 1, 20, 0, 0), wall(2026, 1, 12)),
        ("FREQ=WEEKLY;WKST=SU", wall(2026, 1, 20, 0, 0), wall(2026, 1, 11)),
        ("FREQ=WEEKLY", wall(2026, 1, 7, 0, 0), wall(2026, 1, 1, 0, 10)),  # no whole week yet
        ("FREQ=MONTHLY;INTERVAL=2", wall(2026, 9, 15), wall(2026, 7, 1, 0, 10)),
        ("FREQ=MONTHLY", wall(2027, 3, 1), wall(2027, 2, 1, 0, 10)),
        ("FREQ=YEARLY", wall(2030, 6, 1), wall(2029, 1, 1, 0, 10)),
        ("FREQ=YEARLY;INTERVAL=3", wall(2040, 6, 1), wall(2038, 1, 1, 0, 10)),
        ("FREQ=DAILY", wall(2025, 1, 1), wall(2026, 1, 1, 0, 10)),  # before the start
    ],
)
def test_a_rule_is_read_from_a_start_whole_intervals_later_just_before_the_time(
    body: str, since: datetime, later: datetime
) -> None:
    """The copy of the rule starts at the last start, a whole number of
    intervals after the rule's own, at or before the time asked about (a
    month or a year earlier still for monthly and yearly rules, whose
    lengths vary), and never before the rule's own start."""
    recurrence = Recurrence(body, wall(2026, 1, 1, 0, 10))
    assert recurrence._later(since) == later


@pytest.mark.parametrize(
    ("body", "start", "wall_time", "since", "latest"),
    [
        # Monthly from the 31st: February and April have no occurrence, and a
        # copy started on the 28th or 30th must not fire there.
        ("FREQ=MONTHLY", wall(2026, 1, 31, 10), wall(2026, 3, 30), wall(2026, 3, 10), None),
        (
            "FREQ=MONTHLY",
            wall(2026, 1, 31, 10),
            wall(2026, 5, 1),
            wall(2026, 3, 1),
            wall(2026, 3, 31, 10),
        ),
        ("FREQ=MONTHLY", wall(2026, 1, 31, 10), wall(2026, 5, 1), wall(2026, 4, 2), None),
        # Yearly from a 29 February: only leap years.
        ("FREQ=YEARLY", wall(2028, 2, 29, 9), wall(2031, 3, 1), wall(2031, 2, 1), None),
        (
            "FREQ=YEARLY",
            wall(2028, 2, 29, 9),
            wall(2032, 3, 1),
            wall(2032, 2, 1),
            wall(2032, 2, 29, 9),
        ),
        # Weekly without BYDAY: the start's weekday; daily: the start's time.
        (
            "FREQ=WEEKLY;INTERVAL=2",
            wall(2026, 1, 1, 8),
            wall(2026, 3, 1),
            wall(2026, 2, 20),
            wall(2026, 2, 26, 8),
        ),
        (
            "FREQ=DAILY",
            wall(2026, 1, 1, 8, 30),
            wall(2026, 5, 5, 12),
            wall(2026, 5, 5),
            wall(2026, 5, 5, 8, 30),
        ),
    ],
)
def test_a_copy_started_later_fires_only_when_the_rule_does(
    body: str, start: datetime, wall_time: datetime, since: datetime, latest: datetime | None
) -> None:
    """What dateutil derives from a rule's start (the day of the month, the
    weekday, the time) is written into the copy: a copy started on a shorter
    month's last day, or on 28 February, keeps the rule's own day."""
    found = Recurrence(body, start).latest(wall_time, since)
    if latest is None:
        assert found is None or found < since
    else:
        assert found == latest


def test_asking_back_in_time_after_asking_ahead() -> None:
    """The copy kept from the last question is used again only when it
    starts where the new one needs."""
    recurrence = Recurrence("FREQ=DAILY", wall(2026, 1, 1, 8))
    assert recurrence.latest(wall(2030, 1, 1, 9), wall(2030, 1, 1)) == wall(2030, 1, 1, 8)
    assert recurrence.latest(wall(2027, 1, 1, 9), wall(2027, 1, 1)) == wall(2027, 1, 1, 8)
    assert recurrence.latest(wall(2027, 1, 1, 10), wall(2027, 1, 1)) == wall(2027, 1, 1, 8)


@pytest.mark.parametrize(
    ("body", "wall_time", "latest"),
    [
        # The first week of a weekly rule is read from its start only: a copy
        # started mid-week would count BYSETPOS among that part week's days.
        ("FREQ=WEEKLY;BYDAY=MO,FR;BYSETPOS=1", wall(2024, 3, 9, 12), wall(2024, 3, 4)),
        ("FREQ=WEEKLY;BYDAY=MO,FR;BYSETPOS=-1", wall(2024, 3, 9, 12), wall(2024, 3, 8)),
        # BYWEEKDAY is dateutil's other name for BYDAY.
        ("FREQ=MONTHLY;BYWEEKDAY=FR", wall(2024, 3, 9, 12), wall(2024, 3, 8)),
        ("FREQ=WEEKLY;BYWEEKDAY=FR", wall(2024, 3, 9, 12), wall(2024, 3, 8)),
    ],
)
def test_rules_read_from_a_later_start_as_dateutil_reads_them(
    body: str, wall_time: datetime, latest: datetime
) -> None:
    recurrence = Recurrence(body, wall(2024, 1, 3))  # a Wednesday
    assert recurrence.latest(wall_time, wall(2024, 3, 2)) == latest


def test_an_interval_below_one_is_refused() -> None:
    for interval in ("0", "-1"):
        with pytest.raises(InvalidPromotionError, match=f"INTERVAL={interval}"):
            _hourly(datetime(2026, 1, 1, tzinfo=UTC), f"FREQ=DAILY;INTERVAL={interval}")


def test_a_window_longer_than_the_calendar() -> None:
    promotion = Promotion(
        "forever",
        PromotionKind.BONUS_COINS,
        bonus_coins=5,
        start=datetime(2026, 1, 1, tzinfo=UTC),
        rrule="FREQ=YEARLY",
        duration=timedelta(days=800_000),
    )
    assert promotion.is_active_at(datetime(2030, 6, 1, tzinfo=UTC))


@st.composite
def day_parts(draw: st.DrawFn) -> dict[str, str]:
    """Day parts of a daily rule that fires within a year or two."""
    parts = {"FREQ": "DAILY"}
    if draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
        parts["BYMONTH"] = ",".join(map(str, months))
    if draw(st.booleans()):
        days = draw(
            st.lists(st.integers(1, 28) | st.integers(-28, -1), min_size=1, max_size=3, unique=True)
        )
        parts["BYMONTHDAY"] = ",".join(map(str, days))
    elif "BYMONTH" not in parts and draw(st.booleans()):  # (with months, may never fire)
        days = draw(
            st.lists(
                st.integers(1, 365) | st.integers(-365, -1), min_size=1, max_size=2, unique=True
            )
        )
        parts["BYYEARDAY"] = ",".join(map(str, days))
    if draw(st.booleans()):
        parts["BYDAY"] = ",".join(
            draw(st.lists(st.sampled_from(DAYS), min_size=2, max_size=5, unique=True))
        )
    return parts


@settings(max_examples=300, deadline=None)
@given(day_parts(), st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1)))  # noqa: DTZ001
def test_the_first_day_a_rule_may_fire_is_dateutils(parts: dict[str, str], start: datetime) -> None:
    """The days allowed by a rule's day parts, found a day at a time, are
    the days a daily rule with those parts fires on."""
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    rule = dateutil.rrule.rrulestr(";".join(f"{k}={v}" for k, v in parts.items()), dtstart=midnight)
    assert isinstance(rule, dateutil.rrule.rrule)
    first = rule.after(midnight, inc=True)
    assume(first is not None and first < midnight + HORIZON)
    assert _first_day(parts, start, start + HORIZON) == first


def test_the_first_day_reads_the_weekday_of_an_nth_weekday() -> None:
    parts = {"FREQ": "MONTHLY", "BYDAY": "-1FR"}
    assert _first_day(parts, wall(2024, 1, 3, 12), wall(2025, 1, 1)) == wall(2024, 1, 5)
    assert (
        _first_day(
            {"FREQ": "DAILY", "BYMONTH": "2", "BYMONTHDAY": "30"},
            wall(2024, 1, 3),
            wall(2034, 1, 3),
        )
        is None
    )


def test_a_rule_first_firing_at_the_horizon_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """The horizon is inclusive: a rule whose first day is the horizon's own
    is kept; one a day later is refused."""
    monkeypatch.setattr(_recurrence, "HORIZON", relativedelta(days=3))
    start = wall(2026, 1, 1)  # a Thursday; three days on, a Sunday
    assert Recurrence("FREQ=DAILY;BYDAY=SU", start).first == wall(2026, 1, 4)
    with pytest.raises(ValueError, match="no occurrence"):
        Recurrence("FREQ=DAILY;BYDAY=MO", start)


def test_a_rule_whose_days_come_but_whose_periods_never_do_is_refused() -> None:
    """29 February every twenty years from 2025: the day exists in 2028, but
    the rule's years (2025, 2045, 2065...) have none."""
    with pytest.raises(ValueError, match="no occurrence"):
        Recurrence("FREQ=YEARLY;INTERVAL=20;BYMONTH=2;BYMONTHDAY=29", wall(2025, 1, 1))


@pytest.mark.parametrize(
    ("body", "wall_time", "since", "latest"),
    [
        # Within the first month or year, the copy is the rule itself.
        ("FREQ=MONTHLY;BYMONTHDAY=10,25", wall(2026, 1, 26), wall(2026, 1, 20), wall(2026, 1, 25)),
        (
            "FREQ=YEARLY;BYMONTH=1,6;BYMONTHDAY=10",
            wall(2026, 6, 11),
            wall(2026, 6, 1),
            wall(2026, 6, 10),
        ),
    ],
)
def test_within_the_first_period_nothing_is_skipped(
    body: str, wall_time: datetime, since: datetime, latest: datetime
) -> None:
    assert Recurrence(body, wall(2026, 1, 10)).latest(wall_time, since) == latest


def test_a_yearly_rule_with_its_months_keeps_them() -> None:
    recurrence = Recurrence("FREQ=YEARLY;BYMONTH=6", wall(2026, 1, 10, 9))
    assert recurrence.latest(wall(2030, 7, 1), wall(2030, 6, 1)) == wall(2030, 6, 10, 9)
