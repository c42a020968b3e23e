from __future__ import annotations

import importlib
import inspect
import pkgutil
from datetime import UTC, datetime, timedelta, tzinfo

import attrs
import pytest

import coinecon
from coinecon import Clock, CoineconError, ManualClock, NaiveDatetimeError, SystemClock
from coinecon import errors as errors_module
from coinecon.clock import require_aware
from coinecon.errors import InvalidIdentifierError, InvalidTypeError, ValidationError
from coinecon.ledger.events import OutboxEvent
from coinecon.ledger.journal import AccountKey, Metadata, metadata_pairs
from coinecon.ledger.lots import Lot, LotOrigin, SpendOrder, plan_spend, take_from_lots
from coinecon.money.units import Unit

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_system_clock_is_aware() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert isinstance(SystemClock(), Clock)
    assert repr(SystemClock()) == "SystemClock()"


def test_manual_clock() -> None:
    clock = ManualClock(START)
    assert isinstance(clock, Clock)
    assert clock.now() == START
    assert clock.advance(timedelta(days=1)) == START + timedelta(days=1)
    assert clock.set(START) == START
    assert clock.now() == START
    assert "2026" in repr(clock)
    with pytest.raises(ValidationError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(InvalidTypeError):
        clock.advance(1)  # type: ignore[arg-type]
    with pytest.raises(NaiveDatetimeError):
        clock.set(datetime(2026, 1, 1))  # noqa: DTZ001
    assert clock.now() == START


def test_naive_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        ManualClock(datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(InvalidTypeError):
        require_aware("2026-01-01")
    with pytest.raises(ValueError, match="timezone-aware"):
        require_aware(datetime(2026, 1, 1), "start")  # noqa: DTZ001


class _BrokenZone(tzinfo):
    """A time zone whose offset is not a timedelta within a day."""

    def __init__(self, offset: object) -> None:
        self._offset = offset

    def utcoffset(self, _dt: datetime | None) -> timedelta:
        return self._offset  # type: ignore[return-value]

    def dst(self, _dt: datetime | None) -> None:
        return None

    def tzname(self, _dt: datetime | None) -> str:
        return "broken"


@pytest.mark.parametrize("offset", [5, timedelta(hours=25)])
def test_a_time_zone_without_a_valid_offset_is_a_typed_error(offset: object) -> None:
    broken = datetime(2026, 1, 1, tzinfo=_BrokenZone(offset))
    with pytest.raises(InvalidTypeError, match="no valid UTC offset"):
        require_aware(broken, "start")
    with pytest.raises(InvalidTypeError, match="occurred_at has a time zone"):
        OutboxEvent("event-1", "t", broken, "{}")


def test_every_error_is_documented_and_rooted() -> None:
    standard = (ValueError, TypeError, LookupError, RuntimeError)
    for name in errors_module.__all__:
        error = getattr(errors_module, name)
        assert issubclass(error, CoineconError)
        assert error.__doc__
        if error is not CoineconError:
            assert issubclass(error, standard), name


def test_public_api_is_sorted_and_documented() -> None:
    # Sorted as ruff sorts __all__: constants first, then the rest by name.
    assert coinecon.__all__ == sorted(coinecon.__all__, key=lambda n: (not n.isupper(), n))
    for name in coinecon.__all__:
        obj = getattr(coinecon, name)
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attribute, member in vars(obj).items():
                if attribute.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{attribute}"


def _attrs_classes() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(coinecon.__path__, "coinecon."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and attrs.has(obj) and obj.__module__.startswith("coinecon"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def test_no_value_class_raises_a_bare_type_error_from_attrs() -> None:
    """attrs' own instance_of validators raise a plain TypeError, outside the
    CoineconError family: every value class uses coinecon._checks instead."""
    classes = _attrs_classes()
    assert len(classes) > 20
    foreign = [
        f"{cls.__qualname__}.{field.name}"
        for cls in classes
        for field in attrs.fields(cls)
        if field.validator is not None and type(field.validator).__module__.startswith("attr")
    ]
    assert foreign == []


def test_a_wrong_type_is_a_typed_error_naming_the_field() -> None:
    from coinecon.pricing import TaxRule  # noqa: PLC0415

    with pytest.raises(InvalidTypeError, match="mode must be a TaxMode, got str 'exclusive'"):
        TaxRule("US", coinecon.Rate("5%"), "exclusive")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="kind must be a TransactionKind"):
        coinecon.Transaction(
            id="t",
            kind="gift",  # type: ignore[arg-type]
            postings=(),
            occurred_at=START,
            idempotency_key="k",
            cause=coinecon.Cause("gift", "1"),
        )


def test_advancing_past_the_last_datetime_is_a_validation_error() -> None:
    last = datetime.max.replace(tzinfo=UTC)
    clock = ManualClock(last - timedelta(hours=1))
    with pytest.raises(ValidationError, match="beyond the last datetime"):
        clock.advance(timedelta(days=1))
    assert clock.now() == last - timedelta(hours=1)
    assert clock.advance(timedelta(hours=1)) == last


WALLET = AccountKey.wallet("alice", Unit("COIN"))


def _lot(**fields: object) -> Lot:
    given: dict[str, object] = {
        "id": "lot-1",
        "account": WALLET,
        "origin": LotOrigin.BONUS,
        "amount": 5,
        "created_at": START,
        "transaction_id": "tx-1",
        **fields,
    }
    return Lot.new(**given)  # type: ignore[arg-type]


def test_is_expired_refuses_a_naive_or_untyped_now() -> None:
    expiring = _lot(expires_at=START + timedelta(days=1))
    lasting = _lot()
    for lot in (expiring, lasting):
        with pytest.raises(NaiveDatetimeError, match="now must be timezone-aware"):
            lot.is_expired(datetime(2026, 1, 2))  # noqa: DTZ001
        with pytest.raises(InvalidTypeError, match="now must be a datetime"):
            lot.is_expired("2026-01-02")  # type: ignore[arg-type]
    assert expiring.is_expired(START + timedelta(days=1))
    assert not expiring.is_expired(START)
    assert not lasting.is_expired(START + timedelta(days=999))


def test_a_spend_order_that_is_not_a_member_is_a_typed_error() -> None:
    lots = [_lot()]
    for spend in (plan_spend, take_from_lots):
        with pytest.raises(InvalidTypeError, match="order must be a SpendOrder, got str"):
            spend(lots, 1, "oldest-first")  # type: ignore[arg-type]
    assert plan_spend(lots, 1, SpendOrder.OLDEST_FIRST)[0].amount == 1


def test_a_lots_value_is_money_or_none() -> None:
    assert _lot(value=None).value is None
    with pytest.raises(InvalidTypeError, match=r"value must be a Money, got str '1\.00'"):
        _lot(value="1.00")


def test_a_lot_checks_its_transaction_id() -> None:
    with pytest.raises(InvalidTypeError, match="transaction id must be a string, got int"):
        _lot(transaction_id=123)
    with pytest.raises(InvalidIdentifierError, match="transaction id must not be empty"):
        _lot(transaction_id="")
    with pytest.raises(InvalidIdentifierError, match=r"a control character, U\+000A"):
        _lot(transaction_id="tx\n1")
    assert _lot().transaction_id == "tx-1"


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"id": 1}, InvalidTypeError, "event id must be a string"),
        ({"id": ""}, InvalidIdentifierError, "event id must not be empty"),
        ({"type": None}, InvalidTypeError, "event type must be a string"),
        ({"type": "a\tb"}, InvalidIdentifierError, "event type"),
        ({"payload": 5}, InvalidTypeError, "payload must be a str"),
        ({"payload": None}, InvalidTypeError, "payload must be a str"),
        ({"transaction_id": 7}, InvalidTypeError, "transaction id must be a string"),
        ({"transaction_id": ""}, InvalidIdentifierError, "transaction id must not be empty"),
    ],
)
def test_an_outbox_event_checks_its_fields(
    fields: dict[str, object], error: type[Exception], message: str
) -> None:
    given: dict[str, object] = {
        "id": "event-1",
        "type": "coins.credited",
        "occurred_at": START,
        "payload": "{}",
        "transaction_id": "tx-1",
        **fields,
    }
    with pytest.raises(error, match=message):
        OutboxEvent(**given)  # type: ignore[arg-type]


def test_an_outbox_event_may_describe_no_transaction() -> None:
    event = OutboxEvent("event-1", "coins.credited", START, "")
    assert event.transaction_id is None
    assert event.payload == ""


@pytest.mark.parametrize(
    "pairs",
    [(("a", 1), ("a", 2)), (("a", 1), ("a", "x")), (("b", None), ("a", 1), ("b", None))],
)
def test_metadata_pairs_refuse_a_repeated_key(pairs: Metadata) -> None:
    with pytest.raises(InvalidIdentifierError, match=r"metadata key '[ab]' is given twice"):
        metadata_pairs(pairs)
    with pytest.raises(InvalidIdentifierError, match="given twice"):
        coinecon.Transaction(
            id="t",
            kind=coinecon.TransactionKind.PURCHASE,
            postings=(
                coinecon.Posting(AccountKey.issuance(Unit("COIN")), -1),
                coinecon.Posting(WALLET, 1),
            ),
            occurred_at=START,
            idempotency_key="k",
            cause=coinecon.Cause("purchase", "1"),
            metadata=pairs,
        )


def test_metadata_pairs_sort_by_key_whatever_the_values() -> None:
    assert metadata_pairs((("b", 1), ("a", "x"), ("c", None))) == (
        ("a", "x"),
        ("b", 1),
        ("c", None),
    )
    assert metadata_pairs({"b": True, "a": 2}) == (("a", 2), ("b", True))
    assert metadata_pairs(()) == ()
    assert metadata_pairs(None) == ()
