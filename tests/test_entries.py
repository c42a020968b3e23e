"""The building blocks of the money side (coinecon.ledger.entries) on their
own: keys, legs, and record_debit's reading of lots, taking first the ones
it is told, then the others, and the debt beyond them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coinecon import Cause, Currency, LotOrigin, Money, TransactionKind
from coinecon.errors import InvalidAmountError, StorageError
from coinecon.ledger import entries
from coinecon.ledger.journal import AccountKey, AccountKind
from coinecon.ledger.lots import SpendOrder
from coinecon.ledger.wallets import Wallets
from coinecon.ports import Store
from coinecon.recharge.books import take_back_legs
from coinecon.testing.contract import COIN, T0

ALICE = AccountKey.wallet("alice", COIN)


def test_a_money_key_is_of_the_very_currency_asked() -> None:
    usd = Currency.of("USD")
    other = Currency("USD", 3)  # a host's currency under an ISO code, with other places
    assert entries.money_account(AccountKind.CLEARING, usd).asset is usd
    assert entries.money_account(AccountKind.CLEARING, other).asset == other
    assert entries.money_account(AccountKind.CLEARING, usd).asset == usd


def test_a_take_back_in_one_currency_of_coins_valued_in_another_balances() -> None:
    legs = take_back_legs(Money("5.00", "USD"), 40, [Money("3.00", "EUR"), Money("1.00", "USD")])
    by_account = {(p.account.kind, p.account.asset_code): p.amount for p in legs}
    assert by_account == {
        (AccountKind.CLEARING, "USD"): -500,
        (AccountKind.TAX_PAYABLE, "USD"): 40,
        (AccountKind.DEFERRED_REVENUE, "EUR"): 300,
        (AccountKind.DEFERRED_REVENUE, "USD"): 100,
        (AccountKind.LOSSES, "USD"): 500 - 40 - 100,
        (AccountKind.LOSSES, "EUR"): -300,
    }


def _wallet(store: Store) -> tuple[Wallets, list[str]]:
    """alice's wallet: a bought lot, then a bonus lot that expires (spent
    first), then a promotion's lot; 10 coins each; their ids in that order."""
    wallets = Wallets(store)
    ids = []
    for key, origin, value, expires in (
        ("bought", LotOrigin.PURCHASE, Money("1.00", "USD"), None),
        ("bonus", LotOrigin.BONUS, None, timedelta(days=30)),
        ("promo", LotOrigin.PROMOTION, None, None),
    ):
        ids.append(
            wallets.credit(
                key,
                holder="alice",
                amount=COIN(10),
                origin=origin,
                cause=Cause("c", key),
                value=value,
                expires_in=expires,
            ).lot_id
        )
    return wallets, ids


def _debit(
    store: Store, coins: int, first: tuple[str, ...], *, allow_debt: bool
) -> entries.Debited:
    with store.unit_of_work() as uow:
        debited = entries.record_debit(
            uow,
            transaction_id=f"t-{coins}",
            kind=TransactionKind.REFUND if allow_debt else TransactionKind.ADJUSTMENT,
            wallet=ALICE,
            coins=coins,
            sink=AccountKey.issuance(COIN),
            order=SpendOrder.EXPIRING_FIRST,
            now=T0 + timedelta(days=1),
            key=f"k-{coins}",
            cause=Cause("test", "debit"),
            first=first,
            legs_for=lambda consumed: entries.recognition_legs(consumed, AccountKind.REVENUE),
            allow_debt=allow_debt,
        )
        uow.commit()
    return debited


def test_the_lots_taken_first_are_read_past_in_spend_order(store: Store) -> None:
    """The bonus lot, first in spend order, is taken first as told; the rest
    comes from the lots after it, not as a debt."""
    wallets, (_bought, bonus, promo) = _wallet(store)
    debited = _debit(store, 15, (bonus,), allow_debt=True)
    assert [(c.lot_id, c.amount) for c in debited.consumed] == [(bonus, 10), (promo, 5)]
    assert debited.debt == 0
    assert wallets.balance("alice", COIN) == COIN(15)
    assert wallets.verify().ok


def test_what_the_lots_lack_is_the_debt(store: Store) -> None:
    wallets, (bought, _bonus, _promo) = _wallet(store)
    debited = _debit(store, 45, (bought,), allow_debt=True)
    assert debited.debt == 15
    assert sum(c.amount for c in debited.consumed) == 30
    assert wallets.balance("alice", COIN) == COIN(-15)
    assert wallets.verify().ok


def test_a_debit_is_positive_and_never_a_debt_unless_allowed(store: Store) -> None:
    wallets, _ = _wallet(store)
    for coins in (0, -1, True):
        with pytest.raises(InvalidAmountError, match="coins to debit must be a positive int"):
            _debit(store, coins, (), allow_debt=True)
    with pytest.raises(Exception, match="insufficient funds"):
        _debit(store, 31, (), allow_debt=False)
    assert wallets.balance("alice", COIN) == COIN(30)


def test_lots_that_disagree_with_the_balance_are_a_storage_error(store: Store) -> None:
    wallets, (bought, _bonus, _promo) = _wallet(store)
    with store.unit_of_work() as uow:  # a lot emptied behind the books' back
        lot = uow.lots.get(bought)
        assert lot is not None
        uow.lots.update(lot.take(10)[0])
        uow.commit()
    with pytest.raises(StorageError, match="disagree"):
        _debit(store, 25, (), allow_debt=False)
    assert wallets.balance("alice", COIN) == COIN(30)
