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
from coinecon.ledger.journal import AccountKey, Cause, Posting, Transaction, TransactionKind
from coinecon.ledger.lots import Lot, LotConsumption, LotOrigin
from coinecon.ledger.wallets import SpendResult
from coinecon.money.money import MAX_MINOR_UNITS, Money
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


ACCOUNTS = st.builds(
    AccountKey.wallet,
    st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1),
    units(),
)
NONZERO = st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS).filter(bool)


@given(ACCOUNTS, NONZERO)
def test_a_posting_built_for_a_spend_is_the_posting_the_constructor_makes(
    account: AccountKey, amount: int
) -> None:
    built = Posting._of(account, amount)
    _same(built, Posting(account, amount))
    assert hash(built) == hash(Posting(account, amount))


@given(ACCOUNTS, st.integers(1, MAX_MINOR_UNITS), st.integers(1, 10**6), TIMES)
def test_a_transaction_built_for_a_command_is_the_transaction_the_constructor_makes(
    wallet: AccountKey, coins: int, diamonds: int, occurred_at: datetime
) -> None:
    unit = wallet.asset
    assert isinstance(unit, Unit)
    postings = (
        Posting(wallet, -coins),
        Posting(AccountKey.spent(unit), coins),
        Posting(AccountKey.issuance(Unit("DIAMOND")), -diamonds),
        Posting(AccountKey.earnings("creator", Unit("DIAMOND")), diamonds),
    )
    cause = Cause("gift", "g-1")
    metadata = (("note", "x"),)
    arguments = ("tx-1", TransactionKind.GIFT, postings, occurred_at, "key-1", cause, metadata)
    _same(Transaction._of(*arguments), Transaction(*arguments))


@given(
    IDS,
    st.lists(st.builds(LotConsumption, IDS, st.integers(1, MAX_MINOR_UNITS)), max_size=3),
    st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS),
    units(),
)
def test_a_spend_result_built_for_a_spend_is_the_result_the_constructor_makes(
    transaction_id: str, consumed: list[LotConsumption], balance: int, unit: Unit
) -> None:
    arguments = (transaction_id, tuple(consumed), UnitAmount(balance, unit))
    built = SpendResult._of(*arguments)
    _same(built, SpendResult(*arguments))
    assert hash(built) == hash(SpendResult(*arguments))


@given(
    st.integers(1, 10**9),
    st.data(),
    st.none() | st.integers(0, 10**6).map(lambda minor: Money.from_minor(minor, "USD")),
    st.none() | TIMES,
)
def test_a_lot_taken_from_is_the_lot_and_consumption_the_constructors_make(
    amount: int, data: st.DataObject, value: Money | None, expires_at: datetime | None
) -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    if expires_at is not None and expires_at <= created:
        expires_at = None
    origin = LotOrigin.PURCHASE if value is not None else LotOrigin.BONUS
    wallet = AccountKey.wallet("alice", Unit("COIN"))
    lot = Lot.new(
        "lot-1", wallet, origin, amount, created, "tx-1", value=value, expires_at=expires_at
    )
    coins = data.draw(st.integers(1, amount))
    after, consumption = lot.take(coins)
    _same(
        after, attrs.evolve(lot, remaining=after.remaining, value_recognised=after.value_recognised)
    )
    assert after.remaining == amount - coins
    _same(consumption, LotConsumption(consumption.lot_id, consumption.amount, consumption.value))
