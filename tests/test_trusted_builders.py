"""The builders the hot paths use for values they checked themselves make the
same values as the public constructors, every field set (a field added to a
class but not to its builder would be missing here)."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from hypothesis import given
from hypothesis import strategies as st

from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord
from coinecon.money.money import MAX_MINOR_UNITS
from coinecon.money.units import Unit, UnitAmount
from coinecon.testing.strategies import units

IDS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
TIMES = st.datetimes(timezones=st.just(UTC))


def _same(built: object, constructed: attrs.AttrsInstance) -> None:
    assert built == constructed
    for field in attrs.fields(type(constructed)):
        assert getattr(built, field.name) == getattr(constructed, field.name)
    assert repr(built) == repr(constructed)


@given(IDS, IDS, TIMES, st.text(), IDS)
def test_an_event_built_for_a_command_is_the_event_the_constructor_makes(
    event_id: str, event_type: str, occurred_at: datetime, payload: str, transaction_id: str
) -> None:
    built = OutboxEvent._of(event_id, event_type, occurred_at, payload, transaction_id)
    _same(built, OutboxEvent(event_id, event_type, occurred_at, payload, transaction_id))
    assert hash(built) == hash(
        OutboxEvent(event_id, event_type, occurred_at, payload, transaction_id)
    )


@given(IDS, st.text(), st.text(), TIMES)
def test_a_record_built_for_a_command_is_the_record_the_constructor_makes(
    key: str, digest: str, result: str, created_at: datetime
) -> None:
    built = IdempotencyRecord._of(key, digest, result, created_at)
    _same(built, IdempotencyRecord(key, digest, result, created_at))


@given(st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS), units())
def test_an_unchecked_unit_amount_is_the_amount_the_constructor_makes(
    amount: int, unit: Unit
) -> None:
    built = UnitAmount._unchecked(amount, unit)
    _same(built, UnitAmount(amount, unit))
    assert hash(built) == hash(UnitAmount(amount, unit))
