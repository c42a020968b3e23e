"""CoinEconomy: the one service a host talks to.

It joins the price book, the wallets, a payment provider and the host's
event sink: a buyer gets a quote, pays through the provider, and receives
the coins and bonus coins in one transaction with the money side of the
books; the provider's later events (settled, failed, refunded, charged back,
chargeback reversed) are handled once each, in any order. Staff adjust
wallets with a reason and report on disputes. Everything runs on any
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

import json
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, final

import attrs
from dateutil.relativedelta import relativedelta

from coinecon import _checks
from coinecon._ids import check_identifier, random_id
from coinecon.clock import Clock, SystemClock, as_utc
from coinecon.errors import (
    IdempotencyConflict,
    InvalidAmountError,
    InvalidQuoteError,
    InvalidTypeError,
    LimitExceeded,
    NotAvailableError,
    NotEligibleError,
    NotFoundError,
    QuoteExpiredError,
    QuoteMismatchError,
    RefundTooLargeError,
    StorageError,
    ValidationError,
)
from coinecon.ledger import entries
from coinecon.ledger.events import EventSink, OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord, canonical_json, fingerprint
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Cause,
    MetadataValue,
    Posting,
    Transaction,
    TransactionKind,
    metadata_pairs,
)
from coinecon.ledger.lots import LotOrigin, SpendOrder
from coinecon.ledger.verification import VerificationReport
from coinecon.ledger.wallets import HistoryPage, Wallets
from coinecon.money.money import Money
from coinecon.money.units import Unit, UnitAmount
from coinecon.ports import Store, UnitOfWork
from coinecon.pricing import PriceBook, Quote
from coinecon.recharge import books, disputes, profiles, purchases
from coinecon.recharge.disputes import Case, CaseEntry, CaseStatus
from coinecon.recharge.eligibility import AgeAttestation, EligibilityPolicy, ParentalConsent
from coinecon.recharge.gateway import (
    ChargeOutcome,
    ChargeRequest,
    ChargeStatus,
    PaymentEvent,
    PaymentEventType,
    PaymentGateway,
)
from coinecon.recharge.limits import Budget, LimitPolicy
from coinecon.recharge.profiles import HolderProfile
from coinecon.recharge.purchases import Purchase, PurchaseStatus, Reversal
from coinecon.records import Record
from coinecon.regions import region as check_region

__all__ = ["AdjustmentResult", "CoinEconomy", "EventOutcome"]

_R = TypeVar("_R")
_EVENT_KIND = "payment-event"
_HOUR = timedelta(hours=1)
_MANY = 10_000  # records read at most for one limit (purchases in a budget's period)
_TAKE_BACK = {
    PaymentEventType.REFUNDED: ("refund", TransactionKind.REFUND),
    PaymentEventType.CHARGED_BACK: ("chargeback", TransactionKind.CHARGEBACK),
    PaymentEventType.FAILED: ("refund", TransactionKind.REFUND),
}


@final
@attrs.frozen
class EventOutcome:
    """What :meth:`CoinEconomy.handle_payment_event` did with an event.

    Attributes:
        event_id: the provider's event id.
        status: ``"applied"``; ``"held"`` (it came before what it follows,
            and is applied when that arrives); ``"ignored"`` (nothing to do:
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
class AdjustmentResult:
    """What :meth:`CoinEconomy.adjust` recorded.

    Attributes:
        transaction_id: the adjustment's transaction.
        balance: the wallet's balance after.
    """

    transaction_id: str
    balance: UnitAmount


class CoinEconomy:
    """The recharge half of a coin economy, on any store and payment provider.

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
        run = getattr(store, "run", None)
        self._store_run: Callable[[Callable[[UnitOfWork], Any]], Any] | None = (
            run if callable(run) else None
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
        return self.price_book.quote(
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
        key = check_identifier(idempotency_key, "idempotency key")
        if not isinstance(quote, Quote):
            raise InvalidTypeError(f"quote must be a Quote, got {quote!r}")
        method = check_identifier(payment_method, "payment method")
        digest = fingerprint("purchase", {"quote": quote.fingerprint, "payment_method": method})

        def replay(uow: UnitOfWork) -> Purchase | None:
            stored = self._replayed(uow, key, digest)
            return None if stored is None else self._purchase(uow, json.loads(stored)["purchase"])

        replayed = self._read(replay)
        if replayed is not None:
            return replayed
        now = self._now()
        if quote.coins.unit != self.unit:
            raise InvalidQuoteError(
                f"the quote sells {quote.coins.unit.code}, not {self.unit.code}"
            )
        if not quote.is_valid_at(now):
            raise QuoteExpiredError(
                f"the quote was valid from {quote.created_at.isoformat()} until "
                f"{quote.expires_at.isoformat()}, not at {now.isoformat()}: ask for a new one"
            )
        profile = self.profile(quote.account)
        self._check_quote(quote, profile)
        self._check_eligible(profile, quote.region, now)

        def record(uow: UnitOfWork) -> Purchase:
            again = replay(uow)  # a twin request may have won the race
            if again is not None:
                return again
            self._check_limits(uow, quote, self._profile(uow, quote.account), now)
            purchase = Purchase.of_quote(self._new_id(), quote, method, key, now)
            if not purchase.value.is_positive:
                raise InvalidQuoteError(
                    f"the quote charges {quote.total} of which the coins are worth nothing"
                )
            uow.records.add(purchase.record())
            uow.records.add(Record.new(purchases.OPEN_KIND, purchase.id, PLATFORM, now, {}))
            uow.idempotency.add(
                IdempotencyRecord(key, digest, canonical_json({"purchase": purchase.id}), now)
            )
            uow.commit()
            return purchase

        purchase = self._run(record)
        if purchase.status is not PurchaseStatus.CHARGING or purchase.idempotency_key != key:
            return purchase
        return self._charge(purchase)

    def reconcile(self, purchase_id: str | None = None, *, limit: int = 100) -> list[Purchase]:
        """Settle purchases still waiting for their provider: ask it what
        became of each (:meth:`PaymentGateway.lookup
        <coinecon.recharge.gateway.PaymentGateway.lookup>`) and apply the
        answer, as the charge's own answer would have been. A charge the
        provider never received fails (``FAILED``); one it cannot answer
        about now is left for later.

        Args:
            purchase_id: only this purchase; by default those waiting.
            limit: the most purchases looked at (without *purchase_id*).

        Returns:
            The purchases looked at, as they stand after.
        """
        if purchase_id is not None:
            ids = [check_identifier(purchase_id, "purchase id")]
        else:
            if type(limit) is not int or limit < 1:
                raise InvalidAmountError(f"limit must be a positive int, got {limit!r}")
            ids = self._read(
                lambda uow: [
                    r.id for r in uow.records.of_owner(purchases.OPEN_KIND, PLATFORM, limit=limit)
                ]
            )
        settled = []
        for charge_id in ids:
            purchase = self.purchase_of(charge_id)
            if purchase.status.open:
                try:
                    outcome = self._gateway.lookup(charge_id)
                except Exception:  # noqa: BLE001 (the provider's failure: try again later)
                    settled.append(purchase)
                    continue
                purchase = self._settle_charge(charge_id, outcome)
            settled.append(purchase)
        return settled

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
        settles it. A chargeback's reversal restores what the chargeback
        took.

        Raises:
            NotFoundError: no purchase has the event's charge id.
            RefundTooLargeError: it would give back more than the payment
                took (nothing is written: the event can be sent again once
                corrected).
        """
        if not isinstance(event, PaymentEvent):
            raise InvalidTypeError(f"event must be a PaymentEvent, got {event!r}")
        content = _event_data(event)

        def work(uow: UnitOfWork) -> EventOutcome:
            seen = uow.records.get(_EVENT_KIND, event.id)
            purchase = self._purchase(uow, event.charge_id)
            if seen is not None:
                data = seen.data
                if data["event"] != content:
                    raise IdempotencyConflict(event.id)
                return EventOutcome(event.id, "duplicate", purchase, data.get("transaction_id"))
            now = self._now()
            status, purchase, transaction_id = self._apply(uow, purchase, event, now)
            uow.records.add(
                Record.new(
                    _EVENT_KIND,
                    event.id,
                    event.charge_id,
                    now,
                    {"event": content, "status": status, "transaction_id": transaction_id},
                )
            )
            if status == "applied":
                purchase = self._release_held(uow, purchase, now)
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
        return self._read(lambda uow: self._profile(uow, holder))

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
            _text(reason, "reason")
        if case_id is not None:
            check_identifier(case_id, "case id")
        meta: dict[str, MetadataValue] = {"staff": staff, "reason": reason, "case": case_id}
        pairs = metadata_pairs(meta)
        digest = fingerprint("adjust", {"holder": holder, "coins": coins, **meta})
        wallet = AccountKey.wallet(holder, self.unit)

        def work(uow: UnitOfWork) -> AdjustmentResult:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                data = json.loads(stored)
                return AdjustmentResult(
                    data["transaction_id"], UnitAmount(data["balance"], self.unit)
                )
            if case_id is not None:
                case = self._case(uow, case_id)
                if case.holder != holder:
                    raise ValidationError(f"case {case_id} is {case.holder}'s, not {holder}'s")
            cause = Cause("case", case_id) if case_id is not None else Cause("adjustment", key)
            now = self._now()
            self.wallets.sweep_within(uow, wallet, now)
            if coins > 0:
                credited = entries.record_credit(
                    uow,
                    transaction_id=self._new_id(),
                    new_id=self._new_id,
                    kind=TransactionKind.ADJUSTMENT,
                    wallet=wallet,
                    grants=(entries.Grant(coins, LotOrigin.ADJUSTMENT),),
                    now=now,
                    key=key,
                    cause=cause,
                    metadata=pairs,
                )
                transaction, after = credited.transaction, credited.balances
            else:
                debited = entries.record_debit(
                    uow,
                    transaction_id=self._new_id(),
                    kind=TransactionKind.ADJUSTMENT,
                    wallet=wallet,
                    coins=-coins,
                    sink=AccountKey.issuance(self.unit),
                    order=self._order,
                    now=now,
                    key=key,
                    cause=cause,
                    metadata=pairs,
                    legs_for=lambda consumed: entries.recognition_legs(
                        consumed, AccountKind.REVENUE
                    ),
                )
                transaction, after = debited.transaction, debited.balances
            result = AdjustmentResult(transaction.id, UnitAmount(after[wallet], self.unit))
            text = canonical_json(
                {"transaction_id": result.transaction_id, "balance": after[wallet]}
            )
            uow.idempotency.add(IdempotencyRecord(key, digest, text, now))
            self._announce(
                uow, "coins.adjusted", now, text, transaction.id, event_id=transaction.id
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
        note = _text(description, "description")
        digest = fingerprint(
            "report", {"holder": holder, "transaction": transaction_id, "description": note}
        )

        def work(uow: UnitOfWork) -> Case:
            stored = self._replayed(uow, key, digest)
            if stored is not None:
                return self._case(uow, json.loads(stored)["case"])
            transaction = uow.ledger.get(transaction_id)
            if transaction is None:
                raise NotFoundError(f"no transaction {transaction_id!r}")
            if transaction.posting_for(AccountKey.wallet(holder, self.unit)) is None:
                raise ValidationError(
                    f"transaction {transaction_id} did not touch {holder}'s wallet"
                )
            now = self._now()
            case = Case(
                id=self._new_id(),
                holder=holder,
                transaction_id=transaction_id,
                status=CaseStatus.OPEN,
                opened_at=now,
                trail=(CaseEntry(now, holder, "reported", note),),
            )
            uow.records.add(Record.new(disputes.KIND, case.id, holder, now, case.to_data()))
            text = canonical_json({"case": case.id})
            uow.idempotency.add(IdempotencyRecord(key, digest, text, now))
            self._announce(
                uow, "case.opened", now, canonical_json(case.to_data() | {"id": case.id})
            )
            uow.commit()
            return case

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
        return self._read(lambda uow: self._case(uow, case_id))

    def cases(self, holder: str, *, limit: int = 50) -> list[Case]:
        """*holder*'s cases, newest first."""
        check_identifier(holder, "holder")
        return self._read(
            lambda uow: [
                Case.from_record(r)
                for r in uow.records.of_owner(disputes.KIND, holder, limit=limit)
            ]
        )

    # -- reading --------------------------------------------------------------------------

    def purchase_of(self, purchase_id: str) -> Purchase:
        """The purchase with this id (the provider's charge id)."""
        check_identifier(purchase_id, "purchase id")
        return self._read(lambda uow: self._purchase(uow, purchase_id))

    def purchases(self, holder: str, *, limit: int = 50) -> list[Purchase]:
        """*holder*'s purchases, newest first."""
        check_identifier(holder, "holder")
        return self._read(
            lambda uow: [
                Purchase.from_record(r)
                for r in uow.records.of_owner(purchases.KIND, holder, limit=limit)
            ]
        )

    def balance(self, holder: str) -> UnitAmount:
        """What *holder* can spend now (negative while in debt)."""
        return self.wallets.balance(holder, self.unit)

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
                current = self._purchase(uow, purchase.id)
                if current.status is PurchaseStatus.CHARGING:
                    current = self._save(uow, attrs.evolve(current, reason=reason))
                    uow.commit()
                return current

            return self._run(note)
        return self._settle_charge(purchase.id, outcome)

    def _settle_charge(self, purchase_id: str, outcome: ChargeOutcome | None) -> Purchase:
        if outcome is not None and not isinstance(outcome, ChargeOutcome):
            raise InvalidTypeError(f"a provider answers with a ChargeOutcome, got {outcome!r}")

        def work(uow: UnitOfWork) -> Purchase:
            purchase = self._purchase(uow, purchase_id)
            if not purchase.status.open:
                return purchase  # an event settled it meanwhile
            now = self._now()
            if outcome is None:
                if purchase.status is PurchaseStatus.PENDING:
                    return purchase
                purchase = self._fail(
                    uow, purchase, PurchaseStatus.FAILED, "the provider never received it", now
                )
            elif outcome.status is ChargeStatus.APPROVED:
                purchase = self._complete(uow, purchase, outcome.reference, now)
            elif outcome.status is ChargeStatus.DECLINED:
                purchase = self._fail(
                    uow, purchase, PurchaseStatus.DECLINED, outcome.reason or "declined", now
                )
            elif purchase.status is PurchaseStatus.CHARGING:
                purchase = self._save(
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

        return self._run(work)

    def _complete(
        self, uow: UnitOfWork, purchase: Purchase, reference: str | None, now: datetime
    ) -> Purchase:
        """Credit *purchase*'s coins with its money, in one transaction."""
        wallet = AccountKey.wallet(purchase.holder, self.unit)
        self.wallets.sweep_within(uow, wallet, now)
        grants = [entries.Grant(purchase.coins.amount, LotOrigin.PURCHASE, purchase.value)]
        if purchase.bonus_coins.amount:
            expiry = None if self._bonus_expiry is None else now + self._bonus_expiry
            grants.append(entries.Grant(purchase.bonus_coins.amount, LotOrigin.BONUS, None, expiry))
        metadata: dict[str, MetadataValue] = {"payment_method": purchase.payment_method}
        if reference is not None:
            metadata["reference"] = reference
        credited = entries.record_credit(
            uow,
            transaction_id=self._new_id(),
            new_id=self._new_id,
            kind=TransactionKind.PURCHASE,
            wallet=wallet,
            grants=grants,
            now=now,
            key=f"purchase:{purchase.id}",
            cause=Cause("purchase", purchase.id),
            metadata=metadata_pairs(metadata),
            also=books.purchase_legs(
                purchase.total, purchase.tax, purchase.buyer_fees, purchase.platform_costs
            ),
        )
        transaction = credited.transaction
        purchase = self._save(
            uow,
            attrs.evolve(
                purchase,
                status=PurchaseStatus.COMPLETED,
                reason=None,
                reference=reference if reference is not None else purchase.reference,
                transaction_id=transaction.id,
                lot_ids=tuple(lot.id for lot in credited.lots),
                updated_at=now,
            ),
        )
        uow.records.remove(purchases.OPEN_KIND, purchase.id)
        stored = uow.records.get(profiles.KIND, purchase.holder)
        profile = self._profile(uow, purchase.holder).bought(purchase.promotions)
        self._save_profile(uow, profile, stored, now)
        balance = credited.balances[wallet]
        self._announce(
            uow,
            "coins.credited",
            now,
            canonical_json(
                {
                    "holder": purchase.holder,
                    "unit": self.unit.code,
                    "coins": purchase.total_coins.amount,
                    "balance": balance,
                    "purchase": purchase.id,
                }
            ),
            transaction.id,
            event_id=transaction.id,
        )
        self._announce(uow, "purchase.completed", now, _purchase_event(purchase), transaction.id)
        self._note_limits_reached(uow, purchase, profile, now)
        return purchase

    def _fail(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        status: PurchaseStatus,
        reason: str,
        now: datetime,
    ) -> Purchase:
        purchase = self._save(
            uow, attrs.evolve(purchase, status=status, reason=reason, updated_at=now)
        )
        uow.records.remove(purchases.OPEN_KIND, purchase.id)
        self._announce(uow, "purchase.failed", now, _purchase_event(purchase))
        for record in self._held(uow, purchase.id):  # nothing was taken: nothing to give back
            uow.records.update(record.changed(record.data | {"status": "ignored"}))
        return purchase

    # -- provider events ----------------------------------------------------------------

    def _apply(
        self, uow: UnitOfWork, purchase: Purchase, event: PaymentEvent, now: datetime
    ) -> tuple[str, Purchase, str | None]:
        """Apply *event* to *purchase*: its status, the purchase after, and
        the transaction it recorded."""
        kind = event.type
        status = purchase.status
        if kind is PaymentEventType.SETTLED:
            if status is PurchaseStatus.COMPLETED:
                return "ignored", purchase, None
            purchase = self._complete(uow, purchase, purchase.reference, now)
            return "applied", purchase, purchase.transaction_id
        if status.open:
            if kind is PaymentEventType.FAILED:
                purchase = self._fail(
                    uow, purchase, PurchaseStatus.FAILED, event.reason or "failed", now
                )
                return "applied", purchase, None
            return "held", purchase, None
        if status is not PurchaseStatus.COMPLETED:
            return "ignored", purchase, None  # declined or failed: nothing was taken
        if kind is PaymentEventType.CHARGEBACK_REVERSED:
            assert event.amount is not None  # noqa: S101 (checked by PaymentEvent)
            chargeback = next(
                (
                    r
                    for r in purchase.reversals
                    if r.kind == "chargeback" and r.reversed_by is None and r.amount == event.amount
                ),
                None,
            )
            if chargeback is None:
                return "held", purchase, None  # its chargeback has not come yet
            purchase, transaction_id = self._restore(uow, purchase, chargeback, event, now)
            return "applied", purchase, transaction_id
        amount = event.amount
        left = purchase.total - purchase.returned
        if amount is None:  # a payment that failed after all: all of what is left
            amount = left
            if not amount.is_positive:
                return "ignored", purchase, None
        if amount.currency != purchase.total.currency:
            raise ValidationError(
                f"event {event.id} is in {amount.currency.code}; the payment was in "
                f"{purchase.total.currency.code}"
            )
        if amount > left:
            raise RefundTooLargeError(
                f"event {event.id} gives back {amount}, but only {left} of the payment of "
                f"{purchase.total} is left to give back",
                allowed=left,
            )
        purchase, transaction_id = self._take_back(uow, purchase, event, amount, now)
        return "applied", purchase, transaction_id

    def _take_back(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        event: PaymentEvent,
        amount: Money,
        now: datetime,
    ) -> tuple[Purchase, str]:
        """Give *amount* back for *purchase*: its coins in proportion, and
        the money."""
        label, kind = _TAKE_BACK[event.type]
        total, before = purchase.total.minor, purchase.returned.minor
        coins = books.proportion(purchase.total_coins.amount, before, amount.minor, total)
        tax = books.proportion(purchase.tax.minor, before, amount.minor, total)
        wallet = AccountKey.wallet(purchase.holder, self.unit)
        self.wallets.sweep_within(uow, wallet, now)
        metadata = metadata_pairs({"event": event.id, "reason": event.reason})
        cause = Cause("purchase", purchase.id)
        transaction_id = self._new_id()
        debt = 0
        if coins:
            debited = entries.record_debit(
                uow,
                transaction_id=transaction_id,
                kind=kind,
                wallet=wallet,
                coins=coins,
                sink=AccountKey.issuance(self.unit),
                order=self._order,
                now=now,
                key=f"{label}:{event.id}",
                cause=cause,
                metadata=metadata,
                first=purchase.lot_ids,
                legs_for=lambda consumed: books.take_back_legs(amount, tax, consumed),
                allow_debt=True,
            )
            debt = debited.debt
            balance: int | None = debited.balances[wallet]
        else:  # too little money for a whole coin: the money alone
            transaction = Transaction(
                id=transaction_id,
                kind=kind,
                postings=entries.merge_legs(books.take_back_legs(amount, tax, ())),
                occurred_at=now,
                idempotency_key=f"{label}:{event.id}",
                cause=cause,
                metadata=metadata,
            )
            entries.record(uow, transaction)
            balance = None
        reversal = Reversal(event.id, label, amount, coins, debt, transaction_id, now)
        purchase = self._save(
            uow, attrs.evolve(purchase, reversals=(*purchase.reversals, reversal), updated_at=now)
        )
        self._announce(
            uow,
            "payment.reversed",
            now,
            canonical_json(
                {
                    "purchase": purchase.id,
                    "holder": purchase.holder,
                    "kind": label,
                    "amount": amount.minor,
                    "currency": amount.currency.code,
                    "coins": coins,
                    "debt": debt,
                }
            ),
            transaction_id,
            event_id=transaction_id,
        )
        if balance is not None and balance < 0:
            self._announce(
                uow,
                "wallet.frozen",
                now,
                canonical_json(
                    {"holder": purchase.holder, "unit": self.unit.code, "debt": -balance}
                ),
                transaction_id,
            )
        return purchase, transaction_id

    def _restore(
        self,
        uow: UnitOfWork,
        purchase: Purchase,
        chargeback: Reversal,
        event: PaymentEvent,
        now: datetime,
    ) -> tuple[Purchase, str]:
        """Give back what *chargeback* took: its money legs undone, and the
        coins, in lots like those it took from (its debt part first, which
        cancels the debt it made if that is still owed)."""
        taken = uow.ledger.get(chargeback.transaction_id)
        if taken is None:
            raise StorageError(f"chargeback transaction {chargeback.transaction_id} is missing")
        wallet = AccountKey.wallet(purchase.holder, self.unit)
        self.wallets.sweep_within(uow, wallet, now)
        grants: list[entries.Grant] = []
        if chargeback.debt:
            grants.append(entries.Grant(chargeback.debt, LotOrigin.ADJUSTMENT))
        for consumption in uow.lots.consumption(taken.id):
            lot = uow.lots.get(consumption.lot_id)
            if lot is None:
                raise StorageError(f"lot {consumption.lot_id} is missing")
            value = (
                consumption.value
                if consumption.value is not None and consumption.value.minor
                else None
            )
            expiry = lot.expires_at if lot.expires_at is not None and lot.expires_at > now else None
            grants.append(entries.Grant(consumption.amount, lot.origin, value, expiry))
        legs = _undone(taken, wallet)
        for grant in grants:  # the credit posts these itself for the lots it makes
            if grant.value is not None:
                legs.append(
                    Posting(
                        entries.money_account(AccountKind.CLEARING, grant.value.currency),
                        -grant.value.minor,
                    )
                )
                legs.append(
                    Posting(
                        entries.money_account(AccountKind.DEFERRED_REVENUE, grant.value.currency),
                        grant.value.minor,
                    )
                )
        legs.append(Posting(AccountKey.issuance(self.unit), chargeback.coins))
        credited = entries.record_credit(
            uow,
            transaction_id=self._new_id(),
            new_id=self._new_id,
            kind=TransactionKind.REVERSAL,
            wallet=wallet,
            grants=grants,
            now=now,
            key=f"chargeback-reversal:{event.id}",
            cause=Cause("purchase", purchase.id),
            metadata=metadata_pairs({"event": event.id, "reverses": taken.id}),
            also=legs,
        )
        transaction_id = credited.transaction.id
        restored = Reversal(
            event.id,
            "chargeback-reversal",
            event.amount or chargeback.amount,
            chargeback.coins,
            0,
            transaction_id,
            now,
        )
        reversals = tuple(
            attrs.evolve(r, reversed_by=event.id) if r is chargeback else r
            for r in purchase.reversals
        )
        purchase = self._save(
            uow, attrs.evolve(purchase, reversals=(*reversals, restored), updated_at=now)
        )
        self._announce(
            uow,
            "payment.reversed",
            now,
            canonical_json(
                {
                    "purchase": purchase.id,
                    "holder": purchase.holder,
                    "kind": "chargeback-reversal",
                    "amount": restored.amount.minor,
                    "currency": restored.amount.currency.code,
                    "coins": chargeback.coins,
                    "debt": 0,
                }
            ),
            transaction_id,
            event_id=transaction_id,
        )
        return purchase, transaction_id

    def _held(self, uow: UnitOfWork, purchase_id: str) -> list[Record]:
        """The events held for *purchase_id*, in the order they occurred."""
        held = [
            r
            for r in uow.records.of_owner(_EVENT_KIND, purchase_id, limit=_MANY)
            if r.data["status"] == "held"
        ]
        return sorted(held, key=lambda r: (r.data["event"]["occurred_at"], r.id))

    def _release_held(self, uow: UnitOfWork, purchase: Purchase, now: datetime) -> Purchase:
        """Apply the events held for *purchase* that now can be, until none can."""
        progress = True
        while progress and purchase.status is PurchaseStatus.COMPLETED:
            progress = False
            for record in self._held(uow, purchase.id):
                event = _event_of(record.id, record.data["event"])
                status, purchase, transaction_id = self._apply(uow, purchase, event, now)
                if status != "held":
                    data = record.data | {"status": status, "transaction_id": transaction_id}
                    uow.records.update(record.changed(data))
                    progress = True
        return purchase

    # -- checks --------------------------------------------------------------------------

    def _check_quote(self, quote: Quote, profile: HolderProfile) -> None:
        """Refuse a quote the book would not give now for this buyer."""
        try:
            fresh = self.price_book.quote(
                account=quote.account,
                region=quote.region,
                storefront=quote.storefront,
                payment_method=quote.payment_method,
                now=quote.created_at,
                history=profile.history,
                validity=quote.expires_at - quote.created_at,
                coins=quote.coins.amount if quote.sku is None else None,
                sku=quote.sku,
            )
        except (NotAvailableError, ValidationError) as error:
            raise QuoteMismatchError(
                f"the quote is not one the price book gives: {error}"
            ) from None
        if fresh.fingerprint != quote.fingerprint:
            raise QuoteMismatchError(
                "the quote differs from what the price book gives for it (altered, or the "
                "buyer's history changed since it was made): ask for a new one"
            )

    def _check_eligible(self, profile: HolderProfile, region: str, now: datetime) -> None:
        policy = self.eligibility
        holder = profile.holder
        if policy.regions is not None and region not in policy.regions:
            raise NotEligibleError(
                f"coins are not sold in {region}", holder=holder, reason="region"
            )
        if not policy.require_age:
            return
        attestation = profile.attestation
        if attestation is not None and attestation.covers(region, now.date(), policy):
            return
        if profile.consent is not None:
            return
        if attestation is None:
            raise NotEligibleError(
                f"{holder}'s age is not attested, and no parental consent is recorded",
                holder=holder,
                reason="no-attestation",
            )
        if policy.majority(region) > attestation.majority:
            raise NotEligibleError(
                f"{holder}'s age was attested for {attestation.region} (of age at "
                f"{attestation.majority}); {region} needs {policy.majority(region)}",
                holder=holder,
                reason="attestation-region",
            )
        raise NotEligibleError(
            f"{holder} is not of age in {region} until {attestation.adult_from.isoformat()}, "
            "and no parental consent is recorded",
            holder=holder,
            reason="not-adult",
        )

    def _check_limits(
        self, uow: UnitOfWork, quote: Quote, profile: HolderProfile, now: datetime
    ) -> None:
        holder = quote.account
        limits = self.limits
        if limits.purchases_per_hour is not None:
            allowed = limits.purchases_per_hour
            recent = self._counted(uow, holder, now - _HOUR, allowed + 1)
            if len(recent) >= allowed:
                raise LimitExceeded(
                    f"{holder} made {len(recent)} purchases in the last hour; "
                    f"the limit is {allowed}",
                    limit="purchases-per-hour",
                    allowed=allowed,
                    remaining=0,
                )
        if limits.max_wallet_balance is not None:
            allowed = limits.max_wallet_balance
            balance = self.wallets_balance(uow, holder, now)
            if balance + quote.total_coins.amount > allowed:
                raise LimitExceeded(
                    f"{holder}'s wallet would hold {balance + quote.total_coins.amount} coins; "
                    f"it may hold at most {allowed}",
                    limit="wallet-balance",
                    allowed=allowed,
                    remaining=max(allowed - balance, 0),
                )
        budget = profile.budget
        if budget is not None and budget.amount.currency == quote.currency:
            spent = self._spent(uow, holder, budget, now)
            if spent + quote.total > budget.amount:
                raise LimitExceeded(
                    f"{holder} set a {budget.period.value} budget of {budget.amount} and spent "
                    f"{spent} of it; this purchase costs {quote.total}",
                    limit="budget",
                    allowed=budget.amount,
                    remaining=max(budget.amount - spent, budget.amount.currency.zero()),
                )

    def wallets_balance(self, uow: UnitOfWork, holder: str, now: datetime) -> int:
        """*holder*'s spendable coins in *uow*, lapsed lots left out."""
        wallet = AccountKey.wallet(holder, self.unit)
        stored = uow.ledger.balances([wallet])[wallet]
        return stored - sum(lot.remaining for lot in uow.lots.lapsed(wallet, now))

    def _counted(self, uow: UnitOfWork, holder: str, since: datetime, limit: int) -> list[Purchase]:
        """*holder*'s purchases since *since* that count against limits:
        charging, pending or completed."""
        return [
            p
            for p in map(
                Purchase.from_record,
                uow.records.of_owner(purchases.KIND, holder, since=since, limit=_MANY),
            )
            if p.status
            in (PurchaseStatus.CHARGING, PurchaseStatus.PENDING, PurchaseStatus.COMPLETED)
        ][:limit]

    def _spent(self, uow: UnitOfWork, holder: str, budget: Budget, now: datetime) -> Money:
        spent = budget.amount.currency.zero()
        for purchase in self._counted(uow, holder, budget.period_start(now), _MANY):
            if purchase.total.currency == budget.amount.currency:
                spent += purchase.total - purchase.returned
        return spent

    def _note_limits_reached(
        self, uow: UnitOfWork, purchase: Purchase, profile: HolderProfile, now: datetime
    ) -> None:
        """Announce ``limit.reached`` when this purchase used up the holder's
        budget or hourly purchases (the next one would be refused)."""
        reached: list[dict[str, Any]] = []
        budget = profile.budget
        if budget is not None and budget.amount.currency == purchase.total.currency:
            spent = self._spent(uow, purchase.holder, budget, now)
            if spent >= budget.amount:
                reached.append(
                    {
                        "limit": "budget",
                        "allowed": budget.amount.minor,
                        "currency": budget.amount.currency.code,
                    }
                )
        per_hour = self.limits.purchases_per_hour
        if (
            per_hour is not None
            and len(self._counted(uow, purchase.holder, now - _HOUR, per_hour)) >= per_hour
        ):
            reached.append({"limit": "purchases-per-hour", "allowed": per_hour})
        for limit in reached:
            self._announce(
                uow, "limit.reached", now, canonical_json({"holder": purchase.holder, **limit})
            )

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
        text = _text(note, "note" if reverse is None else "reason")
        digest = fingerprint(action, {"case": case_id, "staff": staff, "note": text})

        def work(uow: UnitOfWork) -> Case:
            if self._replayed(uow, key, digest) is not None:
                return self._case(uow, case_id)
            record = uow.records.get(disputes.KIND, case_id)
            if record is None:
                raise NotFoundError(f"no case {case_id!r}")
            case = Case.from_record(record)
            if case.status.closed:
                raise ValidationError(f"case {case_id} is {case.status.value} already")
            now = self._now()
            entry = CaseEntry(now, staff, action, text)
            if reverse is None:
                if case.status is not CaseStatus.OPEN:
                    raise ValidationError(f"case {case_id} is {case.status.value}, not open")
                case = case.step(CaseStatus.UNDER_REVIEW, entry)
            elif reverse:
                reversal = self._reverse(uow, case, staff, text, key, now)
                case = case.step(CaseStatus.REVERSED, entry, reversal)
            else:
                case = case.step(CaseStatus.REJECTED, entry)
            uow.records.update(record.changed(case.to_data()))
            uow.idempotency.add(
                IdempotencyRecord(key, digest, canonical_json({"case": case_id}), now)
            )
            self._announce(
                uow,
                f"case.{case.status.value}",
                now,
                canonical_json(case.to_data() | {"id": case.id}),
            )
            uow.commit()
            return case

        return self._run(work)

    def _reverse(
        self, uow: UnitOfWork, case: Case, staff: str, reason: str, key: str, now: datetime
    ) -> str:
        """Reverse the spend *case* disputes: its coins back in lots like
        those it took, and every other posting of it undone."""
        disputed = uow.ledger.get(case.transaction_id)
        if disputed is None:
            raise StorageError(f"transaction {case.transaction_id} is missing")
        wallet = AccountKey.wallet(case.holder, self.unit)
        leg = disputed.posting_for(wallet)
        if (
            disputed.kind in (TransactionKind.PURCHASE, TransactionKind.BONUS)
            or leg is None
            or leg.amount > 0
        ):
            raise ValidationError(
                f"transaction {disputed.id} is a {disputed.kind.value}: only what took coins "
                "from the wallet is reversed here (a purchase goes back through its payment "
                "provider, whose refund event takes its coins)"
            )
        if disputed.kind not in (
            TransactionKind.SPEND,
            TransactionKind.GIFT,
            TransactionKind.ADJUSTMENT,
        ):
            raise ValidationError(f"a {disputed.kind.value} transaction is not reversed by a case")
        self.wallets.sweep_within(uow, wallet, now)
        grants = []
        for consumption in uow.lots.consumption(disputed.id):
            lot = uow.lots.get(consumption.lot_id)
            if lot is None:
                raise StorageError(f"lot {consumption.lot_id} is missing")
            value = (
                consumption.value
                if consumption.value is not None and consumption.value.minor
                else None
            )
            expiry = lot.expires_at if lot.expires_at is not None and lot.expires_at > now else None
            grants.append(entries.Grant(consumption.amount, lot.origin, value, expiry))
        legs = _undone(disputed, wallet)
        for grant in grants:
            if grant.value is not None:
                legs.append(
                    Posting(
                        entries.money_account(AccountKind.CLEARING, grant.value.currency),
                        -grant.value.minor,
                    )
                )
                legs.append(
                    Posting(
                        entries.money_account(AccountKind.DEFERRED_REVENUE, grant.value.currency),
                        grant.value.minor,
                    )
                )
        legs.append(Posting(AccountKey.issuance(self.unit), -leg.amount))
        credited = entries.record_credit(
            uow,
            transaction_id=self._new_id(),
            new_id=self._new_id,
            kind=TransactionKind.REVERSAL,
            wallet=wallet,
            grants=grants,
            now=now,
            key=key,
            cause=Cause("case", case.id),
            metadata=metadata_pairs(
                {"staff": staff, "reason": reason, "case": case.id, "reverses": disputed.id}
            ),
            also=legs,
        )
        return credited.transaction.id

    # -- helpers ----------------------------------------------------------------------------

    def _change_profile(
        self,
        idempotency_key: str,
        holder: str,
        command: str,
        request: Mapping[str, Any],
        change: Callable[[HolderProfile], HolderProfile],
    ) -> HolderProfile:
        key = check_identifier(idempotency_key, "idempotency key")
        digest = fingerprint(command, {"holder": holder, **request})

        def work(uow: UnitOfWork) -> HolderProfile:
            if self._replayed(uow, key, digest) is not None:
                return self._profile(uow, holder)
            now = self._now()
            stored = uow.records.get(profiles.KIND, holder)
            profile = change(self._profile(uow, holder))
            self._save_profile(uow, profile, stored, now)
            uow.idempotency.add(IdempotencyRecord(key, digest, canonical_json({}), now))
            uow.commit()
            return profile

        return self._run(work)

    @staticmethod
    def _save_profile(
        uow: UnitOfWork, profile: HolderProfile, stored: Record | None, now: datetime
    ) -> None:
        record = profile.record(stored, now)
        if stored is None:
            uow.records.add(record)
        else:
            uow.records.update(record)

    @staticmethod
    def _profile(uow: UnitOfWork, holder: str) -> HolderProfile:
        record = uow.records.get(profiles.KIND, holder)
        return (
            HolderProfile(holder)
            if record is None
            else HolderProfile.from_data(holder, record.data)
        )

    @staticmethod
    def _purchase(uow: UnitOfWork, purchase_id: str) -> Purchase:
        record = uow.records.get(purchases.KIND, purchase_id)
        if record is None:
            raise NotFoundError(f"no purchase {purchase_id!r}")
        return Purchase.from_record(record)

    @staticmethod
    def _case(uow: UnitOfWork, case_id: str) -> Case:
        record = uow.records.get(disputes.KIND, case_id)
        if record is None:
            raise NotFoundError(f"no case {case_id!r}")
        return Case.from_record(record)

    @staticmethod
    def _save(uow: UnitOfWork, purchase: Purchase) -> Purchase:
        stored = uow.records.get(purchases.KIND, purchase.id)
        if stored is None:
            raise StorageError(f"purchase {purchase.id} is missing")
        uow.records.update(stored.changed(purchase.to_data()))
        return purchase

    @staticmethod
    def _replayed(uow: UnitOfWork, key: str, digest: str) -> str | None:
        record = uow.idempotency.get(key)
        return None if record is None else record.replay(digest)

    def _announce(
        self,
        uow: UnitOfWork,
        event_type: str,
        now: datetime,
        payload: str,
        transaction_id: str | None = None,
        *,
        event_id: str | None = None,
    ) -> None:
        uow.outbox.add(
            OutboxEvent(
                id=event_id if event_id is not None else self._new_id(),
                type=event_type,
                occurred_at=now,
                payload=payload,
                transaction_id=transaction_id,
            )
        )

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


def _undone(transaction: Transaction, wallet: AccountKey) -> list[Posting]:
    """Every posting of *transaction* but *wallet*'s, negated."""
    return [Posting(p.account, -p.amount) for p in transaction.postings if p.account != wallet]


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be non-empty text, got {value!r}")
    if len(value) > 1000:
        raise ValidationError(f"{what} holds at most 1000 characters, got {len(value)}")
    return value


def _event_data(event: PaymentEvent) -> dict[str, Any]:
    return {
        "type": event.type.value,
        "charge_id": event.charge_id,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "amount": None if event.amount is None else event.amount.minor,
        "currency": None if event.amount is None else event.amount.currency.code,
        "reason": event.reason,
    }


def _event_of(event_id: str, data: Mapping[str, Any]) -> PaymentEvent:
    amount = data["amount"]
    return PaymentEvent(
        id=event_id,
        type=PaymentEventType(data["type"]),
        charge_id=data["charge_id"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        amount=None if amount is None else Money.from_minor(amount, data["currency"]),
        reason=data["reason"],
    )


def _purchase_event(purchase: Purchase) -> str:
    return canonical_json(
        {
            "purchase": purchase.id,
            "holder": purchase.holder,
            "status": purchase.status.value,
            "reason": purchase.reason,
            "coins": purchase.coins.amount,
            "bonus_coins": purchase.bonus_coins.amount,
            "total": purchase.total.minor,
            "currency": purchase.total.currency.code,
        }
    )
