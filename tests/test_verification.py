"""verify_books: every problem it can report, each found on its own and all at once.

The books are built by hand: a purchase, a spend and a money settlement, the
postings recorded with their running balances, the stored balances and the
wallet's one lot. Each test corrupts one thing and checks the exact report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    RecordedPosting,
    Transaction,
    TransactionKind,
)
from coinecon.ledger.lots import Lot, LotOrigin
from coinecon.ledger.verification import VerificationReport, verify_books
from coinecon.money.money import Currency, Money
from coinecon.money.units import Unit
from coinecon.testing.contract import COIN, T0, transaction

USD = Currency.of("USD")
ALICE = AccountKey.wallet("alice", COIN)
ISSUANCE = AccountKey.issuance(COIN)
SPENT = AccountKey.spent(COIN)
CLEARING = AccountKey.system(AccountKind.CLEARING, USD)
REVENUE = AccountKey.system(AccountKind.REVENUE, USD)


TRANSACTIONS = (
    transaction("tx-1", TransactionKind.PURCHASE, (ISSUANCE, -100), (ALICE, 100)),
    transaction("tx-2", TransactionKind.SPEND, (ALICE, -30), (SPENT, 30)),
    transaction("tx-3", TransactionKind.SETTLEMENT, (CLEARING, -499), (REVENUE, 499)),
)
LOT = attrs.evolve(
    Lot.new("lot-1", ALICE, LotOrigin.PURCHASE, 100, T0, "tx-1", value=Money("4.99", "USD")),
    remaining=70,
    # Its whole value recognised: the money side of these books is one
    # settlement, and nothing is deferred (test_deferred_revenue_* defer some).
    value_recognised=499,
)


def _record(
    legs: Iterable[tuple[str, AccountKey, int]], *, start: int = 1
) -> list[RecordedPosting]:
    """Postings as a store records them: numbered, with running balances."""
    running: dict[AccountKey, int] = {}
    recorded = []
    for sequence, (transaction_id, account, amount) in enumerate(legs, start):
        running[account] = running.get(account, 0) + amount
        recorded.append(
            RecordedPosting(sequence, transaction_id, account, amount, running[account])
        )
    return recorded


def _postings() -> list[RecordedPosting]:
    return _record((t.id, p.account, p.amount) for t in TRANSACTIONS for p in t.postings)


def _balances(postings: Iterable[RecordedPosting]) -> dict[AccountKey, int]:
    balances: dict[AccountKey, int] = {}
    for posting in postings:
        balances[posting.account] = balances.get(posting.account, 0) + posting.amount
    return balances


def _verify(
    *,
    transactions: Iterable[Transaction] = TRANSACTIONS,
    postings: list[RecordedPosting] | None = None,
    balances: Mapping[AccountKey, int] | None = None,
    lots: Iterable[Lot] = (LOT,),
) -> VerificationReport:
    postings = _postings() if postings is None else postings
    balances = _balances(postings) if balances is None else balances
    return verify_books(transactions, postings, balances, lots)


def test_clean_books_have_no_problem() -> None:
    report = _verify()
    assert report.ok
    assert report.problems == ()
    assert (report.transactions, report.postings, report.accounts) == (3, 6, 5)
    assert str(report) == "checked 3 transactions, 6 postings, 5 accounts: clean"


def test_a_sequence_that_does_not_increase() -> None:
    postings = _postings()
    postings[3] = attrs.evolve(postings[3], sequence=2)
    report = _verify(postings=postings)
    assert report.problems == ("posting sequence 2 is not above 3",)
    assert not report.ok
    assert str(report).endswith("1 problem(s)\nposting sequence 2 is not above 3")


def test_a_running_balance_that_is_not_the_sum_so_far() -> None:
    postings = _postings()
    postings[2] = attrs.evolve(postings[2], balance_after=71)
    assert _verify(postings=postings).problems == (
        "wallet:alice:COIN: running balance after posting 3 is 71, the postings sum to 70",
    )


def test_postings_of_no_knowntransaction() -> None:
    report = _verify(transactions=TRANSACTIONS[::2])
    assert report.problems == ("postings [3, 4] belong to no transaction",)
    assert report.transactions == 2


def test_a_transaction_without_postings() -> None:
    refund = transaction("tx-4", TransactionKind.REFUND, (ALICE, -5), (ISSUANCE, 5))
    report = _verify(transactions=(*TRANSACTIONS, refund))
    assert report.problems == ("transaction tx-4 has no postings",)
    assert report.transactions == 4


def test_recorded_postings_that_differ_from_theirtransaction() -> None:
    postings = _postings()
    expired = AccountKey.expired(COIN)
    postings[3] = attrs.evolve(postings[3], account=expired, balance_after=30)
    assert _verify(postings=postings).problems == (
        "transaction tx-2: recorded postings differ from it",
    )


def test_recorded_postings_that_do_not_balance() -> None:
    postings = _postings()
    postings[3] = attrs.evolve(postings[3], amount=31, balance_after=31)
    assert _verify(postings=postings).problems == (
        "transaction tx-2 does not balance: {'COIN': 1}",
        "transaction tx-2: recorded postings differ from it",
        "COIN does not sum to zero over all accounts: 1",
    )


def test_a_unit_and_a_currency_of_one_code_are_never_merged() -> None:
    """A unit named like a currency: its account prints like the currency's,
    but the two are different assets and never offset each other."""
    clearing_units = AccountKey.system(AccountKind.CLEARING, Unit("USD"))
    assert str(clearing_units) == str(CLEARING)
    postings = _postings()
    postings[4] = attrs.evolve(postings[4], account=clearing_units)
    problems = _verify(postings=postings).problems
    assert "transaction tx-3: recorded postings differ from it" in problems
    assert any(p.startswith("transaction tx-3 does not balance: {'USD': ") for p in problems)
    assert "USD does not sum to zero over all accounts: -499" in problems
    assert "USD does not sum to zero over all accounts: 499" in problems
    assert len(problems) == 4


def test_a_stored_balance_that_is_not_the_sum_of_its_postings() -> None:
    balances = _balances(_postings())
    balances[ALICE] = 69
    balances[AccountKey.wallet("bob", COIN)] = 5
    report = _verify(balances=balances)
    assert report.problems == (
        "wallet:alice:COIN: stored balance 69 differs from the sum of its postings 70 by -1",
        "wallet:bob:COIN: stored balance 5 differs from the sum of its postings 0 by 5",
    )
    assert report.accounts == 6


def test_an_asset_that_does_not_sum_to_zero() -> None:
    postings = [*_postings(), *_record([("tx-9", SPENT, 1)], start=7)]
    postings[-1] = attrs.evolve(postings[-1], balance_after=31)
    assert _verify(postings=postings).problems == (
        "postings [7] belong to no transaction",
        "COIN does not sum to zero over all accounts: 1",
    )


def test_lots_that_do_not_hold_the_wallet_balance() -> None:
    assert _verify(lots=[attrs.evolve(LOT, remaining=69)]).problems == (
        "wallet:alice:COIN: lots hold 69 but the balance is 70",
    )
    assert _verify(lots=[]).problems == ("wallet:alice:COIN: lots hold 0 but the balance is 70",)
    bob = AccountKey.wallet("bob", COIN)
    stray = Lot.new("lot-2", bob, LotOrigin.BONUS, 3, T0, "tx-0")
    assert _verify(lots=[LOT, stray]).problems == (
        "wallet:bob:COIN: lots hold 3 but the balance is 0",
    )


def test_a_wallet_in_debt_needs_empty_lots() -> None:
    chargeback = transaction("tx-4", TransactionKind.CHARGEBACK, (ALICE, -80), (ISSUANCE, 80))
    postings = [*_postings(), *_record([("tx-4", ALICE, -80), ("tx-4", ISSUANCE, 80)], start=7)]
    postings[-2] = attrs.evolve(postings[-2], balance_after=-10)
    postings[-1] = attrs.evolve(postings[-1], balance_after=-20)
    transactions = (*TRANSACTIONS, chargeback)
    assert _verify(transactions=transactions, postings=postings, lots=[]).ok
    assert _verify(transactions=transactions, postings=postings).problems == (
        "wallet:alice:COIN: lots hold 70 but the balance is -10",
    )


def test_every_problem_is_reported_not_only_the_first() -> None:
    postings = _postings()
    postings[1] = attrs.evolve(postings[1], balance_after=99)
    balances = _balances(postings)
    balances[REVENUE] = 500
    report = _verify(postings=postings, balances=balances, lots=[attrs.evolve(LOT, remaining=1)])
    assert report.problems == (
        "wallet:alice:COIN: running balance after posting 2 is 99, the postings sum to 100",
        "revenue:@platform:USD: stored balance 500 differs from the sum of its postings 499 by 1",
        "wallet:alice:COIN: lots hold 1 but the balance is 70",
    )
    assert str(report).startswith("checked 3 transactions, 6 postings, 5 accounts: 3 problem(s)\n")


def test_transactions_in_another_order_than_their_postings_are_still_checked() -> None:
    """Stores give a transaction's postings together, in the order of the
    transactions; books that do not are still checked whole."""
    report = _verify(transactions=reversed(TRANSACTIONS))
    assert report.ok
    assert (report.transactions, report.postings) == (3, 6)


def test_postings_of_one_transaction_apart_from_each_other() -> None:
    """tx-1's second posting comes after tx-2's: each part is checked on its
    own, and neither balances."""
    first, second, *rest = _postings()
    postings = _record(
        (p.transaction_id, p.account, p.amount) for p in (first, *rest[:2], second, *rest[2:])
    )
    assert _verify(postings=postings).problems == (
        "transaction tx-1 does not balance: {'COIN': -100}",
        "transaction tx-1: recorded postings differ from it",
        "postings [4] belong to no transaction after those of the postings before them",
    )


def test_a_repeated_sequence_is_not_above_the_one_before() -> None:
    postings = _postings()
    postings[3] = attrs.evolve(postings[3], sequence=3)
    assert "posting sequence 3 is not above 3" in _verify(postings=postings).problems


def test_an_account_posted_to_without_a_stored_balance() -> None:
    balances = _balances(_postings())
    del balances[ALICE]
    assert _verify(balances=balances).problems == (
        "wallet:alice:COIN: stored balance 0 differs from the sum of its postings 70 by -70",
    )


def test_a_wallet_at_zero_with_its_lot_emptied_is_clean() -> None:
    emptied = attrs.evolve(LOT, remaining=0, value_recognised=499)
    postings = _record(
        [
            *((t.id, p.account, p.amount) for t in TRANSACTIONS for p in t.postings),
            ("tx-4", ALICE, -70),
            ("tx-4", SPENT, 70),
        ]
    )
    spend = transaction("tx-4", TransactionKind.SPEND, (ALICE, -70), (SPENT, 70))
    assert _verify(transactions=(*TRANSACTIONS, spend), postings=postings, lots=(emptied,)).ok


def test_lots_of_a_wallet_never_posted_to() -> None:
    lone = Lot.new("lot-9", AccountKey.wallet("bob", COIN), LotOrigin.BONUS, 1, T0, "tx-9")
    assert _verify(lots=(LOT, lone)).problems == (
        "wallet:bob:COIN: lots hold 1 but the balance is 0",
    )


def test_a_unit_and_a_currency_of_one_code_are_listed_currency_first() -> None:
    """Assets that do not sum to zero are listed by code, a currency before
    a unit of the same code, whatever order their postings came in."""
    units = AccountKey.system(AccountKind.CLEARING, Unit("USD"))
    postings = _record([("tx-8", units, 5), ("tx-9", CLEARING, 7)])
    problems = verify_books((), postings, _balances(postings), ()).problems
    assert [p for p in problems if "sum to zero" in p] == [
        "USD does not sum to zero over all accounts: 7",
        "USD does not sum to zero over all accounts: 5",
    ]


def _apart(between: int) -> tuple[str, ...]:
    """The problems of books where tx-0's second posting comes after
    *between* other transactions."""
    legs: list[tuple[str, AccountKey, int]] = [("tx-0", ISSUANCE, -1)]
    others = [f"tx-{n}" for n in range(1, between + 1)]
    for other in others:
        legs += [(other, ISSUANCE, -1), (other, ALICE, 1)]
    legs.append(("tx-0", ALICE, 1))
    books = [
        transaction("tx-0", TransactionKind.ADJUSTMENT, (ISSUANCE, -1), (ALICE, 1)),
        *(transaction(o, TransactionKind.ADJUSTMENT, (ISSUANCE, -1), (ALICE, 1)) for o in others),
    ]
    postings = _record(legs)
    return verify_books(books, postings, _balances(postings), ()).problems


def test_postings_apart_are_named_so_while_their_transaction_is_recent() -> None:
    """verify_books remembers the last 1,000 transactions it checked."""
    assert "belong to no transaction after those of the postings before them" in _apart(999)[-2]
    assert _apart(1000)[-2].endswith("belong to no transaction")


DEFERRED = AccountKey.system(AccountKind.DEFERRED_REVENUE, USD)


def test_deferred_revenue_is_the_value_the_lots_have_not_recognised() -> None:
    owing = attrs.evolve(LOT, value_recognised=149)  # 350 of 499 still owed
    defer = transaction("tx-4", TransactionKind.SETTLEMENT, (REVENUE, 350), (DEFERRED, -350))
    postings = _record(
        [
            *((t.id, p.account, p.amount) for t in TRANSACTIONS for p in t.postings),
            ("tx-4", REVENUE, 350),
            ("tx-4", DEFERRED, -350),
        ]
    )
    books = (*TRANSACTIONS, defer)
    assert _verify(transactions=books, postings=postings, lots=(owing,)).ok
    assert _verify(transactions=books, postings=postings).problems == (
        "deferred revenue in USD is 350 but the lots have 0 of their value to recognise",
    )
    assert _verify(lots=(owing,)).problems == (
        "deferred revenue in USD is 0 but the lots have 350 of their value to recognise",
    )
    # No lot bought in USD at all: nothing of USD is owed.
    assert _verify(transactions=books, postings=postings, lots=()).problems == (
        "wallet:alice:COIN: lots hold 0 but the balance is 70",
        "deferred revenue in USD is 350 but the lots have 0 of their value to recognise",
    )


def test_deferred_revenue_back_at_zero_needs_no_lot_of_its_currency() -> None:
    defer = transaction("tx-4", TransactionKind.SETTLEMENT, (REVENUE, 350), (DEFERRED, -350))
    undo = transaction("tx-5", TransactionKind.SETTLEMENT, (DEFERRED, 350), (REVENUE, -350))
    postings = _record(
        [
            *((t.id, p.account, p.amount) for t in TRANSACTIONS for p in t.postings),
            ("tx-4", REVENUE, 350),
            ("tx-4", DEFERRED, -350),
            ("tx-5", DEFERRED, 350),
            ("tx-5", REVENUE, -350),
        ]
    )
    free = attrs.evolve(LOT, origin=LotOrigin.BONUS, value=None, value_recognised=0)
    report = _verify(transactions=(*TRANSACTIONS, defer, undo), postings=postings, lots=(free,))
    assert report.ok, report.problems
