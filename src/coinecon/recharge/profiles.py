"""A holder's profile: what recharge keeps about a buyer besides the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

import attrs

from coinecon.ledger.idempotency import canonical_json
from coinecon.pricing import BuyerHistory
from coinecon.recharge.eligibility import AgeAttestation, ParentalConsent
from coinecon.recharge.limits import Budget
from coinecon.records import Record

__all__ = ["HolderProfile"]

KIND = "holder"
"""The record kind of profiles (the id and the owner are the holder)."""


@final
@attrs.frozen
class HolderProfile:
    """What recharge knows of a holder.

    Attributes:
        holder: the holder.
        attestation: who vouched for their age, if anyone did.
        consent: a guardian's consent, if one was recorded.
        budget: the budget they set, if any.
        purchases: how many purchases they made that did not fail (those
            waiting for the provider count: a welcome bonus is not given
            twice to two purchases made at once).
        redemptions: how many times they used each promotion, sorted by id.
        version: the version of its record as read (0: not stored yet);
            not part of its value.
        created_at: when its record was first stored (``None``: not yet);
            not part of its value.
    """

    holder: str
    attestation: AgeAttestation | None = None
    consent: ParentalConsent | None = None
    budget: Budget | None = None
    purchases: int = 0
    redemptions: tuple[tuple[str, int], ...] = ()
    version: int = attrs.field(default=0, eq=False)
    created_at: datetime | None = attrs.field(default=None, eq=False)

    @property
    def history(self) -> BuyerHistory:
        """What the price book needs to know about their past purchases."""
        return BuyerHistory(first_purchase=self.purchases == 0, redemptions=dict(self.redemptions))

    def bought(self, promotions: tuple[str, ...]) -> HolderProfile:
        """This profile after one more purchase using *promotions*."""
        counts = dict(self.redemptions)
        for promotion in promotions:
            counts[promotion] = counts.get(promotion, 0) + 1
        return attrs.evolve(
            self, purchases=self.purchases + 1, redemptions=tuple(sorted(counts.items()))
        )

    def released(self, promotions: tuple[str, ...]) -> HolderProfile:
        """This profile without one purchase using *promotions*: one that
        counted from its recording, and failed."""
        counts = dict(self.redemptions)
        for promotion in promotions:
            left = counts.get(promotion, 0) - 1
            if left > 0:
                counts[promotion] = left
            else:
                counts.pop(promotion, None)
        return attrs.evolve(
            self,
            purchases=max(self.purchases - 1, 0),
            redemptions=tuple(sorted(counts.items())),
        )

    def to_data(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "attestation": None if self.attestation is None else self.attestation.to_data(),
            "consent": None if self.consent is None else self.consent.to_data(),
            "budget": None if self.budget is None else self.budget.to_data(),
            "purchases": self.purchases,
            "redemptions": dict(self.redemptions),
        }

    @classmethod
    def from_data(cls, holder: str, data: Mapping[str, Any]) -> HolderProfile:
        """What :meth:`to_data` wrote."""
        attestation, consent, budget = data["attestation"], data["consent"], data["budget"]
        return cls(
            holder,
            None if attestation is None else AgeAttestation.from_data(attestation),
            None if consent is None else ParentalConsent.from_data(consent),
            None if budget is None else Budget.from_data(budget),
            data["purchases"],
            tuple(sorted(data["redemptions"].items())),
        )

    @classmethod
    def from_record(cls, record: Record) -> HolderProfile:
        """The profile a record holds."""
        return attrs.evolve(
            cls.from_data(record.id, record.data),
            version=record.version,
            created_at=record.created_at,
        )

    def record(self, now: datetime) -> Record:
        """This profile as its record: new (version 1, created *now*) if it
        was never stored, else the one that follows the version it was read
        at."""
        return Record(
            KIND,
            self.holder,
            self.holder,
            self.created_at or now,
            self.version + 1,
            canonical_json(self.to_data()),
        )
