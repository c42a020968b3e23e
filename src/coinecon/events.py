"""Domain events, stored with their transaction and delivered after commit.

Services write an :class:`OutboxEvent` in the same unit of work as the
postings it describes (a transactional outbox), so an event exists if and only
if its change committed. Delivery to an :class:`EventSink` happens afterwards,
at least once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, final, runtime_checkable

import attrs

from coinecon._checks import aware, identifier, instance_of, optional_identifier

__all__ = ["EventSink", "OutboxEvent"]


@final
@attrs.frozen
class OutboxEvent:
    """A domain event waiting in the outbox.

    Attributes:
        id: unique event id (also the deduplication key for consumers).
        type: what happened, dotted (``"coins.credited"``, ``"coins.spent"``).
        occurred_at: when.
        payload: the event's data as canonical JSON.
        transaction_id: the ledger transaction it describes, if any.
    """

    id: str = attrs.field(validator=identifier("event id"))
    type: str = attrs.field(validator=identifier("event type"))
    occurred_at: datetime = attrs.field(validator=aware("occurred_at"))
    payload: str = attrs.field(validator=instance_of(str))
    transaction_id: str | None = attrs.field(
        default=None, validator=optional_identifier("transaction id")
    )


@runtime_checkable
class EventSink(Protocol):
    """Where delivered events go (a message bus, a webhook queue, a list).

    ``deliver`` may be called more than once for the same event (at least once
    delivery); consumers deduplicate on :attr:`OutboxEvent.id`.
    """

    def deliver(self, event: OutboxEvent) -> None:
        """Deliver one event; raise to have it retried later."""
        ...
