"""The double-entry ledger: accounts, postings, transactions and their rules.

Every change of any balance is one :class:`Transaction`: a set of
:class:`Posting` values that sums to zero for each unit and currency. A coin
purchase, for example, moves coins out of the unit's issuance account into the
buyer's wallet::

    >>> from datetime import datetime, timezone
    >>> from coinecon import Unit
    >>> COIN = Unit("COIN")
    >>> purchase = Transaction(
    ...     id="tx-1",
    ...     kind=TransactionKind.PURCHASE,
    ...     postings=(
    ...         Posting(AccountKey.issuance(COIN), -500),
    ...         Posting(AccountKey.wallet("alice", COIN), 500),
    ...     ),
    ...     occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ...     idempotency_key="order-1",
    ...     cause=Cause("purchase", "order-1"),
    ... )
    >>> check_rules(purchase, {})[AccountKey.wallet("alice", COIN)]
    500

This module is pure: it checks and computes, and never stores anything.
"""

from __future__ import annotations

import enum
import itertools
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeAlias, final

import attrs

from coinecon._checks import aware, identifier, instance_of
from coinecon._ids import check_identifier
from coinecon.errors import (
    BalanceLimitExceeded,
    InsufficientFunds,
    InvalidAmountError,
    InvalidIdentifierError,
    InvalidTypeError,
    LedgerRuleViolation,
    MetadataTooLargeError,
    TransferNotAllowed,
    UnbalancedTransactionError,
    WalletFrozen,
)
from coinecon.money.money import MAX_MINOR_UNITS, Currency, Money, check_range
from coinecon.money.units import Unit, UnitAmount

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_KEYS",
    "MAX_METADATA_VALUE",
    "PLATFORM",
    "AccountKey",
    "AccountKind",
    "Asset",
    "Cause",
    "HistoryEntry",
    "Metadata",
    "Posting",
    "PostingNotAllowed",
    "RecordedPosting",
    "Transaction",
    "TransactionKind",
    "amount_of",
    "check_rules",
    "imbalance",
    "metadata_pairs",
]

Asset: TypeAlias = Unit | Currency
"""The asset an account holds, either a virtual :class:`~coinecon.money.units.Unit`
or a real :class:`~coinecon.money.money.Currency`."""

MAX_METADATA_KEYS = 32
"""The most keys a transaction's metadata holds."""
MAX_METADATA_VALUE = 1024
"""The most characters a metadata value that is a ``str`` holds."""
MAX_METADATA_BYTES = 8192
"""The most bytes a transaction's metadata holds, counting its keys and
values as UTF-8 text (integers and booleans as their decimal or JSON text)."""
_MAX_METADATA_INT = 2**63 - 1  # an integer value is a signed 64-bit integer

MetadataValue: TypeAlias = str | int | bool | None
Metadata: TypeAlias = tuple[tuple[str, MetadataValue], ...]
"""The metadata of a transaction, as sorted ``(key, value)`` pairs of JSON scalars."""

PLATFORM = "@platform"
"""The owner of every system account. Holder ids may not start with ``@``."""


class AccountKind(enum.Enum):
    """What an account is for, and so which rules it follows.

    Holder-owned kinds (:attr:`WALLET`, :attr:`EARNINGS`, :attr:`CREATOR_PAYABLE`)
    belong to one account holder or creator and never go below zero through
    spending. System kinds belong to the platform and may go below zero (an
    issuance account is negative by exactly what it has issued).

    Money accounts follow the signs of double-entry books, a debit positive:
    :attr:`CREATOR_PAYABLE` is what the platform owes a creator, so it is
    negative by exactly that, and "below zero" for it means above zero (paid
    more than owed).
    """

    # Members are singletons that compare by identity: hash them by identity
    # too, in C (Enum's hash is Python code, run on every command).
    __hash__ = object.__hash__

    WALLET = "wallet"
    """A holder's spendable coins. Non-transferable."""
    EARNINGS = "earnings"
    """A creator's earnings in the creator-side unit (diamonds)."""
    CREATOR_PAYABLE = "creator-payable"
    """Money owed to a creator, awaiting payout. Negative by what is owed
    (a credit, as double-entry books keep what is owed), never positive."""
    ISSUANCE = "issuance"
    """The source of a unit, debited when coins are created."""
    SPENT = "spent"
    """The sink of coins consumed by spending (coins that left circulation)."""
    EXPIRED = "expired"
    """The sink of coins that expired unspent."""
    CLEARING = "clearing"
    """Money in transit with a payment or payout provider."""
    REVENUE = "revenue"
    """Money the platform has earned."""
    DEFERRED_REVENUE = "deferred-revenue"
    """Money received for coins not yet spent."""
    TAX_PAYABLE = "tax-payable"
    """Tax collected and owed to an authority."""
    FEES = "fees"
    """Processor fees and store commissions paid by the platform."""
    BREAKAGE = "breakage"
    """Revenue recognised from purchased coins that expired unspent."""
    CREATOR_SHARE = "creator-share"
    """The creators' share of the platform's revenue, what conversions of
    their earnings made payable to them (a cost, positive)."""
    LOSSES = "losses"
    """What refunds and chargebacks cost the platform, the money given back
    for coins already spent, less what a later settlement of the debt recovers."""

    @property
    def holder_owned(self) -> bool:
        """Whether accounts of this kind belong to a holder or creator."""
        return self in _HOLDER_OWNED


_HOLDER_OWNED = frozenset({AccountKind.WALLET, AccountKind.EARNINGS, AccountKind.CREATOR_PAYABLE})
_HOLDS_POSITIVE = frozenset({AccountKind.WALLET, AccountKind.EARNINGS})
_OWED = AccountKind.CREATOR_PAYABLE  # holder-owned, and negative by what the holder holds
_WALLET = AccountKind.WALLET


def _check_owner(instance: AccountKey, _attribute: object, owner: Any) -> None:
    check_identifier(owner, "account owner")
    if instance.kind.holder_owned:
        if owner.startswith("@"):
            raise LedgerRuleViolation(
                f"a {instance.kind.value} account belongs to a holder; "
                f"holder ids may not start with '@' (got {owner!r})"
            )
    elif owner != PLATFORM:
        raise LedgerRuleViolation(
            f"a {instance.kind.value} account is a system account owned by {PLATFORM!r}, "
            f"not {owner!r}"
        )


def _check_asset(_instance: object, _attribute: object, asset: Any) -> None:
    if not isinstance(asset, (Unit, Currency)):
        raise InvalidTypeError(f"an account holds a Unit or a Currency, not {asset!r}")


@final
@attrs.frozen(order=False, cache_hash=True)
class AccountKey:
    """The identity of a ledger account: its kind, owner and asset.

    Use the class methods rather than the constructor for the common accounts::

        >>> from coinecon import Unit
        >>> AccountKey.wallet("alice", Unit("COIN"))
        AccountKey(kind=<AccountKind.WALLET: 'wallet'>, owner='alice', asset=Unit('COIN'))

    Attributes:
        kind: what the account is for.
        owner: the holder or creator id, or :data:`PLATFORM` for system accounts.
        asset: the unit or currency it holds.
    """

    kind: AccountKind = attrs.field(validator=instance_of(AccountKind))
    owner: str = attrs.field(validator=_check_owner)
    asset: Asset = attrs.field(validator=_check_asset)

    @classmethod
    def wallet(cls, holder: str, unit: Unit) -> AccountKey:
        """The wallet of *holder* for *unit*."""
        return _key(AccountKind.WALLET, holder, unit)

    @classmethod
    def earnings(cls, creator: str, unit: Unit) -> AccountKey:
        """The earnings account of *creator* for the creator-side *unit*."""
        return _key(AccountKind.EARNINGS, creator, unit)

    @classmethod
    def issuance(cls, unit: Unit) -> AccountKey:
        """The platform's issuance account for *unit*."""
        return _key(AccountKind.ISSUANCE, PLATFORM, unit)

    @classmethod
    def spent(cls, unit: Unit) -> AccountKey:
        """The platform's sink for spent *unit*."""
        return _key(AccountKind.SPENT, PLATFORM, unit)

    @classmethod
    def expired(cls, unit: Unit) -> AccountKey:
        """The platform's sink for expired *unit*."""
        return _key(AccountKind.EXPIRED, PLATFORM, unit)

    @classmethod
    def system(cls, kind: AccountKind, asset: Asset) -> AccountKey:
        """The platform's account of *kind* for *asset*."""
        return cls(kind, PLATFORM, asset)

    @property
    def asset_code(self) -> str:
        """The code of the asset (``"COIN"``, ``"USD"``)."""
        return self.asset.code

    def __str__(self) -> str:
        # _value_ is what Enum's value property returns, without the property.
        return f"{self.kind._value_}:{self.owner}:{self.asset.code}"


def amount_of(asset: Asset, amount: int) -> Money | UnitAmount:
    """An amount in the asset's smallest unit as :class:`Money` or
    :class:`UnitAmount`."""
    if isinstance(asset, Currency):
        return Money.from_minor(amount, asset)
    return UnitAmount(amount, asset)


def _check_posting_amount(_instance: object, _attribute: object, amount: Any) -> None:
    if type(amount) is not int:
        raise InvalidTypeError(f"a posting amount is an int of the smallest unit, got {amount!r}")
    if amount == 0:
        raise InvalidAmountError("a posting amount must not be zero")
    if abs(amount) > MAX_MINOR_UNITS:  # inline: this runs for every posting built
        check_range(amount, "posting amount", BalanceLimitExceeded)


def _key(kind: AccountKind, owner: object, asset: object) -> AccountKey:
    """``AccountKey(kind, owner, asset)``, shared for the accounts used most.

    Keys are immutable, so one object can serve every caller. Only keys of a
    plain ``str`` owner and a :class:`Unit` are shared (a currency carries
    fields that its equality ignores); anything else goes straight to the
    constructor, which also gives bad input its typed errors.
    """
    if type(owner) is str and type(asset) is Unit:
        # By the unit's fields, not the unit (its hash is a Python call), and
        # by its name too: equal units may differ in it.
        found = (kind, owner, asset.code, asset.name)
        shared = _SHARED_KEYS.get(found)
        if shared is None:
            shared = AccountKey(kind, owner, asset)
            if len(_SHARED_KEYS) >= _MAX_SHARED_KEYS:
                _SHARED_KEYS.clear()  # bounded: a host may have millions of holders
            _SHARED_KEYS[found] = shared
        return shared
    return AccountKey(kind, owner, asset)  # type: ignore[arg-type]


_SHARED_KEYS: dict[tuple[AccountKind, str, str, str], AccountKey] = {}
_MAX_SHARED_KEYS = 16384


@final
@attrs.frozen(cache_hash=True)
class Posting:
    """One leg of a transaction: a signed amount on one account.

    Positive amounts are credits (the balance grows), negative are debits.

    Attributes:
        account: the account.
        amount: a non-zero whole number in the account asset's smallest unit.
    """

    account: AccountKey = attrs.field(validator=instance_of(AccountKey))
    amount: int = attrs.field(validator=_check_posting_amount)

    @property
    def value(self) -> Money | UnitAmount:
        """The amount as :class:`Money` or :class:`UnitAmount`."""
        return amount_of(self.account.asset, self.amount)

    @classmethod
    def _of(cls, account: AccountKey, amount: int) -> Posting:
        """A posting whose caller has checked *account* and *amount* as the
        constructor would: the wallet service, for the legs it makes itself
        (a wallet key it built, a positive amount within range)."""
        posting = _new(cls)
        _set_posting_account(posting, account)
        _set_posting_amount(posting, amount)
        _set_posting_hash(posting, None)  # not computed yet, as the constructor leaves it
        return posting


def _slot_setters(cls: type, *names: str) -> tuple[Callable[[object, Any], None], ...]:
    """The setters of *cls*'s slots *names*, for the builders of values their
    callers checked: a slot's own setter is several times faster than
    ``object.__setattr__``, which looks the slot up on every call."""
    return tuple(cls.__dict__[name].__set__ for name in names)


_new = object.__new__
_set_posting_account, _set_posting_amount, _set_posting_hash = _slot_setters(
    Posting, "account", "amount", "_attrs_cached_hash"
)


class TransactionKind(enum.Enum):
    """Why a transaction happened; each kind may touch wallets only in some ways.

    ======================  =====================  =====================
    kind                    may credit a wallet    may debit a wallet
    ======================  =====================  =====================
    ``PURCHASE``            yes                    no
    ``BONUS``               yes                    no
    ``PROMOTION``           yes                    no
    ``ADJUSTMENT``          yes                    yes
    ``REVERSAL``            yes                    no
    ``SPEND``, ``GIFT``     no                     yes
    ``EXPIRY``              no                     yes
    ``REFUND``              no                     yes, even below zero
    ``CHARGEBACK``          no                     yes, even below zero
    ======================  =====================  =====================
    """

    # Members are singletons that compare by identity: hash them by identity
    # too, in C (Enum's hash is Python code, run on every command).
    __hash__ = object.__hash__

    PURCHASE = "purchase"
    """Coins bought with money."""
    BONUS = "bonus"
    """Bonus coins that come with a package."""
    PROMOTION = "promotion"
    """Coins granted by a promotion."""
    ADJUSTMENT = "adjustment"
    """A correction made by support staff."""
    REVERSAL = "reversal"
    """Coins given back after a spend was undone."""
    SPEND = "spend"
    """Coins spent on a catalog item."""
    GIFT = "gift"
    """Coins spent on a gift to a creator."""
    EXPIRY = "expiry"
    """Coins that expired unspent."""
    REFUND = "refund"
    """Coins taken back because their purchase was refunded; may leave a debt."""
    CHARGEBACK = "chargeback"
    """Coins taken back after a payment reversal; may leave a debt."""
    CONVERSION = "conversion"
    """Creator-side units converted into money owed."""
    PAYOUT = "payout"
    """Money paid out to a creator."""
    SETTLEMENT = "settlement"
    """Money movements between platform accounts (payments settling)."""


_CREDITS_WALLET = frozenset(
    {
        TransactionKind.PURCHASE,
        TransactionKind.BONUS,
        TransactionKind.PROMOTION,
        TransactionKind.ADJUSTMENT,
        TransactionKind.REVERSAL,
    }
)
_DEBITS_WALLET = frozenset(
    {
        TransactionKind.SPEND,
        TransactionKind.GIFT,
        TransactionKind.EXPIRY,
        TransactionKind.REFUND,
        TransactionKind.CHARGEBACK,
        TransactionKind.ADJUSTMENT,
    }
)
_MAY_OVERDRAW = frozenset({TransactionKind.CHARGEBACK, TransactionKind.REFUND})


class PostingNotAllowed(LedgerRuleViolation):
    """A transaction of this kind may not post to this kind of account in this
    direction (a spend that credits a wallet, a purchase that debits one)."""

    rule = "kind-allows-posting"


@final
@attrs.frozen
class Cause:
    """What caused a transaction: a type (``"purchase"``, ``"gift"``...) and the
    id of that purchase, gift or payout.

    Attributes:
        type: the kind of record that caused the transaction.
        id: that record's id.
    """

    type: str = attrs.field(validator=identifier("cause type"))
    id: str = attrs.field(validator=identifier("cause id"))

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


def metadata_pairs(
    value: Mapping[str, MetadataValue] | Metadata | None, *, limits: bool = True
) -> Metadata:
    """Check *value* as a transaction's metadata; return it as sorted pairs.

    Metadata maps identifiers to JSON scalars (``str``, ``int``, ``bool`` or
    ``None``); it comes as a mapping or as the ``(key, value)`` pairs a
    :class:`Transaction` keeps::

        >>> metadata_pairs({"source": "import", "batch": 7})
        (('batch', 7), ('source', 'import'))

    Raises:
        InvalidTypeError: *value* is not a mapping or pairs, or a value is not
            a JSON scalar (a float, a list...).
        InvalidIdentifierError: a key is empty, too long, not printable, or
            given twice.
        MetadataTooLargeError: more than :data:`MAX_METADATA_KEYS` keys, a
            text value over :data:`MAX_METADATA_VALUE` characters, an integer
            beyond 64 bits, or over :data:`MAX_METADATA_BYTES` in all (unless
            *limits* is false: metadata read back from storage, which may
            predate the limits).
    """
    if value is None or (type(value) is tuple and not value):
        return ()
    given: object = value
    if isinstance(given, Mapping):
        items = list(given.items())
    elif isinstance(given, tuple) and all(type(p) is tuple and len(p) == 2 for p in given):
        items = list(given)
    else:
        raise InvalidTypeError(
            f"metadata must map str keys to str, int, bool or None, got {type(value).__name__}"
        )
    if limits and len(items) > MAX_METADATA_KEYS:
        raise MetadataTooLargeError(
            f"metadata holds at most {MAX_METADATA_KEYS} keys, got {len(items)}",
            limit="keys",
            allowed=MAX_METADATA_KEYS,
            got=len(items),
        )
    pairs = []
    size = 0
    for key, item in items:
        check_identifier(key, "metadata key")
        if item is not None and type(item) not in (str, int, bool):
            raise InvalidTypeError(
                f"metadata values are str, int, bool or None; {key!r} is {type(item).__name__}"
            )
        if limits:
            size += len(key.encode("utf-8", "surrogatepass")) + _metadata_size(key, item)
        pairs.append((key, item))
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLargeError(
            f"metadata holds at most {MAX_METADATA_BYTES} bytes of keys and values, got {size}",
            limit="bytes",
            allowed=MAX_METADATA_BYTES,
            got=size,
        )
    pairs.sort(key=_by_key)  # by key alone: values of one key may not compare
    for (key, _), (following, _) in itertools.pairwise(pairs):
        if key == following:  # only pairs can repeat a key; a mapping cannot
            raise InvalidIdentifierError(f"metadata key {key!r} is given twice")
    return tuple(pairs)


_by_key = operator.itemgetter(0)


def _metadata_size(key: str, item: MetadataValue) -> int:
    """The bytes of *item* as UTF-8 text; refuse a value over its own limit."""
    if type(item) is str:
        if len(item) > MAX_METADATA_VALUE:
            raise MetadataTooLargeError(
                f"a metadata value holds at most {MAX_METADATA_VALUE} characters; "
                f"{key!r} has {len(item)}",
                limit="value",
                allowed=MAX_METADATA_VALUE,
                got=len(item),
            )
        return len(item.encode("utf-8", "surrogatepass"))
    if type(item) is int:
        if not -_MAX_METADATA_INT - 1 <= item <= _MAX_METADATA_INT:
            raise MetadataTooLargeError(
                f"a metadata integer is a signed 64-bit integer; {key!r} needs "
                f"{item.bit_length() + 1} bits",
                limit="integer",
                allowed=64,
                got=item.bit_length() + 1,
            )
        return len(str(item))
    return 5 if item is False else 4  # false; true and null


def imbalance(postings: Iterable[Posting | RecordedPosting]) -> dict[str, int]:
    """What *postings* (or recorded postings) sum to per asset code, where that
    is not zero.

    Postings that balance give an empty ``dict``::

        >>> from coinecon import Unit
        >>> coin = Unit("COIN")
        >>> imbalance([Posting(AccountKey.issuance(coin), -5), Posting(AccountKey.spent(coin), 6)])
        {'COIN': 1}
    """
    totals: dict[Asset, int] = {}
    for posting in postings:
        asset = posting.account.asset
        totals[asset] = totals.get(asset, 0) + posting.amount
    return {asset.code: total for asset, total in totals.items() if total}


def _check_postings(instance: Transaction, _attribute: object, postings: Any) -> None:
    # One pass over the postings: this runs for every transaction built.
    if not isinstance(postings, tuple) or not postings:
        raise InvalidAmountError("a transaction needs at least one posting")
    accounts: list[AccountKey] = []
    # Sums per asset object, by identity (cheaper than hashing an asset): if
    # each object's postings sum to zero, so do each asset's, equal assets
    # being one object or several. Otherwise imbalance() sums by asset.
    totals: dict[int, int] = {}
    wallets: list[Posting] = []
    for posting in postings:
        if not isinstance(posting, Posting):
            _refuse_duplicates(accounts)  # a duplicate before it is reported first
            raise InvalidTypeError(f"postings must be Posting values, got {posting!r}")
        account = posting.account
        accounts.append(account)
        asset = id(account.asset)
        totals[asset] = totals.get(asset, 0) + posting.amount
        if account.kind is _WALLET:
            wallets.append(posting)
    if len(set(accounts)) < len(accounts):
        _refuse_duplicates(accounts)
    if any(totals.values()) and imbalance(postings):
        raise UnbalancedTransactionError(
            f"transaction {instance.id} (idempotency key {instance.idempotency_key!r}) "
            f"does not balance: postings sum to {imbalance(postings)}"
        )
    if len(wallets) == 1:  # the usual case: no transfer, one direction to allow
        allowed = _CREDITS_WALLET if wallets[0].amount > 0 else _DEBITS_WALLET
        if instance.kind in allowed:
            return
    if wallets:
        _check_kind_and_transfer(instance.kind, wallets)


def _refuse_duplicates(accounts: Iterable[AccountKey]) -> None:
    seen: set[AccountKey] = set()
    for account in accounts:
        if account in seen:
            raise LedgerRuleViolation(f"account {account} appears twice in one transaction")
        seen.add(account)


_SPENDS = frozenset({TransactionKind.SPEND, TransactionKind.GIFT})


def _check_kind_and_transfer(kind: TransactionKind, postings: Iterable[Posting]) -> None:
    """Check *postings*, every one on a wallet, against what *kind* allows."""
    debited_holders: set[str] = set()
    credited_holders: set[str] = set()
    refused: list[str] = []
    for posting in postings:
        account = posting.account
        if posting.amount > 0:
            credited_holders.add(account.owner)
            if kind not in _CREDITS_WALLET:
                refused.append(f"a {kind.value} transaction may not credit {account}")
        else:
            debited_holders.add(account.owner)
            if kind not in _DEBITS_WALLET:
                refused.append(f"a {kind.value} transaction may not debit {account}")
    # The transfer rule is checked first: it is the one a caller most needs to hear.
    if debited_holders and credited_holders and len(debited_holders | credited_holders) > 1:
        raise TransferNotAllowed(
            f"wallets are non-transferable: this transaction debits the wallet of "
            f"{sorted(debited_holders)} and credits the wallet of {sorted(credited_holders)}"
        )
    if len(debited_holders) > 1 and kind in _SPENDS:
        raise TransferNotAllowed(
            f"a holder spends only their own coins: this {kind.value} transaction debits "
            f"the wallets of {sorted(debited_holders)}"
        )
    if refused:
        raise PostingNotAllowed("; ".join(refused))


@final
@attrs.frozen
class Transaction:
    """One balanced change to the ledger.

    Building a transaction checks everything that does not depend on balances:
    the postings sum to zero per unit and currency (else
    :class:`~coinecon.errors.UnbalancedTransactionError`), each account appears
    once, the kind allows each wallet posting (else :class:`PostingNotAllowed`),
    and no wallet value moves from one holder to another (else
    :class:`~coinecon.errors.TransferNotAllowed`). :func:`check_rules` checks
    the rest against current balances.

    Attributes:
        id: unique transaction id.
        kind: why it happened.
        postings: the legs, at least one, summing to zero per asset.
        occurred_at: when it happened (timezone-aware).
        idempotency_key: the key of the command that made it.
        cause: the purchase, gift, payout... that caused it.
        metadata: extra JSON-scalar facts, as sorted pairs (see :attr:`meta`).
    """

    id: str = attrs.field(validator=identifier("transaction id"))
    kind: TransactionKind = attrs.field(validator=instance_of(TransactionKind))
    postings: tuple[Posting, ...] = attrs.field(validator=_check_postings)
    occurred_at: datetime = attrs.field(validator=aware("occurred_at"))
    idempotency_key: str = attrs.field(validator=identifier("idempotency key"))
    cause: Cause = attrs.field(validator=instance_of(Cause))
    metadata: Metadata = attrs.field(default=(), converter=metadata_pairs)

    @property
    def meta(self) -> dict[str, MetadataValue]:
        """The metadata as a new ``dict``."""
        return dict(self.metadata)

    @classmethod
    def _of(
        cls,
        id: str,  # noqa: A002 (the field's name)
        kind: TransactionKind,
        postings: tuple[Posting, ...],
        occurred_at: datetime,
        idempotency_key: str,
        cause: Cause,
        metadata: Metadata,
    ) -> Transaction:
        """A transaction whose caller has checked *kind*, *occurred_at*,
        *idempotency_key*, *cause* and *metadata* as the constructor would (the
        wallet service, on every command). The id and the postings are checked
        here, exactly as by the constructor."""
        transaction = _new(cls)
        _set_id, _set_kind, _set_postings, _set_at, _set_key, _set_cause, _set_metadata = (
            _TRANSACTION_SETTERS
        )
        _set_id(transaction, check_identifier(id, "transaction id"))
        _set_kind(transaction, kind)
        _set_postings(transaction, postings)
        _set_at(transaction, occurred_at)
        _set_key(transaction, idempotency_key)
        _set_cause(transaction, cause)
        _set_metadata(transaction, metadata)
        _check_postings(transaction, None, postings)
        return transaction

    @classmethod
    def _stored(
        cls,
        id: str,  # noqa: A002 (the field's name)
        kind: TransactionKind,
        postings: tuple[Posting, ...],
        occurred_at: datetime,
        idempotency_key: str,
        cause: Cause,
        metadata: Metadata,
    ) -> Transaction:
        """A transaction read back from storage: checked as the constructor
        checks one, but for the limits on metadata, which apply to new
        transactions only (a store may hold older ones)."""
        transaction = cls(id, kind, postings, occurred_at, idempotency_key, cause)
        object.__setattr__(transaction, "metadata", metadata_pairs(metadata, limits=False))
        return transaction

    def posting_for(self, account: AccountKey) -> Posting | None:
        """The posting on *account*, if the transaction has one."""
        for posting in self.postings:
            if posting.account == account:
                return posting
        return None


_TRANSACTION_SETTERS = _slot_setters(
    Transaction,
    "id",
    "kind",
    "postings",
    "occurred_at",
    "idempotency_key",
    "cause",
    "metadata",
)


def check_rules(
    transaction: Transaction, balances: Mapping[AccountKey, int]
) -> dict[AccountKey, int]:
    """Check *transaction* against the current *balances*; return the balances
    after it.

    Args:
        transaction: a transaction (already checked for balance and kinds).
        balances: the current balance of each account it touches; a missing
            account has balance 0.

    Returns:
        The new balance of every account the transaction touches.

    Raises:
        InsufficientFunds: a holder-owned account would go below zero (a
            creator's payable account: above zero, paid more than owed);
            :class:`~coinecon.errors.WalletFrozen` if it is in debt and would
            be debited further. Only a ``CHARGEBACK`` or a
            ``REFUND`` (money given back for coins already spent) may take a
            wallet below zero.
        BalanceLimitExceeded: a balance would leave the 64-bit range.
    """
    after: dict[AccountKey, int] = {}
    for posting in transaction.postings:
        account = posting.account
        before = balances.get(account, 0)
        new = before + posting.amount
        if abs(new) > MAX_MINOR_UNITS:
            over = abs(new) - MAX_MINOR_UNITS
            if account.kind is AccountKind.ISSUANCE:
                raise BalanceLimitExceeded(
                    f"{account.asset} in circulation would reach {-new}: beyond the "
                    f"unit's total supply limit of {MAX_MINOR_UNITS} (2^63 - 1) by {over}, "
                    f"beyond the 64-bit range of its issuance account {account}"
                )
            raise BalanceLimitExceeded(
                f"{account} would hold {new}, beyond the 64-bit range by {over}"
            )
        amount = posting.amount
        if (
            # A payable account (negative by what is owed) is overdrawn upwards.
            (new < 0 and amount < 0 and account.kind in _HOLDS_POSITIVE)
            or (new > 0 and amount > 0 and account.kind is _OWED)
        ) and transaction.kind not in _MAY_OVERDRAW:
            requested = abs(amount)
            if amount > 0:  # what the creator holds, as their own balance
                before = -before
            if before < 0:
                raise WalletFrozen(
                    f"insufficient funds: {account} is in debt ({before}) and frozen "
                    "until it is settled",
                    account=account,
                    balance=before,
                    requested=requested,
                )
            raise InsufficientFunds(
                f"insufficient funds: {account} holds {before}, "
                f"{requested - before} short of {requested}",
                account=account,
                balance=before,
                requested=requested,
            )
        after[account] = new
    return after


@final
@attrs.frozen
class RecordedPosting:
    """A posting as stored: with its place in the ledger and the running
    balance of its account after it.

    Attributes:
        sequence: position in the whole ledger, strictly increasing.
        transaction_id: the transaction it belongs to.
        account: the account.
        amount: the signed amount.
        balance_after: the account's balance once this posting was applied.
    """

    sequence: int
    transaction_id: str
    account: AccountKey
    amount: int
    balance_after: int


@final
@attrs.frozen
class HistoryEntry:
    """One line of an account's history, explaining itself.

    Attributes:
        sequence: the posting's position in the ledger (the pagination key).
        transaction_id: the transaction.
        kind: why it happened (purchase, gift, expiry...).
        occurred_at: when.
        account: the account this line is about.
        amount: the signed amount on this account.
        balance_after: the account's balance after this line.
        cause: the purchase, gift or payout behind it.
        counterparties: the other accounts of the transaction.
        idempotency_key: the key of the command that made it.
        metadata: the transaction's metadata pairs.
    """

    sequence: int
    transaction_id: str
    kind: TransactionKind
    occurred_at: datetime
    account: AccountKey
    amount: int
    balance_after: int
    cause: Cause
    counterparties: tuple[AccountKey, ...]
    idempotency_key: str
    metadata: Metadata = ()

    @property
    def value(self) -> Money | UnitAmount:
        """:attr:`amount` as :class:`Money` or :class:`UnitAmount`."""
        return amount_of(self.account.asset, self.amount)

    @classmethod
    def of(cls, posting: RecordedPosting, transaction: Transaction) -> HistoryEntry:
        """The history line of *posting*, which belongs to *transaction*."""
        return cls(
            sequence=posting.sequence,
            transaction_id=transaction.id,
            kind=transaction.kind,
            occurred_at=transaction.occurred_at,
            account=posting.account,
            amount=posting.amount,
            balance_after=posting.balance_after,
            cause=transaction.cause,
            counterparties=tuple(
                p.account for p in transaction.postings if p.account != posting.account
            ),
            idempotency_key=transaction.idempotency_key,
            metadata=transaction.metadata,
        )

    def __str__(self) -> str:
        others = ", ".join(map(str, self.counterparties))
        return (
            f"{self.occurred_at.isoformat()} {self.kind.value} {self.value} "
            f"(balance {amount_of(self.account.asset, self.balance_after)}) "
            f"for {self.cause} with {others}"
        )
