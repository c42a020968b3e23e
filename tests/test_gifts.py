"""Sending gifts through CoinEconomy: the receipt, the books, the events, the
carry, every refusal (with nothing written), on both stores."""

from __future__ import annotations

import json
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import attrs
import pytest

from coinecon import (
    AccountKey,
    AccountKind,
    Currency,
    Money,
    Rate,
    TransactionKind,
    Unit,
)
from coinecon.adapters.fake_payments import FakePaymentGateway
from coinecon.adapters.memory import MemoryStore
from coinecon.adapters.sqlite import SqliteStore
from coinecon.availability import Availability
from coinecon.creators import RevenueShare
from coinecon.economy import DIAMOND, CoinEconomy
from coinecon.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidRateError,
    InvalidRegionError,
    InvalidTypeError,
    NotAvailableError,
    NotEligibleError,
    NotFoundError,
    StorageError,
    ValidationError,
    WalletFrozen,
)
from coinecon.gifts import Gift, GiftCatalog, GiftPolicy, GiftReceipt
from coinecon.ports import Store
from coinecon.recharge import PaymentEvent, PaymentEventType
from economy_kit import CATALOG, COIN, T0, Kit, book

USD = Currency.of("USD")


@pytest.fixture
def kit(store: Store) -> Kit:
    kit = Kit(store)
    kit.adult("alice")
    kit.creator("cat")
    kit.buy("alice", "coins_500")  # 500 coins worth 4.99, and 25 bonus coins worth nothing
    return kit


def send(
    kit: Kit, key: str, gift: str | Gift = "rose", quantity: int = 1, **changes: object
) -> GiftReceipt:
    arguments: dict[str, object] = {
        "sender": "alice",
        "creator": "cat",
        "context": "stream-1",
        "region": "US",
    }
    arguments.update(changes)
    return kit.economy.send_gift(
        arguments.pop("sender"),  # type: ignore[arg-type]
        arguments.pop("creator"),  # type: ignore[arg-type]
        gift,
        quantity,
        idempotency_key=key,
        **arguments,  # type: ignore[arg-type]
    )


def books(kit: Kit) -> dict[AccountKey, int]:
    with kit.store.unit_of_work() as uow:
        return uow.ledger.accounts()


# -- a gift, its receipt and its books -----------------------------------------------------


def test_a_gift_takes_the_coins_recognises_their_value_and_credits_the_creator(kit: Kit) -> None:
    kit.events()
    receipt = send(kit, "g-1", "lion")
    assert (receipt.sender, receipt.creator, receipt.gift, receipt.name) == (
        "alice",
        "cat",
        "lion",
        "Lion",
    )
    assert (receipt.quantity, receipt.price, receipt.catalog_version) == (1, 299, 1)
    assert receipt.coins == COIN(299)
    assert receipt.context == "stream-1"
    assert receipt.rate == Rate("50%")
    assert receipt.creator_share == Fraction(299, 2)
    assert receipt.platform_share == Fraction(299, 2)
    assert receipt.earned == DIAMOND(149)  # 149.5: the half is carried
    assert receipt.carry == Fraction(1, 2)
    assert receipt.balance == COIN(525 - 299)
    assert receipt.sent_at == T0
    # Whatever lots the coins came from, the value recognised is what the
    # coins consumed were bought for (bonus coins are worth nothing).
    [value] = receipt.value
    economy = kit.economy
    assert economy.balance("alice") == COIN(226)
    assert economy.earnings("cat") == DIAMOND(149)
    assert economy.creator("cat").carry == Fraction(1, 2)
    assert economy.creator("cat").gifts == 1
    revenue = economy.wallets.balances([AccountKey.system(AccountKind.REVENUE, USD)])
    assert -revenue[AccountKey.system(AccountKind.REVENUE, USD)] == value.minor
    assert economy.deferred_revenue()["USD"] == Money("4.99", "USD") - value
    assert economy.verify().ok
    transaction = economy.wallets.transaction(receipt.id)
    assert transaction is not None
    assert transaction.kind is TransactionKind.GIFT
    assert dict(transaction.metadata)["creator"] == "cat"
    assert dict(transaction.metadata)["context"] == "stream-1"
    assert kit.events() == ["gift.sent", "gift.received"]


def test_the_receipt_is_what_the_events_and_a_replay_say(kit: Kit) -> None:
    kit.events()
    receipt = send(kit, "g-1", "heart", 3)
    assert send(kit, "g-1", "heart", 3) == receipt
    assert kit.economy.balance("alice") == COIN(525 - 15)  # sent once
    assert kit.economy.earnings("cat") == DIAMOND(7)
    kit.sink.events.clear()
    while kit.economy.deliver_events(limit=100):
        pass
    sent, received = kit.sink.events
    assert GiftReceipt.from_data(json.loads(sent.payload), COIN, DIAMOND) == receipt
    shown = json.loads(received.payload)
    assert shown["creator"] == "cat"
    assert shown["earned"] == 7
    assert shown["quantity"] == 3
    assert shown["context"] == "stream-1"
    assert shown["gift_id"] == receipt.id


def test_a_key_reused_for_another_request_is_a_conflict(kit: Kit) -> None:
    send(kit, "g-1", "rose")
    with pytest.raises(IdempotencyConflict):
        send(kit, "g-1", "heart")
    with pytest.raises(IdempotencyConflict):
        send(kit, "g-1", "rose", context="stream-2")
    assert kit.economy.balance("alice") == COIN(524)


def test_a_thousand_one_coin_gifts_at_half_earn_exactly_five_hundred(store: Store) -> None:
    kit = Kit(store)
    kit.adult("alice")
    kit.creator("cat")
    kit.buy("alice", "coins_1000")  # 1,100 coins
    for n in range(1000):
        send(kit, f"g-{n}", "rose")
    assert kit.economy.earnings("cat") == DIAMOND(500)
    assert kit.economy.creator("cat").carry == 0
    assert kit.economy.balance("alice") == COIN(100)
    assert kit.economy.verify().ok


def test_the_carry_survives_the_store_being_opened_again(tmp_path: Path) -> None:
    path = tmp_path / "books.db"
    with SqliteStore(path) as store:
        kit = Kit(store)
        kit.adult("alice")
        kit.creator("cat")
        kit.buy()
        send(kit, "g-1", "rose")
    with SqliteStore(path) as store:
        again = Kit(store)
        assert again.economy.creator("cat").carry == Fraction(1, 2)
        send(again, "g-2", "rose")
        assert again.economy.earnings("cat") == DIAMOND(1)
        assert again.economy.creator("cat").carry == 0


def test_creators_rates_and_their_changes_apply_at_the_time_of_the_gift(store: Store) -> None:
    share = RevenueShare(
        Rate("50%"),
        changes=[(T0 + timedelta(days=1), Rate("40%"))],
        creators={"star": [(None, Rate("70%"))]},
    )
    kit = Kit(store, revenue_share=share)
    kit.adult("alice")
    kit.creator("cat")
    kit.creator("star")
    kit.buy("alice", "coins_1000")
    assert send(kit, "g-1", "heart", 2).earned == DIAMOND(5)
    assert send(kit, "g-2", "heart", 2, creator="star").earned == DIAMOND(7)
    kit.clock.advance(timedelta(days=1))
    assert send(kit, "g-3", "heart", 2).earned == DIAMOND(4)
    assert send(kit, "g-4", "heart", 2, creator="star").earned == DIAMOND(7)
    assert kit.economy.verify().ok


def test_a_twitch_style_fixed_rate_is_a_full_share_in_cents(store: Store) -> None:
    kit = Kit(store, revenue_share=RevenueShare(Rate(1)))
    kit.adult("alice")
    kit.creator("cat")
    kit.buy()
    receipt = send(kit, "g-1", "heart", 4)
    assert receipt.earned == DIAMOND(20)  # one unit a coin, whatever was paid for them
    assert receipt.platform_share == 0


def test_a_changed_catalog_keeps_old_receipts_at_the_price_paid(kit: Kit) -> None:
    first = send(kit, "g-1", "heart")
    dearer = kit.economy.catalog.with_gift(Gift("heart", "Heart", 7))
    kit.economy.set_catalog(dearer)
    second = send(kit, "g-2", "heart")
    assert (first.price, first.catalog_version) == (5, 1)
    assert (second.price, second.catalog_version) == (7, 2)
    assert send(kit, "g-1", "heart") == first  # a replay is the first receipt still
    with pytest.raises(ValidationError, match="not newer"):
        kit.economy.set_catalog(CATALOG)
    with pytest.raises(InvalidTypeError):
        kit.economy.set_catalog("catalog")  # type: ignore[arg-type]


def test_a_gift_as_the_sender_saw_it_is_refused_once_the_catalog_changed_it(kit: Kit) -> None:
    seen = kit.economy.catalog.get("heart")
    assert send(kit, "g-1", seen).price == 5
    kit.economy.set_catalog(kit.economy.catalog.with_gift(attrs.evolve(seen, price=6)))
    before = kit.economy.balance("alice")
    with pytest.raises(NotAvailableError, match="changed in the catalog"):
        send(kit, "g-2", seen)
    assert kit.economy.balance("alice") == before


def test_a_self_gift_is_refused_unless_the_policy_allows_it(store: Store) -> None:
    kit = Kit(store)
    kit.creator("cat")
    kit.buy("cat")
    before = books(kit)
    with pytest.raises(NotEligibleError) as refused:
        send(kit, "g-1", sender="cat")
    assert (refused.value.holder, refused.value.reason) == ("cat", "self-gift")
    assert books(kit) == before
    allowing = Kit(store, gift_policy=GiftPolicy(allow_self_gift=True))
    assert send(allowing, "g-2", sender="cat").earned == DIAMOND(0)


# -- refusals: a typed error, and nothing written ----------------------------------------


def _unchanged(kit: Kit, before: dict[AccountKey, int], events: int) -> None:
    assert books(kit) == before
    assert kit.economy.creator("cat").gifts == 0
    kit.sink.events.clear()
    while kit.economy.deliver_events(limit=100):
        pass
    assert len(kit.sink.events) == events
    assert kit.economy.verify().ok


@pytest.mark.parametrize(
    ("gift", "quantity", "changes", "error", "match"),
    [
        ("tulip", 1, {}, NotFoundError, "no gift 'tulip'"),
        ("rose", 0, {}, InvalidAmountError, "quantity"),
        ("rose", -1, {}, InvalidAmountError, "quantity"),
        ("rose", 101, {}, InvalidAmountError, "quantity"),
        ("rose", True, {}, InvalidAmountError, "quantity"),
        ("rose", 1.0, {}, InvalidAmountError, "quantity"),
        ("lion", 1, {"region": "DE"}, NotAvailableError, "not offered in DE"),
        ("rose", 1, {"region": "XX"}, InvalidRegionError, "XX"),
        ("rose", 1, {"context": ""}, InvalidIdentifierError, "context"),
        ("rose", 1, {"creator": "dog"}, NotEligibleError, "dog does not receive gifts"),
        ("lion", 2, {}, InsufficientFunds, "598"),
        (7, 1, {}, InvalidTypeError, "gift id"),
    ],
)
def test_a_refused_gift_writes_nothing(
    kit: Kit,
    gift: object,
    quantity: object,
    changes: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    kit.events()
    before = books(kit)
    with pytest.raises(error, match=match):
        send(kit, "g-1", gift, quantity, **changes)  # type: ignore[arg-type]
    _unchanged(kit, before, 0)
    # The key was not used up: the same key sends a good gift afterwards.
    assert send(kit, "g-1", "rose").earned == DIAMOND(0)


def test_a_gift_outside_its_window_is_not_available(store: Store) -> None:
    evenings = Availability(
        start=T0.replace(hour=18), rrule="FREQ=DAILY", duration=timedelta(hours=4)
    )
    catalog = GiftCatalog([Gift("moon", "Moon", 10, availability=evenings)])
    kit = Kit(store, catalog=catalog)
    kit.adult("alice")
    kit.creator("cat")
    kit.buy()
    with pytest.raises(NotAvailableError, match="not available at 2026-03-02T12:00:00"):
        send(kit, "g-1", "moon")
    assert kit.economy.catalog.offered("US", kit.clock.now()) == []
    kit.clock.advance(timedelta(hours=7))  # 19:00
    assert [g.id for g in kit.economy.catalog.offered("US", kit.clock.now())] == ["moon"]
    assert send(kit, "g-1", "moon").coins == COIN(10)


def test_a_gift_with_a_minimum_age_needs_an_attested_sender(store: Store) -> None:
    kit = Kit(store)
    kit.creator("cat")
    kit.economy.record_consent("consent", holder="kid", guardian="parent-1", source="portal")
    kit.buy("kid")
    with pytest.raises(NotEligibleError) as refused:
        send(kit, "g-1", "lion", sender="kid")
    assert refused.value.reason == "age"
    assert send(kit, "g-2", "rose", sender="kid").coins == COIN(1)  # no minimum age


def test_gifting_regions_apply_to_senders_and_creators(store: Store) -> None:
    kit = Kit(store, gift_policy=GiftPolicy(regions={"US"}))
    kit.adult("alice")
    kit.creator("cat")
    kit.creator("chat", region="FR")
    kit.buy()
    with pytest.raises(NotEligibleError, match="not offered in FR") as sender:
        send(kit, "g-1", region="FR")
    assert sender.value.reason == "region"
    with pytest.raises(NotEligibleError, match="chat is not in a region") as creator:
        send(kit, "g-2", creator="chat")
    assert (creator.value.holder, creator.value.reason) == ("chat", "region")


def test_a_creator_must_be_enrolled_receiving_in_good_standing_and_of_age(kit: Kit) -> None:
    economy = kit.economy
    economy.set_receiving("off", creator="cat", receiving=False)
    with pytest.raises(NotEligibleError) as off:
        send(kit, "g-1")
    assert off.value.reason == "not-receiving"
    economy.set_receiving("on", creator="cat", receiving=True)
    economy.suspend_creator("suspend", creator="cat", reason="terms of service, case 12")
    with pytest.raises(NotEligibleError, match="terms of service") as suspended:
        send(kit, "g-1")
    assert suspended.value.reason == "suspended"
    economy.suspend_creator("reinstate", creator="cat", reason=None)
    assert send(kit, "g-1").coins == COIN(1)
    economy.enroll_creator("enroll-young", creator="young", region="US")
    with pytest.raises(NotEligibleError) as young:
        send(kit, "g-2", creator="young")
    assert (young.value.holder, young.value.reason) == ("young", "not-adult")
    assert economy.creator("young").receiving
    with pytest.raises(InvalidTypeError):
        economy.set_receiving("x", creator="cat", receiving=1)  # type: ignore[arg-type]


def test_without_the_age_rule_an_enrolled_creator_receives(store: Store) -> None:
    kit = Kit(store, gift_policy=GiftPolicy(creator_must_be_adult=False))
    kit.adult("alice")
    kit.buy()
    kit.economy.enroll_creator("enroll", creator="cat", region="US")
    assert send(kit, "g-1").coins == COIN(1)


def test_a_wallet_in_debt_cannot_send_gifts(kit: Kit) -> None:
    [purchase] = kit.economy.purchases("alice")
    send(kit, "g-1", "lion")
    kit.economy.handle_payment_event(
        PaymentEvent(
            "cb-1",
            PaymentEventType.CHARGED_BACK,
            purchase.id,
            kit.clock.now(),
            amount=purchase.total,
        )
    )
    assert kit.economy.balance("alice").amount < 0
    before = books(kit)
    with pytest.raises(WalletFrozen):
        send(kit, "g-2", "rose")
    assert books(kit) == before
    assert kit.economy.verify().ok


def test_the_economy_refuses_gift_settings_it_cannot_use() -> None:
    def economy(**settings: object) -> CoinEconomy:
        return CoinEconomy(
            price_book=book(),
            store=MemoryStore(),
            gateway=FakePaymentGateway(),
            **settings,  # type: ignore[arg-type]
        )

    with pytest.raises(ValidationError, match="earnings are never spendable as coins"):
        economy(creator_unit=Unit("COIN"))
    with pytest.raises(InvalidTypeError):
        economy(creator_unit="DIAMOND")
    with pytest.raises(InvalidTypeError):
        economy(catalog=[Gift("rose", "Rose", 1)])
    with pytest.raises(InvalidTypeError):
        economy(revenue_share=Rate("50%"))
    with pytest.raises(InvalidTypeError):
        economy(gift_policy={"allow_self_gift": True})
    plain = economy()
    assert plain.creator_unit == DIAMOND
    assert plain.catalog == GiftCatalog([])
    assert plain.revenue_share == RevenueShare(Rate("50%"))
    assert plain.gift_policy == GiftPolicy()


def test_staff_set_a_creators_own_rate_from_an_instant(kit: Kit) -> None:
    economy = kit.economy
    tomorrow = T0 + timedelta(days=1)
    profile = economy.set_creator_rate("r-1", creator="cat", rate="80%", effective=tomorrow)
    assert profile.rates == ((tomorrow, Rate("80%")),)
    assert send(kit, "g-1", "heart", 2).earned == DIAMOND(5)  # not yet: the economy's 50 %
    kit.clock.advance(timedelta(days=1))
    assert send(kit, "g-2", "heart", 2).rate == Rate("80%")
    economy.set_creator_rate("r-2", creator="cat", rate=Rate(0))
    assert send(kit, "g-3", "heart", 2).earned == DIAMOND(0)  # a 0 % rate is a rate
    assert economy.set_creator_rate("r-2", creator="cat", rate=Rate(0)) == economy.creator("cat")
    with pytest.raises(InvalidRateError):
        economy.set_creator_rate("r-3", creator="cat", rate="120%")
    assert economy.verify().ok


def test_a_batch_of_gifts_commits_once_and_all_or_nothing(kit: Kit) -> None:
    economy = kit.economy
    with economy.batch() as bulk:
        receipts = [send(bulk_kit(kit, bulk), f"b-{n}", "heart") for n in range(3)]
        with pytest.raises(StorageError, match="cannot run in a batch"):
            bulk.purchase(bulk.quote("alice", region="US", sku="coins_100"), "pm", "x")
    assert [r.coins for r in receipts] == [COIN(5)] * 3
    assert economy.balance("alice") == COIN(510)
    assert send(kit, "b-0", "heart") == receipts[0]  # replayed outside the batch
    with (  # noqa: PT012 (the batch fails as it ends)
        pytest.raises(StorageError, match="nothing of the batch was kept"),
        economy.batch() as bulk,
    ):
        send(bulk_kit(kit, bulk), "c-1", "heart")
        with pytest.raises(InsufficientFunds):
            send(bulk_kit(kit, bulk), "c-2", "lion", 2)
    assert economy.balance("alice") == COIN(510)
    assert economy.verify().ok


def bulk_kit(kit: Kit, bulk: CoinEconomy) -> Kit:
    """*kit* sending through *bulk*."""
    copy = object.__new__(Kit)
    copy.__dict__.update(kit.__dict__, economy=bulk)
    return copy


def test_setting_a_rate_from_now_replays_as_the_same_request(kit: Kit) -> None:
    first = kit.economy.set_creator_rate("r-1", creator="cat", rate="70%")
    kit.clock.advance(timedelta(seconds=1))
    assert kit.economy.set_creator_rate("r-1", creator="cat", rate="70%") == first
    with pytest.raises(IdempotencyConflict):
        kit.economy.set_creator_rate("r-1", creator="cat", rate="70%", effective=T0)


def test_a_reused_key_names_what_changed_in_the_gift(kit: Kit) -> None:
    send(kit, "g-1", "heart", 2)
    with pytest.raises(IdempotencyConflict) as conflict:
        send(kit, "g-1", "heart", 3, context="stream-2")
    assert conflict.value.fields == ("context", "quantity")
