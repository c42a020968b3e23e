"""Spending limits: a holder's own budget, and the platform's limits.

A holder may set a :class:`Budget`: the most money they spend on coins per
day, week or month, counted in their own time zone (a week starts on
Monday). The platform sets a :class:`LimitPolicy`: the most purchases a
holder makes in an hour, and the most coins a wallet may hold. A purchase
over any of them is refused before any charge, saying the limit and what
remains of it::

    >>> from datetime import UTC, datetime
    >>> from coinecon import Money
    >>> budget = Budget(Money("50.00", "USD"), BudgetPeriod.WEEKLY, "Asia/Tokyo")
    >>> budget.period_start(datetime(2026, 3, 4, 20, 0, tzinfo=UTC))  # Thursday 5:00 in Tokyo
    datetime.datetime(2026, 3, 1, 15, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, final

import attrs
from dateutil import tz
from dateutil.relativedelta import MO, relativedelta

from coinecon._checks import instance_of
from coinecon.clock import require_aware
from coinecon.errors import InvalidAmountError, InvalidTypeError, ValidationError
from coinecon.money.money import Money

__all__ = ["Budget", "BudgetPeriod", "LimitPolicy"]


class BudgetPeriod(enum.Enum):
    """The period a budget renews over, in the holder's time zone."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


def _zone(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidTypeError(f"a time zone is an IANA name such as 'Europe/Paris', got {value!r}")
    if ("/" not in value and value != "UTC") or tz.gettz(value) is None:
        raise ValidationError(f"{value!r} is not a known IANA time zone")


def _positive(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, Money) or not value.is_positive:
        raise InvalidAmountError(f"a budget is a positive amount of Money, got {value!r}")


@final
@attrs.frozen
class Budget:
    """The most money a holder spends on coins per period.

    Purchases in other currencies than the budget's do not count towards it.

    Attributes:
        amount: the most per period.
        period: daily, weekly or monthly.
        time_zone: the holder's IANA time zone, where periods begin at midnight.
    """

    amount: Money = attrs.field(validator=_positive)
    period: BudgetPeriod = attrs.field(validator=instance_of(BudgetPeriod))
    time_zone: str = attrs.field(validator=_zone)

    def period_start(self, now: datetime) -> datetime:
        """When the period containing *now* began (in UTC): the holder's
        midnight today, on Monday, or on the 1st."""
        local = require_aware(now, "now").astimezone(tz.gettz(self.time_zone))
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period is BudgetPeriod.WEEKLY:
            start += relativedelta(weekday=MO(-1))
        elif self.period is BudgetPeriod.MONTHLY:
            start += relativedelta(day=1)
        # Midnight may not exist (or exist twice) on a day the clocks change:
        # normalise through UTC, which fold and gaps resolve.
        return start.astimezone(UTC)

    def to_data(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "amount": self.amount.minor,
            "currency": self.amount.currency.code,
            "period": self.period.value,
            "time_zone": self.time_zone,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Budget:
        """What :meth:`to_data` wrote."""
        return cls(
            Money.from_minor(data["amount"], data["currency"]),
            BudgetPeriod(data["period"]),
            data["time_zone"],
        )


def _optional_positive(_instance: object, attribute: Any, value: Any) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise InvalidAmountError(f"{attribute.name} must be a positive int or None, got {value!r}")


@final
@attrs.frozen
class LimitPolicy:
    """The platform's limits on purchases.

    Attributes:
        purchases_per_hour: the most purchases a holder makes in any hour
            (those charging, pending or completed count; declined and failed
            ones do not); ``None`` for no limit.
        max_wallet_balance: the most coins a wallet may hold after a
            purchase, counting the coins of its purchases of the last 30
            days still waiting for the provider; ``None`` for no limit.
    """

    purchases_per_hour: int | None = attrs.field(default=None, validator=_optional_positive)
    max_wallet_balance: int | None = attrs.field(default=None, validator=_optional_positive)
