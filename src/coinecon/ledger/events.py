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

_new = object.__new__  # builds frozen values the caller has checked


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
        (a fresh id, a fixed type, its transaction's time and id), and a store
        giving back an event it was given."""
        event = _new(cls)
        set_id, set_type, set_occurred_at, set_payload, set_transaction_id = _EVENT_SETTERS
        set_id(event, id)
        set_type(event, type)
        set_occurred_at(event, occurred_at)
        set_payload(event, payload)
        set_transaction_id(event, transaction_id)
        return event


# Each slot's own setter: several times faster than object.__setattr__, which
# looks the slot up on every call (OutboxEvent._of runs for every command).
_EVENT_SETTERS = tuple(
    OutboxEvent.__dict__[name].__set__
    for name in ("id", "type", "occurred_at", "payload", "transaction_id")
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
