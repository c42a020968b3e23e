"""The SQL the SQLite adapter runs on its hot paths, and its tuning constants."""

from __future__ import annotations

import sqlite3
from functools import cache

from coinecon.ledger.journal import AccountKind

_CHUNK = 100  # accounts per balance query: well below SQLite's 500 compound terms
_FLUSH_ROWS = 10_000  # buffered rows that make a unit of work send them
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_PAGE = 1000  # rows per query when a repository streams a whole table

# A transaction's row is sent with the other waiting writes, once its
# command has told it its idempotency record (see _Pending).
_INSERT_TRANSACTION = (
    "INSERT INTO transactions (row, id, kind, occurred_at, idempotency_key, cause_type, "
    "cause_id, metadata, first_sequence, postings, fingerprint, result, event_id, event_type, "
    "event_payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TRANSACTION_EXISTS = "SELECT 1 FROM transactions WHERE id = ?"
_NEXT_ROW = "SELECT coalesce(max(row), 0) + 1 FROM transactions"
_NEXT_SEQUENCE = "SELECT coalesce(max(sequence), 0) + 1 FROM postings"
# An account met for the first time by a connection: made if new, and its
# balance set; the last posting it had (its new postings chain on from there)
# comes back with its id. Its last posting is set with the others at the flush.
_UPSERT_ACCOUNT = (
    "INSERT INTO accounts (kind, owner, asset_kind, asset_code, balance) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (kind, owner, asset_kind, asset_code) DO UPDATE SET balance = excluded.balance "
    "RETURNING id, last_sequence"
)
_UPDATE_BALANCE = "UPDATE accounts SET balance = ?, last_sequence = ? WHERE id = ?"
_LAST_SEQUENCE = "SELECT last_sequence FROM accounts WHERE id = ?"
_INSERT_POSTING = (
    "INSERT INTO postings (sequence, transaction_row, account_id, amount, balance_after, "
    "previous) VALUES (?, ?, ?, ?, ?, ?)"
)
_HOLDER_KINDS = frozenset(kind.value for kind in AccountKind if kind.holder_owned)
_SHOWN_UNBALANCED = 10  # the most an error message lists
# At each flush, one pass over the postings sent since the last one sums each
# transaction per asset (CROSS JOIN keeps SQLite to this order: the new
# postings first, a range of the table's own key, rather than every posting
# of every account). A sum needs a transaction's every posting, so no
# constraint or trigger of the schema can check it row by row.
_UNBALANCED = (
    "SELECT (SELECT id FROM transactions WHERE row = p.transaction_row), a.asset_kind, "
    "a.asset_code, SUM(p.amount) "
    "FROM postings AS p CROSS JOIN accounts AS a ON a.id = p.account_id "
    "WHERE p.sequence >= ? "
    "GROUP BY p.transaction_row, a.asset_kind, a.asset_code HAVING SUM(p.amount) != 0 "
    f"ORDER BY p.transaction_row LIMIT {_SHOWN_UNBALANCED}"
)
_UPDATE_LOT = (
    "UPDATE lots SET origin = ?, amount = ?, remaining = ?, created_at = ?, transaction_id = ?, "
    "value_minor = ?, value_currency = ?, value_recognised = ?, expires_at = ?, exhausted = ? "
    "WHERE id = ? AND account_kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ?"
)
# A spend's lot update changes what it consumed, nothing else: no column of
# an index, while the lot keeps some coins.
_UPDATE_LOT_CONSUMED = "UPDATE lots SET remaining = ?, value_recognised = ? WHERE row = ?"
_UPDATE_LOT_EMPTIED = (
    "UPDATE lots SET remaining = 0, value_recognised = ?, exhausted = 1 WHERE row = ?"
)
_INSERT_IDEMPOTENCY = (
    "INSERT INTO idempotency (key, fingerprint, result, created_at) VALUES (?, ?, ?, ?)"
)
# The record of a key, wherever it is: on its command's transaction, or in
# the table of records that came without one.
_IDEMPOTENCY_RECORD = (
    "SELECT idempotency_key, fingerprint, result, occurred_at FROM transactions "
    "WHERE idempotency_key = ? AND fingerprint IS NOT NULL "
    "UNION ALL SELECT key, fingerprint, result, created_at FROM idempotency WHERE key = ? "
    "LIMIT 1"
)
# Events live on their transaction's row, or in the outbox table when they
# came without one to join; those on rows are delivered up to a cursor.
# An event on its transaction's row that has the transaction's id (every
# event of the wallet service) is stored with event_id '' and is found by the
# transaction's id; any other by its event_id, or in the outbox table.
_EVENT_EXISTS = (
    "SELECT 1 FROM transactions WHERE event_id = ? AND event_id != '' "
    "UNION ALL SELECT 1 FROM transactions WHERE id = ? AND event_id = '' "
    "UNION ALL SELECT 1 FROM outbox WHERE id = ?"
)
_ROW_EVENT_ID = "CASE t.event_id WHEN '' THEN t.id ELSE t.event_id END"
_INSERT_EVENT = (
    "INSERT INTO outbox (id, type, occurred_at, payload, transaction_id, after_row) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_LAST_ROW = "SELECT coalesce(max(row), 0) FROM transactions"
_UNDELIVERED_ON_ROWS = (
    "FROM transactions AS t WHERE t.row > (SELECT delivered_to FROM outbox_cursor) "
    "AND t.event_id IS NOT NULL "
    "AND t.row NOT IN (SELECT transaction_row FROM outbox_delivered_ahead)"
)
# Oldest first: an event on a transaction's row comes at that row; one in the
# outbox table, after the last row there was when it was added.
_PENDING_EVENTS = (
    "SELECT id, type, occurred_at, payload, transaction_id FROM ("
    f"SELECT t.row AS k, 0 AS s, t.row AS r, {_ROW_EVENT_ID} AS id, t.event_type AS type, "
    "t.occurred_at AS occurred_at, coalesce(t.event_payload, t.result) AS payload, "
    f"t.id AS transaction_id {_UNDELIVERED_ON_ROWS} "
    "UNION ALL SELECT o.after_row, 1, o.row, o.id, o.type, o.occurred_at, o.payload, "
    "o.transaction_id FROM outbox AS o WHERE o.delivered_at IS NULL"
    ") ORDER BY k, s, r LIMIT ?"
)
_FIRST_UNDELIVERED_ROW = f"SELECT min(t.row) {_UNDELIVERED_ON_ROWS}"
_INSERT_CONSUMPTION_ITEM = (
    "INSERT INTO lot_consumptions (transaction_id, position, lot_id, amount, "
    "value_minor, value_currency) VALUES (?, ?, ?, ?, ?, ?)"
)
_ACCOUNT_BY_KEY = (
    "SELECT id, kind, owner, asset_kind, asset_code, balance, last_sequence FROM accounts "
    "WHERE kind = ? AND owner = ? AND asset_kind = ? AND asset_code = ?"
)
# One owner's accounts: the unique index on (kind, owner, ...) finds them,
# one kind at a time, without reading every account.
_ACCOUNTS_OF = (
    "SELECT id, kind, owner, asset_kind, asset_code, balance FROM accounts "
    f"WHERE kind IN ({', '.join(repr(kind.value) for kind in AccountKind)}) AND owner = ? "
    "ORDER BY id"
)
_TRANSACTION_COLUMNS = (
    "t.row, t.id, t.kind, t.occurred_at, t.idempotency_key, t.cause_type, t.cause_id, "
    "t.metadata, t.first_sequence, t.postings"
)
# A history walks down an account's chain of postings (each names the
# account's posting before it), a chunk of them per query, newest first, each
# with its transaction's columns.
_CHAIN = (
    "WITH RECURSIVE chain (sequence) AS (VALUES (?) UNION ALL "
    "SELECT p.previous FROM chain AS c JOIN postings AS p ON p.sequence = c.sequence "
    "WHERE p.previous IS NOT NULL LIMIT ?) "
    "SELECT p.sequence, p.previous, p.account_id, p.amount, p.balance_after, "
    f"{_TRANSACTION_COLUMNS} FROM chain CROSS JOIN postings AS p ON p.sequence = chain.sequence "
    "JOIN transactions AS t ON t.row = p.transaction_row ORDER BY p.sequence DESC"
)
_PREVIOUS_OF = "SELECT previous FROM postings WHERE sequence = ? AND account_id = ?"
# The postings of some transactions with their accounts (add a WHERE on
# p.sequence: a transaction's postings are first_sequence and the next
# ones), as _posting reads them.
_POSTINGS_WITH_ACCOUNTS = (
    "SELECT p.transaction_row, a.id, a.kind, a.owner, a.asset_kind, a.asset_code, p.amount "
    "FROM postings AS p JOIN accounts AS a ON a.id = p.account_id "
)


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


@cache
def _balances_by_id(count: int) -> str:
    return f"SELECT id, balance, last_sequence FROM accounts WHERE id IN ({_placeholders(count)})"
