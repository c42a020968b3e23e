"""Disputes: a holder reports a transaction they did not make; staff decide.

A report opens a :class:`Case` (``OPEN``); staff take it up (``UNDER_REVIEW``)
and end it either with a reversal whose transaction points at the case
(``REVERSED``) or with a rejection and its reason (``REJECTED``). Every step
is in the case's audit trail, with who took it, when, and why.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

import attrs

from coinecon.records import Record

__all__ = ["Case", "CaseEntry", "CaseStatus"]

KIND = "case"
"""The record kind of cases (owned by the holder who reported)."""
DISPUTED_KIND = "disputed"
"""The record kind that names the case of a disputed transaction (its id is
the transaction's): one case at a time per transaction, none after one upheld."""


class CaseStatus(enum.Enum):
    """Where a case stands."""

    OPEN = "open"
    """Reported, not taken up yet."""
    UNDER_REVIEW = "under-review"
    """Staff are looking into it."""
    REVERSED = "reversed"
    """Upheld, and the transaction was reversed."""
    REJECTED = "rejected"
    """Not upheld (the reason is in the trail)."""

    @property
    def closed(self) -> bool:
        """Whether the case is decided."""
        return self in (CaseStatus.REVERSED, CaseStatus.REJECTED)


@final
@attrs.frozen
class CaseEntry:
    """One step of a case's audit trail.

    Attributes:
        at: when.
        actor: the holder or staff member who took it.
        action: ``"reported"``, ``"review"``, ``"reversed"``, ``"rejected"``.
        note: what they said.
    """

    at: datetime
    actor: str
    action: str
    note: str


@final
@attrs.frozen
class Case:
    """A dispute about one transaction.

    Attributes:
        id: the case's id.
        holder: who reported it.
        transaction_id: the transaction disputed.
        status: where it stands.
        opened_at: when it was reported.
        trail: every step, oldest first.
        reversal_id: the transaction that reversed it, if it was reversed.
    """

    id: str
    holder: str
    transaction_id: str
    status: CaseStatus
    opened_at: datetime
    trail: tuple[CaseEntry, ...]
    reversal_id: str | None = None

    def step(self, status: CaseStatus, entry: CaseEntry, reversal_id: str | None = None) -> Case:
        """This case moved to *status* by *entry*."""
        return attrs.evolve(
            self,
            status=status,
            trail=(*self.trail, entry),
            reversal_id=reversal_id if reversal_id is not None else self.reversal_id,
        )

    def to_data(self) -> dict[str, Any]:
        """As JSON."""
        return {
            "holder": self.holder,
            "transaction_id": self.transaction_id,
            "status": self.status.value,
            "opened_at": self.opened_at,
            "reversal_id": self.reversal_id,
            "trail": [
                {"at": e.at, "actor": e.actor, "action": e.action, "note": e.note}
                for e in self.trail
            ],
        }

    @classmethod
    def from_record(cls, record: Record) -> Case:
        """The case a record holds."""
        data: Mapping[str, Any] = record.data
        return cls(
            id=record.id,
            holder=data["holder"],
            transaction_id=data["transaction_id"],
            status=CaseStatus(data["status"]),
            opened_at=datetime.fromisoformat(data["opened_at"]),
            trail=tuple(
                CaseEntry(datetime.fromisoformat(e["at"]), e["actor"], e["action"], e["note"])
                for e in data["trail"]
            ),
            reversal_id=data["reversal_id"],
        )
