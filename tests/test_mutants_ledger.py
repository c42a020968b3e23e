"""The ledger's rules at their edges: the cases a rewrite could get wrong
without other tests noticing (found by ``python3 tasks.py mutate``).

Every refusal is checked for its exact error and, where the message is the
point (which account, which rule), for its message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from coinecon import Currency, Money
from coinecon.errors import (
    BalanceLimitExceeded,
    InsufficientFunds,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidTypeError,
    LedgerRuleViolation,
    NaiveDatetimeError,
    UnbalancedTransactionError,
    WalletFrozen,
)
from coinecon.ledger import journal
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    Cause,
    Posting,
    PostingNotAllowed,
    Transaction,
    TransactionKind,
    check_rules,
    metadata_pairs,
)
from coinecon.ledger.lots import Lot, LotOrigin, SpendOrder, plan_spend, take_from_lots
from coinecon.money.money import MAX_MINOR_UNITS
from coinecon.testing.contract import COIN, DIAMOND, T0, transaction

ALICE = AccountKey.wallet("alice", COIN)
ISSUANCE = AccountKey.issuance(COIN)
SPENT = AccountKey.spent(COIN)
USD = Currency.of("USD")


class TestMetadataPairs:
    def test_none_and_empty_are_no_metadata(self) -> None:
        assert metadata_pairs(None) == ()
        assert metadata_pairs(()) == ()
        assert metadata_pairs({}) == ()

    def test_pairs_come_back_sorted(self) -> None:
        assert metadata_pairs((("b", 2), ("a", None))) == (("a", None), ("b", 2))
        assert metadata_pairs((("only", True),)) == (("only", True),)

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "ab",
            [],
            [("a", 1)],
            (("a", 1), "xy"),
            (("a", 1, 2),),
            (("a",),),
            (["a", 1],),
            0,
        ],
    )
    def test_anything_but_a_mapping_or_a_tuple_of_pairs_is_refused(self, value: object) -> None:
        with pytest.raises(InvalidTypeError, match="metadata must map str keys"):
            metadata_pairs(value)  # type: ignore[arg-type]

    def test_a_key_given_twice_is_refused(self) -> None:
        with pytest.raises(InvalidIdentifierError, match="metadata key 'a' is given twice"):
            metadata_pairs((("a", 1), ("b", 2), ("a", 1)))


class TestTransactionChecks:
    def test_every_asset_must_balance_not_only_one(self) -> None:
        # COIN balances; DIAMOND does not.
        with pytest.raises(UnbalancedTransactionError, match=r"\{'DIAMOND': 5\}"):
            transaction(
                "t1",
                TransactionKind.SETTLEMENT,
                (ISSUANCE, -5),
                (SPENT, 5),
                (AccountKey.issuance(DIAMOND), -5),
                (AccountKey.spent(DIAMOND), 10),
            )

    def test_a_single_coin_credit_follows_the_credit_rules(self) -> None:
        with pytest.raises(PostingNotAllowed, match="a spend transaction may not credit"):
            transaction("t1", TransactionKind.SPEND, (ALICE, 1), (SPENT, -1))
        with pytest.raises(PostingNotAllowed, match="a purchase transaction may not debit"):
            transaction("t1", TransactionKind.PURCHASE, (ALICE, -1), (ISSUANCE, 1))
        credited = transaction("t1", TransactionKind.PURCHASE, (ISSUANCE, -1), (ALICE, 1))
        assert credited.posting_for(ALICE) == Posting(ALICE, 1)

    def test_a_duplicate_names_the_account_given_twice(self) -> None:
        postings = (Posting(ISSUANCE, -2), Posting(SPENT, 1), Posting(SPENT, 1))
        with pytest.raises(LedgerRuleViolation, match=re.escape(f"account {SPENT} appears twice")):
            Transaction(
                id="t1",
                kind=TransactionKind.SETTLEMENT,
                postings=postings,
                occurred_at=T0,
                idempotency_key="k",
                cause=Cause("test", "t1"),
            )

    def test_a_foreign_posting_without_duplicates_is_a_type_error(self) -> None:
        postings = (Posting(ISSUANCE, -2), "junk")
        with pytest.raises(InvalidTypeError, match="postings must be Posting values"):
            Transaction(
                id="t1",
                kind=TransactionKind.SETTLEMENT,
                postings=postings,  # type: ignore[arg-type]
                occurred_at=T0,
                idempotency_key="k",
                cause=Cause("test", "t1"),
            )

    def test_trusted_builder_returns_the_transaction(self) -> None:
        postings = (Posting(ISSUANCE, -5), Posting(ALICE, 5))
        cause = Cause("purchase", "p1")
        built = Transaction._of("t1", TransactionKind.PURCHASE, postings, T0, "k", cause, ())
        assert built == Transaction(
            id="t1",
            kind=TransactionKind.PURCHASE,
            postings=postings,
            occurred_at=T0,
            idempotency_key="k",
            cause=cause,
        )

    def test_posting_amounts_beyond_the_range_either_way(self) -> None:
        assert Posting(ISSUANCE, -MAX_MINOR_UNITS).amount == -MAX_MINOR_UNITS
        assert Posting(ISSUANCE, MAX_MINOR_UNITS).amount == MAX_MINOR_UNITS
        with pytest.raises(BalanceLimitExceeded):
            Posting(ISSUANCE, -MAX_MINOR_UNITS - 1)
        with pytest.raises(BalanceLimitExceeded):
            Posting(ISSUANCE, MAX_MINOR_UNITS + 1)


class TestCheckRules:
    def test_an_issuance_account_may_not_overflow_on_the_negative_side(self) -> None:
        purchase = transaction("t1", TransactionKind.PURCHASE, (ISSUANCE, -5), (ALICE, 5))
        at_limit = {ISSUANCE: -MAX_MINOR_UNITS + 5}
        assert check_rules(purchase, at_limit) == {ISSUANCE: -MAX_MINOR_UNITS, ALICE: 5}
        with pytest.raises(
            BalanceLimitExceeded, match=r"total supply limit of \d+ \(2\^63 - 1\) by 1"
        ):
            check_rules(purchase, {ISSUANCE: -MAX_MINOR_UNITS + 4})

    def test_a_balance_may_reach_the_limit_exactly(self) -> None:
        purchase = transaction("t1", TransactionKind.PURCHASE, (ISSUANCE, -5), (ALICE, 5))
        after = check_rules(purchase, {ALICE: MAX_MINOR_UNITS - 5})
        assert after[ALICE] == MAX_MINOR_UNITS
        with pytest.raises(BalanceLimitExceeded, match="beyond the 64-bit range by 1"):
            check_rules(purchase, {ALICE: MAX_MINOR_UNITS - 4})

    def test_an_empty_wallet_is_short_not_in_debt(self) -> None:
        spend = transaction("t1", TransactionKind.SPEND, (ALICE, -5), (SPENT, 5))
        with pytest.raises(InsufficientFunds, match="holds 0, 5 short of 5") as caught:
            check_rules(spend, {})
        assert (caught.value.balance, caught.value.requested) == (0, 5)
        with pytest.raises(InsufficientFunds, match="holds 4, 1 short of 5"):
            check_rules(spend, {ALICE: 4})
        with pytest.raises(InsufficientFunds, match=r"is in debt \(-1\) and frozen"):
            check_rules(spend, {ALICE: -1})
        assert check_rules(spend, {ALICE: 5}) == {ALICE: 0, SPENT: 5}

    def test_creator_earnings_may_not_go_below_zero(self) -> None:
        account = AccountKey.earnings("carol", DIAMOND)
        other = AccountKey.issuance(DIAMOND)
        conversion = transaction("t1", TransactionKind.CONVERSION, (account, -5), (other, 5))
        with pytest.raises(InsufficientFunds, match="holds 3, 2 short of 5"):
            check_rules(conversion, {account: 3})
        assert check_rules(conversion, {account: 5}) == {account: 0, other: 5}

    def test_a_creator_is_never_paid_more_than_owed(self) -> None:
        """A payable account is negative by what is owed: a payout debits it
        (a positive posting), and may not take it above zero."""
        account = AccountKey(AccountKind.CREATOR_PAYABLE, "carol", USD)
        clearing = AccountKey.system(AccountKind.CLEARING, USD)
        payout = transaction("t1", TransactionKind.PAYOUT, (account, 5), (clearing, -5))
        with pytest.raises(InsufficientFunds, match="holds 3, 2 short of 5") as caught:
            check_rules(payout, {account: -3})
        assert (caught.value.balance, caught.value.requested) == (3, 5)
        assert check_rules(payout, {account: -5}) == {account: 0, clearing: -5}
        assert check_rules(payout, {account: -9}) == {account: -4, clearing: -5}
        owed = transaction("t2", TransactionKind.CONVERSION, (account, -5), (clearing, 5))
        assert check_rules(owed, {}) == {account: -5, clearing: 5}  # owing more is fine
        with pytest.raises(WalletFrozen):
            check_rules(payout, {account: 1})  # already overpaid

    def test_system_accounts_may_go_below_zero(self) -> None:
        purchase = transaction("t1", TransactionKind.PURCHASE, (ISSUANCE, -5), (ALICE, 5))
        assert check_rules(purchase, {}) == {ISSUANCE: -5, ALICE: 5}


def test_shared_account_keys_stay_within_their_bound() -> None:
    largest = 0
    for n in range(journal._MAX_SHARED_KEYS + 10):
        AccountKey.wallet(f"holder-{n}", COIN)
        largest = max(largest, len(journal._SHARED_KEYS))
    assert largest == journal._MAX_SHARED_KEYS
    # A shared key is still the right key.
    assert AccountKey.wallet("holder-1", COIN) == AccountKey(AccountKind.WALLET, "holder-1", COIN)


def lot(lot_id: str = "lot-1", coins: int = 10, **changes: Any) -> Lot:
    fresh = Lot.new(lot_id, ALICE, LotOrigin.PURCHASE, coins, T0, "tx-1", value=Money("1.00", USD))
    return attrs.evolve(fresh, **changes)


class TestLots:
    def test_remaining_may_be_anything_from_zero_to_the_amount(self) -> None:
        assert lot(remaining=0).remaining == 0
        assert lot(remaining=10).remaining == 10
        for remaining in (-1, 11):
            with pytest.raises(InvalidAmountError, match=f"lot remaining {remaining} is outside"):
                lot(remaining=remaining)

    def test_value_recognised_stays_within_the_value(self) -> None:
        assert lot(value_recognised=100).value_recognised == 100
        for recognised in (-1, 101):
            with pytest.raises(InvalidAmountError, match="lot value recognised"):
                lot(value_recognised=recognised)
        with pytest.raises(InvalidAmountError, match=r"lot value recognised 1 is outside 0\.\.0"):
            lot(value=None, value_recognised=1)
        assert lot(value=None).remaining_value is None

    def test_consumed_is_what_was_taken(self) -> None:
        after, consumption = lot().take(3)
        assert (after.consumed, after.remaining, consumption.amount) == (3, 7, 3)
        assert consumption.value == Money("0.30", USD)
        assert after.remaining_value == Money("0.70", USD)

    def test_taking_nothing_is_refused(self) -> None:
        with pytest.raises(InvalidAmountError, match="cannot take 0 coins from a lot of 10"):
            lot().take(0)
        with pytest.raises(InvalidAmountError, match="cannot take 11 coins from a lot of 10"):
            lot().take(11)

    def test_is_expired_checks_its_clock_even_without_an_expiry(self) -> None:
        lasting = lot()
        assert lasting.is_expired(T0 + timedelta(days=3650)) is False
        with pytest.raises(NaiveDatetimeError):
            lasting.is_expired(datetime(2026, 1, 1))  # noqa: DTZ001 (the point of the test)
        with pytest.raises(InvalidTypeError):
            lasting.is_expired("2026-01-01")  # type: ignore[arg-type]

    def test_is_expired_at_the_instant_of_expiry(self) -> None:
        expiring = lot(expires_at=T0 + timedelta(days=1))
        assert expiring.is_expired(T0 + timedelta(days=1) - timedelta(microseconds=1)) is False
        assert expiring.is_expired(T0 + timedelta(days=1)) is True


class TestTakeFromLots:
    def test_the_order_must_be_a_spend_order(self) -> None:
        with pytest.raises(InvalidTypeError, match="order must be a SpendOrder"):
            take_from_lots([lot()], 5, "oldest-first")  # type: ignore[arg-type]

    def test_now_must_be_an_aware_datetime(self) -> None:
        with pytest.raises(NaiveDatetimeError):
            take_from_lots([lot()], 5, now=datetime(2026, 1, 1))  # noqa: DTZ001 (the point)
        with pytest.raises(InvalidTypeError):
            take_from_lots([lot()], 5, now="2026-01-01")  # type: ignore[arg-type]

    @pytest.mark.parametrize("now", [None, T0 + timedelta(hours=1)])
    def test_exhausted_lots_are_skipped(self, now: datetime | None) -> None:
        empty = lot("lot-0", remaining=0, value_recognised=100)
        full = lot("lot-1", created_at=T0 + timedelta(minutes=1))
        plan = plan_spend([empty, full], 5, SpendOrder.OLDEST_FIRST, now=now)
        assert [(c.lot_id, c.amount) for c in plan] == [("lot-1", 5)]
        plan = plan_spend([empty, full, lot("lot-2")], 15, SpendOrder.OLDEST_FIRST, now=now)
        assert [(c.lot_id, c.amount) for c in plan] == [("lot-2", 10), ("lot-1", 5)]


class TestLotTimesInUtc:
    """A lot keeps its times in UTC: two times of one zone compare by wall
    clock, and an hour apart across a change of the clocks compare wrongly."""

    def test_times_of_another_zone_are_kept_as_the_same_instant_in_utc(self) -> None:
        tokyo = timezone(timedelta(hours=9))
        created = datetime(2026, 1, 1, 9, tzinfo=tokyo)
        kept = Lot.new(
            "lot-1", ALICE, LotOrigin.BONUS, 10, created, "tx-1", expires_at=created + timedelta(1)
        )
        assert kept.created_at == created
        assert kept.created_at.tzinfo is UTC
        assert kept.expires_at is not None
        assert kept.expires_at.tzinfo is UTC
        assert kept.expires_at == created + timedelta(1)

    def test_a_utc_time_is_kept_as_given(self) -> None:
        kept = Lot.new("lot-1", ALICE, LotOrigin.BONUS, 10, T0, "tx-1")
        assert kept.created_at is T0

    def test_a_naive_time_is_still_refused(self) -> None:
        with pytest.raises(NaiveDatetimeError):
            Lot.new("lot-1", ALICE, LotOrigin.BONUS, 10, datetime(2026, 1, 1), "tx-1")  # noqa: DTZ001 (the point)


def test_a_lot_of_one_coin_is_taken_at_a_time() -> None:
    """With ``now`` given, lots still holding a single coin are spendable."""
    last = lot(coins=1)
    ((taken, consumed),) = take_from_lots([last], 1, now=T0)
    assert taken.remaining == 0
    assert consumed.amount == 1
