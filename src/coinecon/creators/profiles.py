"""What the economy keeps about a creator besides the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from typing import Any, final

import attrs

from coinecon.ledger.idempotency import canonical_json
from coinecon.records import Record

__all__ = ["CreatorProfile"]

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
    version: int = attrs.field(default=0, eq=False)
    created_at: datetime | None = attrs.field(default=None, eq=False)

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
            record.version,
            record.created_at,
        )
