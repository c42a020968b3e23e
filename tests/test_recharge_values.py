"""The values of recharge: regions, records, the gateway's values, the fake
provider, budgets, attestations, and the money legs of purchases and refunds
(with hypothesis for the properties)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinecon import Money, PriceBook
from coinecon.adapters.fake_payments import Decline, FakePaymentGateway, Pend, Raise
from coinecon.errors import (
    FloatNotAllowedError,
    InvalidAmountError,
    InvalidPriceBookError,
    InvalidRegionError,
    InvalidTypeError,
    NotFoundError,
    ValidationError,
)
from coinecon.ledger.entries import money_account
from coinecon.ledger.journal import AccountKind, Posting, imbalance
from coinecon.money.money import Currency
from coinecon.money.units import Unit, UnitAmount
from coinecon.recharge import (
    AgeAttestation,
    Budget,
    BudgetPeriod,
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    EligibilityPolicy,
    LimitPolicy,
    PaymentEvent,
    PaymentEventType,
    Purchase,
    PurchaseStatus,
)
from coinecon.recharge.books import purchase_legs, take_back_legs
from coinecon.records import Record
from coinecon.regions import region, region_name, regions
from economy_kit import T0, book

USD = "USD"
DOLLAR = Currency.of(USD)


class TestRegions:
    def test_the_list_is_iso_3166_1(self) -> None:
        codes = regions()
        assert len(codes) == 249
        assert {"US", "GB", "KR", "FR", "JP", "BR"} <= codes
        assert all(len(code) == 2 and code.isupper() for code in codes)
        assert region_name("GB") == "United Kingdom"

    @pytest.mark.parametrize(
        ("code", "hint"),
        [("UK", "'GB'"), ("EL", "'GR'"), ("ZZ", "unknown"), ("gb", "upper case: 'GB'")],
    )
    def test_a_code_not_assigned_names_the_one_meant(self, code: str, hint: str) -> None:
        with pytest.raises(InvalidRegionError, match=hint):
            region(code)

    def test_a_price_book_refuses_an_unassigned_region(self) -> None:
        with pytest.raises(InvalidPriceBookError, match="'GB'"):
            PriceBook(regions={"UK": "GBP"}, packages=book().packages, fees=book().fees)
        with pytest.raises(InvalidRegionError):
            region(44)


class TestRecords:
    def test_a_record_keeps_its_document_and_versions(self) -> None:
        record = Record.new("purchase", "p-1", "alice", T0, {"at": T0, "n": 1})
        assert record.data == {"at": "2026-03-02T12:00:00+00:00", "n": 1}
        changed = record.changed({"n": 2})
        assert (changed.version, changed.data, changed.owner) == (2, {"n": 2}, "alice")

    def test_bad_records_are_refused(self) -> None:
        with pytest.raises(InvalidTypeError):
            Record("purchase", "p-1", "alice", T0, 0, "{}")
        with pytest.raises(InvalidTypeError):
            Record.new("purchase", "p-1", "alice", T0, [1, 2])  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowedError):
            Record.new("purchase", "p-1", "alice", T0, {"x": [{"y": 1.5}]})
        with pytest.raises(ValidationError):
            Record("purchase", "p-1", "alice", T0, 1, "[1]").data  # noqa: B018
        with pytest.raises(ValidationError):
            Record.new("purchase", "p-1", "", T0, {})


class TestGatewayValues:
    def test_a_charge_and_its_outcomes_are_checked(self) -> None:
        with pytest.raises(InvalidAmountError):
            ChargeRequest("p-1", "alice", Money("0.00", USD), "pm_1", "x")
        with pytest.raises(ValidationError):
            ChargeOutcome(ChargeStatus.DECLINED)
        with pytest.raises(ValidationError):
            ChargeOutcome(ChargeStatus.APPROVED, reason="why")

    def test_an_event_carries_an_amount_exactly_when_it_moves_money(self) -> None:
        with pytest.raises(InvalidAmountError):
            PaymentEvent("e-1", PaymentEventType.REFUNDED, "p-1", T0)
        with pytest.raises(ValidationError):
            PaymentEvent("e-1", PaymentEventType.SETTLED, "p-1", T0, Money("1.00", USD))
        with pytest.raises(InvalidAmountError):
            PaymentEvent("e-1", PaymentEventType.CHARGED_BACK, "p-1", T0, Money("-1.00", USD))


class TestFakeProvider:
    def request(self, charge_id: str, method: str = "pm_1") -> ChargeRequest:
        return ChargeRequest(charge_id, "alice", Money("4.99", USD), method, "500 coins")

    def test_it_follows_its_script_per_method_then_approves(self) -> None:
        gateway = FakePaymentGateway()
        gateway.script("pm_1", Decline("stolen_card"), Pend())
        assert gateway.charge(self.request("a")).reason == "stolen_card"
        assert gateway.charge(self.request("b", "pm_2")).status is ChargeStatus.APPROVED
        assert gateway.charge(self.request("c")).status is ChargeStatus.PENDING
        assert gateway.charge(self.request("d")).status is ChargeStatus.APPROVED
        with pytest.raises(InvalidTypeError):
            gateway.script("pm_1", "approve")  # type: ignore[arg-type]

    def test_a_charge_is_taken_once_by_its_id(self) -> None:
        gateway = FakePaymentGateway()
        first = gateway.charge(self.request("a"))
        assert gateway.charge(self.request("a")) == first
        assert gateway.calls == 2
        assert len(list(gateway.charges())) == 1
        with pytest.raises(ValidationError):
            gateway.charge(attrs.evolve(self.request("a"), amount=Money("1.00", USD)))

    def test_a_forgotten_charge_is_unknown_and_its_id_free(self) -> None:
        gateway = FakePaymentGateway()
        gateway.charge(self.request("a"))
        gateway.charge(self.request("b"))
        gateway.forget("a")
        gateway.forget("never")  # nothing to forget
        assert gateway.lookup("a") is None
        assert [r.charge_id for r, _ in gateway.charges()] == ["b"]
        with pytest.raises(NotFoundError):
            gateway.refund("a")
        gateway.charge(attrs.evolve(self.request("a"), amount=Money("1.00", USD)))  # a new charge
        assert gateway.lookup("a") is not None

    def test_a_time_out_may_or_may_not_have_charged(self) -> None:
        gateway = FakePaymentGateway()
        gateway.script("pm_1", Raise(TimeoutError("slow"), charged=True), Raise(charged=False))
        with pytest.raises(TimeoutError):
            gateway.charge(self.request("a"))
        with pytest.raises(TimeoutError):
            gateway.charge(self.request("b"))
        assert gateway.lookup("a") is not None
        assert gateway.lookup("b") is None

    def test_the_providers_side_emits_numbered_events(self) -> None:
        gateway = FakePaymentGateway()
        gateway.script("pm_1", Pend())
        gateway.charge(self.request("a"))
        with pytest.raises(NotFoundError):
            gateway.refund("zz")  # never received
        failed = gateway.fail("a", "bank_refused")
        assert (failed.id, failed.reason) == ("evt-0001", "bank_refused")
        with pytest.raises(ValidationError):
            gateway.settle("a")  # not pending any more
        with pytest.raises(NotFoundError):
            gateway.settle("zz")
        gateway.charge(self.request("b"))
        back = gateway.charge_back("b", Money("1.00", USD))
        assert (back.amount, back.reason) == (Money("1.00", USD), "fraudulent")
        assert gateway.reverse_chargeback("b").amount == Money("4.99", USD)
        assert [event.id for event in gateway.events] == ["evt-0001", "evt-0002", "evt-0003"]


class TestPolicies:
    def test_a_budget_period_starts_at_the_holders_midnight(self) -> None:
        paris = Budget(Money("10.00", USD), BudgetPeriod.DAILY, "Europe/Paris")
        # 2026-03-29 is the spring clock change in Paris: midnight is at 23:00 UTC the day before.
        assert paris.period_start(datetime(2026, 3, 29, 12, tzinfo=UTC)) == datetime(
            2026, 3, 28, 23, tzinfo=UTC
        )
        monthly = attrs.evolve(paris, period=BudgetPeriod.MONTHLY)
        assert monthly.period_start(datetime(2026, 3, 31, 22, 30, tzinfo=UTC)) == datetime(
            2026,
            3,
            31,
            22,
            tzinfo=UTC,  # 00:30 on 1 April in Paris: April began
        )
        assert Budget.from_data(paris.to_data()) == paris

    def test_bad_policies_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            Budget(Money("10.00", USD), BudgetPeriod.DAILY, "Mars/Olympus")
        with pytest.raises(InvalidAmountError):
            Budget(Money("0.00", USD), BudgetPeriod.DAILY, "UTC")
        with pytest.raises(InvalidAmountError):
            LimitPolicy(purchases_per_hour=0)
        with pytest.raises(ValidationError):
            EligibilityPolicy(age_of_majority={"KR": 0})
        with pytest.raises(InvalidRegionError):
            EligibilityPolicy(regions={"UK"})
        with pytest.raises(InvalidTypeError):
            EligibilityPolicy(regions="US")

    def test_a_leap_day_birthday_comes_of_age_on_the_28th(self) -> None:
        policy = EligibilityPolicy()
        attested = AgeAttestation.from_birth_date(
            date(2008, 2, 29), region="US", source="id", attested_on=date(2026, 1, 1), policy=policy
        )
        assert attested.adult_from == date(2026, 2, 28)
        assert not attested.covers("US", date(2026, 2, 27), policy)
        assert attested.covers("US", date(2026, 2, 28), policy)
        assert AgeAttestation.from_data(attested.to_data()) == attested
        with pytest.raises(ValidationError):
            AgeAttestation.from_birth_date(
                date(2030, 1, 1),
                region="US",
                source="id",
                attested_on=date(2026, 1, 1),
                policy=policy,
            )


money = st.integers(min_value=1, max_value=10**9)


@given(
    total=money, tax_share=st.integers(0, 50), fee=st.integers(0, 10**6), cost=st.integers(0, 10**6)
)
def test_a_purchase_balances_and_defers_the_value_of_the_coins(
    total: int, tax_share: int, fee: int, cost: int
) -> None:
    """The purchase's money legs and its lot's (clearing and deferred revenue
    by the value) balance, and the value is the total net of tax and buyer fees."""
    tax = total * tax_share // 100
    value = total - tax - fee
    legs = purchase_legs(
        Money.from_minor(total, USD),
        Money.from_minor(tax, USD),
        Money.from_minor(fee, USD),
        Money.from_minor(cost, USD),
    )
    lot_legs = (
        [
            Posting(money_account(AccountKind.CLEARING, DOLLAR), value),
            Posting(money_account(AccountKind.DEFERRED_REVENUE, DOLLAR), -value),
        ]
        if value
        else []
    )
    assert imbalance([*legs, *lot_legs]) == {}
    by_kind = {p.account.kind: p.amount for p in legs}
    assert by_kind.get(AccountKind.TAX_PAYABLE, 0) == -tax
    assert by_kind.get(AccountKind.FEES, 0) == cost
    assert by_kind.get(AccountKind.REVENUE, 0) == -fee


@given(
    coins=st.integers(1, 10**6),
    total=st.integers(1, 10**6),
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_refunds_in_parts_take_back_exactly_the_coins_of_a_whole(
    coins: int, total: int, cuts: list[int]
) -> None:
    """Whatever the parts the money goes back in, the coins (and tax) taken
    after each are the share of all the money given back, and all of it takes
    back every coin."""
    purchase = _purchase(coins, total)
    points = sorted({min(cut, total) for cut in cuts} | {total})
    taken = 0
    for returned in points:
        due_coins, _ = purchase.due(Money.from_minor(returned, USD))
        assert due_coins >= taken
        taken = due_coins
    assert taken == coins


def _purchase(coins: int, total: int) -> Purchase:
    """A completed purchase of *coins* for *total* cents, none of it tax."""
    unit = Unit("COIN")
    zero = Money.from_minor(0, USD)
    return Purchase(
        id="p-1",
        holder="alice",
        idempotency_key="k",
        status=PurchaseStatus.COMPLETED,
        reason=None,
        created_at=T0,
        updated_at=T0,
        payment_method="pm",
        reference=None,
        region="US",
        sku=None,
        coins=UnitAmount(coins, unit),
        bonus_coins=UnitAmount(0, unit),
        promotions=(),
        total=Money.from_minor(total, USD),
        tax=zero,
        buyer_fees=zero,
        platform_costs=zero,
        value=Money.from_minor(total, USD),
        quote_fingerprint="f",
    )


@given(
    amount=money,
    tax=st.integers(0, 10**6),
    values=st.lists(st.one_of(st.none(), money), max_size=5),
)
def test_a_take_back_balances(amount: int, tax: int, values: list[int | None]) -> None:
    legs = take_back_legs(
        Money.from_minor(amount, USD),
        min(tax, amount),
        [None if v is None else Money.from_minor(v, USD) for v in values],
    )
    assert imbalance(legs) == {}
