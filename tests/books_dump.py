"""Everything a store's ports read back, as plain JSON: what a schema
migration must keep (``test_sqlite_migration.py`` compares a migrated file's
dump with the one taken before).

Not a test module: test modules import it (``tests/`` is on pytest's path).
"""

from __future__ import annotations

from typing import Any

from coinecon.ledger.journal import AccountKey, Transaction
from coinecon.ledger.lots import Lot
from coinecon.ports import Store


def _transaction(transaction: Transaction) -> dict[str, Any]:
    return {
        "id": transaction.id,
        "kind": transaction.kind.value,
        "postings": [[str(p.account), p.amount] for p in transaction.postings],
        "occurred_at": transaction.occurred_at.isoformat(),
        "idempotency_key": transaction.idempotency_key,
        "cause": [transaction.cause.type, transaction.cause.id],
        "metadata": [list(pair) for pair in transaction.metadata],
    }


def _lot(lot: Lot) -> dict[str, Any]:
    return {
        "id": lot.id,
        "account": str(lot.account),
        "origin": lot.origin.value,
        "amount": lot.amount,
        "remaining": lot.remaining,
        "created_at": lot.created_at.isoformat(),
        "transaction_id": lot.transaction_id,
        "value": None if lot.value is None else str(lot.value),
        "value_recognised": lot.value_recognised,
        "expires_at": None if lot.expires_at is None else lot.expires_at.isoformat(),
    }


def dump(store: Store, keys: list[str]) -> dict[str, Any]:
    """What *store* reads back: accounts, every account's whole history,
    every transaction with what it consumed, every lot, the records of
    *keys* and the events not delivered yet."""
    with store.unit_of_work() as uow:
        accounts: dict[AccountKey, int] = uow.ledger.accounts()
        transactions = list(uow.ledger.transactions())
        history = {
            str(account): [
                [e.sequence, e.transaction_id, e.amount, e.balance_after]
                for e in uow.ledger.history(account, limit=10_000)
            ]
            for account in accounts
        }
        consumed = {
            t.id: [
                [c.lot_id, c.amount, None if c.value is None else str(c.value)]
                for c in uow.lots.consumption(t.id)
            ]
            for t in transactions
        }
        records = {}
        for key in keys:
            record = uow.idempotency.get(key)
            records[key] = (
                None
                if record is None
                else [record.fingerprint, record.result, record.created_at.isoformat()]
            )
        return {
            "accounts": {str(a): balance for a, balance in sorted(accounts.items(), key=str)},
            "transactions": [_transaction(t) for t in transactions],
            "by_id": {
                t.id: _transaction(t) == _transaction(uow.ledger.get(t.id) or t)
                for t in transactions
            },
            "history": history,
            "consumed": consumed,
            "lots": [_lot(lot) for lot in uow.lots.all()],
            "records": records,
            "pending": [
                [e.id, e.type, e.occurred_at.isoformat(), e.payload, e.transaction_id]
                for e in uow.outbox.pending(limit=10_000)
            ],
        }
