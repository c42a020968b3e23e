"""What the economy keeps about a creator besides the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from typing import Any, final

import attrs

from coinecon.ledger.idempotency import canonical_json
from coinecon.money.rate import Rate
from coinecon.ports import UnitOfWork
from coinecon.records import Record, put

__all__ = ["CreatorProfile", "load", "save"]

KIND = "creator"
"""The record kind of creator profiles (the id and the owner are the creator)."""


@final
@attrs.frozen
class CreatorProfile:
    """What the economy knows of a creator.

    Attributes:
        creator: the creator.
        receiving: whether they accept gifts (a creator turns it off, or
            the host does).
        suspended: why they are not in good standing (``None``: they are).
        region: where they receive gifts from, their country of residence.
        carry: the fraction of a creator unit their gifts earned and no gift
            has credited yet, in ``[0, 1)``.
        gifts: how many gifts they received.
        held: their earnings still held by the payout policy's holding
            period: ``(released_at, units)`` pairs, oldest first.
        rates: their own revenue share set by staff: ``(effective, rate)``
            pairs in order; one in effect wins over the economy's
            :class:`~coinecon.creators.share.RevenueShare`.
        version: the version of its record as read (0: not stored yet);
            not part of its value.
        created_at: when its record was first stored; not part of its value.
    """

    creator: str
    receiving: bool = False
    suspended: str | None = None
    region: str | None = None
    carry: Fraction = Fraction(0)
    gifts: int = 0
    held: tuple[tuple[datetime, int], ...] = ()
    rates: tuple[tuple[datetime, Rate], ...] = ()
    version: int = attrs.field(default=0, eq=False)
    created_at: datetime | None = attrs.field(default=None, eq=False)

    def rate_at(self, at: datetime) -> Rate | None:
        """Their own rate in effect at *at*, if one is."""
        found = None
        for effective, rate in self.rates:
            if effective <= at:
                found = rate
        return found

    def with_rate(self, rate: Rate, effective: datetime) -> CreatorProfile:
        """This profile with *rate* in effect from *effective* (replacing
        one from the same instant)."""
        rates = dict(self.rates)
        rates[effective] = rate
        return attrs.evolve(self, rates=tuple(sorted(rates.items())))

    def holding(self, now: datetime) -> int:
        """The units still held at *now*."""
        return sum(units for released_at, units in self.held if released_at > now)

    def hold(self, units: int, released_at: datetime, now: datetime) -> CreatorProfile:
        """This profile with *units* more held until *released_at* (and what
        was released by *now* forgotten)."""
        buckets = {at: n for at, n in self.held if at > now}
        buckets[released_at] = buckets.get(released_at, 0) + units
        return attrs.evolve(self, held=tuple(sorted(buckets.items())))

    def release(self, now: datetime) -> CreatorProfile:
        """This profile without what was released by *now*."""
        return attrs.evolve(self, held=tuple((at, n) for at, n in self.held if at > now))

    def take_held(
        self, released_at: datetime, units: int, now: datetime
    ) -> tuple[CreatorProfile, int]:
        """This profile with up to *units* taken from what is held until
        *released_at* (nothing if that was released by *now*), and how many
        were taken."""
        buckets = {at: n for at, n in self.held if at > now}
        taken = min(units, buckets.get(released_at, 0))
        if taken:
            buckets[released_at] -= taken
        return attrs.evolve(
            self, held=tuple(sorted((at, n) for at, n in buckets.items() if n))
        ), taken

    def record(self, now: datetime) -> Record:
        """This profile as its record, at the version after the one read."""
        created = self.created_at if self.created_at is not None else now
        return Record(
            KIND,
            self.creator,
            self.creator,
            created,
            self.version + 1,
            canonical_json(self.to_data()),
        )

    def to_data(self) -> dict[str, Any]:
        """As JSON (the carry as ``"numerator/denominator"``)."""
        return {
            "receiving": self.receiving,
            "suspended": self.suspended,
            "region": self.region,
            "carry": f"{self.carry.numerator}/{self.carry.denominator}",
            "gifts": self.gifts,
            "held": [[at.isoformat(), units] for at, units in self.held],
            "rates": [[at.isoformat(), f"{r.numerator}/{r.denominator}"] for at, r in self.rates],
        }

    @classmethod
    def from_record(cls, record: Record) -> CreatorProfile:
        """The profile its record holds."""
        data: Mapping[str, Any] = record.data
        return cls(
            record.id,
            data["receiving"],
            data["suspended"],
            data["region"],
            Fraction(data["carry"]),
            data["gifts"],
            tuple((datetime.fromisoformat(at), units) for at, units in data["held"]),
            tuple((datetime.fromisoformat(at), Rate(r)) for at, r in data["rates"]),
            record.version,
            record.created_at,
        )


def load(uow: UnitOfWork, creator: str) -> CreatorProfile:
    """*creator*'s profile (not receiving, if none is stored)."""
    record = uow.records.get(KIND, creator)
    return CreatorProfile(creator) if record is None else CreatorProfile.from_record(record)


def save(uow: UnitOfWork, profile: CreatorProfile, now: datetime) -> CreatorProfile:
    """Store *profile* over the version it was read at; return it at its new version."""
    record = profile.record(now)
    put(uow.records, record)
    return attrs.evolve(profile, version=record.version, created_at=record.created_at)
