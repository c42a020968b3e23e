"""Promotions: percent off, bonus coins and first-purchase bonuses, in windows."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import final

import attrs

from coinecon._checks import instance_of
from coinecon._recurrence import HORIZON, MAX_COUNT
from coinecon.availability import Availability, time_zone
from coinecon.clock import require_aware
from coinecon.errors import InvalidPromotionError, InvalidScheduleError, InvalidTypeError
from coinecon.money.money import Money
from coinecon.money.rate import Rate
from coinecon.money.rounding import Rounding
from coinecon.pricing import _validate

__all__ = ["HORIZON", "MAX_COUNT", "BuyerHistory", "Promotion", "PromotionKind", "StackingPolicy"]


class PromotionKind(enum.Enum):
    """What a promotion gives."""

    PERCENT_OFF = "percent-off"
    """A share of the price off (``rate``, above 0 and below 100%)."""
    BONUS_COINS = "bonus-coins"
    """A fixed number of extra coins (``bonus_coins``)."""
    BONUS_PERCENT = "bonus-percent"
    """Extra coins as a share of the coins bought (``rate``),
    rounded with ``bonus_rounding``."""
    FIRST_PURCHASE_BONUS = "first-purchase-bonus"
    """A fixed number of extra coins (``bonus_coins``) on a buyer's
    first purchase only."""


class StackingPolicy(enum.Enum):
    """How a price book combines several eligible promotions."""

    BEST_SINGLE = "best-single"
    """Only the one promotion worth most to the buyer applies."""
    STACK_GROUPS = "stack-groups"
    """The best promotion of each stacking group applies, all groups together.
    Promotions without a group share one group. Percent-offs compound: each
    applies to the price left by the ones before (in promotion id order), so
    the price never goes below zero."""


def _identifier(value: str) -> str:
    return _validate.identifier(value, "a promotion id")


def _zone(value: tzinfo | str) -> tzinfo:
    try:
        return time_zone(value)
    except InvalidScheduleError as error:
        raise InvalidPromotionError(str(error)) from None


def _optional_aware(value: datetime | None) -> datetime | None:
    return None if value is None else require_aware(value, "a promotion window bound")


def _optional_count(value: int | None) -> int | None:
    return None if value is None else _validate.whole(value, "bonus coins", minimum=1)


def _min_coins(value: int) -> int:
    return _validate.whole(value, "a promotion's min_coins", minimum=0)


def _max_redemptions(value: int | None) -> int | None:
    return None if value is None else _validate.whole(value, "max redemptions", minimum=1)


def _regions(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise InvalidTypeError("regions must be a collection of codes, not a single string")
    return frozenset(_validate.region_code(code) for code in _validate.items(value, "regions"))


def _storefronts(value: Iterable[str]) -> frozenset[str]:
    return _validate.names(value, "a promotion storefront")


def _group(value: str | None) -> str | None:
    return None if value is None else _validate.name(value, "a stacking group")


@final
@attrs.frozen
class Promotion:
    """A time-boxed or recurring offer, with eligibility and stacking rules.

    Args:
        id: the promotion's identifier (counts redemptions, breaks ties).
        kind: what it gives, a :class:`PromotionKind`.
        rate: the share off (:attr:`PromotionKind.PERCENT_OFF`) or the bonus share
            (:attr:`PromotionKind.BONUS_PERCENT`); above 0 and below 100%.
        bonus_coins: the extra coins of :attr:`PromotionKind.BONUS_COINS` and
            :attr:`PromotionKind.FIRST_PURCHASE_BONUS`.
        bonus_rounding: how a percent bonus is rounded to whole coins
            (default :attr:`Rounding.DOWN <coinecon.money.rounding.Rounding.DOWN>`).
        start: the promotion applies from this instant (inclusive); also where
            a recurrence starts counting.
        end: the promotion applies until this instant (exclusive).
        rrule: an RFC 5545 recurrence rule (``"FREQ=WEEKLY;BYDAY=FR"``), evaluated
            as wall-clock times in *timezone* from *start*; the promotion then
            applies only during ``[occurrence, occurrence + duration)``. Needs
            *start* and *duration*. At most hourly: no ``MINUTELY`` or
            ``SECONDLY`` frequency, and at most one ``BYMINUTE`` and one
            ``BYSECOND`` value (several ``BYHOUR`` values are fine). Bound it
            with *end* rather than ``UNTIL``, whose value would have to be a
            local wall-clock time. A rule must fire within ten years of
            *start* (``coinecon.pricing.promotions.HORIZON``) and count at most
            10,000 occurrences with ``COUNT`` (``MAX_COUNT``): otherwise it is
            refused when the promotion is made. Whether a window is open is
            found from the last few periods, however long ago *start* was.
        duration: how long each recurring window lasts (elapsed time).
        timezone: the time zone the rule is read in (a ``tzinfo`` or an IANA
            name; default UTC).
        regions: the regions it applies in (empty: all).
        storefronts: the storefronts it applies on (empty: all).
        first_purchase_only: whether only a buyer's first purchase qualifies
            (always so for :attr:`PromotionKind.FIRST_PURCHASE_BONUS`).
        min_coins: the fewest coins bought (before any bonus) that qualify.
        max_redemptions_per_account: how often one account may use it (``None``:
            no limit).
        stacking_group: the group it stacks in under
            :attr:`StackingPolicy.STACK_GROUPS`.

    A Friday-evening offer in Berlin::

        >>> from datetime import datetime, timedelta
        >>> from zoneinfo import ZoneInfo
        >>> berlin = ZoneInfo("Europe/Berlin")
        >>> friday = Promotion(
        ...     "friday-night", PromotionKind.PERCENT_OFF, rate=Rate("10%"),
        ...     start=datetime(2026, 1, 2, 18, tzinfo=berlin), rrule="FREQ=WEEKLY;BYDAY=FR",
        ...     duration=timedelta(hours=4), timezone="Europe/Berlin",
        ... )
        >>> friday.is_active_at(datetime(2026, 3, 6, 21, 59, tzinfo=berlin))
        True
        >>> friday.is_active_at(datetime(2026, 3, 6, 22, 0, tzinfo=berlin))
        False
    """

    id: str = attrs.field(converter=_identifier)
    kind: PromotionKind = attrs.field(validator=instance_of(PromotionKind))
    rate: Rate | None = attrs.field(default=None, converter=_validate.optional_rate)
    bonus_coins: int | None = attrs.field(default=None, converter=_optional_count)
    bonus_rounding: Rounding = attrs.field(default=Rounding.DOWN, validator=instance_of(Rounding))
    start: datetime | None = attrs.field(default=None, converter=_optional_aware)
    end: datetime | None = attrs.field(default=None, converter=_optional_aware)
    rrule: str | None = attrs.field(default=None)
    duration: timedelta | None = attrs.field(default=None)
    timezone: tzinfo = attrs.field(default=UTC, converter=_zone)
    regions: frozenset[str] = attrs.field(default=frozenset(), converter=_regions)
    storefronts: frozenset[str] = attrs.field(default=frozenset(), converter=_storefronts)
    first_purchase_only: bool = attrs.field(default=False)
    min_coins: int = attrs.field(default=0, converter=_min_coins)
    max_redemptions_per_account: int | None = attrs.field(default=None, converter=_max_redemptions)
    stacking_group: str | None = attrs.field(default=None, converter=_group)
    _window: Availability = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._check_offer()
        if type(self.first_purchase_only) is not bool:
            raise InvalidTypeError(
                f"first_purchase_only must be a bool, got {self.first_purchase_only!r}"
            )
        try:
            window = Availability(self.start, self.end, self.rrule, self.duration, self.timezone)
        except InvalidScheduleError as error:
            raise InvalidPromotionError(f"promotion {self.id}: {error}") from None
        object.__setattr__(self, "_window", window)

    def _check_offer(self) -> None:
        uses_rate = self.kind in {PromotionKind.PERCENT_OFF, PromotionKind.BONUS_PERCENT}
        if uses_rate:
            if not isinstance(self.rate, Rate) or not Rate(0) < self.rate < Rate(1):
                raise InvalidPromotionError(
                    f"promotion {self.id}: a {self.kind.value} promotion needs a rate "
                    f"above 0 and below 100%, got {self.rate!r}"
                )
            if self.bonus_coins is not None:
                raise InvalidPromotionError(
                    f"promotion {self.id}: a {self.kind.value} promotion takes no bonus_coins"
                )
        else:
            if self.bonus_coins is None:
                raise InvalidPromotionError(
                    f"promotion {self.id}: a {self.kind.value} promotion needs bonus_coins"
                )
            if self.rate is not None:
                raise InvalidPromotionError(
                    f"promotion {self.id}: a {self.kind.value} promotion takes no rate"
                )

    @property
    def first_purchase(self) -> bool:
        """Whether only a buyer's first purchase qualifies."""
        return self.first_purchase_only or self.kind is PromotionKind.FIRST_PURCHASE_BONUS

    @property
    def group(self) -> str:
        """The stacking group, ``""`` for the shared group of ungrouped promotions."""
        return self.stacking_group or ""

    @property
    def window(self) -> Availability:
        """When the promotion applies, as an :class:`~coinecon.availability.Availability`."""
        return self._window

    def is_active_at(self, now: datetime) -> bool:
        """Whether *now* is inside the promotion's window(s).

        Raises:
            NaiveDatetimeError: if *now* has no time zone.
        """
        return self._window.is_open_at(now)

    def first_window_start(self) -> datetime | None:
        """The first instant the promotion applies, or ``None`` if it never does
        (an empty window, or a rule without occurrences inside it)."""
        return self._window.first_open()

    def is_eligible(
        self,
        *,
        region: str,
        storefront: str,
        coins: int,
        history: BuyerHistory,
        now: datetime,
    ) -> bool:
        """Whether a purchase of *coins* (before bonus) qualifies at *now*.

        Raises:
            InvalidPriceBookError: for a malformed region or storefront code.
            InvalidAmountError: for fewer than one coin
                (:class:`~coinecon.errors.InvalidTypeError` for a non-``int``).
            InvalidTypeError: if *history* is not a :class:`BuyerHistory`.
            NaiveDatetimeError: if *now* has no time zone.
        """
        region = _validate.region_code(region)
        storefront = _validate.name(storefront, "a storefront")
        coins = _validate.whole(coins, "coins", minimum=1)
        if not isinstance(history, BuyerHistory):
            raise InvalidTypeError(
                f"history must be a BuyerHistory, got {type(history).__name__} ({history!r})"
            )
        now = require_aware(now, "now")
        if self.regions and region not in self.regions:
            return False
        if self.storefronts and storefront not in self.storefronts:
            return False
        if self.first_purchase and not history.first_purchase:
            return False
        if coins < self.min_coins:
            return False
        limit = self.max_redemptions_per_account
        if limit is not None and history.redeemed(self.id) >= limit:
            return False
        return self.is_active_at(now)

    def price_cut(self, price: Money, *, rounding: Rounding) -> Money:
        """What this promotion takes off *price*.

        For :attr:`PromotionKind.PERCENT_OFF`, *price* times the promotion's
        ``rate`` rounded with *rounding*; zero for the kinds that give coins.
        Never below zero, never above *price*::

            >>> from coinecon import Money
            >>> half = Promotion("half", PromotionKind.PERCENT_OFF, rate=Rate("50%"))
            >>> half.price_cut(Money("0.99", "USD"), rounding=Rounding.HALF_UP)
            Money('0.50', 'USD')
            >>> half.price_cut(Money("0.99", "USD"), rounding=Rounding.DOWN)
            Money('0.49', 'USD')

        Raises:
            InvalidPriceError: if *price* is not :class:`~coinecon.money.money.Money`.
            InvalidTypeError: if *rounding* is not a :class:`~coinecon.money.rounding.Rounding`.
        """
        price = _validate.money(price, "the price a promotion cuts")
        if not isinstance(rounding, Rounding):
            raise InvalidTypeError(f"rounding must be a Rounding, got {rounding!r}")
        if self.kind is not PromotionKind.PERCENT_OFF:
            return price.currency.zero()
        assert self.rate is not None  # checked on construction  # noqa: S101
        return price.times(self.rate, rounding=rounding)

    def bonus_for(self, coins: int) -> int:
        """The extra coins this promotion gives on *coins* bought (0 for percent off).

        Raises:
            InvalidAmountError: for fewer than one coin
                (:class:`~coinecon.errors.InvalidTypeError` for a non-``int``).
        """
        coins = _validate.whole(coins, "coins", minimum=1)
        if self.kind is PromotionKind.BONUS_PERCENT:
            assert self.rate is not None  # checked on construction  # noqa: S101
            return self.bonus_rounding.divide(coins * self.rate.numerator, self.rate.denominator)
        if self.kind is PromotionKind.PERCENT_OFF:
            return 0
        assert self.bonus_coins is not None  # checked on construction  # noqa: S101
        return self.bonus_coins


def _first(value: bool) -> bool:
    if type(value) is not bool:
        raise InvalidTypeError(f"first_purchase must be a bool, got {value!r}")
    return value


def _redemptions(value: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    counts = _validate.as_mapping(value, "redemptions (promotion id to count)")
    return tuple(
        sorted(
            (
                _validate.identifier(key, "a promotion id"),
                _validate.whole(n, "redemptions", minimum=0),
            )
            for key, n in counts.items()
        )
    )


@final
@attrs.frozen
class BuyerHistory:
    """What the price book needs to know about a buyer's past purchases.

    The service layer loads it from storage; the price book only reads it::

        >>> history = BuyerHistory(first_purchase=False, redemptions={"welcome": 1})
        >>> history.redeemed("welcome"), history.redeemed("spring")
        (1, 0)

    Attributes:
        first_purchase: whether the purchase being priced would be the account's first.
        redemptions: how many times the account has used each promotion, as
            sorted ``(promotion id, count)`` pairs.
    """

    first_purchase: bool = attrs.field(converter=_first)
    redemptions: tuple[tuple[str, int], ...] = attrs.field(factory=dict, converter=_redemptions)

    def redeemed(self, promotion_id: str) -> int:
        """How many times the account has used the promotion *promotion_id*."""
        for key, count in self.redemptions:
            if key == promotion_id:
                return count
        return 0
