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

_new = object.__new__
_set = object.__setattr__  # builds frozen values the caller has checked


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

    @classmethod
    def _of(
        cls,
        id: str,  # noqa: A002 (the field's name)
        type: str,  # noqa: A002 (the field's name)
        occurred_at: datetime,
        payload: str,
        transaction_id: str | None,
    ) -> OutboxEvent:
        """An event whose caller has checked every field as the constructor
        would: the wallet service, for the event of each command it records
        (a fresh id, a fixed type, its transaction's time and id)."""
        event = _new(cls)
        _set(event, "id", id)
        _set(event, "type", type)
        _set(event, "occurred_at", occurred_at)
        _set(event, "payload", payload)
        _set(event, "transaction_id", transaction_id)
        return event


@runtime_checkable
class EventSink(Protocol):
    """Where delivered events go (a message bus, a webhook queue, a list).

    ``deliver`` may be called more than once for the same event (at least once
    delivery); consumers deduplicate on :attr:`OutboxEvent.id`.
    """

    def deliver(self, event: OutboxEvent) -> None:
        """Deliver one event; raise to have it retried later."""
        ...
