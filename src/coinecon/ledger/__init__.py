"""The books: a double-entry journal, the lots behind wallet balances, and the
wallet service on top of them.

* ``coinecon.ledger.journal``: accounts, postings, transactions and the
  rules every transaction obeys;
* ``coinecon.ledger.lots``: lots (slices of a wallet with their origin,
  value and expiry) and the order spends consume them in;
* ``coinecon.ledger.idempotency``: fingerprints and the stored first result
  of every idempotency key;
* ``coinecon.ledger.events``: outbox events and the sink they are
  delivered to;
* ``coinecon.ledger.verification``: recomputing every balance from the
  postings;
* ``coinecon.ledger.wallets``: :class:`Wallets`, the service that credits,
  spends and expires coins on any store.

Every public name is importable from here::

    >>> from coinecon.ledger import AccountKey, AccountKind
    >>> from coinecon.money import Unit
    >>> AccountKey.wallet("alice", Unit("COIN")).kind is AccountKind.WALLET
    True
"""

from coinecon.ledger.events import EventSink, OutboxEvent
from coinecon.ledger.idempotency import IdempotencyRecord, canonical_json, fingerprint
from coinecon.ledger.journal import (
    PLATFORM,
    AccountKey,
    AccountKind,
    Asset,
    Cause,
    HistoryEntry,
    Metadata,
    Posting,
    PostingNotAllowed,
    RecordedPosting,
    Transaction,
    TransactionKind,
    amount_of,
    check_rules,
    imbalance,
    metadata_pairs,
)
from coinecon.ledger.lots import (
    Lot,
    LotConsumption,
    LotOrigin,
    SpendOrder,
    plan_spend,
    take_from_lots,
)
from coinecon.ledger.verification import VerificationReport, verify_books
from coinecon.ledger.wallets import (
    CreditResult,
    ExpiryResult,
    HistoryPage,
    PruneResult,
    SpendResult,
    Wallets,
)

__all__ = [
    "PLATFORM",
    "AccountKey",
    "AccountKind",
    "Asset",
    "Cause",
    "CreditResult",
    "EventSink",
    "ExpiryResult",
    "HistoryEntry",
    "HistoryPage",
    "IdempotencyRecord",
    "Lot",
    "LotConsumption",
    "LotOrigin",
    "Metadata",
    "OutboxEvent",
    "Posting",
    "PostingNotAllowed",
    "PruneResult",
    "RecordedPosting",
    "SpendOrder",
    "SpendResult",
    "Transaction",
    "TransactionKind",
    "VerificationReport",
    "Wallets",
    "amount_of",
    "canonical_json",
    "check_rules",
    "fingerprint",
    "imbalance",
    "metadata_pairs",
    "plan_spend",
    "take_from_lots",
    "verify_books",
]
