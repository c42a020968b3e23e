"""The wallets against a plain model, driven by random command sequences."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
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


@dataclass
class ModelLot:
    """Coins that expire: when, and how many are left."""

    expires_at: datetime
    remaining: int


class Model:
    """Per holder: coins that expire (soonest first) and coins that do not.

    A lot lapses at its expiry: from then it is out of :meth:`balance`, but
    stays in :meth:`books` until a sweep (``expire()``, or the holder's next
    credit or spend) moves it to the expired coins.
    """

    def __init__(self) -> None:
        self.expiring: dict[str, list[ModelLot]] = {h: [] for h in HOLDERS}
        self.other: dict[str, int] = dict.fromkeys(HOLDERS, 0)
        self.issued = 0
        self.spent = 0
        self.expired = 0
        self.paid = 0

    def balance(self, holder: str, now: datetime) -> int:
        """What the holder can spend at *now*: lapsed lots left out."""
        live = [lot.remaining for lot in self.expiring[holder] if lot.expires_at > now]
        return self.other[holder] + sum(live)

    def books(self, holder: str) -> int:
        """The wallet's balance in the books: lapsed lots not swept included."""
        return self.other[holder] + sum(lot.remaining for lot in self.expiring[holder])

    def sweep(self, holder: str, now: datetime) -> int:
        """Expire the holder's lots lapsed at *now*; return how many coins."""
        lots = self.expiring[holder]
        coins = sum(lot.remaining for lot in lots if lot.expires_at <= now)
        self.expired += coins
        self.expiring[holder] = [lot for lot in lots if lot.expires_at > now]
        return coins

    def credit(self, holder: str, coins: int, expires_at: datetime | None, now: datetime) -> None:
        self.sweep(holder, now)
        self.issued += coins
        if expires_at is None:
            self.other[holder] += coins
        else:
            self.expiring[holder].append(ModelLot(expires_at, coins))
            self.expiring[holder].sort(key=lambda lot: lot.expires_at)

    def spend(self, holder: str, coins: int, now: datetime) -> None:
        self.sweep(holder, now)
        self.spent += coins
        for lot in self.expiring[holder]:
            take = min(coins, lot.remaining)
            lot.remaining -= take
            coins -= take
        self.expiring[holder] = [lot for lot in self.expiring[holder] if lot.remaining]
        self.other[holder] -= coins

    def expire(self, now: datetime) -> int:
        return sum(self.sweep(holder, now) for holder in HOLDERS)

    def next_expiry(self, now: datetime) -> datetime | None:
        """The soonest expiry after *now* of any lot, if there is one."""
        later = [lot.expires_at for h in HOLDERS for lot in self.expiring[h]]
        return min([e for e in later if e > now], default=None)


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
        expires_in_hours=st.none() | st.integers(1, 72),
    )
    def credit(
        self, holder: str, coins: int, origin: LotOrigin, expires_in_hours: int | None
    ) -> tuple[str, dict[str, object], CreditResult]:
        key = self.next_key()
        kwargs: dict[str, object] = {
            "holder": holder,
            "amount": COIN(coins),
            "origin": origin,
            "cause": Cause(origin.value, key),
            "value": Money.from_minor(coins, "USD") if origin is LotOrigin.PURCHASE else None,
            "expires_in": None if expires_in_hours is None else timedelta(hours=expires_in_hours),
            "metadata": (
                {"staff": "sam", "reason": "goodwill"} if origin is LotOrigin.ADJUSTMENT else None
            ),
        }
        result = self.wallets.credit(key, **kwargs)  # type: ignore[arg-type]
        now = self.clock.now()
        expires_at = None if expires_in_hours is None else now + timedelta(hours=expires_in_hours)
        self.model.credit(holder, coins, expires_at, now)
        if origin is LotOrigin.PURCHASE:
            self.model.paid += coins
        assert result.balance == COIN(self.model.balance(holder, now))
        assert result.balance == COIN(self.model.books(holder))  # the credit swept
        return key, kwargs, result

    @rule(target=spends, holder=st.sampled_from(HOLDERS), coins=st.integers(1, 600))
    def spend(self, holder: str, coins: int) -> tuple[str, dict[str, object], SpendResult | None]:
        key = self.next_key()
        kwargs: dict[str, object] = {
            "holder": holder,
            "amount": COIN(coins),
            "cause": Cause("item", key),
        }
        now = self.clock.now()
        if coins > self.model.balance(holder, now):
            # Refused even when lapsed coins would cover it; nothing is kept.
            with pytest.raises(InsufficientFunds):
                self.wallets.spend(key, **kwargs)  # type: ignore[arg-type]
            return key, kwargs, None
        result = self.wallets.spend(key, **kwargs)  # type: ignore[arg-type]
        self.model.spend(holder, coins, now)
        assert sum(c.amount for c in result.consumed) == coins
        assert result.balance == COIN(self.model.balance(holder, now))
        assert result.balance == COIN(self.model.books(holder))  # the spend swept
        return key, kwargs, result

    @rule(hours=st.integers(1, 48))
    def pass_time(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule(just_before=st.booleans())
    def pass_time_to_the_next_expiry(self, just_before: bool) -> None:
        """Stop the clock at an expiry instant, or a microsecond before it."""
        expiry = self.model.next_expiry(self.clock.now())
        if expiry is not None:
            self.clock.set(expiry - timedelta(microseconds=1) if just_before else expiry)

    @rule()
    def expire(self) -> None:
        results = self.wallets.expire()
        swept = self.model.expire(self.clock.now())
        assert sum(r.expired.amount for r in results) == swept

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
        now = self.clock.now()
        for holder in HOLDERS:
            balance = self.wallets.balance(holder, COIN)
            assert balance == COIN(self.model.balance(holder, now))
            assert not balance.is_negative
            lots = self.wallets.lots(holder, COIN)
            assert sum(lot.remaining for lot in lots) == balance.amount
            assert not any(lot.is_expired(now) for lot in lots)
            account = AccountKey.wallet(holder, COIN)
            assert self.wallets.balances([account])[account] == self.model.books(holder)

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
