"""Creators' money through CoinEconomy: conversion of earnings (held for the
policy's holding period), what is owed, payouts through the provider and
every answer and event it may give, on both stores."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from coinecon import AccountKey, AccountKind, Currency, Fee, Money, Rate, Rounding
from coinecon.adapters.fake_payouts import Fail, FakePayoutGateway, Raise, Settle
from coinecon.adapters.memory import MemoryStore
from coinecon.availability import Availability
from coinecon.creators.conversion import ConversionRate
from coinecon.creators.payout_gateway import (
    PayoutEvent,
    PayoutEventType,
    PayoutOutcome,
    PayoutRequest,
    PayoutStatus,
)
from coinecon.creators.payouts import PayoutPolicy
from coinecon.economy import DIAMOND
from coinecon.errors import (
    FloatNotAllowedError,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmountError,
    InvalidTypeError,
    LimitExceeded,
    NotAvailableError,
    NotEligibleError,
    NotFoundError,
    UnknownCurrencyError,
    ValidationError,
)
from coinecon.ports import Store
from coinecon.recharge import Budget, BudgetPeriod
from economy_kit import COIN, T0, Kit

USD = Currency.of("USD")
HALF_CENT = ConversionRate({"USD": "0.005", "EUR": "0.0046"})


def usd(amount: str) -> Money:
    return Money(amount, "USD")


def earning(
    store: Store,
    *,
    lions: int = 4,
    policy: PayoutPolicy | None = None,
    rate: ConversionRate | None = HALF_CENT,
    payouts: FakePayoutGateway | None = None,
) -> Kit:
    """A kit where alice sent cat *lions* lions (each earns 149 or 150
    diamonds at 50 %)."""
    kit = Kit(
        store,
        conversion_rate=rate,
        payout_policy=policy,
        payout_gateway=payouts if payouts is not None else FakePayoutGateway(),
    )
    kit.adult("alice")
    kit.creator("cat")
    for n in range(3):  # 3,300 coins
        kit.buy("alice", "coins_1000", key=f"buy-{n}")
    for n in range(lions):
        kit.economy.send_gift(
            "alice", "cat", "lion", context="stream-1", region="US", idempotency_key=f"lion-{n}"
        )
    return kit


def gateway(kit: Kit) -> FakePayoutGateway:
    found = kit.economy._payout_gateway
    assert isinstance(found, FakePayoutGateway)
    return found


def money_account(kind: AccountKind) -> AccountKey:
    return AccountKey.system(kind, USD)


def balance(kit: Kit, account: AccountKey) -> int:
    return kit.economy.wallets.balances([account])[account]


# -- conversion ---------------------------------------------------------------------------


def test_converting_retires_the_units_and_books_what_is_owed(store: Store) -> None:
    kit = earning(store)
    economy = kit.economy
    assert economy.earnings("cat") == DIAMOND(598)  # 4 x 149.5
    receipt = economy.convert("cat", "USD", idempotency_key="convert-1")
    assert (receipt.units, receipt.left, receipt.money) == (DIAMOND(598), DIAMOND(0), usd("2.99"))
    assert receipt.rate == Fraction(1, 200)
    assert (receipt.earnings, receipt.payable) == (DIAMOND(0), usd("2.99"))
    assert receipt.converted_at == T0
    assert economy.earnings("cat") == DIAMOND(0)
    assert economy.payable("cat") == {"USD": usd("2.99")}
    assert balance(kit, money_account(AccountKind.CREATOR_SHARE)) == 299
    assert balance(kit, AccountKey(AccountKind.CREATOR_PAYABLE, "cat", USD)) == -299
    assert balance(kit, AccountKey.issuance(DIAMOND)) == 0  # every diamond issued is retired
    assert economy.verify().ok
    assert economy.convert("cat", "USD", idempotency_key="convert-1") == receipt
    with pytest.raises(IdempotencyConflict):
        economy.convert("cat", "EUR", idempotency_key="convert-1")


def test_an_exact_conversion_leaves_what_makes_no_whole_cent(store: Store) -> None:
    kit = earning(store, lions=1)  # 149 diamonds, and half a diamond carried
    receipt = kit.economy.convert("cat", "USD", idempotency_key="c-1")
    assert (receipt.units, receipt.left, receipt.money) == (DIAMOND(148), DIAMOND(1), usd("0.74"))
    assert kit.economy.earnings("cat") == DIAMOND(1)
    with pytest.raises(InvalidAmountError, match="convert at least 2"):
        kit.economy.convert("cat", "USD", idempotency_key="c-2")
    with pytest.raises(InvalidAmountError, match="convert at least 50"):  # 0.46 cents a unit
        kit.economy.convert("cat", "EUR", units=1, idempotency_key="c-3")


def test_a_conversion_with_a_rounding_converts_every_unit(store: Store) -> None:
    kit = earning(store, lions=1, rate=ConversionRate({"USD": "0.005"}, rounding=Rounding.DOWN))
    receipt = kit.economy.convert("cat", "USD", units=3, idempotency_key="c-1")
    assert (receipt.units, receipt.left, receipt.money) == (DIAMOND(3), DIAMOND(0), usd("0.01"))
    assert kit.economy.earnings("cat") == DIAMOND(146)
    with pytest.raises(InvalidAmountError, match="convert at least 2"):  # 0.5 rounds to 0
        kit.economy.convert("cat", "USD", units=1, idempotency_key="c-2")
    assert kit.economy.earnings("cat") == DIAMOND(146)  # nothing retired for nothing
    assert kit.economy.verify().ok


def test_a_rate_that_changes_at_a_date_applies_from_it(store: Store) -> None:
    later = T0 + timedelta(days=1)
    rate = ConversionRate({"USD": [(None, "0.005"), (later, "0.01")]})
    kit = earning(store, rate=rate)
    assert kit.economy.convert("cat", "USD", units=100, idempotency_key="c-1").money == usd("0.50")
    kit.clock.advance(timedelta(days=1))
    assert kit.economy.convert("cat", "USD", units=100, idempotency_key="c-2").money == usd("1.00")


def test_held_earnings_are_released_at_the_midnight_after_the_holding_period(
    store: Store,
) -> None:
    kit = earning(store, lions=2, policy=PayoutPolicy(holding=timedelta(days=7)))
    economy = kit.economy
    assert economy.creator("cat").held == ((datetime(2026, 3, 10, tzinfo=UTC), 299),)
    with pytest.raises(InsufficientFunds, match="may convert 0 of their 299 DIAMOND now"):
        economy.convert("cat", "USD", idempotency_key="c-1")
    kit.clock.set(datetime(2026, 3, 9, 23, 59, tzinfo=UTC))
    with pytest.raises(InsufficientFunds, match="299 still held"):
        economy.convert("cat", "USD", units=2, idempotency_key="c-1")
    kit.clock.set(datetime(2026, 3, 10, tzinfo=UTC))
    assert economy.convert("cat", "USD", idempotency_key="c-1").units == DIAMOND(298)
    assert economy.creator("cat").held == ()  # released, forgotten


def test_conversion_refuses_what_it_cannot_do_and_writes_nothing(store: Store) -> None:
    kit = earning(store)
    before = kit.economy.earnings("cat")
    for units, error in (
        (0, InvalidAmountError),
        (-1, InvalidAmountError),
        (True, InvalidAmountError),
        (599, InsufficientFunds),
    ):
        with pytest.raises(error):
            kit.economy.convert("cat", "USD", units=units, idempotency_key="c-1")
    with pytest.raises(NotAvailableError, match="no conversion rate into JPY"):
        kit.economy.convert("cat", "JPY", idempotency_key="c-1")
    with pytest.raises(InsufficientFunds):
        kit.economy.convert("dog", "USD", idempotency_key="c-1")
    assert kit.economy.earnings("cat") == before
    assert kit.economy.payable("cat") == {}
    without = earning(MemoryStore(), rate=None)
    with pytest.raises(NotAvailableError, match="no conversion rate"):
        without.economy.convert("cat", "USD", idempotency_key="c-1")
    assert kit.economy.convert("cat", "USD", idempotency_key="c-1").units == DIAMOND(598)


# -- payouts ------------------------------------------------------------------------------


def converted(store: Store, policy: PayoutPolicy | None = None, lions: int = 8) -> Kit:
    """cat is owed 5.98 USD (8 lions, converted)."""
    kit = earning(store, lions=lions, policy=policy)
    kit.economy.convert("cat", "USD", idempotency_key="convert")
    return kit


def test_a_payout_takes_the_money_out_and_the_provider_sends_it(store: Store) -> None:
    kit = converted(store, PayoutPolicy(fee=Fee(Rate("1%"), fixed=usd("0.10"))))
    economy = kit.economy
    assert economy.payable("cat") == {"USD": usd("5.98")}
    payout = economy.request_payout(
        "cat", usd("5.00"), destination="acct_cat", idempotency_key="p-1"
    )
    assert payout.status is PayoutStatus.SENT
    assert (payout.amount, payout.fee, payout.net) == (usd("5.00"), usd("0.15"), usd("4.85"))
    assert payout.reference == "fake-po-0001"
    assert economy.payable("cat") == {"USD": usd("0.98")}
    [(request, _)] = gateway(kit).payouts()
    assert (request.payout_id, request.amount, request.destination) == (
        payout.id,
        usd("4.85"),
        "acct_cat",
    )
    kit.events()
    assert (
        economy.request_payout("cat", usd("5.00"), destination="acct_cat", idempotency_key="p-1")
        == payout
    )
    assert gateway(kit).calls == 1  # a replay asks nothing
    assert kit.events() == []
    assert economy.payouts("cat") == [payout]
    assert economy.verify().ok
    settled = economy.handle_payout_event(gateway(kit).settle(payout.id))
    assert (settled.status, settled.payout.status) == ("applied", PayoutStatus.SETTLED)
    assert kit.events() == ["payout.settled"]
    assert economy.handle_payout_event(gateway(kit).events[-1]).status == "duplicate"


def test_a_failed_payout_gives_the_money_back(store: Store) -> None:
    kit = converted(store, PayoutPolicy(fee=Fee(fixed=usd("0.25"))))
    gateway(kit).script("acct_cat", Fail("account_closed"))
    payout = kit.economy.request_payout(
        "cat", usd("3.00"), destination="acct_cat", idempotency_key="p-1"
    )
    assert (payout.status, payout.reason) == (PayoutStatus.FAILED, "account_closed")
    assert payout.returned_by is not None
    assert kit.economy.payable("cat") == {"USD": usd("5.98")}
    assert balance(kit, money_account(AccountKind.REVENUE)) < 0  # the gifts' revenue; no fee kept
    assert kit.economy.verify().ok


def test_events_move_a_payout_and_a_reversal_gives_the_money_back(store: Store) -> None:
    kit = converted(store)
    economy = kit.economy
    payout = economy.request_payout("cat", usd("2.00"), destination="acct", idempotency_key="p-1")
    fake = gateway(kit)
    assert economy.handle_payout_event(fake.settle(payout.id)).payout.status is PayoutStatus.SETTLED
    back = economy.handle_payout_event(fake.reverse(payout.id))
    assert (back.status, back.payout.status, back.payout.reason) == (
        "applied",
        PayoutStatus.REVERSED,
        "account_closed",
    )
    assert economy.payable("cat") == {"USD": usd("5.98")}
    late = PayoutEvent("late-1", PayoutEventType.SETTLED, payout.id, T0)
    assert economy.handle_payout_event(late).status == "ignored"
    assert economy.payable("cat") == {"USD": usd("5.98")}
    other = economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p-2")
    failed = economy.handle_payout_event(fake.fail(other.id))
    assert failed.payout.status is PayoutStatus.FAILED
    assert economy.payable("cat") == {"USD": usd("5.98")}
    with pytest.raises(NotFoundError):
        economy.handle_payout_event(PayoutEvent("e-x", PayoutEventType.SETTLED, "nope", T0))
    with pytest.raises(InvalidTypeError):
        economy.handle_payout_event("settled")  # type: ignore[arg-type]
    assert economy.verify().ok


def test_a_provider_that_does_not_answer_leaves_the_payout_for_reconcile(store: Store) -> None:
    kit = converted(store)
    economy, fake = kit.economy, gateway(kit)
    fake.script("lost", Raise())
    fake.script("taken", Raise(sent=True))
    lost = economy.request_payout("cat", usd("1.00"), destination="lost", idempotency_key="p-1")
    taken = economy.request_payout("cat", usd("2.00"), destination="taken", idempotency_key="p-2")
    assert lost.status is taken.status is PayoutStatus.REQUESTED
    assert economy.payable("cat") == {"USD": usd("2.98")}
    assert economy.reconcile_payouts() == []  # too young yet
    kit.clock.advance(timedelta(minutes=5))
    looked = {p.id: p for p in economy.reconcile_payouts()}
    assert looked[lost.id].status is PayoutStatus.FAILED  # the provider never received it
    assert looked[taken.id].status is PayoutStatus.SENT
    assert economy.payable("cat") == {"USD": usd("3.98")}
    assert economy.reconcile_payouts(older_than=timedelta(0)) == [looked[taken.id]]
    fake.settle(taken.id)
    assert economy.reconcile_payouts(taken.id)[0].status is PayoutStatus.SETTLED
    assert economy.reconcile_payouts(older_than=timedelta(0)) == []
    assert economy.verify().ok


def test_a_payout_at_once_settled(store: Store) -> None:
    kit = converted(store)
    gateway(kit).script("acct", Settle())
    payout = kit.economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p")
    assert payout.status is PayoutStatus.SETTLED
    assert kit.economy.reconcile_payouts(older_than=timedelta(0)) == []


def test_the_minimum_and_the_cap_refuse_saying_what_remains(store: Store) -> None:
    policy = PayoutPolicy(
        minimum=[usd("1.00")], caps=[Budget(usd("3.00"), BudgetPeriod.DAILY, "UTC")]
    )
    kit = converted(store, policy)
    economy = kit.economy
    with pytest.raises(LimitExceeded) as low:
        economy.request_payout("cat", usd("0.99"), destination="acct", idempotency_key="p-0")
    assert (low.value.limit, low.value.allowed) == ("payout-minimum", usd("1.00"))
    economy.request_payout("cat", usd("2.00"), destination="acct", idempotency_key="p-1")
    gateway(kit).script("acct", Fail())
    economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p-2")
    owed, made = economy.payable("cat"), len(economy.payouts("cat"))
    with pytest.raises(LimitExceeded, match=r"1\.00 USD remains") as capped:
        economy.request_payout("cat", usd("1.50"), destination="acct", idempotency_key="p-3")
    assert (capped.value.limit, capped.value.remaining) == ("payout-cap", usd("1.00"))
    assert (economy.payable("cat"), len(economy.payouts("cat"))) == (owed, made)
    kit.clock.advance(timedelta(days=1))
    assert (
        economy.request_payout("cat", usd("1.50"), destination="acct", idempotency_key="p-3").status
        is PayoutStatus.SENT
    )


def test_payouts_outside_the_schedule_or_for_a_suspended_creator_are_refused(
    store: Store,
) -> None:
    mondays = Availability(start=T0, rrule="FREQ=WEEKLY;BYDAY=MO", duration=timedelta(hours=24))
    kit = converted(store, PayoutPolicy(schedule=mondays))  # T0 is a Monday
    economy = kit.economy
    kit.clock.advance(timedelta(days=1))
    with pytest.raises(NotAvailableError, match="payouts are not open"):
        economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p-1")
    kit.clock.advance(timedelta(days=6))
    economy.suspend_creator("s", creator="cat", reason="fraud review")
    with pytest.raises(NotEligibleError, match="fraud review"):
        economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p-1")
    economy.suspend_creator("r", creator="cat", reason=None)
    paid = economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p-1")
    assert paid.status is PayoutStatus.SENT


def test_a_payout_refuses_what_it_cannot_pay_and_writes_nothing(store: Store) -> None:
    kit = converted(store, PayoutPolicy(fee=Fee(fixed=usd("1.00"))))
    economy = kit.economy
    with pytest.raises(InsufficientFunds):
        economy.request_payout("cat", usd("5.99"), destination="acct", idempotency_key="p-1")
    with pytest.raises(ValidationError, match="all go in its fee"):
        economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p-1")
    for amount in (usd("0"), usd("-1"), "5.00", 5):
        with pytest.raises(InvalidAmountError):
            economy.request_payout("cat", amount, destination="acct", idempotency_key="p-1")  # type: ignore[arg-type]
    assert economy.payable("cat") == {"USD": usd("5.98")}
    assert economy.payouts("cat") == []
    assert gateway(kit).calls == 0
    plain = Kit(MemoryStore())
    with pytest.raises(NotAvailableError, match="no payout provider"):
        plain.economy.request_payout("cat", usd("1"), destination="a", idempotency_key="p")
    with pytest.raises(NotAvailableError, match="no payout provider"):
        plain.economy.reconcile_payouts()
    assert economy.request_payout(
        "cat", usd("5.98"), destination="acct", idempotency_key="p-1"
    ).net == usd("4.98")


# -- the arithmetic, as properties ---------------------------------------------------------


rates = st.fractions(min_value=Fraction(1, 10**5), max_value=100, max_denominator=10**5)


@given(st.integers(1, 10**9), rates, st.sampled_from(["USD", "JPY", "KWD"]))
def test_an_exact_conversion_loses_nothing(units: int, worth: Fraction, code: str) -> None:
    """What is converted is worth exactly its money; what is left is fewer
    units than the fewest a conversion takes."""
    rate = ConversionRate({code: worth})
    conversion = rate.convert(units, code, at=None)
    scale = Currency.of(code).scale
    assert conversion.units + conversion.left == units
    assert conversion.units * worth * scale == conversion.money.minor
    assert 0 <= conversion.left < rate.fewest(code, None)
    assert conversion.units % rate.fewest(code, None) == 0


@given(st.integers(1, 10**9), rates, st.sampled_from(list(Rounding)))
def test_a_rounded_conversion_is_rounded_once_by_its_rounding(
    units: int, worth: Fraction, rounding: Rounding
) -> None:
    conversion = ConversionRate({"USD": worth}, rounding=rounding).convert(units, "USD", None)
    assert conversion.units == units and conversion.left == 0
    assert conversion.money.minor == rounding.round(units * worth * 100)
    assert abs(conversion.money.minor - units * worth * 100) < 1


@given(st.integers(1, 10**6), st.integers(0, 500), st.integers(0, 10**5))
def test_a_payouts_fee_and_what_is_sent_add_up(cents: int, basis_points: int, fixed: int) -> None:
    policy = PayoutPolicy(
        fee=Fee(
            Rate.basis_points(basis_points), fixed=Money.from_minor(fixed, "USD") if fixed else ()
        )
    )
    amount = Money.from_minor(cents, "USD")
    fee = policy.fee_on(amount)
    assert fee.minor >= 0
    assert (amount - fee) + fee == amount


# -- the values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rates", "error"),
    [
        ({}, InvalidTypeError),
        ([("USD", "0.005")], InvalidTypeError),
        ({"USD": 0.005}, FloatNotAllowedError),
        ({"USD": "0"}, InvalidAmountError),
        ({"USD": "-1"}, InvalidAmountError),
        ({"XXX1": "1"}, UnknownCurrencyError),
        ({"USD": [(None, "1"), (None, "2")]}, ValidationError),
        ({"USD": "1", USD: "2"}, InvalidTypeError),
    ],
)
def test_a_malformed_conversion_rate_is_refused(rates: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        ConversionRate(rates)


def test_a_conversion_rate_is_in_effect_from_its_instant() -> None:
    later = T0 + timedelta(days=1)
    rate = ConversionRate({"USD": [(later, "0.01")]})
    with pytest.raises(NotAvailableError, match="no conversion rate into USD at"):
        rate.worth("USD", T0)
    assert rate.worth("USD", later) == Fraction(1, 100)
    assert rate.worth("USD", None) == Fraction(1, 100)
    with pytest.raises(InvalidTypeError):
        ConversionRate({"USD": "1"}, rounding="down")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError):
        rate.convert(0, "USD", later)
    assert ConversionRate({"USD": "1"}, rounding=Rounding.UP).fewest("USD", None) == 1


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"holding": timedelta(-1)}, ValidationError),
        ({"holding": relativedelta(days=-1)}, ValidationError),
        ({"holding": 7}, InvalidTypeError),
        ({"minimum": usd("0")}, ValidationError),
        ({"minimum": [usd("1"), usd("2")]}, ValidationError),
        ({"minimum": "1.00"}, InvalidTypeError),
        ({"caps": [usd("1")]}, InvalidTypeError),
        ({"caps": "daily"}, InvalidTypeError),
        ({"schedule": "always"}, InvalidTypeError),
        ({"fee": usd("1")}, InvalidTypeError),
        ({"clawback": 1}, InvalidTypeError),
    ],
)
def test_a_malformed_payout_policy_is_refused(
    settings: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        PayoutPolicy(**settings)  # type: ignore[arg-type]


def test_a_payout_policy_releases_at_midnight_and_finds_its_limits() -> None:
    daily = Budget(usd("1000"), BudgetPeriod.DAILY, "UTC")
    policy = PayoutPolicy(holding=relativedelta(months=1), minimum=usd("10"), caps=daily)
    assert policy.holds and not PayoutPolicy().holds
    assert policy.released_at(datetime(2026, 1, 31, 9, tzinfo=UTC)) == datetime(
        2026, 3, 1, tzinfo=UTC
    )  # 28 February 9:00, then its midnight
    at_midnight = PayoutPolicy(holding=timedelta(days=1))
    assert at_midnight.released_at(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 1, 2, tzinfo=UTC
    )
    assert policy.least(USD) == usd("10") and policy.least(Currency.of("EUR")) is None
    assert policy.cap(USD) == daily and policy.cap(Currency.of("EUR")) is None


def test_a_provider_answer_says_why_it_failed_and_only_then() -> None:
    with pytest.raises(ValidationError, match="says why"):
        PayoutOutcome(PayoutStatus.FAILED)
    with pytest.raises(ValidationError, match="says why"):
        PayoutOutcome(PayoutStatus.SENT, reason="no")
    with pytest.raises(ValidationError, match="not requested"):
        PayoutOutcome(PayoutStatus.REQUESTED)
    with pytest.raises(InvalidAmountError):
        PayoutRequest("p", "cat", "acct", usd("0"), "x")
    assert PayoutStatus.SENT.open and not PayoutStatus.SETTLED.open
    assert PayoutStatus.REVERSED.returned and not PayoutStatus.SETTLED.returned


def test_the_fake_payout_provider_keeps_its_word() -> None:
    fake = FakePayoutGateway()
    request = PayoutRequest("p-1", "cat", "acct", usd("1.00"), "payout")
    first = fake.send(request)
    assert fake.send(request) == first and fake.calls == 2
    with pytest.raises(ValidationError, match="another request"):
        fake.send(PayoutRequest("p-1", "cat", "acct", usd("2.00"), "payout"))
    with pytest.raises(InvalidTypeError):
        fake.script("acct", "fail")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        fake.settle("p-2")
    fake.script("closed", Fail("closed"))
    failed = fake.send(PayoutRequest("p-2", "cat", "closed", usd("1.00"), "payout"))
    with pytest.raises(ValidationError, match="not sent"):
        fake.settle("p-2")
    with pytest.raises(ValidationError, match="nothing to reverse"):
        fake.reverse("p-2")
    assert failed.status is PayoutStatus.FAILED
    assert fake.lookup("p-3") is None
    assert [r.payout_id for r, _ in fake.payouts()] == ["p-1", "p-2"]
    fake.forget("p-1")
    fake.forget("p-9")  # nothing to forget
    assert fake.lookup("p-1") is None
    assert [r.payout_id for r, _ in fake.payouts()] == ["p-2"]
    with pytest.raises(NotFoundError):
        fake.settle("p-1")


# -- chargebacks and creators ----------------------------------------------------------------


def charged_back(store: Store, *, clawback: bool, days: int = 0) -> Kit:
    """alice buys 1,100 coins, sends cat three lions with them (held a
    week), then, *days* later, her bank charges the purchase back."""
    kit = Kit(store, payout_policy=PayoutPolicy(holding=timedelta(days=7), clawback=clawback))
    kit.adult("alice")
    kit.creator("cat")
    kit.buy("alice", "coins_1000", key="buy-1")
    for n in range(3):
        kit.economy.send_gift(
            "alice", "cat", "lion", context="s", region="US", idempotency_key=f"lion-{n}"
        )
    kit.clock.advance(timedelta(days=days))
    [purchase] = kit.economy.purchases("alice")
    kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id))
    return kit


def test_a_chargeback_claws_back_held_earnings_when_the_policy_says_so(store: Store) -> None:
    kit = charged_back(store, clawback=True)
    economy = kit.economy
    # 897 coins were gifted: the whole purchase's lots (1,100) minus 203 left.
    assert economy.balance("alice").amount < 0
    assert economy.earnings("cat") == DIAMOND(0)  # all three lions' earnings were held
    assert economy.creator("cat").held == ()
    assert "earnings.clawed_back" in kit.events()
    assert economy.verify().ok


def test_a_chargeback_leaves_earnings_when_the_platform_bears_the_loss(store: Store) -> None:
    kit = charged_back(store, clawback=False)
    assert kit.economy.earnings("cat") == DIAMOND(448)
    losses = kit.economy.wallets.balances([money_account(AccountKind.LOSSES)])
    assert losses[money_account(AccountKind.LOSSES)] > 0  # the books show the platform's loss
    assert "earnings.clawed_back" not in kit.events()
    assert kit.economy.verify().ok


def test_a_chargeback_after_the_release_claws_nothing_back(store: Store) -> None:
    kit = charged_back(store, clawback=True, days=8)
    assert kit.economy.earnings("cat") == DIAMOND(448)
    assert kit.economy.verify().ok


# -- balances and statements ---------------------------------------------------------------


def test_balances_answer_for_each_kind_and_never_a_silent_zero(store: Store) -> None:
    kit = converted(store, lions=4)
    economy = kit.economy
    kit.economy.send_gift("alice", "cat", "lion", context="s", region="US", idempotency_key="l")
    assert economy.balance("cat", AccountKind.EARNINGS) == economy.earnings("cat") == DIAMOND(149)
    assert economy.balance("alice") == economy.balance("alice", AccountKind.WALLET)
    with pytest.raises(ValidationError, match="payable"):
        economy.balance("cat", AccountKind.CREATOR_PAYABLE)
    with pytest.raises(ValidationError, match="platform's accounts"):
        economy.balance("cat", AccountKind.REVENUE)
    with pytest.raises(ValidationError, match="cat earns DIAMOND, which no wallet holds"):
        economy.wallets.balance("cat", DIAMOND)
    assert economy.wallets.balance("nobody", DIAMOND) == DIAMOND(0)  # no account at all: 0


def read_statement(kit: Kit, holder: str, **period: datetime) -> list[dict[str, Any]]:
    out = io.StringIO()
    written = kit.economy.statement(holder, out, file_format="jsonl", **period)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == written
    return records


def test_a_creators_statement_shows_gifts_conversions_payouts_and_fees(store: Store) -> None:
    kit = converted(store, PayoutPolicy(fee=Fee(fixed=usd("0.20"))), lions=2)
    payout = kit.economy.request_payout("cat", usd("1.00"), destination="acct", idempotency_key="p")
    records = read_statement(kit, "cat")
    sections: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        sections.setdefault(str(record["account_kind"]), []).append(record)
    earned = sections["earnings"]
    assert [r["kind"] for r in earned[1:-1]] == ["gift", "gift", "conversion"]
    assert earned[1]["metadata"]["sender"] == "alice"
    assert earned[-1]["balance"] == kit.economy.earnings("cat").amount
    owed = sections["creator-payable"]
    assert [r["kind"] for r in owed[1:-1]] == ["conversion", "payout"]
    assert owed[-2]["metadata"] == {"destination": "acct", "fee": 20, "net": 80}
    assert owed[-1]["balance"] == -kit.economy.payable("cat")["USD"].minor == -49
    assert payout.fee == usd("0.20")


def test_a_senders_statement_over_a_period(store: Store) -> None:
    kit = earning(store, lions=1)
    kit.clock.advance(timedelta(days=1))
    kit.economy.send_gift("alice", "cat", "rose", context="s-2", region="US", idempotency_key="r")
    records = read_statement(kit, "alice", since=T0 + timedelta(hours=1))
    opening, gift, closing = records
    assert (opening["record_type"], closing["record_type"]) == ("opening", "closing")
    assert gift["kind"] == "gift" and gift["amount"] == -1
    assert gift["metadata"]["creator"] == "cat"
    assert opening["balance"] == gift["balance"] + 1 == closing["balance"] + 1
    assert closing["balance"] == kit.economy.balance("alice").amount


def clawing(store: Store) -> Kit:
    """Two creators, held earnings, clawback by policy; alice and bob adult."""
    kit = Kit(store, payout_policy=PayoutPolicy(holding=timedelta(days=7), clawback=True))
    kit.adult("alice")
    kit.adult("bob")
    kit.creator("cat")
    kit.creator("dog")
    return kit


def gift_of(kit: Kit, sender: str, creator: str, gift: str, key: str, quantity: int = 1) -> None:
    kit.economy.send_gift(
        sender, creator, gift, quantity, context="s", region="US", idempotency_key=key
    )


def half_back(kit: Kit, holder: str = "alice") -> None:
    [purchase] = kit.economy.purchases(holder)
    half = Money.from_minor(purchase.total.minor // 2, purchase.total.currency)
    kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id, half))


def test_a_clawback_takes_what_the_charged_back_coins_earned_and_no_more(store: Store) -> None:
    kit = clawing(store)
    kit.buy("alice", "coins_100", key="p")
    for n in range(100):  # one-coin roses: half of them earn nothing, half earn one
        gift_of(kit, "alice", "cat", "rose", f"r-{n}")
    assert kit.economy.earnings("cat") == DIAMOND(50)
    half_back(kit)  # 50 coins of debt: those 50 roses earned 25
    assert kit.economy.earnings("cat") == DIAMOND(25)
    assert kit.economy.verify().ok


def test_partial_chargebacks_claw_each_gifts_coins_once(store: Store) -> None:
    kit = clawing(store)
    kit.buy("bob", "coins_500", key="pb")
    gift_of(kit, "bob", "cat", "heart", "b-1", 20)  # cat: 50, bob's
    kit.buy("alice", "coins_100", key="pa")
    gift_of(kit, "alice", "dog", "heart", "a-1", 10)  # dog: 25
    gift_of(kit, "alice", "cat", "heart", "a-2", 10)  # cat: 25, the latest
    half_back(kit)
    assert (kit.economy.earnings("cat"), kit.economy.earnings("dog")) == (DIAMOND(50), DIAMOND(25))
    half_back(kit)  # the next 50 coins: the older gift, to dog
    assert (kit.economy.earnings("cat"), kit.economy.earnings("dog")) == (DIAMOND(50), DIAMOND(0))
    assert kit.economy.verify().ok


def test_a_clawback_never_takes_another_gifts_held_earnings(store: Store) -> None:
    kit = clawing(store)
    kit.buy("alice", "coins_100", key="pa")
    gift_of(kit, "alice", "cat", "heart", "a-1", 20)  # released after a week
    kit.clock.advance(timedelta(days=9))
    kit.buy("bob", "coins_100", key="pb")
    gift_of(kit, "bob", "cat", "heart", "b-1", 20)  # bob's, held
    [purchase] = kit.economy.purchases("alice")
    kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id))
    assert kit.economy.earnings("cat") == DIAMOND(100)  # alice's were released: nothing to take
    assert kit.economy.creator("cat").holding(kit.clock.now()) == 50


def test_a_won_chargeback_gives_the_creator_back_what_it_clawed(store: Store) -> None:
    kit = clawing(store)
    kit.buy("alice", "coins_100", key="pa")
    gift_of(kit, "alice", "cat", "heart", "a-1", 20)
    [purchase] = kit.economy.purchases("alice")
    kit.economy.handle_payment_event(kit.gateway.charge_back(purchase.id))
    assert kit.economy.earnings("cat") == DIAMOND(0)
    kit.events()
    kit.economy.handle_payment_event(kit.gateway.reverse_chargeback(purchase.id))
    assert kit.economy.earnings("cat") == DIAMOND(50)
    assert kit.economy.creator("cat").holding(kit.clock.now()) == 50  # held again, as before
    assert "earnings.restored" in kit.events()
    assert kit.economy.balance("alice") == COIN(0)
    half_back(kit)  # the gift's coins may be charged back again
    assert kit.economy.earnings("cat") == DIAMOND(25)
    assert kit.economy.verify().ok


def test_reconcile_leaves_a_young_payout_the_provider_does_not_know_yet(store: Store) -> None:
    kit = converted(store)
    gateway(kit).script("slow", Raise())
    payout = kit.economy.request_payout("cat", usd("1.00"), destination="slow", idempotency_key="p")
    [still] = kit.economy.reconcile_payouts(payout.id)  # it may be on its way
    assert still.status is PayoutStatus.REQUESTED
    kit.clock.advance(timedelta(minutes=5))
    [failed] = kit.economy.reconcile_payouts(payout.id)
    assert failed.status is PayoutStatus.FAILED
    assert kit.economy.payable("cat") == {"USD": usd("5.98")}
