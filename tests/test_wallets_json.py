"""The JSON that spends write directly is the JSON canonical_json would write."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinecon import Money, Unit
from coinecon.errors import StorageError
from coinecon.ledger.idempotency import canonical_json, fingerprint
from coinecon.ledger.journal import (
    AccountKey,
    Cause,
    Metadata,
    Posting,
    TransactionKind,
    metadata_pairs,
)
from coinecon.ledger.lots import LotConsumption
from coinecon.ledger.wallets import SpendResult, _spend_fingerprint
from coinecon.money.money import MAX_MINOR_UNITS
from coinecon.money.units import UnitAmount

# Printable text (what identifiers are), quotes, backslashes and non-ASCII included.
PRINTABLE = st.characters(exclude_categories=["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"])
IDENTIFIERS = st.text(PRINTABLE, min_size=1, max_size=12).filter(str.isprintable)
OWNERS = IDENTIFIERS.filter(lambda owner: not owner.startswith("@"))
UNITS = st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True).map(Unit)
CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
POSITIVE = st.integers(1, MAX_MINOR_UNITS)
METADATA = st.dictionaries(
    IDENTIFIERS,
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | IDENTIFIERS,
    max_size=3,
)


@st.composite
def also_postings(draw: st.DrawFn) -> tuple[Posting, ...]:
    postings = []
    for creator in draw(st.lists(OWNERS, max_size=3, unique=True)):
        unit = draw(UNITS)
        amount = draw(POSITIVE)
        postings.append(Posting(AccountKey.issuance(unit), -amount))
        postings.append(Posting(AccountKey.earnings(creator, unit), amount))
    return tuple(draw(st.permutations(postings)))


@given(
    holder=OWNERS,
    unit=UNITS,
    amount=POSITIVE,
    cause=st.builds(Cause, IDENTIFIERS, IDENTIFIERS),
    kind=st.sampled_from([TransactionKind.SPEND, TransactionKind.GIFT]),
    also=also_postings(),
    metadata=METADATA,
)
def test_the_spend_fingerprint_is_the_fingerprint_of_the_request(
    holder: str,
    unit: Unit,
    amount: int,
    cause: Cause,
    kind: TransactionKind,
    also: tuple[Posting, ...],
    metadata: dict[str, str | int | bool | None],
) -> None:
    pairs: Metadata = metadata_pairs(metadata)
    request = {
        "holder": holder,
        "unit": unit.code,
        "amount": amount,
        "cause": str(cause),
        "kind": kind.value,
        "also": sorted([str(p.account), p.amount] for p in also),
        "metadata": dict(pairs),
    }
    assert _spend_fingerprint(holder, unit(amount), cause, kind, also, pairs) == fingerprint(
        "spend", request
    )


CONSUMPTIONS = st.builds(
    LotConsumption,
    IDENTIFIERS,
    POSITIVE,
    st.none() | st.builds(Money.from_minor, st.integers(0, MAX_MINOR_UNITS), CURRENCIES),
)


@given(
    transaction_id=IDENTIFIERS,
    consumed=st.lists(CONSUMPTIONS, max_size=4).map(tuple),
    balance=st.builds(UnitAmount, st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS), UNITS),
)
def test_a_spend_result_is_written_as_canonical_json_and_read_back(
    transaction_id: str, consumed: tuple[LotConsumption, ...], balance: UnitAmount
) -> None:
    result = SpendResult(transaction_id, consumed, balance)
    values: dict[str, int] = {}
    for c in consumed:
        if c.value is not None:
            values[c.value.currency.code] = values.get(c.value.currency.code, 0) + c.value.minor
    expected = canonical_json(
        {
            "transaction_id": transaction_id,
            "lots": len(consumed),
            "unit": balance.unit.code,
            "balance": balance.amount,
            "value": values,
        }
    )
    assert result.to_json() == expected
    assert SpendResult.from_json(expected, consumed) == result


def test_a_spend_result_written_with_its_lots_is_still_read() -> None:
    """Results stored before the lots left the JSON list them; they still replay."""
    old = (
        '{"balance":5,"consumed":[["lot-1",3,30,"USD"],["lot-2",2,null,null]],'
        '"transaction_id":"tx-1","unit":"COIN"}'
    )
    result = SpendResult.from_json(old)
    assert result.consumed == (
        LotConsumption("lot-1", 3, Money.from_minor(30, "USD")),
        LotConsumption("lot-2", 2, None),
    )
    assert result.to_json() == (
        '{"balance":5,"lots":2,"transaction_id":"tx-1","unit":"COIN","value":{"USD":30}}'
    )


def test_a_spend_result_refuses_consumptions_that_do_not_match_its_count() -> None:
    text = '{"balance":5,"lots":2,"transaction_id":"tx-1","unit":"COIN","value":{}}'
    with pytest.raises(StorageError, match="took from 2 lots, but 1 consumptions"):
        SpendResult.from_json(text, [LotConsumption("lot-1", 3, None)])
