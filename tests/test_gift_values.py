"""The values behind gifts: availability windows, gifts and catalogs, the
revenue share and its carry (with the invariant that a gift's shares add up
to its coins, as a property)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinecon import Promotion, PromotionKind, Rate
from coinecon.availability import ALWAYS, Availability
from coinecon.creators import ConversionRate, CreatorProfile, RevenueShare
from coinecon.errors import (
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidPromotionError,
    InvalidRateError,
    InvalidRegionError,
    InvalidScheduleError,
    InvalidTypeError,
    NaiveDatetimeError,
    NotFoundError,
    ValidationError,
)
from coinecon.gifts import Gift, GiftCatalog, GiftPolicy
from coinecon.recharge import EligibilityPolicy

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)

# -- availability ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"duration": timedelta(hours=1)}, "a duration needs a recurrence rule"),
        ({"rrule": "FREQ=DAILY", "duration": timedelta(hours=1)}, "needs a start"),
        ({"rrule": "FREQ=DAILY", "start": T0}, "positive duration"),
        ({"rrule": "FREQ=DAILY", "start": T0, "duration": timedelta(0)}, "positive duration"),
        ({"rrule": "FREQ=MINUTELY", "start": T0, "duration": timedelta(1)}, "at most hourly"),
        ({"rrule": "FREQ=HOURLY;BYMINUTE=0,30", "start": T0, "duration": timedelta(1)}, "hourly"),
        ({"rrule": "FREQ=SOMETIMES", "start": T0, "duration": timedelta(1)}, "does not parse"),
        ({"rrule": "DTSTART:20260101", "start": T0, "duration": timedelta(1)}, "one RRULE"),
        ({"rrule": 7, "start": T0, "duration": timedelta(1)}, "must be a string"),
        (
            {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "start": T0, "duration": timedelta(1)},
            "refused",
        ),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": 3}, "a tzinfo or a name"),
    ],
)
def test_a_malformed_window_is_refused(arguments: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidScheduleError, match=match):
        Availability(**arguments)  # type: ignore[arg-type]


def test_a_window_bound_needs_a_time_zone() -> None:
    with pytest.raises(NaiveDatetimeError):
        Availability(start=datetime(2026, 1, 1))  # noqa: DTZ001


def test_a_promotion_still_says_which_promotion_its_window_breaks() -> None:
    with pytest.raises(InvalidPromotionError, match="promotion friday: a window may recur"):
        Promotion(
            "friday",
            PromotionKind.BONUS_COINS,
            bonus_coins=5,
            start=T0,
            rrule="FREQ=MINUTELY",
            duration=timedelta(minutes=1),
        )
    promotion = Promotion("any", PromotionKind.BONUS_COINS, bonus_coins=5, timezone="Asia/Seoul")
    assert promotion.timezone == ZoneInfo("Asia/Seoul")
    assert promotion.window == Availability(timezone="Asia/Seoul")


def test_windows_open_and_close() -> None:
    assert ALWAYS.always and ALWAYS.is_open_at(T0)
    assert ALWAYS.first_open() == datetime.min.replace(tzinfo=UTC)
    once = Availability(start=T0, end=T0 + timedelta(days=1))
    assert not once.always
    assert not once.is_open_at(T0 - timedelta(microseconds=1))
    assert once.is_open_at(T0)
    assert not once.is_open_at(T0 + timedelta(days=1))
    assert once.first_open() == T0
    assert Availability(start=T0, end=T0).first_open() is None
    seoul = Availability(
        start=datetime(2026, 3, 6, 20, tzinfo=ZoneInfo("Asia/Seoul")),
        rrule="FREQ=WEEKLY;BYDAY=FR",
        duration=timedelta(hours=2),
        timezone="Asia/Seoul",
    )
    assert seoul.is_open_at(datetime(2026, 4, 3, 11, 30, tzinfo=UTC))  # 20:30 in Seoul
    assert not seoul.is_open_at(datetime(2026, 4, 3, 13, tzinfo=UTC))
    assert seoul.first_open() == datetime(2026, 3, 6, 11, tzinfo=UTC)


zones = st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")])
windows = st.builds(
    lambda start, days, recurring, hours, zone, use_end: Availability(
        start=start,
        end=start + timedelta(days=days) if use_end else None,
        rrule="FREQ=DAILY" if recurring else None,
        duration=timedelta(hours=hours) if recurring else None,
        timezone=zone,
    ),
    st.datetimes(
        min_value=datetime(2020, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
        max_value=datetime(2030, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.integers(1, 400),
    st.booleans(),
    st.integers(1, 23),
    zones,
    st.booleans(),
) | st.just(ALWAYS)


@given(
    windows,
    st.datetimes(
        min_value=datetime(2019, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
        max_value=datetime(2031, 1, 1),  # noqa: DTZ001
    ),
)
def test_a_window_written_as_json_reads_back_the_same(window: Availability, at: datetime) -> None:
    again = Availability.from_data(window.to_data())
    assert again == window
    moment = at.replace(tzinfo=UTC)
    assert again.is_open_at(moment) == window.is_open_at(moment)


def test_only_whole_seconds_and_named_zones_are_written_as_json() -> None:
    with pytest.raises(InvalidScheduleError, match="whole seconds"):
        Availability(start=T0, rrule="FREQ=DAILY", duration=timedelta(milliseconds=1500)).to_data()
    with pytest.raises(InvalidScheduleError, match="zoneinfo"):
        Availability(timezone=timezone(timedelta(hours=2))).to_data()


# -- gifts and catalogs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"id": ""}, InvalidIdentifierError),
        ({"name": "  "}, ValidationError),
        ({"name": "x" * 201}, ValidationError),
        ({"name": 5}, ValidationError),
        ({"price": 0}, InvalidAmountError),
        ({"price": -1}, InvalidAmountError),
        ({"price": True}, InvalidAmountError),
        ({"price": 1.0}, InvalidAmountError),
        ({"price": 10**12 + 1}, InvalidAmountError),
        ({"display": {"size": 1.5}}, FloatNotAllowedError),
        ({"display": {"": "x"}}, InvalidTypeError),
        ({"display": {"nested": {"a": 1}}}, InvalidTypeError),
        ({"display": ["animation"]}, InvalidTypeError),
        ({"regions": "US"}, InvalidTypeError),
        ({"regions": {"UK"}}, InvalidRegionError),
        ({"min_age": 0}, ValidationError),
        ({"min_age": 100}, ValidationError),
        ({"min_age": True}, ValidationError),
        ({"availability": "always"}, InvalidTypeError),
    ],
)
def test_a_malformed_gift_is_refused(changes: dict[str, object], error: type[Exception]) -> None:
    arguments: dict[str, object] = {"id": "rose", "name": "Rose", "price": 1}
    arguments.update(changes)
    with pytest.raises(error):
        Gift(**arguments)  # type: ignore[arg-type]


def test_a_catalog_keeps_unique_gifts_in_id_order_and_versions_each_change() -> None:
    rose, heart = Gift("rose", "Rose", 1), Gift("heart", "Heart", 5)
    catalog = GiftCatalog([rose, heart])
    assert [g.id for g in catalog.gifts] == ["heart", "rose"]
    assert "rose" in catalog and "tulip" not in catalog
    assert catalog.without("rose") == GiftCatalog([heart], version=2)
    assert catalog.with_gift(Gift("rose", "Red rose", 2)).get("rose").name == "Red rose"
    with pytest.raises(NotFoundError, match="no gift 'tulip' in the catalog \\(version 1\\)"):
        catalog.get("tulip")
    with pytest.raises(NotFoundError):
        catalog.without("tulip")
    with pytest.raises(ValidationError, match="twice"):
        GiftCatalog([rose, rose])
    with pytest.raises(InvalidTypeError):
        GiftCatalog(["rose"])
    with pytest.raises(InvalidTypeError):
        GiftCatalog("rose")
    with pytest.raises(InvalidTypeError):
        catalog.with_gift("rose")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        GiftCatalog([], version=0)


def test_what_a_catalog_offers_depends_on_region_and_time() -> None:
    later = Availability(start=T0 + timedelta(hours=1))
    catalog = GiftCatalog(
        [
            Gift("rose", "Rose", 1),
            Gift("lion", "Lion", 299, regions={"US"}),
            Gift("moon", "Moon", 10, availability=later),
        ]
    )
    assert [g.id for g in catalog.offered("US", T0)] == ["lion", "rose"]
    assert [g.id for g in catalog.offered("FR", T0)] == ["rose"]
    assert [g.id for g in catalog.offered("FR", T0 + timedelta(hours=1))] == ["moon", "rose"]
    with pytest.raises(InvalidRegionError):
        catalog.offered("Mars", T0)


gifts = st.builds(
    Gift,
    st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
    st.text(min_size=1, max_size=20).filter(str.strip),
    st.integers(1, 10**12),
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        max_size=3,
    ),
    windows,
    st.frozensets(st.sampled_from(["US", "FR", "KR", "BR"])),
    st.none() | st.integers(1, 99),
)


@given(gifts)
def test_a_gift_written_as_json_reads_back_the_same(gift: Gift) -> None:
    assert Gift.from_data(gift.to_data()) == gift
    assert attrs.evolve(gift) == gift


def test_a_gift_policy_refuses_what_it_cannot_follow() -> None:
    with pytest.raises(InvalidTypeError):
        GiftPolicy(allow_self_gift=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        GiftPolicy(regions="US")
    with pytest.raises(ValidationError):
        GiftPolicy(max_quantity=0)
    with pytest.raises(ValidationError):
        GiftPolicy(max_quantity=10_001)
    assert GiftPolicy(regions=["US"]).regions == frozenset({"US"})


# -- the revenue share and its carry -----------------------------------------------------


def test_a_creators_own_rate_wins_while_it_is_in_effect() -> None:
    june = T0.replace(month=6)
    share = RevenueShare(
        "50%",
        changes=[(T0, Rate("45%")), (june, Rate("40%"))],
        creators={"star": [(june, Rate("70%"))], "agency-1": Rate("60%")},
    )
    assert share.rate_for("someone", T0 - timedelta(1)) == Rate("50%")
    assert share.rate_for("someone", T0) == Rate("45%")
    assert share.rate_for("someone", june) == Rate("40%")
    assert share.rate_for("someone", None) == Rate("40%")
    assert share.rate_for("star", T0) == Rate("45%")  # not theirs until June
    assert share.rate_for("star", june) == Rate("70%")
    assert share.rate_for("agency-1", T0 - timedelta(1)) == Rate("60%")
    with pytest.raises(NaiveDatetimeError):
        share.rate_for("star", datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"default": "101%"}, InvalidRateError),
        ({"default": "-1%"}, InvalidRateError),
        ({"default": 0.5}, FloatNotAllowedError),
        ({"changes": [(None, "40%")]}, ValidationError),
        ({"changes": [(T0, "40%"), (T0, "45%")]}, ValidationError),
        ({"changes": [(datetime(2026, 1, 1), "40%")]}, NaiveDatetimeError),  # noqa: DTZ001
        ({"changes": "40%"}, InvalidTypeError),
        ({"changes": [T0]}, InvalidTypeError),
        ({"creators": [("star", "60%")]}, InvalidTypeError),
        ({"creators": {"": "60%"}}, InvalidIdentifierError),
        ({"creators": {"star": [(None, "60%"), (None, "70%")]}}, ValidationError),
        ({"creators": {"star": "160%"}}, InvalidRateError),
    ],
)
def test_a_malformed_revenue_share_is_refused(
    arguments: dict[str, object], error: type[Exception]
) -> None:
    settings: dict[str, object] = {"default": "50%"}
    settings.update(arguments)
    with pytest.raises(error):
        RevenueShare(**settings)


def test_a_split_refuses_what_is_not_a_gift_or_a_carry() -> None:
    half = Rate("50%")
    for coins in (0, -1, True, 1.0):
        with pytest.raises(ValidationError):
            RevenueShare.split(coins, half, Fraction(0))  # type: ignore[arg-type]
    for carry in (Fraction(1), Fraction(-1, 2), 0.5, 0):
        with pytest.raises(ValidationError):
            RevenueShare.split(1, half, carry)


rates = st.fractions(min_value=0, max_value=1, max_denominator=1000).map(Rate)


@given(st.lists(st.tuples(st.integers(1, 10**9), rates), min_size=1, max_size=60))
def test_the_shares_of_every_gift_add_up_and_the_carry_loses_nothing(
    gifts: list[tuple[int, Rate]],
) -> None:
    """Invariant 3: for every gift, the creator's share plus the platform's is
    the coins spent; over any sequence, what was credited plus what is carried
    is exactly the creator's shares."""
    carry = Fraction(0)
    credited = 0
    shares = Fraction(0)
    for coins, rate in gifts:
        split = RevenueShare.split(coins, rate, carry)
        assert split.creator_share + split.platform_share == coins
        assert split.creator_share == coins * rate.fraction
        assert 0 <= split.carry < 1
        assert split.earned >= 0
        credited += split.earned
        shares += split.creator_share
        carry = split.carry
    assert credited + carry == shares
    assert credited == int(shares)  # never more than earned, never a whole unit late


@given(st.integers(1, 2000), st.integers(1, 100))
def test_many_one_coin_gifts_earn_the_rate_of_their_total(gifts: int, percent: int) -> None:
    rate = Rate.percent(percent)
    carry = Fraction(0)
    credited = 0
    for _ in range(gifts):
        split = RevenueShare.split(1, rate, carry)
        credited += split.earned
        carry = split.carry
    assert credited == gifts * percent // 100


def test_a_creator_profile_keeps_its_carry_exactly() -> None:
    profile = CreatorProfile("cat", True, None, "US", Fraction(2, 3), 4)
    record = profile.record(T0)
    again = CreatorProfile.from_record(record)
    assert again == profile
    assert (again.version, again.created_at) == (1, T0)


def test_policies_holding_mappings_can_be_evolved() -> None:
    """A frozen class keeps a mapping it was given as pairs; attrs.evolve passes
    them back through the converter, which must take them."""
    share = RevenueShare(Rate("50%"), creators={"star": Rate("70%")})
    assert attrs.evolve(share) == share
    rate = ConversionRate({"USD": "0.01"})
    assert attrs.evolve(rate) == rate
    policy = EligibilityPolicy(age_of_majority={"KR": 19})
    assert attrs.evolve(policy, require_age=False).age_of_majority == (("KR", 19),)
