"""CoinEconomy: the one service a host talks to.

It joins the price book, the gift catalog, the wallets, the payment and
payout providers and the host's event sink: a buyer gets a quote, pays
through the provider, and receives the coins and bonus coins in one
transaction with the money side of the books; the provider's later events
(settled, failed, refunded, charged back, chargeback reversed) are handled
once each, in any order. Viewers send gifts to creators and buy store items;
creators' earnings are held, converted into money owed and paid out. Staff
adjust wallets with a reason and report on disputes. Everything runs on any
:class:`~coinecon.ports.Store`; nothing is wired at import time::

    >>> from datetime import UTC, datetime
    >>> from coinecon import (CoinPackage, Fee, FeeSchedule, ManualClock, Money,
    ...                       PaymentMethodFee, PriceBook, Unit)
    >>> from coinecon.adapters.fake_payments import FakePaymentGateway
    >>> from coinecon.adapters.memory import MemoryStore
    >>> COIN = Unit("COIN")
    >>> book = PriceBook(
    ...     regions={"US": "USD"},
    ...     packages=[CoinPackage("coins_500", 500, {"web": [Money("4.99", "USD")]})],
    ...     fees=FeeSchedule(payment_methods=[PaymentMethodFee("card", Fee())]),
    ...     unit=COIN,
    ... )
    >>> clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    >>> economy = CoinEconomy(price_book=book, store=MemoryStore(),
    ...                       gateway=FakePaymentGateway(clock=clock), clock=clock,
    ...                       eligibility=EligibilityPolicy(require_age=False))
    >>> quote = economy.quote("alice", region="US", sku="coins_500")
    >>> purchase = economy.purchase(quote, "pm_card_visa", "order-1")
    >>> purchase.status.value, economy.balance("alice")
    ('completed', UnitAmount(500, 'COIN'))
    >>> economy.deferred_revenue(), economy.verify().ok
    ({'USD': Money('4.99', 'USD')}, True)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, final

import attrs
from dateutil.relativedelta import relativedelta

from coinecon import _checks
from coinecon._ids import check_identifier, random_id
from coinecon.clock import Clock, SystemClock, as_utc
from coinecon.creators import payouts as payout_records
from coinecon.creators import profiles as creator_profiles
from coinecon.creators._earnings import Earnings
from coinecon.creators.conversion import ConversionRate, ConversionReceipt
from coinecon.creators.payout_gateway import (
    PayoutEvent,
    PayoutEventType,
    PayoutGateway,
    PayoutOutcome,
    PayoutRequest,
    PayoutStatus,
)
from coinecon.creators.payouts import Payout, PayoutPolicy
from coinecon.creators.profiles import CreatorProfile
from coinecon.creators.share import RevenueShare, revenue_share_rate
from coinecon.errors import (
    IdempotencyConflict,
    InvalidAmountError,
    InvalidQuoteError,
    InvalidTypeError,
    NotAvailableError,
    QuoteExpiredError,
    StorageError,
    ValidationError,
)
from coinecon.export import ExportFormat, FileFormat, TextOutput, export_statement
from coinecon.gifts import inventory as inventory_records
from coinecon.gifts._sending import Gifting, Send, catalog_gift, catalog_item
from coinecon.gifts.catalog import Gift, GiftCatalog, StoreItem
from coinecon.gifts.inventory import Inventory, ItemReceipt
from coinecon.gifts.receipts import GiftPolicy, GiftReceipt
from coinecon.ledger.events import EventSink
from coinecon.ledger.idempotency import IdempotencyRecord, canonical_json, fingerprint
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    MetadataValue,
    TransactionKind,
    metadata_pairs,
)
from coinecon.ledger.lots import SpendOrder
from coinecon.ledger.verification import VerificationReport
from coinecon.ledger.wallets import HistoryPage, Wallets
from coinecon.money.money import Currency, Money
from coinecon.money.rate import Rate
from coinecon.money.units import Unit, UnitAmount
from coinecon.ports import Store, UnitOfWork
from coinecon.pricing import PriceBook, Quote
from coinecon.recharge import disputes, purchases
from coinecon.recharge._cases import Cases
from coinecon.recharge._context import EVENT_KIND, Context, event_data, text
from coinecon.recharge._payments import Payments
from coinecon.recharge._policies import Policies
from coinecon.recharge.disputes import Case
from coinecon.recharge.eligibility import AgeAttestation, EligibilityPolicy, ParentalConsent
from coinecon.recharge.gateway import (
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    PaymentEvent,
    PaymentGateway,
)
from coinecon.recharge.limits import Budget, LimitPolicy
from coinecon.recharge.profiles import HolderProfile
from coinecon.recharge.purchases import Purchase, PurchaseStatus
from coinecon.records import Record
from coinecon.regions import region as check_region

__all__ = ["AdjustmentResult", "CoinEconomy", "EventOutcome", "PayoutEventOutcome"]

_R = TypeVar("_R")
_T = TypeVar("_T")
_P = TypeVar("_P")

DIAMOND = Unit("DIAMOND", "Diamonds")
"""The unit creators earn unless the economy is given another."""


@final
@attrs.frozen
class EventOutcome:
    """What :meth:`CoinEconomy.handle_payment_event` did with an event.

    Attributes:
        event_id: the provider's event id.
        status: ``"applied"``; ``"held"`` (it came before what it follows,
            and is applied when that arrives, or ``"refused"`` then if it
            gives back more than is left); ``"ignored"`` (nothing to do:
            a refund of a charge that never went through); or
            ``"duplicate"`` (seen before: nothing done again).
        purchase: the purchase as it stands after.
        transaction_id: the ledger transaction it recorded, if any.
    """

    event_id: str
    status: str
    purchase: Purchase
    transaction_id: str | None = None


@final
@attrs.frozen
class PayoutEventOutcome:
    """What :meth:`CoinEconomy.handle_payout_event` did with an event.

    Attributes:
        event_id: the provider's event id.
        status: ``"applied"``; ``"ignored"`` (the payout is there or past
            it already: a settlement after a failure changes nothing, and
            is for staff to look into); or ``"duplicate"`` (seen before).
        payout: the payout as it stands after.
    """

    event_id: str
    status: str
    payout: Payout


PAYOUT_EVENT_KIND = "payout-event"
"""The record kind of payout provider events (owned by their payout)."""


@final
@attrs.frozen
class AdjustmentResult:
    """What :meth:`CoinEconomy.adjust` recorded.

    Attributes:
        transaction_id: the adjustment's transaction.
        balance: the wallet's balance after.
    """

    transaction_id: str
    balance: UnitAmount


class CoinEconomy:
    """A coin economy, both halves (recharge; gifts and creators), on any
    store and payment and payout providers.

    Args:
        price_book: what coins cost.
        store: where the books and records are kept.
        gateway: the payment provider.
        events: where :meth:`deliver_events` delivers the outbox's events.
        clock: where the time comes from (the system clock by default).
        eligibility: who may buy (by default: adults, or minors with a
            parental consent, wherever the book sells).
        limits: the platform's purchase limits (none by default).
        quote_validity: how long a quote may be paid.
        spend_order: the order spends, refunds and chargebacks take lots in.
        bonus_expiry: how long after a purchase its bonus coins expire
            (``None``: never).
        new_id: makes ids (version-7 UUIDs by default).
        catalog: the gifts on offer (none by default; see :meth:`set_catalog`).
        creator_unit: the unit creators earn from gifts (``DIAMOND`` by
            default); not the coins' unit.
        revenue_share: what creators earn of the coins gifted to them (50 %
            by default).
        gift_policy: who may send gifts to whom (see
            :class:`~coinecon.gifts.receipts.GiftPolicy`).
        conversion_rate: what creators' earnings are worth in money (none
            by default: :meth:`convert` then refuses).
        payout_policy: when and how creators are paid (see
            :class:`~coinecon.creators.payouts.PayoutPolicy`).
        payout_gateway: the payout provider (none by default:
            :meth:`request_payout` then refuses).
    """

    def __init__(
        self,
        *,
        price_book: PriceBook,
        store: Store,
        gateway: PaymentGateway,
        events: EventSink | None = None,
        clock: Clock | None = None,
        eligibility: EligibilityPolicy | None = None,
        limits: LimitPolicy | None = None,
        quote_validity: timedelta = timedelta(minutes=15),
        spend_order: SpendOrder = SpendOrder.EXPIRING_FIRST,
        bonus_expiry: relativedelta | timedelta | None = None,
        new_id: Callable[[], str] | None = None,
        catalog: GiftCatalog | None = None,
        creator_unit: Unit | None = None,
        revenue_share: RevenueShare | None = None,
        gift_policy: GiftPolicy | None = None,
        conversion_rate: ConversionRate | None = None,
        payout_policy: PayoutPolicy | None = None,
        payout_gateway: PayoutGateway | None = None,
    ) -> None:
        if not isinstance(price_book, PriceBook):
            raise InvalidTypeError(f"price_book must be a PriceBook, got {price_book!r}")
        _checks.store(store)
        if not isinstance(gateway, PaymentGateway):
            raise InvalidTypeError(f"gateway must have charge() and lookup(), got {gateway!r}")
        if events is not None and not isinstance(events, EventSink):
            raise InvalidTypeError(f"events must have a deliver(event) method, got {events!r}")
        if clock is not None and not isinstance(clock, Clock):
            raise InvalidTypeError(f"clock must have a now() method, got {clock!r}")
        if eligibility is not None and not isinstance(eligibility, EligibilityPolicy):
            raise InvalidTypeError(f"eligibility must be an EligibilityPolicy, got {eligibility!r}")
        if limits is not None and not isinstance(limits, LimitPolicy):
            raise InvalidTypeError(f"limits must be a LimitPolicy, got {limits!r}")
        validity: object = quote_validity
        if not isinstance(validity, timedelta) or validity <= timedelta(0):
            raise ValidationError(
                f"quote_validity must be a positive timedelta, got {quote_validity!r}"
            )
        if bonus_expiry is not None and not isinstance(bonus_expiry, relativedelta | timedelta):
            raise InvalidTypeError(
                f"bonus_expiry must be a relativedelta or timedelta, got {bonus_expiry!r}"
            )
        if new_id is not None and not callable(new_id):
            raise InvalidTypeError(f"new_id must be callable, got {new_id!r}")
        earned_in, share, policy = _gift_settings(
            price_book.unit, catalog, creator_unit, revenue_share, gift_policy
        )
        payout_rules = _payout_settings(conversion_rate, payout_policy, payout_gateway)
        # What a batch's economy is built with (all but the store).
        self._settings: dict[str, Any] = {
            "price_book": price_book,
            "gateway": gateway,
            "events": events,
            "clock": clock,
            "eligibility": eligibility,
            "limits": limits,
            "quote_validity": quote_validity,
            "spend_order": spend_order,
            "bonus_expiry": bonus_expiry,
            "new_id": new_id,
            "creator_unit": creator_unit,
            "revenue_share": revenue_share,
            "gift_policy": gift_policy,
            "conversion_rate": conversion_rate,
            "payout_policy": payout_policy,
            "payout_gateway": payout_gateway,
        }
        self._batched = False
        self.price_book = price_book
        self.unit: Unit = price_book.unit
        self._store = store
        self._gateway = gateway
        self._events = events
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.eligibility = eligibility if eligibility is not None else EligibilityPolicy()
        self.limits = limits if limits is not None else LimitPolicy()
        self._validity = quote_validity
        self._order = spend_order
        self._bonus_expiry = bonus_expiry
        self._new_id = new_id or random_id
        self.wallets = Wallets(
            store, clock=self._clock, spend_order=spend_order, new_id=self._new_id
        )
        """The wallets underneath, for what the economy does not wrap."""
        self._ctx = Context(
            unit=self.unit,
            wallets=self.wallets,
            new_id=self._new_id,
            order=spend_order,
            bonus_expiry=bonus_expiry,
            price_book=price_book,
            eligibility=self.eligibility,
            limits=self.limits,
            validity=quote_validity,
        )
        self._policies = Policies(self._ctx)
        self._cases = Cases(self._ctx)
        self.creator_unit: Unit = earned_in
        """The unit creators earn."""
        self._catalog = catalog if catalog is not None else GiftCatalog([])
        self._gifting = Gifting(
            self._ctx, creator_unit=earned_in, share=share, policy=policy, payouts=payout_rules
        )
        self._payments = Payments(
            self._ctx,
            self._policies,
            after_chargeback=self._gifting.claw_back,
            after_reversal=self._gifting.give_back,
        )
        self._payout_gateway = payout_gateway
        self._earnings = Earnings(
            creator_unit=earned_in,
            rate=conversion_rate,
            policy=payout_rules,
            new_id=self._new_id,
            announce=self._ctx.announce,
            tallies=policy.tallies,
        )
        run = getattr(store, "run", None)
        self._store_run: Callable[[Callable[[UnitOfWork], Any]], Any] | None = (
            run if callable(run) else None
        )

    @contextlib.contextmanager
    def batch(self) -> Iterator[CoinEconomy]:
        """Run many commands in one unit of work: a burst of gifts, a bulk
        import. Inside the ``with`` block, use the yielded economy; its
        commands work exactly as alone (every check, rule, idempotency key
        and event), and all commit once when the block ends. The batch is all
        or nothing, as :meth:`Wallets.batch
        <coinecon.ledger.wallets.Wallets.batch>` is: if a command in it
        raised, even one the caller caught, nothing is kept and leaving the
        block raises :class:`~coinecon.errors.StorageError`. Commands that ask
        a provider between their commits (:meth:`purchase`,
        :meth:`request_payout`, :meth:`reconcile`, :meth:`reconcile_payouts`)
        are refused in a batch, before they change anything.
        """
        with self.wallets.batch() as inner:
            batched = CoinEconomy(
                store=inner._store,  # noqa: SLF001 (the batch's store)
                catalog=self._catalog,
                **self._settings,
            )
            batched._batched = True
            yield batched

    def _refuse_in_batch(self, command: str) -> None:
        if self._batched:
            raise StorageError(
                f"{command}() asks a provider between its commits: it cannot run in a batch"
            )

    # -- quotes and purchases ----------------------------------------------------------

    def quote(
        self,
        holder: str,
        *,
        region: str,
        storefront: str = "web",
        payment_method: str = "card",
        sku: str | None = None,
        coins: int | None = None,
    ) -> Quote:
        """A quote for *holder*, made now, from their own purchase history
        (first purchase, promotions used), valid for the economy's
        ``quote_validity``. Give *sku* (a package) or *coins* (a custom amount).

        *payment_method* is the kind of method the fees depend on
        (``"card"``, ``"wallet"``...), not the provider's token.
        """
        check_identifier(holder, "holder")
        profile = self.profile(holder)
        quote = self.price_book.quote(
            account=holder,
            region=region,
            storefront=storefront,
            payment_method=payment_method,
            now=self._now(),
            history=profile.history,
            validity=self._validity,
            coins=coins,
            sku=sku,
        )
        self._policies.issued(quote, profile)
        return quote

    def purchase(self, quote: Quote, payment_method: str, idempotency_key: str) -> Purchase:
        """Buy what *quote* offers, paying with *payment_method* (the
        provider's opaque token).

        The quote must be valid now and exactly what the book gives for it
        (:class:`~coinecon.errors.QuoteExpiredError`,
        :class:`~coinecon.errors.QuoteMismatchError`); the buyer eligible
        (:class:`~coinecon.errors.NotEligibleError`) and within every limit
        (:class:`~coinecon.errors.LimitExceeded`). Any of these refuses the
        purchase before anything is written or charged.

        The purchase is then recorded, and the provider asked for the
        quote's total. Approved: the coins and bonus coins are credited in
        one transaction with the money (status ``COMPLETED``). Declined:
        nothing is credited (``DECLINED``, with the reason). Pending: nothing
        until the provider's ``SETTLED`` event (``PENDING``). If the provider
        raises or times out, the purchase stays ``CHARGING`` until an event
        or :meth:`reconcile` settles it; it is never charged or credited
        twice.

        A replay with the same key and quote returns the purchase as it
        stands now, and charges nothing.
        """
        self._refuse_in_batch("purchase")
        key = check_identifier(idempotency_key, "idempotency key")
        if not isinstance(quote, Quote):
            raise InvalidTypeError(f"quote must be a Quote, got {quote!r}")
        method = check_identifier(payment_method, "payment method")
        if quote.coins.unit != self.unit:
            raise InvalidQuoteError(
                f"the quote sells {quote.coins.unit.code}, not {self.unit.code}"
            )
        quoted = quote.fingerprint
        digest = fingerprint("purchase", {"quote": quoted, "payment_method": method})

        def record(uow: UnitOfWork) -> tuple[Purchase, bool]:
            # Every check reads in the unit of work that records the purchase.
            stored = self._replayed(uow, key, digest)
            if stored is not None:  # a replay, or a twin request that won the race
                return self._ctx.purchase(uow, json.loads(stored)["purchase"]), False
            now = self._now()
            if not quote.is_valid_at(now):
                raise QuoteExpiredError(
                    f"the quote was valid from {quote.created_at.isoformat()} until "
                    f"{quote.expires_at.isoformat()}, not at {now.isoformat()}: ask for a new one"
                )
            profile = self._ctx.profile(uow, quote.account)
            self._policies.check_quote(quote, quoted, profile)
            self._policies.check_eligible(profile, quote.region, now)
            self._policies.check_limits(uow, quote, profile, now)
            purchase = Purchase.of_quote(self._new_id(), quote, method, key, now, quoted)
            if not purchase.value.is_positive:
                raise InvalidQuoteError(
                    f"the quote charges {quote.total} of which the coins are worth nothing"
                )
            purchase = self._ctx.save(uow, purchase)
            # It counts in the buyer's history from now (a welcome bonus is
            # not given to two purchases made at once); a failure gives it back.
            self._ctx.save_profile(uow, profile.bought(quote.promotions), now)
            uow.records.add(Record.new(purchases.OPEN_KIND, purchase.id, PLATFORM, now, {}))
            uow.idempotency.add(
                IdempotencyRecord(key, digest, canonical_json({"purchase": purchase.id}), now)
            )
            uow.commit()
            return purchase, True

        purchase, recorded = self._run(record)
        # Only the request that recorded the purchase charges it: a twin that
        # lost the race answers as a replay does, with the purchase as it stands.
        return self._charge(purchase) if recorded else purchase

    def reconcile(
        self,
        purchase_id: str | None = None,
        *,
        limit: int = 100,
        older_than: timedelta = timedelta(minutes=5),
    ) -> list[Purchase]:
        """Settle purchases still waiting for their provider: ask it what
        became of each (:meth:`PaymentGateway.lookup
        <coinecon.recharge.gateway.PaymentGateway.lookup>`) and apply the
        answer, as the charge's own answer would have been. A charge the
        provider never received fails (``FAILED``); if the provider takes it
        after all, its approval or ``SETTLED`` event still credits it. One the
        provider cannot answer about now, or still pending, is left for later
        and looked at after the others next time.

        Args:
            purchase_id: only this purchase (looked up even if it failed:
                the provider may have taken it after all, and then it is
                credited); by default those waiting, the longest waiting
                first.
            limit: the most purchases looked at (without *purchase_id*).
            older_than: look only at purchases recorded at least this long
                ago (without *purchase_id*): a younger one may be on its way
                to the provider right now.

        Returns:
            The purchases looked at, as they stand after.
        """
        self._refuse_in_batch("reconcile")
        if purchase_id is not None:
            ids = [check_identifier(purchase_id, "purchase id")]
        else:
            ids = self._open(purchases.OPEN_KIND, limit, older_than)
        settled = []
        for charge_id in ids:
            purchase = self.purchase_of(charge_id)
            # Asked by id, a failed one is looked up too: the provider may
            # have taken it after all (then it is credited).
            if purchase.status.open or (
                purchase_id is not None and purchase.status is PurchaseStatus.FAILED
            ):
                try:
                    outcome = self._gateway.lookup(charge_id)
                    purchase = self._settle_charge(charge_id, outcome)
                except Exception:
                    if purchase_id is not None:
                        raise
                    # The provider's failure, or this purchase's: the others go on.
                    purchase = self.purchase_of(charge_id)
                if purchase.status.open and purchase_id is None:
                    self._run(partial(self._requeue, purchase_id=charge_id))
            settled.append(purchase)
        return settled

    def _requeue(self, uow: UnitOfWork, purchase_id: str) -> None:
        """Put a purchase still waiting at the back of ``reconcile``'s queue."""
        marker = uow.records.get(purchases.OPEN_KIND, purchase_id)
        if marker is not None:
            uow.records.remove(purchases.OPEN_KIND, purchase_id)
            uow.records.add(Record.new(purchases.OPEN_KIND, purchase_id, PLATFORM, self._now(), {}))
            uow.commit()

    def handle_payment_event(self, event: PaymentEvent) -> EventOutcome:
        """Apply one provider event, once.

        An event seen before (by its id) is a no-op that says
        ``"duplicate"``; the same id with other content raises
        :class:`~coinecon.errors.IdempotencyConflict`. An event that comes
        before what it follows (a refund before its settlement, a
        chargeback's reversal before the chargeback) is held and applied
        when that arrives.

        A refund or chargeback takes back the purchase's coins in
        proportion to the money: first from the purchase's own lots, then
        from the wallet's others; coins already spent become a debt that
        freezes the wallet's spending until a purchase or an adjustment
        settles it; bonus coins whose lot lapsed are not taken back. A
        chargeback's reversal restores what the chargeback of the same amount
        took (one that matches no chargeback stays held).

        Raises:
            NotFoundError: no purchase has the event's charge id.
            RefundTooLargeError: it would give back more than the payment
                took (nothing is written: the event can be sent again once
                corrected).
        """
        if not isinstance(event, PaymentEvent):
            raise InvalidTypeError(f"event must be a PaymentEvent, got {event!r}")
        content = event_data(event)

        def work(uow: UnitOfWork) -> EventOutcome:
            seen = uow.records.get(EVENT_KIND, event.id)
            purchase = self._ctx.purchase(uow, event.charge_id)
            if seen is not None:
                data = seen.data
                if data["event"] != content:
                    raise IdempotencyConflict(event.id)
                return EventOutcome(event.id, "duplicate", purchase, data.get("transaction_id"))
            now = self._now()
            status, purchase, transaction_id = self._payments.apply(uow, purchase, event, now)
            if status == "held" and not purchase.held:
                purchase = self._ctx.save(uow, attrs.evolve(purchase, held=True, updated_at=now))
            uow.records.add(
                Record.new(
                    EVENT_KIND,
                    event.id,
                    event.charge_id,
                    now,
                    {"event": content, "status": status, "transaction_id": transaction_id},
                )
            )
            if status == "applied":
                purchase = self._payments.release_held(uow, purchase, now)
            uow.commit()
            return EventOutcome(event.id, status, purchase, transaction_id)

        return self._run(work)

    # -- holders ----------------------------------------------------------------------

    def attest_age(
        self,
        idempotency_key: str,
        *,
        holder: str,
        region: str,
        source: str,
        birth_date: date | None = None,
        adult: bool = False,
    ) -> HolderProfile:
        """Record who vouched for *holder*'s age: give their *birth_date*
        (from which the date they are of age in *region* is kept, not the
        birth date), or *adult* when the host vouches that they are of age
        there now."""
        check_identifier(holder, "holder")
        check_region(region)
        if type(adult) is not bool:
            raise InvalidTypeError(f"adult is a bool, got {adult!r}")
        if (birth_date is None) == (not adult):
            raise ValidationError("give birth_date, or adult=True, not both")
        today = self._now().date()
        if birth_date is not None:
            attestation = AgeAttestation.from_birth_date(
                birth_date, region=region, source=source, attested_on=today, policy=self.eligibility
            )
        else:
            attestation = AgeAttestation.adult(
                region=region, source=source, attested_on=today, policy=self.eligibility
            )
        return self._change_profile(
            idempotency_key,
            holder,
            "attest-age",
            {"attestation": attestation.to_data()},
            lambda profile: attrs.evolve(profile, attestation=attestation),
        )

    def record_consent(
        self, idempotency_key: str, *, holder: str, guardian: str, source: str
    ) -> HolderProfile:
        """Record a guardian's consent to *holder*'s purchases (*guardian* is
        the guardian's reference in the host's system)."""
        check_identifier(holder, "holder")
        consent = ParentalConsent(guardian, source, self._now().date())
        return self._change_profile(
            idempotency_key,
            holder,
            "record-consent",
            {"guardian": guardian, "source": source},
            lambda profile: attrs.evolve(profile, consent=consent),
        )

    def set_budget(
        self, idempotency_key: str, *, holder: str, budget: Budget | None
    ) -> HolderProfile:
        """Set (or with ``None``, lift) *holder*'s own budget on money spent on coins."""
        check_identifier(holder, "holder")
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidTypeError(f"budget must be a Budget or None, got {budget!r}")
        return self._change_profile(
            idempotency_key,
            holder,
            "set-budget",
            {"budget": None if budget is None else budget.to_data()},
            lambda profile: attrs.evolve(profile, budget=budget),
        )

    def profile(self, holder: str) -> HolderProfile:
        """What recharge knows of *holder* (an empty profile if nothing)."""
        check_identifier(holder, "holder")
        return self._read(lambda uow: self._ctx.profile(uow, holder))

    # -- staff --------------------------------------------------------------------------

    def adjust(
        self,
        idempotency_key: str,
        *,
        holder: str,
        coins: int,
        staff: str,
        reason: str | None = None,
        case_id: str | None = None,
    ) -> AdjustmentResult:
        """Credit (*coins* > 0) or debit (*coins* < 0) *holder*'s wallet by
        hand. It needs the *staff* member who makes it and a *reason* or
        the *case_id* of a dispute it settles, all recorded on the
        transaction, so that an adjustment never passes unexplained. A
        credit settles a debt first; a debit never makes one.
        """
        key = check_identifier(idempotency_key, "idempotency key")
        check_identifier(holder, "holder")
        check_identifier(staff, "staff")
        if type(coins) is not int or coins == 0:
            raise InvalidAmountError(f"coins is a non-zero int, got {coins!r}")
        if reason is None and case_id is None:
            raise ValidationError("an adjustment needs a reason or the case it settles")
        if reason is not None:
            text(reason, "reason")
        if case_id is not None:
            check_identifier(case_id, "case id")
        meta: dict[str, MetadataValue] = {"staff": staff, "reason": reason, "case": case_id}
        pairs = metadata_pairs(meta)
        digest = fingerprint("adjust", {"holder": holder, "coins": coins, **meta})

        def work(uow: UnitOfWork) -> AdjustmentResult:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                data = json.loads(stored)
                return AdjustmentResult(
                    data["transaction_id"], UnitAmount(data["balance"], self.unit)
                )
            now = self._now()
            transaction, after = self._cases.adjust(uow, holder, coins, key, case_id, pairs, now)
            result = AdjustmentResult(transaction.id, UnitAmount(after, self.unit))
            said = canonical_json({"transaction_id": transaction.id, "balance": after})
            uow.idempotency.add(IdempotencyRecord(key, digest, said, now))
            self._ctx.announce(
                uow, "coins.adjusted", now, said, transaction.id, event_id=transaction.id
            )
            uow.commit()
            return result

        return self._run(work)

    def report(
        self, idempotency_key: str, *, holder: str, transaction_id: str, description: str
    ) -> Case:
        """Open a case: *holder* says they did not make *transaction_id*."""
        key = check_identifier(idempotency_key, "idempotency key")
        check_identifier(holder, "holder")
        check_identifier(transaction_id, "transaction id")
        note = text(description, "description")
        digest = fingerprint(
            "report", {"holder": holder, "transaction": transaction_id, "description": note}
        )

        def work(uow: UnitOfWork) -> Case:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                return self._ctx.case(uow, json.loads(stored)["case"])
            now = self._now()
            case = self._cases.open(uow, holder, transaction_id, note, now)
            return self._case_done(uow, case, key, digest, now)

        return self._run(work)

    def review(self, idempotency_key: str, *, case_id: str, staff: str, note: str) -> Case:
        """A staff member takes up an open case."""
        return self._step_case(idempotency_key, case_id, staff, note, reverse=None, action="review")

    def resolve(
        self, idempotency_key: str, *, case_id: str, staff: str, reverse: bool, reason: str
    ) -> Case:
        """End a case: with *reverse*, a reversal transaction (caused by the
        case, naming *staff* and *reason*) gives back what the disputed
        spend took, its revenue and any creator's earnings with it
        (``REVERSED``); otherwise the case is ``REJECTED`` for *reason*.

        A disputed purchase is not reversed here: the money goes back
        through the payment provider, whose refund event takes the coins.
        """
        if type(reverse) is not bool:
            raise InvalidTypeError(f"reverse is a bool, got {reverse!r}")
        return self._step_case(
            idempotency_key,
            case_id,
            staff,
            reason,
            reverse=reverse,
            action="reversed" if reverse else "rejected",
        )

    def case(self, case_id: str) -> Case:
        """The case with this id."""
        check_identifier(case_id, "case id")
        return self._read(lambda uow: self._ctx.case(uow, case_id))

    def cases(self, holder: str, *, limit: int = 50) -> list[Case]:
        """*holder*'s cases, newest first."""
        return self._of_owner(disputes.KIND, holder, limit, Case.from_record)

    # -- gifts and creators ------------------------------------------------------------

    @property
    def catalog(self) -> GiftCatalog:
        """The gifts on offer now."""
        return self._catalog

    def set_catalog(self, catalog: GiftCatalog) -> None:
        """Offer *catalog* from now on. Its version must be newer than the
        current one's: receipts name the version they were priced at."""
        if not isinstance(catalog, GiftCatalog):
            raise InvalidTypeError(f"catalog must be a GiftCatalog, got {catalog!r}")
        if catalog.version <= self._catalog.version:
            raise ValidationError(
                f"the catalog's version {catalog.version} is not newer than the current "
                f"{self._catalog.version}"
            )
        self._catalog = catalog

    @property
    def revenue_share(self) -> RevenueShare:
        """What creators earn of the coins gifted to them."""
        return self._gifting.share

    @property
    def gift_policy(self) -> GiftPolicy:
        """Who may send gifts to whom."""
        return self._gifting.policy

    @property
    def conversion_rate(self) -> ConversionRate | None:
        """What creators' earnings are worth in money, if this economy converts them."""
        return self._earnings.rate

    @property
    def payout_policy(self) -> PayoutPolicy:
        """When and how creators are paid."""
        return self._earnings.policy

    def enroll_creator(self, idempotency_key: str, *, creator: str, region: str) -> CreatorProfile:
        """Let *creator*, who lives in *region*, receive gifts. They also
        need an age attestation (:meth:`attest_age`) unless the gift policy
        says otherwise."""
        check_identifier(creator, "creator")
        check_region(region)
        return self._change_creator(
            idempotency_key,
            creator,
            "enroll-creator",
            {"region": region},
            lambda profile: attrs.evolve(profile, receiving=True, region=region),
        )

    def set_receiving(
        self, idempotency_key: str, *, creator: str, receiving: bool
    ) -> CreatorProfile:
        """Turn *creator*'s receiving of gifts on or off."""
        check_identifier(creator, "creator")
        if type(receiving) is not bool:
            raise InvalidTypeError(f"receiving is a bool, got {receiving!r}")
        return self._change_creator(
            idempotency_key,
            creator,
            "set-receiving",
            {"receiving": receiving},
            lambda profile: attrs.evolve(profile, receiving=receiving),
        )

    def suspend_creator(
        self, idempotency_key: str, *, creator: str, reason: str | None
    ) -> CreatorProfile:
        """Suspend *creator* (they receive no gifts while suspended), saying
        why; ``reason=None`` puts them back in good standing."""
        check_identifier(creator, "creator")
        if reason is not None:
            reason = text(reason, "reason")
        return self._change_creator(
            idempotency_key,
            creator,
            "suspend-creator",
            {"reason": reason},
            lambda profile: attrs.evolve(profile, suspended=reason),
        )

    def set_creator_rate(
        self,
        idempotency_key: str,
        *,
        creator: str,
        rate: Rate | str,
        effective: datetime | None = None,
    ) -> CreatorProfile:
        """Give *creator* their own revenue share (a tier, an agency
        contract) from *effective* (default: now), kept in the store: while
        it is in effect it wins over the economy's
        :class:`~coinecon.creators.share.RevenueShare`. Gifts already sent
        keep the rate they were split at.

        Raises:
            InvalidRateError: a rate outside 0 to 100 %.
            NaiveDatetimeError: an *effective* without a time zone.
        """
        check_identifier(creator, "creator")
        share = revenue_share_rate(rate)
        when = None if effective is None else as_utc(effective, "effective")
        return self._change_creator(
            idempotency_key,
            creator,
            "set-creator-rate",
            # The request as asked: a retry of "from now" is the same request.
            {
                "rate": f"{share.numerator}/{share.denominator}",
                "effective": None if when is None else when.isoformat(),
            },
            lambda profile: profile.with_rate(share, self._now() if when is None else when),
        )

    def creator(self, creator: str) -> CreatorProfile:
        """What the economy knows of *creator* (not receiving, if nothing),
        with the carry, gift count and held earnings of all their tallies
        added up (see :attr:`GiftPolicy.tallies <coinecon.gifts.GiftPolicy.tallies>`)."""
        check_identifier(creator, "creator")
        tallies = self._gifting.policy.tallies
        return self._read(
            lambda uow: creator_profiles.totals(uow, creator_profiles.load(uow, creator), tallies)
        )

    def earnings(self, creator: str) -> UnitAmount:
        """*creator*'s earnings not converted yet, in :attr:`creator_unit`."""
        check_identifier(creator, "creator")
        account = AccountKey.earnings(creator, self.creator_unit)
        return UnitAmount(self.wallets.balances([account])[account], self.creator_unit)

    def send_gift(
        self,
        sender: str,
        creator: str,
        gift: str | Gift,
        quantity: int = 1,
        *,
        context: str,
        region: str,
        idempotency_key: str,
    ) -> GiftReceipt:
        """Send *quantity* of *gift* from *sender* to *creator*, during
        *context* (the host's stream or chat id), the sender being in
        *region*.

        One transaction takes the coins from the sender's lots (in the
        economy's spend order), moves the money they were bought for from
        deferred revenue to revenue, and credits the creator's share in
        :attr:`creator_unit` to their earnings, the fraction carried to their
        next gift (see :class:`~coinecon.creators.share.RevenueShare`). The
        ``gift.sent`` event (the receipt) and ``gift.received`` (for the
        creator's stream) are stored with it.

        *gift* is an id in the current :attr:`catalog`, or a
        :class:`~coinecon.gifts.catalog.Gift` as the sender saw it (refused if the
        catalog changed it since). A replay with the same key and request
        returns the first receipt and sends nothing, even if the catalog
        changed in between.

        Raises:
            NotFoundError: an unknown gift.
            NotAvailableError: a gift not offered in *region* or not now, or
                changed since the sender saw it.
            NotEligibleError: a gift to oneself (unless the policy allows
                it), a sender too young for the gift or in a region without
                gifting, a creator who may not receive it (the error's
                ``holder`` and ``reason`` say who and why).
            InsufficientFunds: too few coins (:class:`~coinecon.errors.WalletFrozen`
                for a wallet in debt).
        """
        key = check_identifier(idempotency_key, "idempotency key")
        sender = check_identifier(sender, "sender")
        creator = check_identifier(creator, "creator")
        context = check_identifier(context, "context")
        check_region(region)
        if isinstance(gift, Gift):
            asked: dict[str, Any] = {"gift": gift.id, "price": gift.price}
        else:
            asked = {"gift": check_identifier(gift, "gift id")}
        self._check_quantity(quantity)
        digest = fingerprint(
            "send-gift",
            {
                **asked,
                "sender": sender,
                "creator": creator,
                "quantity": quantity,
                "context": context,
                "region": region,
            },
        )
        catalog = self._catalog

        def work(uow: UnitOfWork) -> GiftReceipt:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                return GiftReceipt.from_data(json.loads(stored), self.unit, self.creator_unit)
            chosen = catalog_gift(catalog, gift)
            send = Send(
                key, digest, sender, creator, chosen, catalog.version, quantity, context, region
            )
            now = self._now()
            sender_profile = self._ctx.profile(uow, sender)
            self._gifting.check_sender(send, sender_profile, now)
            receiver = creator_profiles.load(uow, creator)
            self._gifting.check_creator(receiver, self._ctx.profile(uow, creator), now)
            receipt = self._gifting.send(uow, send, sender_profile, receiver, now)
            uow.commit()
            return receipt

        return self._run(work)

    def buy_item(
        self,
        holder: str,
        item: str | StoreItem,
        quantity: int = 1,
        *,
        region: str,
        idempotency_key: str,
    ) -> ItemReceipt:
        """Buy *quantity* of the store *item* (an id in the current
        :attr:`catalog`, or a :class:`~coinecon.gifts.catalog.StoreItem` as
        the holder saw it) with *holder*'s coins, the holder being in *region*.

        One ``SPEND`` transaction takes the coins from the holder's lots and
        recognises the money they were bought for as revenue (only the
        platform earns from it); the holder's inventory counts the items
        (:meth:`inventory`), and ``item.bought`` is stored with it. A
        permanent item is bought once.

        Raises:
            NotFoundError: an unknown item.
            NotAvailableError: an item not offered in *region* or not now, or
                changed since the holder saw it.
            NotEligibleError: a region without the store, a holder too young
                for the item, a permanent item owned already (``"owned"``).
            InsufficientFunds: too few coins.
        """
        key = check_identifier(idempotency_key, "idempotency key")
        holder = check_identifier(holder, "holder")
        check_region(region)
        if isinstance(item, StoreItem):
            asked: dict[str, Any] = {"item": item.id, "price": item.price}
        else:
            asked = {"item": check_identifier(item, "item id")}
        self._check_quantity(quantity)
        digest = fingerprint(
            "buy-item", {**asked, "holder": holder, "quantity": quantity, "region": region}
        )
        catalog = self._catalog

        def work(uow: UnitOfWork) -> ItemReceipt:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                return ItemReceipt.from_data(json.loads(stored), self.unit)
            chosen = catalog_item(catalog, item)
            receipt = self._gifting.buy_item(
                uow,
                holder=holder,
                item=chosen,
                catalog_version=catalog.version,
                quantity=quantity,
                region=region,
                key=key,
                digest=digest,
                now=self._now(),
            )
            uow.commit()
            return receipt

        return self._run(work)

    def use_item(self, holder: str, item: str, *, context: str, idempotency_key: str) -> Inventory:
        """Use one of *holder*'s consumable *item* (a sticker sent in the
        chat *context*): it leaves their inventory, and ``item.used`` is
        stored. Returns the inventory as it stands after (a replay: as it
        stands now).

        Raises:
            NotAvailableError: the holder has none left.
            ValidationError: a permanent item (kept, not used up).
        """
        key = check_identifier(idempotency_key, "idempotency key")
        holder = check_identifier(holder, "holder")
        item = check_identifier(item, "item id")
        context = check_identifier(context, "context")
        digest = fingerprint("use-item", {"holder": holder, "item": item, "context": context})

        def work(uow: UnitOfWork) -> Inventory:
            if self._replayed(uow, key, digest) is not None:
                return inventory_records.load(uow, holder)
            now = self._now()
            inventory = inventory_records.load(uow, holder)
            if item in inventory.kept:
                raise ValidationError(f"{item!r} is kept once bought, not used up")
            if not inventory.count(item):
                raise NotAvailableError(f"{holder} has no {item!r} left")
            inventory = inventory_records.save(uow, inventory.changed(item, -1), now)
            self._ctx.announce(
                uow,
                "item.used",
                now,
                canonical_json(
                    {
                        "holder": holder,
                        "item": item,
                        "context": context,
                        "left": inventory.count(item),
                    }
                ),
            )
            uow.idempotency.add(IdempotencyRecord(key, digest, canonical_json({}), now))
            uow.commit()
            return inventory

        return self._run(work)

    def inventory(self, holder: str) -> Inventory:
        """The store items *holder* has."""
        check_identifier(holder, "holder")
        return self._read(lambda uow: inventory_records.load(uow, holder))

    def _check_quantity(self, quantity: object) -> None:
        most = self._gifting.policy.max_quantity
        if type(quantity) is not int or not 0 < quantity <= most:
            raise InvalidAmountError(f"quantity is an int from 1 to {most}, got {quantity!r}")

    def convert(
        self,
        creator: str,
        currency: str,
        *,
        units: int | None = None,
        idempotency_key: str,
    ) -> ConversionReceipt:
        """Convert *units* of *creator*'s earnings (default: all that are not
        held) into money the platform owes them in *currency*, at the
        :class:`~coinecon.creators.conversion.ConversionRate` in effect now.

        One ``CONVERSION`` transaction retires the units (earnings back to
        the unit's issuance account) and books their worth: the creators'
        share account debited (a cost of the platform), the creator's payable
        account credited (what is owed). Converting exactly (the rate's
        default), only the units that make whole minor units are converted;
        the receipt says how many are left.

        Raises:
            InsufficientFunds: more units than may be converted now (the
                payout policy's holding period holds a gift's earnings).
            InvalidAmountError: *units* not positive, or too few to make one
                minor unit.
            NotAvailableError: no conversion rate (into *currency*, now).
        """
        key = check_identifier(idempotency_key, "idempotency key")
        check_identifier(creator, "creator")
        money_in = Currency.of(currency)
        if units is not None and (type(units) is not int or units <= 0):
            raise InvalidAmountError(f"units is a positive int or None, got {units!r}")
        digest = fingerprint(
            "convert", {"creator": creator, "currency": money_in.code, "units": units}
        )

        def work(uow: UnitOfWork) -> ConversionReceipt:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                return ConversionReceipt.from_data(json.loads(stored), self.creator_unit)
            receipt = self._earnings.convert(
                uow,
                creator=creator,
                currency=money_in,
                units=units,
                key=key,
                digest=digest,
                now=self._now(),
            )
            uow.commit()
            return receipt

        return self._run(work)

    def payable(self, creator: str) -> dict[str, Money]:
        """What the platform owes *creator*, per currency (converted and not
        paid out yet), as positive amounts."""
        check_identifier(creator, "creator")

        def read(uow: UnitOfWork) -> dict[str, Money]:
            owed = {}
            for account, balance in uow.ledger.accounts_of(creator).items():
                if account.kind is AccountKind.CREATOR_PAYABLE and isinstance(
                    account.asset, Currency
                ):
                    owed[account.asset.code] = Money.from_minor(-balance, account.asset)
            return dict(sorted(owed.items()))

        return self._read(read)

    def request_payout(
        self, creator: str, amount: Money, *, destination: str, idempotency_key: str
    ) -> Payout:
        """Pay *amount* of what the platform owes *creator* to *destination*
        (the payout provider's opaque token), less the payout policy's fee.

        The payout is recorded and its money taken out of the creator's
        payable account in one transaction (into clearing, the fee into
        revenue); then the provider is asked. Sent or settled: the payout
        says so; failed: the money goes back (``FAILED``). If the provider
        raises or times out, the payout stays ``REQUESTED`` until an event
        or :meth:`reconcile_payouts` settles it; it is never sent twice.
        A replay with the same key and request returns the payout as it
        stands now.

        Raises:
            InsufficientFunds: more than is owed.
            LimitExceeded: below the policy's minimum (``"payout-minimum"``)
                or over its cap for the period (``"payout-cap"``, saying what
                remains).
            NotAvailableError: outside the payout schedule, or no payout
                provider.
            NotEligibleError: a suspended creator.
        """
        self._refuse_in_batch("request_payout")
        key = check_identifier(idempotency_key, "idempotency key")
        check_identifier(creator, "creator")
        to = check_identifier(destination, "destination")
        asked: object = amount
        if not isinstance(asked, Money) or not amount.is_positive:
            raise InvalidAmountError(f"a payout is positive Money, got {amount!r}")
        gateway = self._payout_gateway
        if gateway is None:
            raise NotAvailableError("this economy has no payout provider: pass payout_gateway=")
        digest = fingerprint(
            "request-payout",
            {
                "creator": creator,
                "amount": amount.minor,
                "currency": amount.currency.code,
                "destination": to,
            },
        )

        def record(uow: UnitOfWork) -> tuple[Payout, bool]:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                return self._earnings.load(uow, json.loads(stored)["payout"]), False
            payout = self._earnings.open_payout(
                uow,
                creator=creator,
                amount=amount,
                destination=to,
                key=key,
                digest=digest,
                now=self._now(),
            )
            uow.commit()
            return payout, True

        payout, recorded = self._run(record)
        if not recorded:
            return payout
        request = PayoutRequest(
            payout.id, creator, to, payout.net, f"payout {payout.id} to {creator}"
        )
        try:
            outcome = gateway.send(request)
        except Exception:  # noqa: BLE001 (any failure of the provider's SDK)
            return payout  # left for an event or reconcile_payouts()
        return self._answer_payout(payout.id, outcome)

    def handle_payout_event(self, event: PayoutEvent) -> PayoutEventOutcome:
        """Apply an event of the payout provider, once by its id: a payout
        sent, settled, failed (its money goes back to the creator's payable
        account) or reversed after it was sent (the same)."""
        if not isinstance(event, PayoutEvent):
            raise InvalidTypeError(f"event must be a PayoutEvent, got {event!r}")
        status = {
            PayoutEventType.SENT: PayoutStatus.SENT,
            PayoutEventType.SETTLED: PayoutStatus.SETTLED,
            PayoutEventType.FAILED: PayoutStatus.FAILED,
            PayoutEventType.REVERSED: PayoutStatus.REVERSED,
        }[event.type]

        def work(uow: UnitOfWork) -> PayoutEventOutcome:
            payout = self._earnings.load(uow, event.payout_id)
            if uow.records.get(PAYOUT_EVENT_KIND, event.id) is not None:
                return PayoutEventOutcome(event.id, "duplicate", payout)
            now = self._now()
            uow.records.add(
                Record.new(
                    PAYOUT_EVENT_KIND,
                    event.id,
                    payout.id,
                    now,
                    {
                        "type": event.type.value,
                        "occurred_at": event.occurred_at,
                        "reason": event.reason,
                    },
                )
            )
            changed = self._earnings.apply(uow, payout, status, now, reason=event.reason)
            uow.commit()
            if changed is None:
                return PayoutEventOutcome(event.id, "ignored", payout)
            return PayoutEventOutcome(event.id, "applied", changed)

        return self._run(work)

    def reconcile_payouts(
        self,
        payout_id: str | None = None,
        *,
        limit: int = 100,
        older_than: timedelta = timedelta(minutes=5),
    ) -> list[Payout]:
        """Ask the payout provider what became of payouts it has not
        settled (:meth:`PayoutGateway.lookup
        <coinecon.creators.payout_gateway.PayoutGateway.lookup>`) and apply
        its answer. One it never received fails, and its money goes back.

        Args:
            payout_id: only this payout; by default those still open, the
                oldest first.
            limit: the most payouts looked at (without *payout_id*).
            older_than: look only at payouts asked for at least this long
                ago; with *payout_id*, one younger that the provider does not
                know is left as it is (it may still be on its way).

        Returns:
            The payouts looked at, as they stand after.
        """
        self._refuse_in_batch("reconcile_payouts")
        gateway = self._payout_gateway
        if gateway is None:
            raise NotAvailableError("this economy has no payout provider: pass payout_gateway=")
        if payout_id is not None:
            ids = [check_identifier(payout_id, "payout id")]
        else:
            ids = self._open(payout_records.OPEN_KIND, limit, older_than)
        looked = []
        for one in ids:
            try:
                outcome = gateway.lookup(one)
            except Exception:  # noqa: BLE001 (any failure of the provider's SDK)
                looked.append(self.payout(one))
                continue
            looked.append(self._answer_payout(one, outcome, unknown_after=older_than))
        return looked

    def payout(self, payout_id: str) -> Payout:
        """The payout with this id."""
        check_identifier(payout_id, "payout id")
        return self._read(lambda uow: self._earnings.load(uow, payout_id))

    def payouts(self, creator: str, *, limit: int = 50) -> list[Payout]:
        """*creator*'s payouts, newest first."""
        return self._of_owner(payout_records.KIND, creator, limit, Payout.from_record)

    def _answer_payout(
        self,
        payout_id: str,
        outcome: PayoutOutcome | None,
        *,
        unknown_after: timedelta | None = None,
    ) -> Payout:
        """Apply the provider's answer about a payout. ``None`` is its send
        that raised (nothing to apply), or, from a lookup
        (*unknown_after* given), a payout it never received: that fails once
        it was asked for at least *unknown_after* ago (a younger one may
        still be on its way to the provider)."""
        if outcome is not None and not isinstance(outcome, PayoutOutcome):
            raise InvalidTypeError(f"the provider answered {outcome!r}, not a PayoutOutcome")

        def work(uow: UnitOfWork) -> Payout:
            payout = self._earnings.load(uow, payout_id)
            now = self._now()
            if outcome is None and (
                unknown_after is None or payout.created_at > now - unknown_after
            ):
                return payout
            changed = self._earnings.answer(uow, payout, outcome, now)
            uow.commit()
            return payout if changed is None else changed

        return self._run(work)

    def _change_creator(
        self,
        idempotency_key: str,
        creator: str,
        command: str,
        request: Mapping[str, Any],
        change: Callable[[CreatorProfile], CreatorProfile],
    ) -> CreatorProfile:
        return self._change(
            idempotency_key,
            command,
            {"creator": creator, **request},
            lambda uow: creator_profiles.load(uow, creator),
            creator_profiles.save,
            change,
        )

    # -- reading --------------------------------------------------------------------------

    def purchase_of(self, purchase_id: str) -> Purchase:
        """The purchase with this id (the provider's charge id)."""
        check_identifier(purchase_id, "purchase id")
        return self._read(lambda uow: self._ctx.purchase(uow, purchase_id))

    def purchases(self, holder: str, *, limit: int = 50) -> list[Purchase]:
        """*holder*'s purchases, newest first."""
        return self._of_owner(purchases.KIND, holder, limit, Purchase.from_record)

    def balance(self, holder: str, kind: AccountKind = AccountKind.WALLET) -> UnitAmount:
        """*holder*'s balance: by default the coins they can spend now
        (negative while in debt); with ``kind=AccountKind.EARNINGS``, a
        creator's earnings in :attr:`creator_unit` (as :meth:`earnings`).
        Money owed to a creator is in currencies: read :meth:`payable`.

        Raises:
            ValidationError: for any other kind of account.
        """
        if kind is AccountKind.WALLET:
            return self.wallets.balance(holder, self.unit)
        if kind is AccountKind.EARNINGS:
            return self.earnings(holder)
        if kind is AccountKind.CREATOR_PAYABLE:
            raise ValidationError(
                "money owed to a creator is per currency: read payable(creator) instead"
            )
        raise ValidationError(
            f"balance() answers for a holder's wallet or earnings, not {kind!r}: "
            "read wallets.balances() for the platform's accounts"
        )

    def statement(
        self,
        holder: str,
        out: TextOutput,
        *,
        file_format: FileFormat = ExportFormat.CSV,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Write *holder*'s statement over [*since*, *until*) to *out*: for
        each of their accounts (a viewer's wallet; a creator's earnings and
        the money owed to them, per currency), the opening balance, every
        posting (purchases, gifts sent or received with the sender, creator,
        gift and stream in their metadata, items bought, conversions, payouts
        with their fee, clawbacks) and the closing balance, in CSV or JSON
        Lines (see :func:`~coinecon.export.export_statement`). Returns the
        number of records written."""
        check_identifier(holder, "holder")
        return export_statement(
            self._store, out, file_format=file_format, holder=holder, since=since, until=until
        )

    def history(
        self,
        holder: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        kinds: Collection[TransactionKind] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> HistoryPage:
        """A page of *holder*'s wallet history, newest first: every
        purchase, spend, refund and adjustment, each with its transaction id
        (what :meth:`report` takes)."""
        return self.wallets.history(
            AccountKey.wallet(holder, self.unit),
            limit=limit,
            cursor=cursor,
            kinds=kinds,
            since=since,
            until=until,
        )

    def verify(self) -> VerificationReport:
        """Check the whole books, coins and money (see :meth:`Wallets.verify
        <coinecon.ledger.wallets.Wallets.verify>`)."""
        return self.wallets.verify()

    def deferred_revenue(self) -> dict[str, Money]:
        """The value of unspent purchased coins, per currency: the
        deferred-revenue accounts."""
        return self.wallets.deferred_revenue()

    def deliver_events(self, *, limit: int = 100) -> int:
        """Deliver up to *limit* outbox events to the economy's event sink;
        return how many (at least once: see :meth:`Wallets.deliver_events
        <coinecon.ledger.wallets.Wallets.deliver_events>`)."""
        if self._events is None:
            raise ValidationError("this economy has no event sink: pass events= to deliver them")
        return self.wallets.deliver_events(self._events, limit=limit)

    # -- the charge and its answers ----------------------------------------------------------

    def _charge(self, purchase: Purchase) -> Purchase:
        request = ChargeRequest(
            purchase.id,
            purchase.holder,
            purchase.total,
            purchase.payment_method,
            f"{purchase.total_coins.amount} {self.unit.code}",
        )
        try:
            outcome = self._gateway.charge(request)
        except Exception as error:  # noqa: BLE001 (any failure of the provider's call)
            reason = f"the provider's answer is unknown: {type(error).__name__}: {error}"[:500]

            def note(uow: UnitOfWork) -> Purchase:
                current = self._ctx.purchase(uow, purchase.id)
                if current.status is PurchaseStatus.CHARGING:
                    current = self._ctx.save(uow, attrs.evolve(current, reason=reason))
                    uow.commit()
                return current

            return self._run(note)
        return self._settle_charge(purchase.id, outcome, purchase)

    def _settle_charge(
        self, purchase_id: str, outcome: ChargeOutcome | None, known: Purchase | None = None
    ) -> Purchase:
        """Apply the provider's *outcome* to the purchase. *known* is the
        purchase as its caller recorded it: used rather than read again, its
        version guards the update, and if another command changed the
        purchase meanwhile the work runs again on a fresh read."""
        if outcome is not None and not isinstance(outcome, ChargeOutcome):
            raise InvalidTypeError(f"a provider answers with a ChargeOutcome, got {outcome!r}")
        if known is not None:
            try:
                return self._run(partial(self._settle, purchase_id, outcome, known))
            except StorageError:
                pass  # changed meanwhile (or a storage fault, which the fresh run meets again)
        return self._run(partial(self._settle, purchase_id, outcome, None))

    def _settle(
        self,
        purchase_id: str,
        outcome: ChargeOutcome | None,
        known: Purchase | None,
        uow: UnitOfWork,
    ) -> Purchase:
        purchase = known if known is not None else self._ctx.purchase(uow, purchase_id)
        if not purchase.status.open:
            if (
                outcome is None
                or outcome.status is not ChargeStatus.APPROVED
                or purchase.status is PurchaseStatus.COMPLETED
            ):
                return purchase  # an event settled it meanwhile
            # Failed (reconcile found no charge, or the provider said so),
            # yet the provider took the money after all: credit it.
            purchase = self._payments.complete(uow, purchase, outcome.reference, self._now())
            uow.commit()
            return purchase
        now = self._now()
        if outcome is None:
            if purchase.status is PurchaseStatus.PENDING:
                return purchase
            purchase = self._payments.fail(
                uow, purchase, PurchaseStatus.FAILED, "the provider never received it", now
            )
        elif outcome.status is ChargeStatus.APPROVED:
            purchase = self._payments.complete(uow, purchase, outcome.reference, now)
        elif outcome.status is ChargeStatus.DECLINED:
            purchase = self._payments.fail(
                uow, purchase, PurchaseStatus.DECLINED, outcome.reason or "declined", now
            )
        elif purchase.status is PurchaseStatus.CHARGING:
            purchase = self._ctx.save(
                uow,
                attrs.evolve(
                    purchase,
                    status=PurchaseStatus.PENDING,
                    reference=outcome.reference,
                    reason=None,
                    updated_at=now,
                ),
            )
        uow.commit()
        return purchase

    # -- cases --------------------------------------------------------------------------

    def _step_case(
        self,
        idempotency_key: str,
        case_id: str,
        staff: str,
        note: str,
        *,
        reverse: bool | None,
        action: str,
    ) -> Case:
        key = check_identifier(idempotency_key, "idempotency key")
        check_identifier(case_id, "case id")
        check_identifier(staff, "staff")
        said = text(note, "note" if reverse is None else "reason")
        digest = fingerprint(action, {"case": case_id, "staff": staff, "note": said})

        def work(uow: UnitOfWork) -> Case:
            if self._replayed(uow, key, digest) is not None:
                return self._ctx.case(uow, case_id)
            now = self._now()
            case = self._cases.step(uow, case_id, staff, said, action, reverse, key, now)
            return self._case_done(uow, case, key, digest, now)

        return self._run(work)

    def _case_done(self, uow: UnitOfWork, case: Case, key: str, digest: str, now: datetime) -> Case:
        """Remember the command that moved *case*, announce where it stands, commit."""
        uow.idempotency.add(IdempotencyRecord(key, digest, canonical_json({"case": case.id}), now))
        self._ctx.announce(
            uow, f"case.{case.status.value}", now, canonical_json(case.to_data() | {"id": case.id})
        )
        uow.commit()
        return case

    # -- helpers ----------------------------------------------------------------------------

    def _change_profile(
        self,
        idempotency_key: str,
        holder: str,
        command: str,
        request: Mapping[str, Any],
        change: Callable[[HolderProfile], HolderProfile],
    ) -> HolderProfile:
        return self._change(
            idempotency_key,
            command,
            {"holder": holder, **request},
            lambda uow: self._ctx.profile(uow, holder),
            self._ctx.save_profile,
            change,
        )

    def _change(
        self,
        idempotency_key: str,
        command: str,
        request: Mapping[str, Any],
        load: Callable[[UnitOfWork], _P],
        save: Callable[[UnitOfWork, _P, datetime], _P],
        change: Callable[[_P], _P],
    ) -> _P:
        """Change a profile (*load*, *change*, *save*) as the command
        *command* asking *request*, once per idempotency key."""
        key = check_identifier(idempotency_key, "idempotency key")
        digest = fingerprint(command, request)

        def work(uow: UnitOfWork) -> _P:
            if self._replayed(uow, key, digest) is not None:
                return load(uow)
            now = self._now()
            profile = save(uow, change(load(uow)), now)
            uow.idempotency.add(IdempotencyRecord(key, digest, canonical_json({}), now))
            uow.commit()
            return profile

        return self._run(work)

    def _open(self, kind: str, limit: int, older_than: timedelta) -> list[str]:
        """The ids of the open records of *kind* (purchases or payouts
        waiting for their provider) made at least *older_than* ago, the
        oldest first, at most *limit*."""
        if type(limit) is not int or limit < 1:
            raise InvalidAmountError(f"limit must be a positive int, got {limit!r}")
        grace: object = older_than
        if not isinstance(grace, timedelta) or grace < timedelta(0):
            raise ValidationError(f"older_than must be a timedelta of 0 or more, got {grace!r}")
        # Recorded at or before now - older_than: the bound is exclusive.
        try:
            until = self._now() - older_than + timedelta(microseconds=1)
        except OverflowError:
            raise ValidationError(f"older_than {older_than} reaches before year 1") from None
        return self._read(
            lambda uow: [
                r.id
                for r in uow.records.of_owner(
                    kind, PLATFORM, until=until, limit=limit, oldest_first=True
                )
            ]
        )

    def _of_owner(
        self, kind: str, holder: str, limit: int, parse: Callable[[Record], _T]
    ) -> list[_T]:
        """*holder*'s records of *kind*, newest first, parsed."""
        check_identifier(holder, "holder")
        return self._read(
            lambda uow: [parse(r) for r in uow.records.of_owner(kind, holder, limit=limit)]
        )

    @staticmethod
    def _replayed(uow: UnitOfWork, key: str, digest: str) -> str | None:
        record = uow.idempotency.get(key)
        return None if record is None else record.replay(digest)

    def _now(self) -> datetime:
        return as_utc(self._clock.now(), "clock time")

    def _run(self, work: Callable[[UnitOfWork], _R]) -> _R:
        run = self._store_run
        if run is None:
            with self._store.unit_of_work() as uow:
                return work(uow)
        result: _R = run(work)
        return result

    def _read(self, work: Callable[[UnitOfWork], _R]) -> _R:
        with self._store.unit_of_work() as uow:
            return work(uow)


def _gift_settings(
    coins: Unit,
    catalog: object,
    creator_unit: object,
    revenue_share: object,
    gift_policy: object,
) -> tuple[Unit, RevenueShare, GiftPolicy]:
    """The economy's gift settings, checked, with their defaults."""
    if catalog is not None and not isinstance(catalog, GiftCatalog):
        raise InvalidTypeError(f"catalog must be a GiftCatalog, got {catalog!r}")
    earned_in = DIAMOND if creator_unit is None else creator_unit
    if not isinstance(earned_in, Unit):
        raise InvalidTypeError(f"creator_unit must be a Unit, got {creator_unit!r}")
    if earned_in.code == coins.code:
        raise ValidationError(
            f"creator_unit must differ from the coins' unit {coins.code}: "
            "earnings are never spendable as coins"
        )
    share = RevenueShare(Rate("50%")) if revenue_share is None else revenue_share
    if not isinstance(share, RevenueShare):
        raise InvalidTypeError(f"revenue_share must be a RevenueShare, got {revenue_share!r}")
    policy = GiftPolicy() if gift_policy is None else gift_policy
    if not isinstance(policy, GiftPolicy):
        raise InvalidTypeError(f"gift_policy must be a GiftPolicy, got {gift_policy!r}")
    return earned_in, share, policy


def _payout_settings(
    conversion_rate: object, payout_policy: object, payout_gateway: object
) -> PayoutPolicy:
    """The economy's payout policy, its settings checked."""
    if conversion_rate is not None and not isinstance(conversion_rate, ConversionRate):
        raise InvalidTypeError(f"conversion_rate must be a ConversionRate, got {conversion_rate!r}")
    policy = PayoutPolicy() if payout_policy is None else payout_policy
    if not isinstance(policy, PayoutPolicy):
        raise InvalidTypeError(f"payout_policy must be a PayoutPolicy, got {payout_policy!r}")
    if payout_gateway is not None and not isinstance(payout_gateway, PayoutGateway):
        raise InvalidTypeError(
            f"payout_gateway must have send() and lookup(), got {payout_gateway!r}"
        )
    return policy
