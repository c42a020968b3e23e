"""The PostgreSQL ledger repository: accounts, balances, transactions, postings."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from coinecon.adapters.postgres._rows import (
    SHARDED,
    TRANSACTION_COLUMNS,
    RetryableStorageError,
    account,
    guarded,
    metadata_text,
    transaction,
)
from coinecon.clock import as_utc
from coinecon.errors import InvalidAmountError, StorageError
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    HistoryEntry,
    Posting,
    RecordedPosting,
    Transaction,
    TransactionKind,
)
from coinecon.money.money import MAX_MINOR_UNITS

if TYPE_CHECKING:
    from coinecon.adapters.postgres._unit_of_work import PostgresUnitOfWork

_NO_END = 2**63 - 1

# The holders' accounts locked in the order of their ids (so that two units
# of work wait rather than deadlock), and the platform's summed from their
# shards without a lock, in one round trip.
_BALANCES = """
    WITH locked AS (
        SELECT id, balance FROM {s}.accounts WHERE id = ANY(%(holders)s::bigint[])
        ORDER BY id FOR NO KEY UPDATE
    )
    SELECT id, balance FROM locked
    UNION ALL
    SELECT account_id, sum(balance)::bigint FROM {s}.account_shards
    WHERE account_id = ANY(%(platform)s::bigint[]) GROUP BY account_id
"""

# One statement writes a transaction: its row (unless its id is taken),
# its postings (numbered row * 65536 + place), the holders' balances and
# the platform's shards.
_RECORD = """
    WITH t AS (
        INSERT INTO {s}.transactions (
            row, id, kind, occurred_at, idempotency_key, cause_type, cause_id, metadata, postings
        )
        VALUES (
            nextval('{s}.transaction_rows'), %(id)s, %(kind)s, %(occurred_at)s, %(key)s,
            %(cause_type)s, %(cause_id)s, %(metadata)s, %(count)s
        )
        ON CONFLICT (id) DO NOTHING
        RETURNING row
    ), p AS (
        INSERT INTO {s}.postings (
            sequence, account_id, owner, kind, amount, balance_after, correction
        )
        SELECT t.row * 65536 + x.n, x.account_id, x.owner, %(kind)s, x.amount, x.after, x.correction
        FROM t, unnest(
            %(ids)s::bigint[], %(owners)s::text[], %(amounts)s::bigint[], %(afters)s::bigint[],
            %(corrections)s::bigint[]
        ) WITH ORDINALITY AS x (account_id, owner, amount, after, correction, n)
        RETURNING 1
    ), g AS (
        UPDATE {s}.accounts AS a SET balance = x.balance, posted = true
        FROM t, unnest(%(holders)s::bigint[], %(balances)s::bigint[]) AS x (id, balance)
        WHERE a.id = x.id
        RETURNING 1
    ), u AS (
        INSERT INTO {s}.account_shards AS s (account_id, owner, shard, balance)
        SELECT x.id, x.owner, %(shard)s, x.delta
        FROM t, unnest(
            %(platform)s::bigint[], %(platform_owners)s::text[], %(deltas)s::bigint[]
        ) AS x (id, owner, delta)
        ORDER BY x.id
        ON CONFLICT (account_id, shard) DO UPDATE SET balance = s.balance + excluded.balance
        RETURNING 1
    )
    SELECT (SELECT row FROM t), (SELECT count(*) FROM p), (SELECT count(*) FROM g),
        (SELECT count(*) FROM u)
"""

# A debit of a sharded account (a creator's earnings) first locks the
# account's row, which credits never lock: debits of one account take turns.
# Its shards are then summed by a statement of their own, whose snapshot
# holds what the debit before it committed (shard rows it added included).
_LOCK_ACCOUNT = "SELECT 1 FROM {s}.accounts WHERE id = %s FOR NO KEY UPDATE"
_SUM_SHARDS = "SELECT sum(balance)::bigint FROM {s}.account_shards WHERE account_id = %s"
_MAY_GO_INTO_DEBT = frozenset({TransactionKind.CHARGEBACK, TransactionKind.REFUND})
_POSTING_COLUMNS = "p.sequence, a.kind, a.owner, a.asset_kind, a.asset_code, p.amount"
_GET = f"""
    SELECT {TRANSACTION_COLUMNS}, {_POSTING_COLUMNS}
    FROM {{s}}.transactions AS t
    JOIN {{s}}.postings AS p ON p.sequence > t.row * 65536 AND p.sequence < (t.row + 1) * 65536
    JOIN {{s}}.accounts AS a ON a.id = p.account_id
    WHERE t.id = %s ORDER BY p.sequence
"""
_LOAD = f"""
    SELECT {TRANSACTION_COLUMNS}, {_POSTING_COLUMNS}
    FROM unnest(%s::bigint[]) AS r (row)
    JOIN {{s}}.transactions AS t ON t.row = r.row
    JOIN {{s}}.postings AS p ON p.sequence > t.row * 65536 AND p.sequence < (t.row + 1) * 65536
    JOIN {{s}}.accounts AS a ON a.id = p.account_id
    ORDER BY p.sequence
"""
_FILTERS = """
    AND (%(kinds)s::text[] IS NULL OR p.kind = ANY(%(kinds)s::text[]))
    AND t.occurred_at >= coalesce(%(since)s::timestamptz, '-infinity')
    AND t.occurred_at < coalesce(%(until)s::timestamptz, 'infinity')
"""
_HISTORY_OF_HOLDER = f"""
    SELECT p.sequence, p.amount, p.balance_after, t.row
    FROM {{s}}.postings AS p JOIN {{s}}.transactions AS t ON t.row = p.sequence / 65536
    WHERE p.account_id = %(account)s AND p.sequence < %(before)s {_FILTERS}
    ORDER BY p.sequence DESC LIMIT %(limit)s
"""
# The running balance of a platform account, added up over its postings
# (O(its postings before the page)).
_HISTORY_OF_PLATFORM = f"""
    SELECT p.sequence, p.amount, p.running::bigint, t.row
    FROM (
        SELECT sequence, amount, kind,
            sum(amount + correction) OVER (ORDER BY sequence ROWS UNBOUNDED PRECEDING) AS running
        FROM {{s}}.postings WHERE account_id = %(account)s AND sequence < %(before)s
    ) AS p
    JOIN {{s}}.transactions AS t ON t.row = p.sequence / 65536
    WHERE true {_FILTERS}
    ORDER BY p.sequence DESC LIMIT %(limit)s
"""
_TRANSACTIONS = f"""
    SELECT {TRANSACTION_COLUMNS}, {_POSTING_COLUMNS}
    FROM {{s}}.postings AS p
    JOIN {{s}}.transactions AS t ON t.row = p.sequence / 65536
    JOIN {{s}}.accounts AS a ON a.id = p.account_id
    ORDER BY p.sequence
"""
_TRANSACTIONS_OF_PERIOD = f"""
    SELECT {TRANSACTION_COLUMNS}, {_POSTING_COLUMNS}
    FROM {{s}}.transactions AS t
    JOIN {{s}}.postings AS p ON p.sequence > t.row * 65536 AND p.sequence < (t.row + 1) * 65536
    JOIN {{s}}.accounts AS a ON a.id = p.account_id
    WHERE t.occurred_at >= coalesce(%(since)s::timestamptz, '-infinity')
        AND t.occurred_at < coalesce(%(until)s::timestamptz, 'infinity')
    ORDER BY t.row, p.sequence
"""
_POSTINGS = """
    SELECT p.sequence, t.id, a.kind, a.owner, a.asset_kind, a.asset_code, p.amount,
        p.balance_after, p.correction, true
    FROM {s}.postings AS p
    JOIN {s}.transactions AS t ON t.row = p.sequence / 65536
    JOIN {s}.accounts AS a ON a.id = p.account_id
    ORDER BY p.sequence
"""
# A period's postings: from the first of its first transaction on (in one
# snapshot), after a row (sequence 0) per platform account with its balance
# before them: its shards less its postings from there on.
_POSTINGS_OF_PERIOD = """
    WITH period AS (
        SELECT coalesce(min(row), 70368744177663) * 65536 AS start FROM {s}.transactions
        WHERE occurred_at >= coalesce(%(since)s::timestamptz, '-infinity')
            AND occurred_at < coalesce(%(until)s::timestamptz, 'infinity')
    ), base AS (
        SELECT s.account_id, s.total - coalesce((
            SELECT sum(p.amount + p.correction) FROM {s}.postings AS p, period
            WHERE p.account_id = s.account_id AND p.sequence > period.start
        ), 0) AS balance
        FROM (
            SELECT account_id, sum(balance) AS total FROM {s}.account_shards GROUP BY account_id
        ) AS s
    )
    SELECT 0::bigint, NULL::text, a.kind, a.owner, a.asset_kind, a.asset_code,
        b.balance::bigint, NULL::bigint, 0::bigint, false
    FROM base AS b JOIN {s}.accounts AS a ON a.id = b.account_id
    UNION ALL
    SELECT * FROM (
        SELECT p.sequence, t.id, a.kind, a.owner, a.asset_kind, a.asset_code, p.amount,
            p.balance_after, p.correction,
            t.occurred_at >= coalesce(%(since)s::timestamptz, '-infinity')
                AND t.occurred_at < coalesce(%(until)s::timestamptz, 'infinity')
        FROM period, {s}.postings AS p
        JOIN {s}.transactions AS t ON t.row = p.sequence / 65536
        JOIN {s}.accounts AS a ON a.id = p.account_id
        WHERE p.sequence > period.start
        ORDER BY p.sequence
    ) AS later
"""
_ACCOUNT_BALANCES = f"""
    SELECT a.kind, a.owner, a.asset_kind, a.asset_code, a.posted OR {SHARDED}, CASE
        WHEN {SHARDED} THEN (
            SELECT sum(s.balance)::bigint FROM {{s}}.account_shards AS s
            WHERE s.account_id = a.id
        )
        ELSE a.balance END
    FROM {{s}}.accounts AS a
"""
_ACCOUNTS = _ACCOUNT_BALANCES + " ORDER BY a.id"
_ACCOUNTS_OF = _ACCOUNT_BALANCES + " WHERE a.owner = %s ORDER BY a.id"


class _Ledger:
    """See :class:`coinecon.ports.LedgerRepository`."""

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        uow = self._uow
        uow.connection()
        locked, seen = uow.locked, uow.seen
        wanted = [a for a in dict.fromkeys(accounts) if a not in locked and a not in seen]
        if wanted:
            self._read(wanted)
        return {a: locked[a] if a in locked else seen[a] for a in accounts}

    def _read(self, wanted: list[AccountKey]) -> None:
        uow = self._uow
        ids = uow.account_ids(wanted)
        holders = [a for a in wanted if guarded(a)]
        platform = [a for a in wanted if not guarded(a)]
        found = dict(
            uow.execute(
                _BALANCES,
                {"holders": [ids[a] for a in holders], "platform": [ids[a] for a in platform]},
            ).fetchall()
        )
        for a in holders:
            uow.locked[a] = found[ids[a]]
        for a in platform:
            uow.seen[a] = found.get(ids[a], 0)

    def record(self, transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> None:
        uow = self._uow
        uow.connection()
        postings = transaction.postings
        afters = _afters(postings, balances_after)
        locked, seen = uow.locked, uow.seen
        unread = [p.account for p in postings if p.account not in locked and p.account not in seen]
        if unread:
            self._read(unread)  # locks the holders' before the transaction takes its row
        ids = uow.account_ids([p.account for p in postings])
        owners: list[str] = []
        amounts: list[int] = []
        rows_after: list[int | None] = []
        corrections: list[int] = []
        holders: list[int] = []
        balances: list[int] = []
        platform: list[int] = []
        platform_owners: list[str] = []
        deltas: list[int] = []
        for posting, after in zip(postings, afters, strict=True):
            key = posting.account
            owners.append(key.owner)
            amounts.append(posting.amount)
            if guarded(key):
                rows_after.append(after)
                corrections.append(0)
                holders.append(ids[key])
                balances.append(after)
            else:
                # The platform's balance moves by what the service says it
                # moved, from the balance it read: usually the amount.
                delta = after - seen[key]
                rows_after.append(None)
                corrections.append(delta - posting.amount)
                platform.append(ids[key])
                platform_owners.append(key.owner)
                deltas.append(delta)
        debits = [
            (p.account, ids[p.account])
            for p in postings
            if p.account.kind is AccountKind.EARNINGS
            and balances_after[p.account] < seen[p.account]
        ]
        if debits:
            self._recheck(transaction, debits)
        line = uow.execute(
            _RECORD,
            {
                "id": transaction.id,
                "kind": transaction.kind.value,
                "occurred_at": as_utc(transaction.occurred_at, "occurred_at"),
                "key": transaction.idempotency_key,
                "cause_type": transaction.cause.type,
                "cause_id": transaction.cause.id,
                "metadata": metadata_text(transaction),
                "count": len(postings),
                "ids": [ids[p.account] for p in postings],
                "owners": owners,
                "amounts": amounts,
                "afters": rows_after,
                "corrections": corrections,
                "holders": holders,
                "balances": balances,
                "platform": platform,
                "platform_owners": platform_owners,
                "deltas": deltas,
                "shard": uow.shard,
            },
        ).fetchone()
        if line is None or line[0] is None:
            raise RetryableStorageError(f"transaction {transaction.id!r} already exists")
        uow.recorded.add(transaction.id)
        for posting, after in zip(postings, afters, strict=True):
            if guarded(posting.account):
                locked[posting.account] = after
            else:
                seen[posting.account] = after

    def _recheck(self, transaction: Transaction, debits: list[tuple[AccountKey, int]]) -> None:
        """Before a debit of a creator's earnings (a sharded account with a
        floor), take the account's turn (its row's lock: debits of it go one
        at a time, credits never wait) and check that its balance is at least
        the one the service checked the debit against. A credit meanwhile
        leaves the debit safe (the balance after it is then higher); a debit
        meanwhile makes the work run again (:class:`RetryableStorageError`)."""
        if transaction.kind in _MAY_GO_INTO_DEBT:
            return
        uow = self._uow
        for key, account_id in debits:
            uow.execute(_LOCK_ACCOUNT, (account_id,))
            line = uow.execute(_SUM_SHARDS, (account_id,)).fetchone()
            total = 0 if line is None or line[0] is None else line[0]
            if total < uow.seen[key]:
                raise RetryableStorageError(
                    f"the balance of {key} fell since it was read: read it again"
                )

    def get(self, transaction_id: str) -> Transaction | None:
        lines = self._uow.execute(_GET, (transaction_id,)).fetchall()
        return next(_assemble(lines), None)

    def history(
        self,
        account: AccountKey,
        *,
        limit: int,
        before: int | None = None,
        kinds: Collection[TransactionKind] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[HistoryEntry]:
        uow = self._uow
        uow.connection()
        if type(limit) is not int or limit < 1:
            raise InvalidAmountError(f"limit must be at least 1, got {limit}")
        if kinds is not None and not kinds:
            return []
        account_id = uow.find_id(account)
        if account_id is None:
            return []
        lines = uow.execute(
            _HISTORY_OF_HOLDER if guarded(account) else _HISTORY_OF_PLATFORM,
            {
                "account": account_id,
                "before": _NO_END if before is None else min(before, _NO_END),
                "kinds": None if kinds is None else sorted({kind.value for kind in kinds}),
                "since": None if since is None else as_utc(since, "since"),
                "until": None if until is None else as_utc(until, "until"),
                "limit": limit,
            },
        ).fetchall()
        if not lines:
            return []
        rows = sorted({line[3] for line in lines})
        loaded = dict(zip(rows, _assemble_rows(uow, rows), strict=True))
        return [
            HistoryEntry.of(
                RecordedPosting(sequence, loaded[row].id, account, amount, after), loaded[row]
            )
            for sequence, amount, after, row in lines
        ]

    def transactions(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Transaction]:
        uow = self._uow
        if since is None and until is None:
            return _assemble(uow.stream(_TRANSACTIONS))
        return _assemble(uow.stream(_TRANSACTIONS_OF_PERIOD, _period(since, until)))

    def postings(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[RecordedPosting]:
        uow = self._uow
        if since is None and until is None:
            return _recorded(uow.stream(_POSTINGS))
        return _recorded(uow.stream(_POSTINGS_OF_PERIOD, _period(since, until)))

    def accounts(self) -> dict[AccountKey, int]:
        return _posted(self._uow.execute(_ACCOUNTS))

    def accounts_of(self, owner: str) -> dict[AccountKey, int]:
        return _posted(self._uow.execute(_ACCOUNTS_OF, (owner,)))


def _afters(postings: Sequence[Posting], balances_after: Mapping[AccountKey, int]) -> list[int]:
    """The balance after each of *postings*; refuse missing ones and ones
    beyond 64 bits before anything is written."""
    afters = []
    for posting in postings:
        after = balances_after.get(posting.account)
        if type(after) is not int or not -MAX_MINOR_UNITS <= after <= MAX_MINOR_UNITS:
            if after is None:
                raise StorageError(f"no balance after given for {posting.account}")
            raise StorageError(
                f"the balance after of {posting.account} is not a 64-bit integer: {after!r}"
            )
        afters.append(after)
    return afters


def _period(since: datetime | None, until: datetime | None) -> dict[str, datetime | None]:
    return {
        "since": None if since is None else as_utc(since, "since"),
        "until": None if until is None else as_utc(until, "until"),
    }


def _assemble(lines: Iterable[Sequence[Any]]) -> Iterator[Transaction]:
    """The transactions of *lines* (a transaction's header, then one posting
    of it, in the order of the postings)."""
    header: Sequence[Any] | None = None
    postings: list[Posting] = []
    for line in lines:
        if header is None or line[0] != header[0]:
            if header is not None:
                yield transaction(header, postings)
            header, postings = line[:9], []
        postings.append(Posting(account(*line[10:14]), line[14]))
    if header is not None:
        yield transaction(header, postings)


def _assemble_rows(uow: PostgresUnitOfWork, rows: list[int]) -> list[Transaction]:
    """The transactions of *rows*, in the order of the rows."""
    found = list(_assemble(uow.execute(_LOAD, (rows,)).fetchall()))
    if len(found) != len(rows):
        raise StorageError(f"transactions of rows {rows} are missing their postings")
    return found


def _recorded(lines: Iterator[Sequence[Any]]) -> Iterator[RecordedPosting]:
    """The postings of *lines*, with the running balance of each platform
    account added up as they come (from a line of sequence 0 giving its
    balance before them, if there is one)."""
    running: dict[AccountKey, int] = {}
    started = False
    for (
        sequence,
        transaction_id,
        kind,
        owner,
        asset_kind,
        code,
        amount,
        after,
        correction,
        inside,
    ) in lines:
        key = account(kind, owner, asset_kind, code)
        if sequence == 0:
            if started:
                raise StorageError("a stream of postings read its opening balances late")
            running[key] = amount
            continue
        started = True
        balance = after
        if balance is None:
            balance = running.get(key, 0) + amount + correction
            running[key] = balance
        if inside:
            yield RecordedPosting(sequence, transaction_id, key, amount, balance)


def _posted(lines: Iterable[Sequence[Any]]) -> dict[AccountKey, int]:
    """The accounts of *lines* ever posted to, with their balances."""
    return {
        account(kind, owner, asset_kind, code): balance
        for kind, owner, asset_kind, code, posted, balance in lines
        if posted and balance is not None
    }
