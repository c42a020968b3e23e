"""The wallets against a plain model, driven by random command sequences."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from coinecon import ManualClock, Money
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.errors import IdempotencyConflict, InsufficientFunds
from coinecon.ledger.journal import AccountKey, AccountKind, Cause
from coinecon.ledger.lots import LotOrigin
from coinecon.ledger.wallets import CreditResult, SpendResult, Wallets
from coinecon.ports import Store
from coinecon.testing.contract import COIN, T0

HOLDERS = ("alice", "bob", "carol")


class Model:
    """Per holder: coins that expire (soonest first) and coins that do not."""

    def __init__(self) -> None:
        self.expiring: dict[str, list[list[object]]] = {h: [] for h in HOLDERS}
        self.other: dict[str, int] = dict.fromkeys(HOLDERS, 0)
        self.issued = 0
        self.spent = 0
        self.expired = 0
        self.paid = 0

    def balance(self, holder: str) -> int:
        return self.other[holder] + sum(int(r) for _, r in self.expiring[holder])  # type: ignore[call-overload]

    def credit(self, holder: str, coins: int, expires_at: datetime | None) -> None:
        self.issued += coins
        if expires_at is None:
            self.other[holder] += coins
        else:
            self.expiring[holder].append([expires_at, coins])
            self.expiring[holder].sort(key=lambda lot: lot[0])  # type: ignore[arg-type, return-value]

    def spend(self, holder: str, coins: int) -> None:
        self.spent += coins
        for lot in self.expiring[holder]:
            take = min(coins, int(lot[1]))  # type: ignore[call-overload]
            lot[1] = int(lot[1]) - take  # type: ignore[call-overload]
            coins -= take
        self.expiring[holder] = [lot for lot in self.expiring[holder] if lot[1]]
        self.other[holder] -= coins

    def expire(self, now: datetime) -> None:
        for holder in HOLDERS:
            due = [lot for lot in self.expiring[holder] if lot[0] <= now]  # type: ignore[operator]
            self.expired += sum(int(r) for _, r in due)  # type: ignore[call-overload]
            self.expiring[holder] = [lot for lot in self.expiring[holder] if lot[0] > now]  # type: ignore[operator]


class WalletMachine(RuleBasedStateMachine):
    credit_results = Bundle("credits")
    spends = Bundle("spends")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        self.wallets = Wallets(self.make_store(), clock=self.clock)
        self.model = Model()
        self.counter = 0

    def make_store(self) -> Store:
        return MemoryStore()

    def next_key(self) -> str:
        self.counter += 1
        return f"key-{self.counter}"

    @rule(
        target=credit_results,
        holder=st.sampled_from(HOLDERS),
        coins=st.integers(1, 500),
        origin=st.sampled_from(LotOrigin),
        expires_in_days=st.none() | st.integers(1, 3),
    )
    def credit(
        self, holder: str, coins: int, origin: LotOrigin, expires_in_days: int | None
    ) -> tuple[str, dict[str, object], CreditResult]:
        key = self.next_key()
        kwargs: dict[str, object] = {
            "holder": holder,
            "amount": COIN(coins),
            "origin": origin,
            "cause": Cause(origin.value, key),
            "value": Money.from_minor(coins, "USD") if origin is LotOrigin.PURCHASE else None,
            "expires_in": None if expires_in_days is None else timedelta(days=expires_in_days),
        }
        result = self.wallets.credit(key, **kwargs)  # type: ignore[arg-type]
        expires_at = (
            None if expires_in_days is None else self.clock.now() + timedelta(expires_in_days)
        )
        self.model.credit(holder, coins, expires_at)
        if origin is LotOrigin.PURCHASE:
            self.model.paid += coins
        assert result.balance == COIN(self.model.balance(holder))
        return key, kwargs, result

    @rule(target=spends, holder=st.sampled_from(HOLDERS), coins=st.integers(1, 600))
    def spend(self, holder: str, coins: int) -> tuple[str, dict[str, object], SpendResult | None]:
        key = self.next_key()
        kwargs: dict[str, object] = {
            "holder": holder,
            "amount": COIN(coins),
            "cause": Cause("item", key),
        }
        if coins > self.model.balance(holder):
            with pytest.raises(InsufficientFunds):
                self.wallets.spend(key, **kwargs)  # type: ignore[arg-type]
            return key, kwargs, None
        result = self.wallets.spend(key, **kwargs)  # type: ignore[arg-type]
        self.model.spend(holder, coins)
        assert sum(c.amount for c in result.consumed) == coins
        assert result.balance == COIN(self.model.balance(holder))
        return key, kwargs, result

    @rule(days=st.integers(1, 2))
    def pass_time_and_expire(self, days: int) -> None:
        now = self.clock.advance(timedelta(days=days))
        results = self.wallets.expire()
        before = self.model.expired
        self.model.expire(now)
        assert sum(r.expired.amount for r in results) == self.model.expired - before

    @rule(credit=credit_results)
    def replay_credit(self, credit: tuple[str, dict[str, object], CreditResult]) -> None:
        key, kwargs, first = credit
        assert self.wallets.credit(key, **kwargs) == first  # type: ignore[arg-type]

    @rule(spent=spends)
    def replay_spend(self, spent: tuple[str, dict[str, object], SpendResult | None]) -> None:
        key, kwargs, first = spent
        if first is None:
            # A refused request stored nothing; its key is still free. Do not
            # retry it, the balance may have changed since.
            return
        assert self.wallets.spend(key, **kwargs) == first  # type: ignore[arg-type]

    @precondition(lambda self: self.counter > 0)
    @rule(spent=consumes(spends), coins=st.integers(1, 50))
    def conflicting_replay(
        self, spent: tuple[str, dict[str, object], SpendResult | None], coins: int
    ) -> None:
        key, kwargs, first = spent
        if first is None:
            return
        different = {**kwargs, "amount": COIN(kwargs["amount"].amount + coins)}  # type: ignore[attr-defined]
        with pytest.raises(IdempotencyConflict):
            self.wallets.spend(key, **different)  # type: ignore[arg-type]

    @invariant()
    def balances_match_the_model(self) -> None:
        for holder in HOLDERS:
            balance = self.wallets.balance(holder, COIN)
            assert balance == COIN(self.model.balance(holder))
            assert not balance.is_negative

    @invariant()
    def conservation_per_unit(self) -> None:
        accounts = [
            AccountKey.issuance(COIN),
            AccountKey.spent(COIN),
            AccountKey.expired(COIN),
            *(AccountKey.wallet(h, COIN) for h in HOLDERS),
        ]
        balances = self.wallets.balances(accounts)
        assert sum(balances.values()) == 0
        assert balances[AccountKey.issuance(COIN)] == -self.model.issued
        assert balances[AccountKey.spent(COIN)] == self.model.spent
        assert balances[AccountKey.expired(COIN)] == self.model.expired

    @invariant()
    def books_verify_clean(self) -> None:
        report = self.wallets.verify()
        assert report.ok, str(report)

    @invariant()
    def no_transaction_touches_two_holders_wallets(self) -> None:
        store = self.wallets._store
        with store.unit_of_work() as uow:
            for transaction in uow.ledger.transactions():
                owners = {
                    p.account.owner
                    for p in transaction.postings
                    if p.account.kind is AccountKind.WALLET
                }
                assert len(owners) <= 1

    @invariant()
    def deferred_revenue_is_bounded_by_what_was_paid(self) -> None:
        deferred = self.wallets.deferred_revenue().get("USD", Money.zero("USD"))
        assert 0 <= deferred.minor <= self.model.paid


WalletMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestWalletsAgainstModel = WalletMachine.TestCase


class SqliteWalletMachine(WalletMachine):
    """The same machine on a SQLite file: a fresh one for every example."""

    def make_store(self) -> Store:
        self.directory = Path(tempfile.mkdtemp(prefix="coinecon-stateful-"))
        self.store = SqliteStore(self.directory / "coins.db")
        return self.store

    @rule()
    def reopen(self) -> None:
        # What was committed survives closing the file: lots, expiries,
        # idempotency records and balances read back the same.
        self.store.close()
        self.store = SqliteStore(self.directory / "coins.db")
        self.wallets = Wallets(self.store, clock=self.clock)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


SqliteWalletMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None
)
TestWalletsAgainstModelOnSqlite = SqliteWalletMachine.TestCase
