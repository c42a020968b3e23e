"""Every error coinecon raises, under one root: :class:`CoineconError`.

Each error also subclasses the standard exception it resembles, so a caller can
catch either the precise coinecon error or the familiar built-in one::

    >>> from coinecon import Money, CoineconError
    >>> try:
    ...     Money(1.5, "USD")
    ... except TypeError as error:
    ...     isinstance(error, CoineconError)
    True
"""

from __future__ import annotations

__all__ = [
    "AmountMismatchError",
    "AmountOutOfRangeError",
    "BalanceLimitExceeded",
    "CoineconError",
    "CurrencyMismatchError",
    "ExportError",
    "FloatNotAllowedError",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidAmountError",
    "InvalidCurrencyError",
    "InvalidIdentifierError",
    "InvalidPriceBookError",
    "InvalidPriceError",
    "InvalidPromotionError",
    "InvalidQuoteError",
    "InvalidRateError",
    "InvalidRegionError",
    "InvalidScheduleError",
    "InvalidTypeError",
    "InvalidUnitError",
    "LedgerRuleViolation",
    "LimitExceeded",
    "MetadataTooLargeError",
    "NaiveDatetimeError",
    "NotAvailableError",
    "NotEligibleError",
    "NotFoundError",
    "PrecisionError",
    "PriceBookInvalidError",
    "PricingProblemError",
    "QuoteExpiredError",
    "QuoteMismatchError",
    "RefundTooLargeError",
    "StorageError",
    "TransferNotAllowed",
    "UnbalancedTransactionError",
    "UnitMismatchError",
    "UnknownCurrencyError",
    "ValidationError",
    "WalletFrozen",
]


class CoineconError(Exception):
    """The root of every error coinecon raises.

    Catch this to handle any failure that comes from the library itself.
    """


class ValidationError(CoineconError, ValueError):
    """An input value is malformed or out of its allowed range.

    The parent of every "bad value" error; catch it to handle any refused input.
    Nothing is changed when it is raised.
    """


class InvalidTypeError(CoineconError, TypeError):
    """A value of the wrong type was given (a ``bool`` for an amount, an object
    where a code was expected...)."""


class FloatNotAllowedError(InvalidTypeError):
    """A ``float`` was given where an exact amount, price or rate is required.

    Binary floating point cannot represent most decimal fractions (``0.1 + 0.2
    != 0.3``), so coinecon refuses floats everywhere. Pass an ``int``, a
    ``decimal.Decimal``, a ``fractions.Fraction`` or a decimal string instead.
    """


class InvalidAmountError(ValidationError):
    """An amount is malformed: not a number, NaN, infinite, or not a whole number
    where one is required."""


class AmountOutOfRangeError(InvalidAmountError):
    """An amount is too large in magnitude to be stored exactly.

    Amounts are limited to what a signed 64-bit integer holds in the smallest
    unit (see :data:`coinecon.money.money.MAX_MINOR_UNITS`), the range every storage
    adapter can keep without loss.
    """


class PrecisionError(InvalidAmountError):
    """An amount has more decimal places than its currency allows and no
    rounding was given."""


class InvalidCurrencyError(ValidationError):
    """A currency definition is malformed (bad code or exponent) or conflicts
    with one already registered."""


class UnknownCurrencyError(CoineconError, LookupError):
    """A currency code is not in the registry.

    Attributes:
        code: the code that was looked up.
    """

    def __init__(self, code: str) -> None:
        super().__init__(
            f"unknown currency code {code!r}: not an active ISO 4217 code and not "
            "registered with coinecon.register_currency()"
        )
        self.code = code


class InvalidUnitError(ValidationError):
    """A virtual unit definition is malformed (bad code)."""


class InvalidRateError(ValidationError):
    """A rate is malformed or out of its allowed range."""


class AmountMismatchError(CoineconError, TypeError):
    """Two amounts that cannot be combined were combined: money and a virtual
    unit, or amounts in different currencies or units."""


class CurrencyMismatchError(AmountMismatchError):
    """Money in two different currencies was added, subtracted or compared.

    Attributes:
        left: the currency code on the left of the operation.
        right: the currency code on the right.
    """

    def __init__(self, left: str, right: str, operation: str) -> None:
        super().__init__(f"cannot {operation} {left} and {right}: currencies differ")
        self.left = left
        self.right = right


class UnitMismatchError(AmountMismatchError):
    """Amounts of two different virtual units, or of a unit and money, were
    combined.

    Attributes:
        left: a description of the left operand's unit.
        right: a description of the right operand's unit or type.
    """

    def __init__(self, left: str, right: str, operation: str) -> None:
        super().__init__(f"cannot {operation} {left} and {right}: units differ")
        self.left = left
        self.right = right


class NaiveDatetimeError(ValidationError):
    """A ``datetime`` without a time zone was given.

    Naive datetimes are ambiguous (whose midnight?), so every time coinecon
    accepts must carry ``tzinfo``.
    """


# -- ledger, wallets and storage ------------------------------------------------


class InvalidIdentifierError(ValidationError):
    """An identifier (account holder, idempotency key, SKU...) is empty, too
    long, or contains a character that is not printable."""


class MetadataTooLargeError(ValidationError):
    """A transaction's metadata is over one of its limits
    (:data:`~coinecon.ledger.journal.MAX_METADATA_KEYS` and the others of
    :mod:`coinecon.ledger.journal`): metadata is for a few facts about a
    transaction, kept with it forever.

    Attributes:
        limit: which limit: ``"keys"``, ``"value"``, ``"integer"`` or ``"bytes"``.
        allowed: the most the limit allows.
        got: what the metadata had.
    """

    def __init__(self, message: str, *, limit: str, allowed: int, got: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.allowed = allowed
        self.got = got


class LedgerRuleViolation(CoineconError, ValueError):
    """A ledger transaction breaks an account rule and was refused as a whole.

    Nothing was written. The subclasses name the rule.

    Attributes:
        rule: a short, stable name of the rule that was broken.
    """

    rule = "ledger-rule"


class UnbalancedTransactionError(LedgerRuleViolation):
    """A transaction's postings do not sum to zero for some unit or currency."""

    rule = "balanced"


class InsufficientFunds(LedgerRuleViolation):
    """A spend would take an account below zero, or the account is in debt and
    frozen until the debt is settled.

    Attributes:
        account: the account that would go below zero.
        balance: its balance before the transaction, in its smallest unit.
        requested: the amount the transaction debits from it.
        shortfall: by how much the balance falls short (``requested - balance``
            when the balance is not negative).
    """

    rule = "no-overdraft"

    def __init__(self, message: str, *, account: object, balance: int, requested: int) -> None:
        super().__init__(message)
        self.account = account
        self.balance = balance
        self.requested = requested
        self.shortfall = requested - max(balance, 0)


class WalletFrozen(InsufficientFunds):
    """The wallet is in debt (a refund or chargeback took back coins already
    spent), and every debit is refused until a purchase or an adjustment
    credits enough to settle it. Nothing is changed."""

    rule = "frozen-in-debt"


class BalanceLimitExceeded(LedgerRuleViolation):
    """A posting would take a balance beyond what storage holds exactly
    (a signed 64-bit integer). Nothing is clipped: the transaction is refused."""

    rule = "balance-limit"


class TransferNotAllowed(LedgerRuleViolation):
    """A transaction would move value from one holder's wallet to another's.

    Wallets are non-transferable: coins leave a wallet only to the platform
    (spending, expiry, reversal), never to another holder.
    """

    rule = "non-transferable"


class IdempotencyConflict(CoineconError, ValueError):
    """An idempotency key was reused with a different request.

    A replay of the same request returns the first result; the same key with a
    different request is refused with this error and changes nothing.

    Attributes:
        key: the idempotency key.
        fields: the fields of the request that differ from the first one's,
            sorted (empty when the first was stored without them).
    """

    def __init__(self, key: str, fields: tuple[str, ...] = ()) -> None:
        differ = (
            f": {', '.join(fields)} {'differs' if len(fields) == 1 else 'differ'}" if fields else ""
        )
        super().__init__(
            f"idempotency key {key!r} was already used for a different request{differ}"
        )
        self.key = key
        self.fields = fields


class NotFoundError(CoineconError, LookupError):
    """A record (transaction, lot, account) that was asked for does not exist."""


class StorageError(CoineconError, RuntimeError):
    """The storage backend failed: a corrupt or foreign file, a lock held past
    the time-out, a full disk, a read-only file, or a schema newer than this
    version of coinecon. Nothing was half-written."""


class ExportError(CoineconError, ValueError):
    """An export cannot be written as asked; nothing was written.

    A statement's balances are the ledger's running balances, so each
    account's postings must come in ledger order as they fall in time around
    the period: those dated before it first, then those in it, then those
    after it. If a posting was recorded on the wrong side of a bound (the clock
    was set back meanwhile), the period cannot be stated: choose other bounds,
    or export the ledger.
    """


# -- pricing ----------------------------------------------------------------------


class InvalidPriceError(ValidationError):
    """A price is malformed: zero or negative, not :class:`~coinecon.money.money.Money`,
    or in a currency that does not fit where it is used."""


class InvalidPriceBookError(ValidationError):
    """A price book, coin package, tier or fee schedule is malformed as data: a
    bad SKU, storefront or region code, a duplicate entry, coins that are not a
    positive whole number, bounds in the wrong order."""


class InvalidPromotionError(ValidationError):
    """A promotion is malformed: an unknown kind of offer, a rate out of range,
    a recurrence rule (RRULE) that does not parse, an unknown time zone."""


class InvalidScheduleError(ValidationError):
    """An availability window is malformed: a recurrence rule (RRULE) that
    does not parse, recurs more often than hourly or never fires, a rule
    without a start or duration, an unknown time zone."""


class InvalidQuoteError(ValidationError):
    """A quote's parts do not add up to its totals, or a quote was asked for
    with malformed input (no coins and no SKU, a non-positive validity...)."""


class QuoteExpiredError(InvalidQuoteError):
    """A quote was presented outside its validity (before it was made or at
    or after its expiry). Nothing is charged: ask for a new quote."""


class QuoteMismatchError(InvalidQuoteError):
    """A quote is not what the price book gives for it now: altered after it
    was made, or made for a buyer whose history has changed since (a first
    purchase made meanwhile, a promotion used up). Nothing is charged: ask
    for a new quote."""


class InvalidRegionError(ValidationError):
    """A region is not an assigned ISO 3166-1 alpha-2 code (``UK`` for
    ``GB``, ``ZZ``); the message names the likely intended code."""


class RefundTooLargeError(InvalidAmountError):
    """A refund or chargeback would give back more than the payment took.

    Attributes:
        allowed: the most that may still be given back (:class:`~coinecon.money.money.Money`).
    """

    def __init__(self, message: str, *, allowed: object) -> None:
        super().__init__(message)
        self.allowed = allowed


class NotEligibleError(CoineconError, ValueError):
    """The holder may not do this: not of age without a parental consent, no
    age attestation, a region where it is not offered; a gift to oneself, or
    to a creator who may not receive it.

    Attributes:
        holder: the holder refused (for a gift: its sender, or the creator
            who may not receive it).
        reason: a stable code: ``"no-attestation"``, ``"not-adult"``,
            ``"attestation-region"``, ``"region"``; for gifts also ``"age"``
            (the gift's minimum age), ``"self-gift"``, ``"not-receiving"``,
            ``"suspended"``.
    """

    def __init__(self, message: str, *, holder: str, reason: str) -> None:
        super().__init__(message)
        self.holder = holder
        self.reason = reason


class LimitExceeded(CoineconError, ValueError):
    """A purchase or payout would break a limit: the holder's budget, the
    platform's velocity limit or maximum wallet balance; a payout's minimum or
    cap per period. Refused before any charge or payout; nothing is changed.

    Attributes:
        limit: a stable code: ``"budget"``, ``"purchases-per-hour"``,
            ``"wallet-balance"``, ``"payout-minimum"``, ``"payout-cap"``.
        allowed: the limit (:class:`~coinecon.money.money.Money` for a
            budget or a payout limit, an int otherwise).
        remaining: what is left of it before this purchase or payout, of the
            same type (for a payout minimum: what the creator is owed).
    """

    def __init__(self, message: str, *, limit: str, allowed: object, remaining: object) -> None:
        super().__init__(message)
        self.limit = limit
        self.allowed = allowed
        self.remaining = remaining


class NotAvailableError(CoineconError, LookupError):
    """What was asked for is not on sale here: a region the price book does not
    sell in, a storefront or currency without a price, an unknown SKU or payment
    method, a custom amount outside the allowed range.

    The message names what was asked; coinecon never falls back to a default
    region, currency or price.
    """


class PricingProblemError(ValidationError):
    """A price book cannot price a request consistently (a quantity in a tier gap
    or in two overlapping tiers), or one error found by ``PriceBook.check()``.

    Attributes:
        where: the place in the price book, such as ``"package coins_500, USD/web"``.
        message: what is wrong there.
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class PriceBookInvalidError(CoineconError, ExceptionGroup[PricingProblemError], ValueError):
    """Every error ``PriceBook.validate()`` found in a price book, at once.

    An :class:`ExceptionGroup` of :class:`PricingProblemError`, so ``except*``
    can pick them apart; also a ``ValueError``.
    """

    def derive(  # type: ignore[override]
        self, excs: list[PricingProblemError] | tuple[PricingProblemError, ...]
    ) -> PriceBookInvalidError:
        """Return a group of the same type holding *excs* (``except*`` uses it)."""
        return PriceBookInvalidError(self.message, excs)
