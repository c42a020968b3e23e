"""What the economy keeps about a creator besides the ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from typing import Any, final

import attrs

from coinecon.ledger.idempotency import canonical_json
from coinecon.money.rate import Rate
from coinecon.ports import UnitOfWork
from coinecon.records import Record, put

__all__ = ["CreatorProfile", "load", "load_tally", "save", "tally_of", "totals"]

KIND = "creator"
"""The record kind of creator profiles (the id and the owner are the creator)."""

TALLY_KIND = "creator-tally"
"""The record kind of a creator's tallies past the first (the first is kept in
the profile): the id is ``creator#n``, the owner the creator."""


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
            has credited yet, in ``[0, 1)`` for one tally (the sum of their
            tallies' carries, under their number, once added up).
        gifts: how many gifts they received.
        held: their earnings still held by the payout policy's holding
            period: ``(released_at, units)`` pairs, oldest first.
        rates: their own revenue share set by staff: ``(effective, rate)``
            pairs in order; one in effect wins over the economy's
            :class:`~coinecon.creators.share.RevenueShare`.
        version: the version of its record as read (0: not stored yet);
            not part of its value.
        created_at: when its record was first stored; not part of its value.
        tally: which of the creator's tallies this is (see
            :attr:`~coinecon.gifts.GiftPolicy.tallies`): 0, the profile
            itself, or a later tally, which holds only a carry, a gift count
            and held earnings. :meth:`CoinEconomy.creator
            <coinecon.economy.CoinEconomy.creator>` gives the profile with
            every tally's added in.
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
    tally: int = 0

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
        """This profile (or tally) as its record, at the version after the one read."""
        created = self.created_at if self.created_at is not None else now
        if self.tally:
            data = {key: value for key, value in self.to_data().items() if key in _TALLIED}
            return Record(
                TALLY_KIND,
                f"{self.creator}#{self.tally}",
                self.creator,
                created,
                self.version + 1,
                canonical_json(data),
            )
        return Record(
            KIND,
            self.creator,
            self.creator,
            created,
            self.version + 1,
            canonical_json(self.to_data()),
        )

    def plus(self, tally: CreatorProfile) -> CreatorProfile:
        """This profile with another *tally*'s carry, gifts and held earnings added in."""
        buckets = dict(self.held)
        for at, units in tally.held:
            buckets[at] = buckets.get(at, 0) + units
        return attrs.evolve(
            self,
            carry=self.carry + tally.carry,
            gifts=self.gifts + tally.gifts,
            held=tuple(sorted(buckets.items())),
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
        """The profile (or tally) its record holds."""
        data: Mapping[str, Any] = record.data
        if record.kind == TALLY_KIND:
            return cls(
                record.owner,
                carry=Fraction(data["carry"]),
                gifts=data["gifts"],
                held=tuple((datetime.fromisoformat(at), units) for at, units in data["held"]),
                version=record.version,
                created_at=record.created_at,
                tally=int(record.id.rpartition("#")[2]),
            )
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


_TALLIED = frozenset({"carry", "gifts", "held"})


def load(uow: UnitOfWork, creator: str) -> CreatorProfile:
    """*creator*'s profile (not receiving, if none is stored)."""
    record = uow.records.get(KIND, creator)
    return CreatorProfile(creator) if record is None else CreatorProfile.from_record(record)


def tally_of(sender: str, tallies: int) -> int:
    """Which of *tallies* tallies the gifts of *sender* are kept in (stable
    across processes and versions: a hash of the sender's id)."""
    if tallies == 1:
        return 0
    digest = hashlib.blake2b(sender.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % tallies


def load_tally(uow: UnitOfWork, creator: str, tally: int) -> CreatorProfile:
    """*creator*'s tally number *tally* (0: their profile)."""
    if not tally:
        return load(uow, creator)
    record = uow.records.get(TALLY_KIND, f"{creator}#{tally}")
    return (
        CreatorProfile(creator, tally=tally)
        if record is None
        else CreatorProfile.from_record(record)
    )


def totals(uow: UnitOfWork, profile: CreatorProfile, tallies: int) -> CreatorProfile:
    """*profile* (a creator's tally 0) with their other *tallies* added in."""
    for tally in range(1, tallies):
        profile = profile.plus(load_tally(uow, profile.creator, tally))
    return profile


def save(uow: UnitOfWork, profile: CreatorProfile, now: datetime) -> CreatorProfile:
    """Store *profile* over the version it was read at; return it at its new version."""
    record = profile.record(now)
    put(uow.records, record)
    return attrs.evolve(profile, version=record.version, created_at=record.created_at)
