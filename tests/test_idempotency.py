"""Canonical JSON and request fingerprints."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from coinecon.errors import IdempotencyConflict, InvalidTypeError
from coinecon.ledger import idempotency
from coinecon.ledger.idempotency import IdempotencyRecord, canonical_json, fingerprint

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_canonical_json_is_json_with_sorted_keys_and_no_spaces(value: object) -> None:
    text = canonical_json(value)
    assert text == json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert json.loads(text) == value


def test_datetimes_are_written_in_iso_8601_and_other_objects_refused() -> None:
    moment = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert canonical_json({"at": moment}) == '{"at":"2026-01-01T12:00:00+00:00"}'
    with pytest.raises(InvalidTypeError, match="cannot fingerprint a object"):
        canonical_json({"x": object()})


@given(st.dictionaries(st.text(), JSON, max_size=4))
def test_a_fingerprint_ignores_key_order_but_not_values(request: dict[str, object]) -> None:
    reordered = dict(reversed(list(request.items())))
    assert fingerprint("spend", request) == fingerprint("spend", reordered)
    assert fingerprint("spend", request) != fingerprint("credit", request)
    assume("\x00extra" not in request)
    assert fingerprint("spend", request) != fingerprint("spend", {**request, "\x00extra": 1})


def test_a_record_replays_its_result_or_refuses_another_request() -> None:
    record = IdempotencyRecord("k", "f" * 64, '{"ok":true}', datetime(2026, 1, 1, tzinfo=UTC))
    assert record.replay("f" * 64) == '{"ok":true}'
    with pytest.raises(IdempotencyConflict) as info:
        record.replay("e" * 64)
    assert info.value.key == "k"


def test_a_circular_value_is_refused_with_a_typed_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(InvalidTypeError, match="JSON"):
        canonical_json({"request": loop})


@pytest.mark.parametrize(
    "value",
    [
        {(1, 2): 3},
        {1: "a", "b": 2},
        {"x": {None: 1, "y": 2}},
        float("nan"),
        {"x": [float("inf")]},
        {"x": -float("inf")},
        {"x": 10**5000},
    ],
)
def test_what_json_cannot_hold_is_a_typed_error(value: object) -> None:
    with pytest.raises(InvalidTypeError, match="cannot write this value as JSON"):
        canonical_json(value)
    with pytest.raises(InvalidTypeError, match="cannot write this value as JSON"):
        fingerprint("spend", {"request": value})


def test_the_pure_python_encoder_refuses_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "_C_ENCODER", None)
    assert canonical_json({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
    for value in ({(1, 2): 3}, {1: "a", "b": 2}, float("nan"), {"x": 10**5000}):
        with pytest.raises(InvalidTypeError, match="cannot write this value as JSON"):
            canonical_json(value)
    with pytest.raises(InvalidTypeError, match="cannot fingerprint a object"):
        canonical_json({"x": object()})


def test_a_conflict_says_which_fields_differ() -> None:
    from coinecon import Cause, ManualClock, Unit  # noqa: PLC0415
    from coinecon.adapters.memory import MemoryStore  # noqa: PLC0415
    from coinecon.ledger.lots import LotOrigin  # noqa: PLC0415
    from coinecon.ledger.wallets import Wallets  # noqa: PLC0415

    coin = Unit("COIN")
    wallets = Wallets(MemoryStore(), clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    wallets.credit(
        "c-1", holder="ann", amount=coin(10), origin=LotOrigin.BONUS, cause=Cause("bonus", "b")
    )
    wallets.spend("s-1", holder="ann", amount=coin(3), cause=Cause("item", "wave"))
    with pytest.raises(IdempotencyConflict) as spent:
        wallets.spend("s-1", holder="ann", amount=coin(4), cause=Cause("item", "wave"))
    assert spent.value.fields == ("amount",)
    assert str(spent.value).endswith("a different request: amount differs")
    with pytest.raises(IdempotencyConflict) as credited:
        wallets.credit(
            "c-1", holder="bob", amount=coin(11), origin=LotOrigin.BONUS, cause=Cause("bonus", "b")
        )
    assert credited.value.fields == ("amount", "holder")
    assert str(credited.value).endswith(": amount, holder differ")


def test_a_record_stored_without_fields_still_replays_and_conflicts() -> None:
    old = IdempotencyRecord("k", "f" * 64, "{}", datetime(2026, 1, 1, tzinfo=UTC))
    assert old.replay("f" * 64 + '|{"a":"1"}') == "{}"  # the digest decides
    with pytest.raises(IdempotencyConflict) as info:
        old.replay("e" * 64 + '|{"a":"1"}')
    assert info.value.fields == ()
