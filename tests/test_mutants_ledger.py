"""The ledger's rules at their edges: the cases a rewrite could get wrong
without other tests noticing (found by ``python3 tasks.py mutate``).

Every refusal is checked for its exact error and, where the message is the
point (which account, which rule), for its message.
"""

from __future__ import annotations

import re

import pytest

from coinecon import Currency
from coinecon.errors import (
    BalanceLimitExceeded,
    InsufficientFunds,
    InvalidIdentifierError,
    InvalidTypeError,
    LedgerRuleViolation,
    UnbalancedTransactionError,
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
        with pytest.raises(BalanceLimitExceeded, match="beyond the 64-bit range by 1"):
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

    @pytest.mark.parametrize(
        "account",
        [
            AccountKey.earnings("carol", DIAMOND),
            AccountKey(AccountKind.CREATOR_PAYABLE, "carol", USD),
        ],
    )
    def test_creator_accounts_may_not_go_below_zero(self, account: AccountKey) -> None:
        other = AccountKey.system(AccountKind.CLEARING, account.asset)
        payout = transaction("t1", TransactionKind.PAYOUT, (account, -5), (other, 5))
        with pytest.raises(InsufficientFunds, match="holds 3, 2 short of 5"):
            check_rules(payout, {account: 3})
        assert check_rules(payout, {account: 5}) == {account: 0, other: 5}

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
