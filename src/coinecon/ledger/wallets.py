"""The wallet service: credit, spend and expire coins, read balances and history.

:class:`Wallets` is where the ledger, lots and idempotency meet storage. Each
command opens one unit of work, checks every rule, writes the transaction, its
lots and its event, and commits; or it writes nothing at all::

    >>> from datetime import datetime, timezone
    >>> from coinecon import ManualClock, Money, Unit
    >>> from coinecon.adapters.memory import MemoryStore
    >>> from coinecon.ledger.journal import Cause
    >>> COIN = Unit("COIN")
    >>> clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> wallets = Wallets(MemoryStore(), clock=clock)
    >>> wallets.credit("order-1", holder="alice", amount=COIN(500), origin=LotOrigin.PURCHASE,
    ...                cause=Cause("purchase", "order-1"), value=Money("4.99", "USD")).balance
    UnitAmount(500, 'COIN')
    >>> wallets.spend("gift-1", holder="alice", amount=COIN(120),
    ...               cause=Cause("gift", "g-1")).balance
    UnitAmount(380, 'COIN')
    >>> wallets.verify().ok
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import operator
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar, final

import attrs
from dateutil.relativedelta import relativedelta

from coinecon import _checks
from coinecon._ids import check_identifier, random_id
from coinecon.clock import Clock, SystemClock, as_utc, require_aware
from coinecon.errors import (
    FloatNotAllowedError,
    InsufficientFunds,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidTypeError,
    StorageError,
    TransferNotAllowed,
    ValidationError,
)
from coinecon.ledger import entries
from coinecon.ledger.events import EventSink, OutboxEvent
from coinecon.ledger.idempotency import (
    IdempotencyRecord,
    canonical_json,
    fingerprint,
    with_fields,
)
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Cause,
    HistoryEntry,
    Metadata,
    MetadataValue,
    Posting,
    PostingNotAllowed,
    Transaction,
    TransactionKind,
    check_rules,
    metadata_pairs,
)
from coinecon.ledger.lots import Lot, LotConsumption, LotOrigin, SpendOrder, take_from_lots
from coinecon.ledger.verification import VerificationReport, verify_books
from coinecon.money.money import MAX_MINOR_UNITS, Currency, Money
from coinecon.money.units import Unit, UnitAmount
from coinecon.ports import Store, UnitOfWork

__all__ = ["CreditResult", "ExpiryResult", "HistoryPage", "PruneResult", "SpendResult", "Wallets"]

# How canonical_json writes a string (escaped, ASCII), for the JSON this
# module writes directly on its hot paths.
_json_text: Callable[[str], str] = json.encoder.encode_basestring_ascii

_ORIGIN_KIND = {
    LotOrigin.PURCHASE: TransactionKind.PURCHASE,
    LotOrigin.BONUS: TransactionKind.BONUS,
    LotOrigin.PROMOTION: TransactionKind.PROMOTION,
    LotOrigin.ADJUSTMENT: TransactionKind.ADJUSTMENT,
}
_SPEND_KINDS = frozenset({TransactionKind.SPEND, TransactionKind.GIFT})
_account = operator.attrgetter("account")  # of a posting
_MAX_PAGE = 1000


@final
@attrs.frozen
class CreditResult:
    """What a credit did.

    Attributes:
        transaction_id: the ledger transaction.
        lot_id: the lot that holds the credited coins.
        balance: the wallet's balance right after the credit.
        expires_at: when the lot expires, if it does.
    """

    transaction_id: str
    lot_id: str
    balance: UnitAmount
    expires_at: datetime | None = None

    def to_json(self) -> str:
        """Serialise for the idempotency record."""
        return canonical_json(
            {
                "transaction_id": self.transaction_id,
                "lot_id": self.lot_id,
                "unit": self.balance.unit.code,
                "balance": self.balance.amount,
                "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CreditResult:
        """The result :meth:`to_json` wrote."""
        data = json.loads(text)
        expires = data["expires_at"]
        return cls(
            transaction_id=data["transaction_id"],
            lot_id=data["lot_id"],
            balance=UnitAmount(data["balance"], Unit(data["unit"])),
            expires_at=None if expires is None else datetime.fromisoformat(expires),
        )


def _check_accountable(pairs: Metadata) -> None:
    """Refuse an adjustment whose metadata does not name the staff member who
    makes it and a reason or the case it settles."""
    meta = dict(pairs)

    def said(key: str) -> bool:
        value = meta.get(key)
        return isinstance(value, str) and bool(value.strip())

    if not said("staff") or not (said("reason") or said("case")):
        raise ValidationError(
            "an adjustment names the staff member who makes it and why: give metadata "
            "'staff' and 'reason' (or the 'case' it settles)"
        )


def _by_currency(amounts: Iterable[Money | None]) -> dict[str, Money]:
    """Sum money per currency code, skipping ``None``."""
    totals: dict[str, Money] = {}
    for money in amounts:
        if money is not None:
            code = money.currency.code
            totals[code] = totals.get(code, Money.zero(money.currency)) + money
    return totals


_Result = TypeVar("_Result")


def _replayed(parse: Callable[[str], _Result], key: str, text: str) -> _Result:
    """The result a replay returns: *text*, the first result stored under
    *key*, parsed. A stored result that does not parse was changed outside
    coinecon (or damaged): :class:`~coinecon.errors.StorageError`."""
    try:
        return parse(text)
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(
            f"the result stored under idempotency key {key!r}", error
        ) from error


def _consumption_from_json(rows: list[list[Any]]) -> tuple[LotConsumption, ...]:
    return tuple(
        LotConsumption(lot_id, amount, None if minor is None else Money.from_minor(minor, code))
        for lot_id, amount, minor, code in rows
    )


def _spend_fingerprint(
    holder: str,
    amount: UnitAmount,
    cause: Cause,
    kind: TransactionKind,
    also: tuple[Posting, ...],
    metadata: Metadata,
) -> str:
    """``fingerprint("spend", request)`` of a spend's request, written
    directly: every spend computes one. The test suite checks it against
    :func:`~coinecon.ledger.idempotency.fingerprint` of the request as a ``dict``:
    ``holder``, ``unit``, ``amount``, ``cause`` (as text), ``kind``, ``also``
    (sorted ``[account text, amount]`` pairs) and ``metadata``."""
    fields = {
        "also": f"[{_postings_json(also) if also else ''}]",
        "amount": str(amount.amount),
        "cause": _json_text(f"{cause.type}:{cause.id}"),
        "holder": _json_text(holder),
        "kind": _KIND_JSON[kind],
        "metadata": canonical_json(dict(metadata)) if metadata else "{}",
        "unit": _json_text(amount.unit.code),
    }
    payload = (
        '{"command":"spend","request":{'
        + ",".join(f'"{key}":{text}' for key, text in fields.items())
        + "}}"
    )
    return with_fields(hashlib.sha256(payload.encode("ascii")).hexdigest(), fields)


def _postings_json(postings: tuple[Posting, ...]) -> str:
    """*postings* as the fingerprint writes them: ``[account text, amount]``
    pairs, sorted, without the brackets around the list."""
    texts = _ACCOUNT_TEXTS
    pairs = []
    for posting in postings:
        account = posting.account
        text = texts.get(account)
        if text is None:
            text = _account_text(account)
        pairs.append((text, posting.amount))
    pairs.sort()  # by the account's text, then the amount: its JSON follows the text
    return ",".join([f"[{json},{amount}]" for (_, json), amount in pairs])


def _account_text(account: AccountKey) -> tuple[str, str]:
    """*account* as text, and that text as JSON; remembered: a host sends the
    same few ``also`` accounts (a gift's creators) with spend after spend."""
    text = str(account)
    texts = _ACCOUNT_TEXTS
    if len(texts) >= _MAX_ACCOUNT_TEXTS:
        texts.clear()  # bounded: a host may have millions of creators
    texts[account] = found = (text, _json_text(text))
    return found


_ACCOUNT_TEXTS: dict[AccountKey, tuple[str, str]] = {}
_MAX_ACCOUNT_TEXTS = 4096
_KIND_JSON = {kind: _json_text(kind.value) for kind in TransactionKind}


@final
@attrs.frozen
class SpendResult:
    """What a spend did.

    Attributes:
        transaction_id: the ledger transaction.
        consumed: the lots it took coins from, in the order taken.
        balance: the wallet's balance right after the spend.
    """

    transaction_id: str
    consumed: tuple[LotConsumption, ...]
    balance: UnitAmount

    @property
    def value(self) -> dict[str, Money]:
        """The money value of the coins spent (purchased coins only), per currency."""
        return _by_currency(c.value for c in self.consumed)

    def to_json(self) -> str:
        """Serialise for the idempotency record and the ``coins.spent`` event:
        the canonical JSON of ``transaction_id``, ``unit``, ``balance``,
        ``lots`` (how many lots it took coins from) and ``value`` (the money
        value of the coins spent, in minor units by currency code).

        The lots themselves are left out, so that the result stays small
        however many lots a spend takes from: they are in the store
        (:meth:`Wallets.consumption`), and a replay reads them there.
        """
        # Written directly, as canonical_json would (keys sorted, no spaces,
        # ASCII): every spend stores one. The test suite compares the two.
        items = self.consumed
        if len(items) == 1:  # the usual case: one lot
            value = items[0].value
            values = "" if value is None else f"{_json_text(value.currency.code)}:{value.minor}"
        else:
            sums: dict[str, int] = {}  # plain ints: a sum past Money's range is still written
            for consumption in items:
                value = consumption.value
                if value is not None:
                    code = value.currency.code
                    sums[code] = sums.get(code, 0) + value.minor
            values = ",".join(
                [f"{_json_text(code)}:{minor}" for code, minor in sorted(sums.items())]
            )
        return (
            f'{{"balance":{self.balance.amount},"lots":{len(items)},'
            f'"transaction_id":{_json_text(self.transaction_id)},'
            f'"unit":{_json_text(self.balance.unit.code)},"value":{{{values}}}}}'
        )

    @classmethod
    def from_json(cls, text: str, consumed: Sequence[LotConsumption] = ()) -> SpendResult:
        """The result :meth:`to_json` wrote, with *consumed*, the lots it took
        coins from, which that JSON leaves out (read them with
        :meth:`Wallets.consumption`).

        Raises:
            StorageError: if *consumed* does not list as many lots as the
                result says.
        """
        data = json.loads(text)
        if "consumed" in data:  # written by a coinecon that kept the lots in the result
            found = _consumption_from_json(data["consumed"])
        else:
            found = tuple(consumed)
            if len(found) != data["lots"]:
                raise StorageError(
                    f"spend {data['transaction_id']!r} took from {data['lots']} lots, but "
                    f"{len(found)} consumptions were given"
                )
        return cls(
            transaction_id=data["transaction_id"],
            consumed=found,
            balance=UnitAmount(data["balance"], Unit(data["unit"])),
        )

    @classmethod
    def _of(
        cls, transaction_id: str, consumed: tuple[LotConsumption, ...], balance: UnitAmount
    ) -> SpendResult:
        """``SpendResult(transaction_id, consumed, balance)``, built faster:
        the constructor checks nothing, and every spend makes one."""
        result = _new(cls)
        _set_result_transaction(result, transaction_id)
        _set_result_consumed(result, consumed)
        _set_result_balance(result, balance)
        return result


_new = object.__new__
# Each slot's own setter: several times faster than object.__setattr__ (which
# looks the slot up on every call), for the values of the hot path.
_set_result_transaction, _set_result_consumed, _set_result_balance = (
    SpendResult.__dict__[name].__set__ for name in ("transaction_id", "consumed", "balance")
)


@final
@attrs.frozen
class ExpiryResult:
    """One expired lot.

    Attributes:
        transaction_id: the expiry transaction.
        lot_id: the lot whose remaining coins expired.
        expired: the coins that expired.
        value: the money value recognised with them (purchased lots).
    """

    transaction_id: str
    lot_id: str
    expired: UnitAmount
    value: Money | None

    def to_json(self) -> str:
        """Serialise for the idempotency record and the event payload."""
        return canonical_json(
            {
                "transaction_id": self.transaction_id,
                "lot_id": self.lot_id,
                "unit": self.expired.unit.code,
                "expired": self.expired.amount,
                "value": None
                if self.value is None
                else [self.value.minor, self.value.currency.code],
            }
        )


@final
@attrs.frozen
class PruneResult:
    """What :meth:`Wallets.prune` forgot.

    Attributes:
        records: the idempotency records forgotten (their keys are free again).
        events: the delivered events forgotten.
    """

    records: int
    events: int


@final
@attrs.frozen
class HistoryPage:
    """One page of an account's history, newest first.

    Attributes:
        entries: the entries of this page.
        next_cursor: pass it as ``cursor`` to get the next (older) page;
            ``None`` when this is the last page.
    """

    entries: tuple[HistoryEntry, ...]
    next_cursor: str | None


def _parse_cursor(cursor: object) -> int | None:
    if cursor is None:
        return None
    # isascii(): str.isdigit() also takes digits such as superscripts and full-width ones, which
    # are no cursor this service ever gave out.
    if (
        not isinstance(cursor, str)
        or not (cursor.isascii() and cursor.isdigit())
        or len(cursor) > 19
        or int(cursor) > MAX_MINOR_UNITS  # posting sequences are 64-bit integers
    ):
        raise InvalidIdentifierError(f"not a history cursor: {cursor!r}")
    return int(cursor)


class _BatchUnitOfWork:
    """One command's view of a batch's shared unit of work: entering and
    committing are deferred to the batch; an error poisons the batch."""

    def __init__(self, batch: _BatchStore) -> None:
        self._batch = batch
        uow = batch.uow
        self.ledger = uow.ledger
        self.lots = uow.lots
        self.idempotency = uow.idempotency
        self.outbox = uow.outbox
        self.records = uow.records

    def __enter__(self) -> Self:
        if self._batch.failed:
            raise StorageError("an earlier command in this batch failed; the batch is void")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._batch.failed = True

    def commit(self) -> None:
        """Deferred: the batch commits once, at its end."""

    def rollback(self) -> None:
        """Void the whole batch."""
        self._batch.failed = True


def _check_value(origin: LotOrigin, value: object) -> None:
    """Refuse a credit's money *value* that does not fit its *origin*."""
    if isinstance(value, float):
        raise FloatNotAllowedError(
            f"value {value!r} is a float; floats are inexact and refused. Pass "
            f"Money({str(value)!r}, currency) instead"
        )
    if origin is LotOrigin.PURCHASE:
        if not isinstance(value, Money) or not value.is_positive:
            raise InvalidAmountError(
                f"a purchase credit needs the positive money value paid, as Money: got {value!r}"
            )
    elif value is not None:
        raise InvalidAmountError(f"only purchased coins carry a money value, not {origin.value}")


class _BatchStore:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.failed = False
        self._view = _BatchUnitOfWork(self)  # keeps no state of its own: one serves all

    def unit_of_work(self) -> _BatchUnitOfWork:
        return self._view


class Wallets:
    """Credit, spend and expire coins in wallets, on any :class:`~coinecon.ports.Store`.

    Every command takes an idempotency key first. Replaying a command with the
    same key and the same request returns the first result and changes
    nothing; the same key with a different request raises
    :class:`~coinecon.errors.IdempotencyConflict`. A request that fails
    validation stores nothing, so its key stays free.

    Args:
        store: where the books are kept.
        clock: where the time comes from (defaults to the system clock).
        spend_order: the order in which spends consume lots.
        new_id: makes ids for transactions and lots (defaults to version-7
            UUIDs: random, but ordered by time, so that new rows land at the
            end of a store's indexes). A command's event takes its
            transaction's id.
        merge_origins: the lot origins whose credits of coins that do not
            expire are added to the wallet's newest open lot of the same
            origin (among its newest
            :data:`~coinecon.ledger.lots.MERGE_WINDOW` lots that neither
            expire nor were bought) rather than open a lot of their own: a
            wallet then holds one lot for its daily rewards, not one per
            day. A merged lot names the credit that opened it; the later
            credits are in the ledger, not in lots. Purchases never merge
            (their lots carry the money paid). Default: none.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        spend_order: SpendOrder = SpendOrder.EXPIRING_FIRST,
        new_id: Callable[[], str] | None = None,
        merge_origins: Collection[LotOrigin] = (),
    ) -> None:
        _checks.store(store)
        if clock is not None and not isinstance(clock, Clock):
            raise InvalidTypeError(f"clock must have a now() method, got {clock!r}")
        if not isinstance(spend_order, SpendOrder):
            raise InvalidTypeError(f"spend_order must be a SpendOrder, got {spend_order!r}")
        if new_id is not None and not callable(new_id):
            raise InvalidTypeError(f"new_id must be callable, got {new_id!r}")
        if isinstance(merge_origins, (str, LotOrigin)) or not isinstance(merge_origins, Collection):
            raise InvalidTypeError(
                f"merge_origins must be a collection of LotOrigin, got {merge_origins!r}"
            )
        for merged in merge_origins:
            if not isinstance(merged, LotOrigin):
                raise InvalidTypeError(f"merge_origins must hold LotOrigin values, got {merged!r}")
            if merged is LotOrigin.PURCHASE:
                raise ValidationError(
                    "purchased lots never merge: each carries the money paid for it"
                )
        self._merge = frozenset(merge_origins)
        self._store = store
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._order = spend_order
        self._new_id = new_id or random_id
        self._batches: set[int] = set()  # threads with a batch open
        run = getattr(store, "run", None)
        self._store_run: Callable[[Callable[[UnitOfWork], Any]], Any] | None = (
            run if callable(run) else None
        )

    # -- commands -------------------------------------------------------------

    def credit(
        self,
        idempotency_key: str,
        *,
        holder: str,
        amount: UnitAmount,
        origin: LotOrigin,
        cause: Cause,
        value: Money | None = None,
        expires_at: datetime | None = None,
        expires_in: relativedelta | timedelta | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> CreditResult:
        """Create coins in *holder*'s wallet, as a new lot.

        Lots of the wallet that have lapsed are expired first, in the same
        unit of work (see :meth:`expire`), so the balance returned leaves them
        out.

        Args:
            idempotency_key: the command's idempotency key.
            holder: the account holder.
            amount: how many coins (positive).
            origin: where they come from; the transaction kind follows from it
                (purchase, bonus, promotion, adjustment).
            cause: the purchase, promotion... behind the credit.
            value: the money paid for the coins; required for a purchase,
                refused otherwise.
            expires_at: when the lot's remaining coins expire.
            expires_in: alternatively, how long after now they expire (a
                ``relativedelta`` such as ``relativedelta(months=1)``).
            metadata: extra JSON-scalar facts to keep with the transaction.
                An adjustment's names the staff member who makes it
                (``"staff"``) and why (``"reason"``, or the ``"case"`` it
                settles): coins never appear unexplained.

        Raises:
            ValidationError: an adjustment without ``"staff"`` and a
                ``"reason"`` or ``"case"`` in its metadata.
        """
        key = check_identifier(idempotency_key, "idempotency key")
        wallet = self._wallet(holder, amount)
        if not isinstance(origin, LotOrigin):
            raise InvalidTypeError(f"origin must be a LotOrigin, got {origin!r}")
        if not isinstance(cause, Cause):
            raise InvalidTypeError(f"cause must be a Cause, got {cause!r}")
        _check_value(origin, value)
        if expires_at is not None and expires_in is not None:
            raise ValidationError("give expires_at or expires_in, not both")
        if expires_at is not None:
            require_aware(expires_at, "expires_at")
        if expires_in is not None and not isinstance(expires_in, (relativedelta, timedelta)):
            raise InvalidTypeError(
                f"expires_in must be a relativedelta or timedelta, got {expires_in!r}"
            )
        pairs = metadata_pairs(metadata)
        if origin is LotOrigin.ADJUSTMENT:
            _check_accountable(pairs)
        request = {
            "holder": holder,
            "unit": amount.unit.code,
            "amount": amount.amount,
            "origin": origin.value,
            "cause": str(cause),
            "value": None if value is None else [value.minor, value.currency.code],
            # The instant, whatever offset the caller wrote it in.
            "expires_at": None if expires_at is None else as_utc(expires_at, "expires_at"),
            "expires_in": None if expires_in is None else repr(expires_in),
            "metadata": dict(pairs),
        }
        digest = fingerprint("credit", request)

        def command(uow: UnitOfWork) -> CreditResult:
            replayed = self._replay(uow, key, digest)
            if replayed is not None:
                return _replayed(CreditResult.from_json, key, replayed)
            now = self._now()
            try:
                expiry = expires_at if expires_in is None else now + expires_in
            except (OverflowError, ValueError) as error:  # past year 9999, or an odd relativedelta
                raise ValidationError(f"the coins cannot expire {expires_in!r} from now") from error
            if expiry is not None and expiry <= now:
                raise ValidationError(f"the coins would expire at {expiry}, not after now ({now})")
            self._sweep(uow, wallet, now)
            lot = None
            if expiry is None and origin in self._merge:
                transaction = Transaction._of(  # noqa: SLF001 (every field but the id is checked)
                    self._new_id(),
                    _ORIGIN_KIND[origin],
                    (
                        Posting(AccountKey.issuance(amount.unit), -amount.amount),
                        Posting(wallet, amount.amount),
                    ),
                    now,
                    key,
                    cause,
                    pairs,
                )
                before = uow.ledger.balances([wallet])
                if before[wallet] >= 0:  # a wallet in debt settles it from a lot of its own
                    after = entries.record(uow, transaction, before)
                    lot = self._merge_into(uow, wallet, origin, amount.amount)
                    if lot is None:
                        lot = Lot.new(
                            self._new_id(), wallet, origin, amount.amount, now, transaction.id
                        )
                        uow.lots.add(lot)
            if lot is None:
                credited = entries.record_credit(
                    uow,
                    transaction_id=self._new_id(),
                    new_id=self._new_id,
                    kind=_ORIGIN_KIND[origin],
                    wallet=wallet,
                    grants=(entries.Grant(amount.amount, origin, value, expiry),),
                    now=now,
                    key=key,
                    cause=cause,
                    metadata=pairs,
                )
                transaction, after, lot = credited.transaction, credited.balances, credited.lots[0]
            result = CreditResult(
                transaction.id,
                lot.id,
                UnitAmount._unchecked(after[wallet], amount.unit),  # noqa: SLF001 (checked by the rules)
                expiry,
            )
            self._finish(uow, key, digest, result.to_json(), "coins.credited", transaction)
            uow.commit()
            return result

        return self._run(command)

    def spend(
        self,
        idempotency_key: str,
        *,
        holder: str,
        amount: UnitAmount,
        cause: Cause,
        kind: TransactionKind = TransactionKind.SPEND,
        also: Sequence[Posting] = (),
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> SpendResult:
        """Spend coins from *holder*'s wallet; they leave circulation.

        The coins go to the unit's *spent* account, consuming the wallet's lots
        in the service's :class:`~coinecon.ledger.lots.SpendOrder`. Lapsed lots
        are never spent: the spend first expires them (see :meth:`expire`).

        Args:
            idempotency_key: the command's idempotency key.
            holder: the account holder spending.
            amount: how many coins (positive).
            cause: the catalog item or gift bought.
            kind: ``SPEND`` or ``GIFT``.
            also: more postings to make in the same transaction, balanced among
                themselves (for a gift: the creator's earnings in the
                creator-side unit, against its issuance account).
            metadata: extra JSON-scalar facts to keep with the transaction.

        Raises:
            InsufficientFunds: if the wallet holds less than *amount* in lots
                that have not lapsed, or is in debt.
        """
        key = check_identifier(idempotency_key, "idempotency key")
        wallet = self._wallet(holder, amount)
        if type(kind) is not TransactionKind or kind not in _SPEND_KINDS:
            raise InvalidTypeError(f"a spend is of kind SPEND or GIFT, not {kind!r}")
        if not isinstance(cause, Cause):
            raise InvalidTypeError(f"cause must be a Cause, got {cause!r}")
        try:
            extra = tuple(also)
        except TypeError:
            raise InvalidTypeError(f"also must be a sequence of Postings, got {also!r}") from None
        for posting in extra:
            if not isinstance(posting, Posting):
                raise InvalidTypeError(f"also must hold Posting values, got {posting!r}")
            account = posting.account
            if account.kind is AccountKind.DEFERRED_REVENUE or account == AccountKey.spent(
                amount.unit
            ):
                raise PostingNotAllowed(
                    f"a spend's also legs may not post to {account}: the spend itself moves "
                    "its coins there and the value of its lots out of deferred revenue"
                )
            if account.kind is AccountKind.WALLET:
                # Coins leave a wallet with its lots, by the spend itself; and
                # never move to or from another holder's.
                refused = PostingNotAllowed if account.owner == holder else TransferNotAllowed
                raise refused(
                    f"a spend's also legs may not post to a wallet, got {account}: coins "
                    "leave a wallet only by its holder's spend, with its lots, and wallets "
                    "are non-transferable"
                )
        pairs = () if metadata is None else metadata_pairs(metadata)
        digest = _spend_fingerprint(holder, amount, cause, kind, extra, pairs)
        coins, unit = amount.amount, amount.unit
        postings = (
            # Checked as Posting() would: an account key, a positive amount in range.
            Posting._of(wallet, -coins),  # noqa: SLF001
            Posting._of(AccountKey.spent(unit), coins),  # noqa: SLF001
            *extra,
        )

        def command(uow: UnitOfWork) -> SpendResult:
            replayed = self._replay(uow, key, digest)
            if replayed is not None:
                return _replayed(
                    lambda text: SpendResult.from_json(
                        text, uow.lots.consumption(json.loads(text)["transaction_id"])
                    ),
                    key,
                    replayed,
                )
            now = self._now()
            self._sweep(uow, wallet, now)
            # Read in spend order, only as far as the amount is covered.
            lots = uow.lots.spendable(wallet, self._order, now, coins)
            taken = self._plan(lots, coins, now)
            legs = postings
            if taken is not None:
                # The value of the coins consumed moves from deferred revenue to revenue.
                recognised = entries.recognition_legs(
                    [consumption for _, consumption in taken], AccountKind.REVENUE
                )
                if recognised:
                    legs = entries.merge_legs((*postings, *recognised))
            transaction = Transaction._of(  # noqa: SLF001 (every field but the id is checked)
                self._new_id(), kind, legs, now, key, cause, pairs
            )
            after = self._record(uow, transaction)
            if taken is None:
                raise StorageError(
                    f"the lots of {wallet} disagree with its balance; run verify(): "
                    f"they hold fewer than {coins} coins"
                )
            consumed = self._consume(uow, taken, transaction.id)
            balance = UnitAmount._unchecked(after[wallet], unit)  # noqa: SLF001 (checked by the rules)
            result = SpendResult._of(transaction.id, consumed, balance)  # noqa: SLF001
            self._finish(uow, key, digest, result.to_json(), "coins.spent", transaction)
            uow.commit()
            return result

        return self._run(command)

    def expire(self, *, limit: int = 1000) -> tuple[ExpiryResult, ...]:
        """Sweep: expire every lot that has lapsed (up to *limit* lots).

        A lot lapses at its expiry instant (an expiry at or before now). From
        that instant its coins are out of :meth:`balance` and :meth:`lots` and
        are never spent; the sweep records the breakage. Each lot's remaining
        coins move to the unit's *expired* account in a transaction of kind
        ``EXPIRY``, caused by ``Cause("lot", <lot id>)``, whose idempotency key
        is ``"expiry:<lot id>"``, whose ``occurred_at`` is the time of the
        sweep and whose metadata ``lapsed_at`` is the lot's expiry instant (ISO
        8601, UTC); each announces a ``coins.expired`` event. Every credit and
        spend first sweeps its own wallet the same way, in its own unit of
        work. An expired lot holds nothing, so running this twice (or after a
        command swept the lot) expires nothing twice.
        """
        if type(limit) is not int or limit < 1:
            raise InvalidAmountError(f"limit must be a positive int, got {limit!r}")
        with self._unit_of_work() as uow:
            now = self._now()
            results = tuple(
                [self._expire(uow, lot, now) for lot in uow.lots.expired(now, limit=limit)]
            )
            uow.commit()
        return results

    def prune(self, *, older_than: datetime) -> PruneResult:
        """Forget the idempotency records of commands older than
        *older_than*, and the delivered events that occurred before it.

        This is the retention of what the service keeps only to answer
        retries and to deliver events. Within the retention window (from
        *older_than* on) nothing changes: a command retried with its key
        replays its first result. A key whose record was forgotten is free
        again, and a command sent with it runs anew, so choose a window
        longer than any client retries (Stripe keeps keys 24 hours; a week
        is a safe default). The ledger itself (transactions, postings,
        lots, and the events that live on transactions' rows) is never
        pruned, and neither is an event not delivered yet::

            >>> from datetime import UTC, datetime, timedelta
            >>> from coinecon import Cause, LotOrigin, Unit, Wallets
            >>> from coinecon.adapters.memory import MemoryStore
            >>> from coinecon.clock import ManualClock
            >>> COIN = Unit("COIN")
            >>> clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
            >>> wallets = Wallets(MemoryStore(), clock=clock)
            >>> gift = wallets.credit("welcome-ann", holder="ann", amount=COIN(5),
            ...                       origin=LotOrigin.BONUS, cause=Cause("signup", "ann"))
            >>> eight_days_later = clock.advance(timedelta(days=8))
            >>> wallets.prune(older_than=clock.now() - timedelta(days=7))
            PruneResult(records=1, events=0)

        Raises:
            InvalidTypeError: *older_than* is not a ``datetime``.
            NaiveDatetimeError: *older_than* has no time zone.
            ValidationError: *older_than* is after the service's clock's now
                (it would forget records of commands that may be retried).
        """
        require_aware(older_than, "older_than")
        with self._unit_of_work() as uow:
            now = self._now()
            if older_than > now:
                raise ValidationError(
                    f"older_than {older_than.isoformat()} is after now ({now.isoformat()}): "
                    "it would forget the records of commands that may still be retried"
                )
            result = PruneResult(
                records=uow.idempotency.prune(older_than), events=uow.outbox.prune(older_than)
            )
            uow.commit()
        return result

    @contextlib.contextmanager
    def batch(self) -> Iterator[Wallets]:
        """Run many commands in one unit of work, for bulk work.

        Inside the ``with`` block, use the yielded :class:`Wallets`: its
        commands (and queries) all run in a single unit of work, which commits
        once when the block ends. The rules, idempotency and lots work exactly
        as for single commands. The batch is all or nothing: if the block
        raises, or if any command in it raised (even if the caller caught the
        error), nothing of the batch is kept, and leaving the block raises
        :class:`~coinecon.errors.StorageError` in the second case. The batch
        holds its store's unit of work (on SQLite, the write lock) until the
        block ends; using these wallets themselves, rather than the yielded
        ones, inside the block raises :class:`~coinecon.errors.StorageError`::

            >>> from coinecon.adapters.memory import MemoryStore
            >>> wallets = Wallets(MemoryStore())
            >>> with wallets.batch() as bulk:
            ...     for n in range(3):
            ...         _ = bulk.credit(f"import-{n}", holder=f"user-{n}",
            ...                         amount=Unit("COIN")(10), origin=LotOrigin.BONUS,
            ...                         cause=Cause("import", str(n)))
            >>> wallets.balance("user-2", Unit("COIN"))
            UnitAmount(10, 'COIN')
        """
        uow = self._unit_of_work()
        opener = threading.get_ident()  # the generator may be closed on another thread
        with uow:
            # Built once entered: a store may bind its repositories on entry.
            shared = _BatchStore(uow)
            inner = Wallets(
                shared,
                clock=self._clock,
                spend_order=self._order,
                new_id=self._new_id,
                merge_origins=self._merge,
            )
            self._batches.add(opener)
            try:
                yield inner
            finally:
                self._batches.discard(opener)
            if shared.failed:
                raise StorageError("a command in the batch failed; nothing of the batch was kept")
            uow.commit()

    # -- queries --------------------------------------------------------------

    def balance(self, holder: str, unit: Unit) -> UnitAmount:
        """The balance of *holder*'s wallet for *unit*: what the holder can
        spend now (negative only while in debt).

        Lots that have lapsed are left out from the instant they lapse, even
        before a sweep (:meth:`expire`, or the next command on the wallet)
        records their expiry: until then this is the wallet's balance in the
        books less the coins remaining in its lapsed lots. Reading it writes
        nothing.
        """
        wallet = AccountKey.wallet(holder, unit)
        with self._unit_of_work() as uow:
            balance = self.balance_within(uow, wallet, self._now())
            if not balance:
                # No silent 0 for a unit the holder earns rather than holds.
                accounts = uow.ledger.accounts_of(wallet.owner)
                earned = AccountKey.earnings(wallet.owner, unit)
                if wallet not in accounts and earned in accounts:
                    raise ValidationError(
                        f"{wallet.owner} earns {unit.code}, which no wallet holds: read their "
                        f"earnings (Wallets.balances([AccountKey.earnings({wallet.owner!r}, "
                        f"unit)]) or CoinEconomy.earnings)"
                    )
            return UnitAmount(balance, unit)

    @staticmethod
    def balance_within(uow: UnitOfWork, wallet: AccountKey, now: datetime) -> int:
        """What :meth:`balance` says of *wallet* at *now*, read in the
        caller's unit of work: its balance in the books less the coins of
        its lots lapsed and not swept yet."""
        stored = uow.ledger.balances([wallet])[wallet]
        return stored - sum([lot.remaining for lot in uow.lots.lapsed(wallet, now)])

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        """The balances of any accounts in the books, in their smallest unit.

        These are the sums of the accounts' postings: a wallet's includes the
        coins of lots that lapsed but were not swept yet (see :meth:`expire`);
        :meth:`balance` leaves them out.
        """
        try:
            wanted = list(accounts)
        except TypeError:
            raise InvalidTypeError(
                f"accounts must be AccountKey values, got {accounts!r}"
            ) from None
        for account in wanted:
            if not isinstance(account, AccountKey):
                raise InvalidTypeError(f"accounts must be AccountKey values, got {account!r}")
        with self._unit_of_work() as uow:
            return uow.ledger.balances(wanted)

    def lots(self, holder: str, unit: Unit) -> list[Lot]:
        """The lots of *holder*'s wallet that still hold coins and have not
        lapsed, oldest first: their coins add up to :meth:`balance` (unless
        the wallet is in debt)."""
        wallet = AccountKey.wallet(holder, unit)
        with self._unit_of_work() as uow:
            now = self._now()
            return [lot for lot in uow.lots.open_lots(wallet) if not lot.is_expired(now)]

    def consumption(self, transaction_id: str) -> list[LotConsumption]:
        """The lots a spend or expiry consumed."""
        with self._unit_of_work() as uow:
            return uow.lots.consumption(check_identifier(transaction_id, "transaction id"))

    def transaction(self, transaction_id: str) -> Transaction | None:
        """The transaction with this id, or ``None``."""
        with self._unit_of_work() as uow:
            return uow.ledger.get(check_identifier(transaction_id, "transaction id"))

    def history(
        self,
        account: AccountKey,
        *,
        limit: int = 50,
        cursor: str | None = None,
        kinds: Collection[TransactionKind] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> HistoryPage:
        """A page of *account*'s history, newest first.

        Args:
            account: the account (``AccountKey.wallet(holder, unit)`` for a wallet).
            limit: entries per page, 1 to 1000.
            cursor: ``next_cursor`` of the previous page, to continue from it.
            kinds: only these transaction kinds.
            since: only entries at or after this time.
            until: only entries before this time.
        """
        if not isinstance(account, AccountKey):
            raise InvalidTypeError(f"account must be an AccountKey, got {account!r}")
        if type(limit) is not int or not 1 <= limit <= _MAX_PAGE:
            raise InvalidAmountError(f"limit must be an int from 1 to {_MAX_PAGE}, got {limit!r}")
        before = _parse_cursor(cursor)
        since, until = _checks.period(since, until)
        try:
            wanted = None if kinds is None else frozenset(kinds)
        except TypeError:
            raise InvalidTypeError(f"kinds must be TransactionKind values, got {kinds!r}") from None
        if wanted is not None and not all(isinstance(k, TransactionKind) for k in wanted):
            raise InvalidTypeError("kinds must be TransactionKind values")
        with self._unit_of_work() as uow:
            entries = uow.ledger.history(
                account, limit=limit + 1, before=before, kinds=wanted, since=since, until=until
            )
        page = tuple(entries[:limit])
        more = len(entries) > limit
        return HistoryPage(page, str(page[-1].sequence) if more else None)

    def verify(self) -> VerificationReport:
        """Recompute every balance from the postings and report any drift."""
        with self._unit_of_work() as uow:
            return verify_books(
                uow.ledger.transactions(),
                uow.ledger.postings(),
                uow.ledger.accounts(),
                uow.lots.all(),
            )

    def deferred_revenue(self) -> dict[str, Money]:
        """The money value of unspent purchased coins, per currency code.

        It is what the ``DEFERRED_REVENUE`` account of each currency holds (a
        credit balance, stored negative, given here as the positive amount
        owed): the value paid for purchased coins less what was recognised
        as their coins were spent or expired. :meth:`verify` checks that it
        is the sum of the purchased lots' value not yet recognised.
        """
        with self._unit_of_work() as uow:
            accounts = uow.ledger.accounts_of(PLATFORM)
        totals = {
            account.asset.code: Money.from_minor(-balance, account.asset)
            for account, balance in accounts.items()
            if account.kind is AccountKind.DEFERRED_REVENUE and isinstance(account.asset, Currency)
        }
        return dict(sorted(totals.items()))

    def deliver_events(self, sink: EventSink, *, limit: int = 100) -> int:
        """Deliver up to *limit* pending outbox events to *sink*; return how many.

        Each event is marked delivered only after ``sink.deliver`` returned, so
        an event whose delivery failed (or whose marking was lost in a crash)
        is delivered again later: at least once.
        """
        if not isinstance(sink, EventSink):
            raise InvalidTypeError(f"sink must have a deliver(event) method, got {sink!r}")
        if type(limit) is not int or limit < 1:
            raise InvalidAmountError(f"limit must be a positive int, got {limit!r}")
        with self._unit_of_work() as uow:
            pending = uow.outbox.pending(limit=limit)
        delivered = 0
        for event in pending:
            sink.deliver(event)
            with self._unit_of_work() as uow:
                uow.outbox.mark_delivered([event.id], self._now())
                uow.commit()
            delivered += 1
        return delivered

    # -- helpers --------------------------------------------------------------

    def _run(self, command: Callable[[UnitOfWork], _Result]) -> _Result:
        """Run *command* in a unit of work: through the store's ``run`` when it
        has one (a SQLite store with group commit runs the commands of many
        threads back to back), else in a ``with`` block of its own."""
        run = self._store_run
        if run is None or threading.get_ident() in self._batches:
            with self._unit_of_work() as uow:
                return command(uow)
        result: _Result = run(command)
        return result

    def _unit_of_work(self) -> UnitOfWork:
        if self._batches and threading.get_ident() in self._batches:
            raise StorageError(
                "this thread has a batch open on these wallets: inside the 'with' block, "
                "use the Wallets that batch() yielded"
            )
        return self._store.unit_of_work()

    def _now(self) -> datetime:
        now = self._clock.now()
        if type(now) is not datetime or now.tzinfo is not UTC:  # UTC: the usual case
            # As UTC: two times of one zone compare by wall clock, and an hour
            # apart across a clock change may compare equal.
            return as_utc(now, "clock time")
        return now

    @staticmethod
    def _wallet(holder: str, amount: UnitAmount) -> AccountKey:
        if not isinstance(amount, UnitAmount):
            raise InvalidTypeError(f"amount must be a UnitAmount such as COIN(100), got {amount!r}")
        if amount.amount <= 0:
            raise InvalidAmountError(f"amount must be positive, got {amount}")
        return AccountKey.wallet(holder, amount.unit)

    @staticmethod
    def _replay(uow: UnitOfWork, key: str, digest: str) -> str | None:
        record = uow.idempotency.get(key)
        return None if record is None else record.replay(digest)

    @staticmethod
    def _record(uow: UnitOfWork, transaction: Transaction) -> dict[AccountKey, int]:
        ledger = uow.ledger
        after = check_rules(transaction, ledger.balances(list(map(_account, transaction.postings))))
        ledger.record(transaction, after)
        return after

    @staticmethod
    def _merge_into(
        uow: UnitOfWork, wallet: AccountKey, origin: LotOrigin, coins: int
    ) -> Lot | None:
        """Add *coins* to the lot a credit of *origin* merges into.

        Return the lot as it is after, or ``None`` if *wallet* has none. A lot
        cannot outgrow its range: every coin it ever held was credited out of
        the unit's issuance account, whose balance the rules keep in range.
        """
        target = uow.lots.mergeable(wallet, origin)
        if target is None:
            return None
        merged = attrs.evolve(
            target, amount=target.amount + coins, remaining=target.remaining + coins
        )
        uow.lots.update(merged)
        return merged

    def sweep_within(self, uow: UnitOfWork, wallet: AccountKey, now: datetime) -> None:
        """Expire *wallet*'s lots that lapsed at *now*, as :meth:`expire`
        would, inside the caller's unit of work (which the caller commits):
        for a service that builds its own commands on these wallets, such as
        :class:`~coinecon.economy.CoinEconomy`, before it changes a wallet."""
        self._sweep(uow, wallet, now)

    def _sweep(self, uow: UnitOfWork, wallet: AccountKey, now: datetime) -> None:
        """Expire *wallet*'s lots that lapsed at *now*, as :meth:`expire`
        would, before a command changes the wallet: its balance in the books
        then leaves them out, and the books explain why."""
        for lot in uow.lots.lapsed(wallet, now):
            self._expire(uow, lot, now)

    def _expire(self, uow: UnitOfWork, lot: Lot, now: datetime) -> ExpiryResult:
        """Record the expiry of *lot*'s remaining coins at *now*."""
        unit = lot.account.asset
        lapsed_at = lot.expires_at
        assert isinstance(unit, Unit)  # noqa: S101 (lots only belong to unit wallets)
        assert lapsed_at is not None  # noqa: S101 (only a lot that expires lapses)
        after, consumption = lot.take(lot.remaining)
        transaction = Transaction(
            id=self._new_id(),
            kind=TransactionKind.EXPIRY,
            postings=(
                Posting(lot.account, -lot.remaining),
                Posting(AccountKey.expired(unit), lot.remaining),
                # The value of purchased coins that lapse is breakage.
                *entries.recognition_legs([consumption], AccountKind.BREAKAGE),
            ),
            occurred_at=now,
            idempotency_key=f"expiry:{lot.id}",
            cause=Cause("lot", lot.id),
            metadata=(("lapsed_at", lapsed_at.astimezone(UTC).isoformat()),),
        )
        self._record(uow, transaction)
        uow.lots.update(after)
        uow.lots.record_consumption(transaction.id, [consumption])
        result = ExpiryResult(
            transaction.id, lot.id, UnitAmount(consumption.amount, unit), consumption.value
        )
        # No idempotency record: an expired lot holds nothing to expire
        # again, and the key stays free for whoever else may use it.
        self._announce(uow, "coins.expired", transaction, result.to_json())
        return result

    def _plan(
        self, lots: Sequence[Lot], coins: int, now: datetime
    ) -> list[tuple[Lot, LotConsumption]] | None:
        """What a spend of *coins* takes from *lots* (open lots of one
        wallet, none lapsed at *now*), each lot as it is after; ``None`` if
        they hold fewer coins."""
        if len(lots) == 1 and lots[0].remaining >= coins:
            # What take_from_lots does with one lot that holds enough: the usual case.
            return [lots[0].take(coins)]
        try:
            return take_from_lots(lots, coins, self._order, now=now)
        except InsufficientFunds:
            return None

    @staticmethod
    def _consume(
        uow: UnitOfWork, taken: Sequence[tuple[Lot, LotConsumption]], transaction_id: str
    ) -> tuple[LotConsumption, ...]:
        """Store the lots as *taken* left them, and what *transaction_id* consumed."""
        repository = uow.lots
        for lot, _ in taken:
            repository.update(lot)
        consumed = tuple([consumption for _, consumption in taken])
        repository.record_consumption(transaction_id, consumed)
        return consumed

    def _finish(
        self,
        uow: UnitOfWork,
        key: str,
        digest: str,
        result: str,
        event_type: str,
        transaction: Transaction,
    ) -> None:
        uow.idempotency.add(
            IdempotencyRecord._of(key, digest, result, transaction.occurred_at)  # noqa: SLF001
        )
        self._announce(uow, event_type, transaction, result)

    def _announce(
        self, uow: UnitOfWork, event_type: str, transaction: Transaction, payload: str
    ) -> None:
        # A command's event takes its transaction's id: one event per
        # transaction, and a store can keep it on the transaction's row
        # without indexing a second id.
        uow.outbox.add(
            OutboxEvent._of(  # noqa: SLF001 (every field is checked by the transaction)
                transaction.id, event_type, transaction.occurred_at, payload, transaction.id
            )
        )
