"""The revenue share: what a creator earns of the coins gifted to them.

A creator earns a share of a gift's coins, credited in the creator-side unit
(``DIAMOND``), one unit for each coin of their share. The exact share is
rarely whole (half of a one-coin gift is half a diamond), so the fraction is
carried forward per creator and paid with a later gift: a thousand one-coin
gifts at 50 % earn exactly 500 diamonds, and the platform's share is exactly
the rest::

    >>> from fractions import Fraction
    >>> share = RevenueShare(Rate("50%"))
    >>> carry, earned = Fraction(0), 0
    >>> for _ in range(1000):
    ...     split = share.split(1, share.rate_for("creator-1", None), carry)
    ...     earned, carry = earned + split.earned, split.carry
    >>> earned, carry
    (500, Fraction(0, 1))

A default rate, platform-wide changes that take effect at an instant, and
per-creator rates (a tier, an agency contract) that take effect at theirs::

    >>> from datetime import datetime, timezone
    >>> june = datetime(2026, 6, 1, tzinfo=timezone.utc)
    >>> share = RevenueShare(
    ...     Rate("50%"),
    ...     changes=[(june, Rate("55%"))],
    ...     creators={"star": [(None, Rate("60%")), (june, Rate("70%"))]},
    ... )
    >>> may = datetime(2026, 5, 1, tzinfo=timezone.utc)
    >>> str(share.rate_for("someone", may)), str(share.rate_for("someone", june))
    ('0.5', '0.55')
    >>> str(share.rate_for("star", may)), str(share.rate_for("star", june))
    ('0.6', '0.7')

A creator's own rate wins over the platform's while one is in effect, even
when the platform's changes later. A Twitch-style fixed amount of money per
coin, whatever discount the buyer had, is a 100 % share with a conversion rate
of that amount per creator unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from math import floor
from typing import Any, final

import attrs

from coinecon._checks import stored_pairs
from coinecon._ids import check_identifier
from coinecon.clock import require_aware
from coinecon.creators import _dated
from coinecon.errors import InvalidRateError, InvalidTypeError, ValidationError
from coinecon.money.rate import Rate

__all__ = ["RevenueShare", "Split", "revenue_share_rate"]

Schedule = tuple[tuple[datetime | None, Rate], ...]
"""Rates in order of the instant they take effect (``None``: from the start)."""


def revenue_share_rate(value: Any) -> Rate:
    """*value* as a revenue share: a :class:`~coinecon.money.rate.Rate` (or
    what makes one) from 0 to 100 %.

    Raises:
        InvalidRateError: outside 0 to 100 %, or not a rate.
    """
    rate = value if isinstance(value, Rate) else Rate(value)
    if not Rate(0) <= rate <= Rate(1):
        raise InvalidRateError(f"a revenue share is from 0 to 100%, got {rate}")
    return rate


def _changes(value: Any) -> Schedule:
    changes = _dated.schedule(value, "changes", revenue_share_rate)
    if any(when is None for when, _ in changes):
        raise ValidationError("a platform-wide change takes effect at an instant, not None")
    return changes


def _creators(value: Any) -> tuple[tuple[str, Schedule], ...]:
    value = stored_pairs(value)
    if not isinstance(value, Mapping):
        raise InvalidTypeError(f"creators maps creators to their rates, got {value!r}")
    pairs = []
    for creator, rates in value.items():
        name = check_identifier(creator, "creator")
        pairs.append((name, _dated.dates(rates, f"{name}'s rates", revenue_share_rate)))
    return tuple(sorted(pairs))


@final
@attrs.frozen
class Split:
    """One gift's coins, split between the creator and the platform.

    Attributes:
        coins: the coins the gift cost.
        rate: the creator's share that applied.
        creator_share: the creator's exact share of the coins
            (``coins * rate``).
        platform_share: the platform's exact share, the rest
            (``coins - creator_share``).
        earned: the creator units credited now: the whole part of what was
            carried plus ``creator_share``.
        carry: what is carried forward to the creator's next gift, in
            ``[0, 1)``.
    """

    coins: int
    rate: Rate
    creator_share: Fraction
    platform_share: Fraction
    earned: int
    carry: Fraction


@final
@attrs.frozen
class RevenueShare:
    """The share of gifted coins creators earn.

    Args:
        default: the share from the start (a :class:`~coinecon.money.rate.Rate`
            or what makes one: ``"50%"``, ``Fraction(1, 2)``), from 0 to 100 %.
        changes: platform-wide ``(effective, rate)`` pairs; each is in effect
            from its instant (inclusive) until the next.
        creators: per-creator rates: a rate, or ``(effective, rate)`` pairs
            (``None``: from the start). A creator's rate in effect at an
            instant wins over the platform's.
    """

    default: Rate = attrs.field(converter=revenue_share_rate)
    changes: Schedule = attrs.field(default=(), converter=_changes)
    creators: tuple[tuple[str, Schedule], ...] = attrs.field(factory=dict, converter=_creators)

    def rate_for(self, creator: str, at: datetime | None) -> Rate:
        """The share *creator* earns of a gift sent at *at* (``None``: the
        latest rates)."""
        when = None if at is None else require_aware(at, "at")
        for name, schedule in self.creators:
            if name == creator:
                own = _dated.in_effect(schedule, when)
                if own is not None:
                    return own
                break
        platform = _dated.in_effect(self.changes, when)
        return self.default if platform is None else platform

    @staticmethod
    def split(coins: int, rate: Rate, carry: Any) -> Split:
        """Split a gift of *coins* at *rate*, with *carry* owed to the
        creator from before (rounding down what is credited; the rest is
        carried)."""
        if type(coins) is not int or coins <= 0:
            raise ValidationError(f"coins is a positive int, got {coins!r}")
        if not isinstance(carry, Fraction) or not 0 <= carry < 1:
            raise ValidationError(f"a carry is a Fraction in [0, 1), got {carry!r}")
        creator_share = coins * rate.fraction
        exact = carry + creator_share
        earned = floor(exact)
        return Split(coins, rate, creator_share, coins - creator_share, earned, exact - earned)
