"""The SQLite ledger repository: accounts, running balances, transactions, postings."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, cast

import attrs

from coinecon import _checks
from coinecon.adapters.sqlite._rows import (
    _FAULTS,
    _account_row,
    _fault,
    _guarded,
    _guarded_fetch,
    _time,
    _transaction,
)
from coinecon.adapters.sqlite._session import _Connection
from coinecon.adapters.sqlite._sql import (
    _ACCOUNT_BY_KEY,
    _ACCOUNTS_OF,
    _CHAIN,
    _CHUNK,
    _FLUSH_ROWS,
    _LAST_ROW,
    _LAST_SEQUENCE,
    _PAGE,
    _POSTINGS_WITH_ACCOUNTS,
    _PREVIOUS_OF,
    _TRANSACTION_COLUMNS,
    _TRANSACTION_EXISTS,
    _UPSERT_ACCOUNT,
    _balances_by_id,
    _placeholders,
)

if TYPE_CHECKING:
    from coinecon.adapters.sqlite._unit_of_work import SqliteUnitOfWork


from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from coinecon.errors import (
    InvalidAmountError,
    StorageError,
)
from coinecon.ledger.idempotency import canonical_json
from coinecon.ledger.journal import (
    AccountKey,
    HistoryEntry,
    Posting,
    RecordedPosting,
    Transaction,
    TransactionKind,
)
from coinecon.money.money import MAX_MINOR_UNITS

# -- repositories -------------------------------------------------------------------


def _posting(connection: _Connection, line: Sequence[Any]) -> Posting:
    _row, account_id, kind, owner, asset_kind, code, amount = line
    account = connection.key(account_id, kind, owner, asset_kind, code)
    try:
        return Posting(account, amount)
    except _checks.UNREADABLE as error:
        raise _checks.unreadable(f"a posting on {account} in the file", error) from error


def _collect(
    connection: _Connection, lines: Sequence[Sequence[Any]], postings: dict[int, list[Posting]]
) -> None:
    """Add each of *lines* (``_POSTINGS_WITH_ACCOUNTS``) to its transaction's
    postings; a posting where another transaction's should be was put there
    by a writer other than coinecon."""
    for line in lines:
        found = postings.get(line[0])
        if found is None:
            raise _checks.unreadable(
                f"a posting of transaction row {line[0]} in the file",
                ValueError("it lies among the postings of other transactions"),
            )
        found.append(_posting(connection, line))


def _check_record(transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> list[int]:
    """The balance after each posting of *transaction*, in order; refuse
    balances after that are missing or not 64-bit integers, before anything
    of the transaction is written.

    That the postings balance is :class:`Transaction`'s own check, and SQL's
    when they are sent (see :meth:`_Pending.flush`).
    """
    afters = []
    for posting in transaction.postings:
        after = balances_after.get(posting.account)
        if type(after) is not int or not -MAX_MINOR_UNITS <= after <= MAX_MINOR_UNITS:
            if after is None:
                raise StorageError(f"no balance after given for {posting.account}")
            raise StorageError(
                f"the balance after of {posting.account} is not a 64-bit integer: {after!r}"
            )
        afters.append(after)
    return afters


class _Ledger:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    def balances(self, accounts: Collection[AccountKey]) -> dict[AccountKey, int]:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            connection = uow._work()  # noqa: SLF001
            pending = uow._pending  # noqa: SLF001
            known = pending.balances
            missing = [account for account in accounts if account not in known]
            if missing:  # read the accounts not read yet in this transaction
                known.update(
                    self._load_balances(connection, list(dict.fromkeys(missing)), pending.last)
                )
            return {account: known[account] for account in accounts}
        except _FAULTS as error:
            raise _fault(error) from error

    @staticmethod
    def _load_balances(
        connection: _Connection, wanted: list[AccountKey], last: dict[int, int | None]
    ) -> dict[AccountKey, int]:
        """The balances of *wanted*, read from the file (0 for an account not
        there yet); the last posting of each that is there goes into *last*."""
        ids = connection.ids
        known = [ids.get(account) for account in wanted]
        raw = connection.raw
        if None not in known and len(wanted) <= _CHUNK:
            found = {}
            for account_id, balance, sequence in raw.execute(_balances_by_id(len(known)), known):
                found[account_id] = balance
                last[account_id] = sequence
            return {account: found.get(ids[account], 0) for account in wanted}
        result = dict.fromkeys(wanted, 0)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            by_row = {_account_row(account): account for account in chunk}
            sql = " UNION ALL ".join([_ACCOUNT_BY_KEY] * len(by_row))
            parameters = [value for row in by_row for value in row]
            for account_id, *row, balance, sequence in raw.execute(sql, parameters):
                account = by_row[tuple(row)]
                result[account] = balance
                last[account_id] = sequence
                if account not in ids:
                    connection.learn(account, account_id)
        return result

    def record(self, transaction: Transaction, balances_after: Mapping[AccountKey, int]) -> None:
        # Guarded inline, not by @_guarded: see _fault.
        try:
            uow = self._uow
            connection = uow._writing()  # noqa: SLF001
            afters = _check_record(transaction, balances_after)
            pending = uow._pending  # noqa: SLF001
            transaction_id = transaction.id
            if (
                transaction_id in pending.transactions
                or connection.raw.execute(_TRANSACTION_EXISTS, (transaction_id,)).fetchone()
            ):
                raise StorageError(f"transaction {transaction_id!r} already exists")
            postings = transaction.postings
            row, first = connection.take_row(len(postings))
            cause = transaction.cause
            key = transaction.idempotency_key
            waiting: list[object] = [
                row,
                transaction_id,
                transaction.kind._value_,  # what .value returns, without the property
                _time(transaction.occurred_at),
                key,
                cause.type,
                cause.id,
                canonical_json(transaction.metadata) if transaction.metadata else "[]",
                first,
                len(postings),
                None,  # the fingerprint and result of its command's record, if it comes
                None,
                None,  # its event's id, type and payload (None: the result), if it comes
                None,
                None,
            ]
            pending.transactions[transaction_id] = waiting
            pending.commands.setdefault(key, waiting)
            # Past this point a failure may leave part of the transaction written:
            # the whole unit of work is rolled back instead.
            try:
                self._write(uow, connection, row, first, postings, afters)
            except BaseException:
                uow._abandon(connection)  # noqa: SLF001
                raise
        except _FAULTS as error:
            raise _fault(error) from error

    @staticmethod
    def _write(
        uow: SqliteUnitOfWork,
        connection: _Connection,
        row: int,
        sequence: int,
        postings: Sequence[Posting],
        afters: Sequence[int],
    ) -> None:
        pending = uow._pending  # noqa: SLF001
        ids = connection.ids
        known = pending.balances
        dirty = pending.dirty
        last = pending.last
        waiting = pending.postings
        for posting, after in zip(postings, afters, strict=True):
            account = posting.account
            account_id = ids.get(account)
            if account_id is None:
                account_id, previous = connection.raw.execute(
                    _UPSERT_ACCOUNT, (*_account_row(account), after)
                ).fetchone()
                connection.learn(account, account_id)
            else:
                previous = last.get(account_id, -1)
                if previous == -1:  # its balance was not read in this transaction
                    line = connection.raw.execute(_LAST_SEQUENCE, (account_id,)).fetchone()
                    if line is None:
                        raise StorageError(f"account {account} is gone from the file")
                    previous = line[0]
            dirty[account_id] = after
            last[account_id] = sequence
            known[account] = after
            waiting.append((sequence, row, account_id, posting.amount, after, previous))
            sequence += 1
        if pending.waiting() >= _FLUSH_ROWS:
            uow._send(connection)  # noqa: SLF001

    @_guarded
    def get(self, transaction_id: str) -> Transaction | None:
        header = (
            self._uow._read()  # noqa: SLF001
            .raw.execute(
                f"SELECT {_TRANSACTION_COLUMNS} FROM transactions AS t WHERE t.id = ?",
                (transaction_id,),
            )
            .fetchone()
        )
        if header is None:
            return None
        return self._load({header[0]: header})[header[0]]

    @_guarded
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
        connection = self._uow._read()  # noqa: SLF001
        if limit < 1:
            raise InvalidAmountError(f"limit must be at least 1, got {limit}")
        raw = connection.raw
        found = raw.execute(_ACCOUNT_BY_KEY, _account_row(account)).fetchone()
        if found is None:
            return []
        account_id, last = found[0], found[-1]
        connection.key(*found[:5])  # learn the id, if new to this connection
        values = None if kinds is None else {kind.value for kind in kinds}
        if values is not None and not values:
            return []
        timed = since is not None or until is not None
        # A holder's account has its postings by kind (the platform's accounts
        # have not: see the schema's history table).
        if (
            account.kind.holder_owned
            and (values is not None or timed)
            and (not timed or _in_time_order(raw))
        ):
            lines = _filtered(
                raw,
                account_id,
                limit,
                kinds=sorted(values if values is not None else _KIND_VALUES),
                low=0 if since is None else _sequence_at(raw, _time(since)),
                high=min(
                    _NO_END if until is None else _sequence_at(raw, _time(until)),
                    _NO_END if before is None else before,
                ),
            )
            return self._entries(account, lines)
        start, late = self._start(raw, account_id, last, before)
        plain = values is None and since is None and until is None and not late
        lines = self._walk(
            raw,
            account_id,
            start,
            limit,
            chunk=limit if plain else max(limit, _PAGE),
            before=before if late else None,
            kinds=values,
            since=None if since is None else _time(since),
            until=None if until is None else _time(until),
        )
        return self._entries(account, lines)

    def _entries(self, account: AccountKey, lines: Sequence[Any]) -> list[HistoryEntry]:
        """The history entries of *lines* (postings of *account* with their
        transactions' columns, as :data:`_CHAIN` reads them)."""
        if not lines:
            return []
        transactions = self._load({line[5]: line[5:] for line in lines})
        return [
            HistoryEntry.of(
                RecordedPosting(sequence, transactions[row].id, account, amount, balance_after),
                transactions[row],
            )
            for sequence, _previous, _owner, amount, balance_after, row, *_ in lines
        ]

    @staticmethod
    def _start(
        raw: sqlite3.Connection, account_id: int, last: int | None, before: int | None
    ) -> tuple[int | None, bool]:
        """Where a walk down *account_id*'s chain of postings starts, for
        entries below *before*, and whether entries at or above *before* may
        still come first (when *before* is not one of the account's postings,
        the walk starts at the newest and passes them by)."""
        if before is None or last is None or before > last:
            return last, False
        line = raw.execute(_PREVIOUS_OF, (before, account_id)).fetchone()
        if line is None:
            return last, True
        return line[0], False

    @staticmethod
    def _walk(
        raw: sqlite3.Connection,
        account_id: int,
        start: int | None,
        limit: int,
        *,
        chunk: int,
        before: int | None,
        kinds: set[str] | None,
        since: str | None,
        until: str | None,
    ) -> list[Any]:
        """Up to *limit* postings of *account_id*'s chain from *start* down
        that pass the filters, newest first, each with its transaction's
        columns; *chunk* postings are read per query."""
        chosen: list[Any] = []
        sequence = start
        while sequence is not None:
            lines = raw.execute(_CHAIN, (sequence, chunk)).fetchall()
            if not lines:
                raise _checks.unreadable(
                    f"the postings of account {account_id} in the file",
                    ValueError(f"the chain of its postings names posting {sequence}, not there"),
                )
            for line in lines:
                if line[2] != account_id:
                    raise _checks.unreadable(
                        f"the postings of account {account_id} in the file",
                        ValueError(f"posting {line[0]} of account {line[2]} is in its chain"),
                    )
                if (
                    (before is not None and line[0] >= before)
                    or (kinds is not None and line[7] not in kinds)
                    or (since is not None and line[8] < since)
                    or (until is not None and line[8] >= until)
                ):
                    continue
                chosen.append(line)
                if len(chosen) == limit:
                    return chosen
            sequence = lines[-1][1]
        return chosen

    def _load(self, headers: Mapping[int, Sequence[Any]]) -> dict[int, Transaction]:
        connection = self._uow._read()  # noqa: SLF001
        # A transaction's postings are consecutive: first_sequence and on.
        sequences = [
            sequence
            for header in headers.values()
            for sequence in range(header[8], header[8] + header[9])
        ]
        postings: dict[int, list[Posting]] = {row: [] for row in headers}
        for start in range(0, len(sequences), 500):
            chunk = sequences[start : start + 500]
            lines = connection.raw.execute(
                f"{_POSTINGS_WITH_ACCOUNTS}"
                f"WHERE p.sequence IN ({_placeholders(len(chunk))}) ORDER BY p.sequence",
                chunk,
            ).fetchall()
            _collect(connection, lines, postings)
        return {row: _transaction(header, postings[row]) for row, header in headers.items()}

    @_guarded
    def transactions(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Transaction]:
        last = _last(self._uow, "SELECT max(row) FROM transactions")
        period = _Period.of(self._uow._read().raw, since, until, "row")  # noqa: SLF001
        return self._transactions(last, period)

    def _transactions(self, last: int, period: _Period) -> Iterator[Transaction]:
        sql = (
            f"SELECT {_TRANSACTION_COLUMNS} FROM transactions AS t "
            f"WHERE t.row > ? AND t.row <= ?{period.where} ORDER BY t.row LIMIT ?"
        )
        for connection, headers in _pages(self._uow, sql, last, period):
            postings: dict[int, list[Posting]] = {header[0]: [] for header in headers}
            # Those of the page's transactions: with a period out of time
            # order, the page may pass some by.
            chosen = (
                f"AND p.transaction_row IN ({_placeholders(len(headers))}) " if period.where else ""
            )
            lines = _guarded_fetch(
                connection.raw,
                f"{_POSTINGS_WITH_ACCOUNTS}WHERE p.sequence BETWEEN ? AND ? {chosen}"
                "ORDER BY p.sequence",
                (headers[0][8], headers[-1][8] + headers[-1][9] - 1, *(postings if chosen else ())),
            )
            _collect(connection, lines, postings)
            for header in headers:
                yield _transaction(header, postings[header[0]])

    @_guarded
    def postings(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[RecordedPosting]:
        last = _last(self._uow, "SELECT max(sequence) FROM postings")
        period = _Period.of(self._uow._read().raw, since, until, "sequence")  # noqa: SLF001
        return self._postings(last, period)

    def _postings(self, last: int, period: _Period) -> Iterator[RecordedPosting]:
        sql = (
            "SELECT p.sequence, t.id, a.id, a.kind, a.owner, a.asset_kind, a.asset_code, "
            "p.amount, p.balance_after FROM postings AS p "
            "JOIN transactions AS t ON t.row = p.transaction_row "
            "JOIN accounts AS a ON a.id = p.account_id "
            f"WHERE p.sequence > ? AND p.sequence <= ?{period.where} ORDER BY p.sequence LIMIT ?"
        )
        for connection, lines in _pages(self._uow, sql, last, period):
            for sequence, transaction_id, account_id, *account, amount, after in lines:
                key = connection.key(account_id, *account)
                yield RecordedPosting(sequence, transaction_id, key, amount, after)

    @_guarded
    def accounts_of(self, owner: str) -> dict[AccountKey, int]:
        connection = self._uow._read()  # noqa: SLF001
        lines = connection.raw.execute(_ACCOUNTS_OF, (owner,)).fetchall()
        return {
            connection.key(account_id, kind, owner, asset_kind, code): balance
            for account_id, kind, owner, asset_kind, code, balance in lines
        }

    @_guarded
    def accounts(self) -> dict[AccountKey, int]:
        connection = self._uow._read()  # noqa: SLF001
        lines = connection.raw.execute(
            "SELECT id, kind, owner, asset_kind, asset_code, balance FROM accounts ORDER BY id"
        ).fetchall()
        return {
            connection.key(account_id, kind, owner, asset_kind, code): balance
            for account_id, kind, owner, asset_kind, code, balance in lines
        }


def _last(uow: SqliteUnitOfWork, sql: str) -> int:
    """The highest key a whole-table stream will yield: the rows there are
    when it is asked for (``0`` for an empty table)."""
    last: int | None = uow._read().raw.execute(sql).fetchone()[0]  # noqa: SLF001
    return last or 0


def _pages(
    uow: SqliteUnitOfWork, sql: str, last: int, period: _Period | None = None
) -> Iterator[tuple[_Connection, list[Any]]]:
    """Run *sql* page by page, keyset-paginated, while *uow* stays active.

    The first column of *sql* is the integer key it orders by; its first two
    parameters are the key to start after and the last key to read (so rows
    added while the stream is read are not yielded), then those of
    *period*'s ``where``, then the page size. Every page is read through the
    unit of work, so a stream consumed after the unit of work ended raises
    :class:`~coinecon.errors.StorageError` rather than read from a
    connection that another unit of work may hold.
    """
    after, parameters = 0, cast("tuple[str, ...]", ())
    if period is not None:
        after, last, parameters = period.first - 1, min(last, period.end - 1), period.parameters
    while after < last:
        connection = uow._read()  # noqa: SLF001
        lines = _guarded_fetch(connection.raw, sql, (after, last, *parameters, _PAGE))
        if lines:
            yield connection, lines
        if len(lines) < _PAGE:
            return
        after = lines[-1][0]


@attrs.frozen
class _Period:
    """A period of the ledger as a stream reads it: the keys (transaction
    rows or posting sequences) from *first* to before *end* (found by
    bisecting when the ledger is in time order; all of them when it is not),
    and the condition on the transactions' times that the rows must meet."""

    first: int
    end: int
    where: str
    parameters: tuple[str, ...]

    @classmethod
    def of(
        cls, raw: sqlite3.Connection, since: datetime | None, until: datetime | None, key: str
    ) -> _Period:
        where, parameters = "", cast("tuple[str, ...]", ())
        if since is not None:
            where, parameters = " AND t.occurred_at >= ?", (_time(since),)
        if until is not None:
            where, parameters = f"{where} AND t.occurred_at < ?", (*parameters, _time(until))
        first, end = 1, _NO_END
        if (since is not None or until is not None) and _in_time_order(raw):
            position = 0 if key == "row" else 1  # in what _first_at finds
            if since is not None:
                found = _first_at(raw, parameters[0])
                first = _NO_END if found is None else found[position]
            if until is not None:
                found = _first_at(raw, parameters[-1])
                end = _NO_END if found is None else found[position]
        return cls(first, end, where, parameters)


_NO_END = 2**63 - 1  # above every sequence (SQLite's largest integer)
_KIND_VALUES = frozenset(kind.value for kind in TransactionKind)
_IN_TIME_ORDER = "SELECT NOT EXISTS (SELECT 1 FROM ledger_disorder)"
_ROW_FROM = (
    "SELECT row, occurred_at, first_sequence FROM transactions WHERE row >= ? ORDER BY row LIMIT 1"
)
_OF_KIND = (
    "SELECT sequence FROM history WHERE account_id = ? AND kind = ? "
    "AND sequence >= ? AND sequence < ? ORDER BY sequence DESC LIMIT ?"
)
_POSTINGS_AT = (
    "SELECT p.sequence, p.previous, p.account_id, p.amount, p.balance_after, "
    f"{_TRANSACTION_COLUMNS} FROM postings AS p JOIN transactions AS t "
    "ON t.row = p.transaction_row WHERE p.sequence IN "
)


def _in_time_order(raw: sqlite3.Connection) -> bool:
    """Whether every transaction was recorded with a time at or after the
    one before it (the schema notes the first that was not)."""
    return bool(raw.execute(_IN_TIME_ORDER).fetchone()[0])


def _sequence_at(raw: sqlite3.Connection, when: str) -> int:
    """The first sequence of the first transaction that occurred at or after
    *when* (UTC text), or :data:`_NO_END` if none did (see :func:`_first_at`)."""
    found = _first_at(raw, when)
    return _NO_END if found is None else found[1]


def _first_at(raw: sqlite3.Connection, when: str) -> tuple[int, int] | None:
    """The row and first posting sequence of the first transaction that
    occurred at or after *when* (UTC text), or ``None`` if none did; found by
    bisecting the transactions' rows, which are in the order of their times
    (:func:`_in_time_order`)."""
    (last,) = raw.execute(_LAST_ROW).fetchone()
    found = None
    low, high = 1, last + 1
    while low < high:
        middle = (low + high) // 2
        line = raw.execute(_ROW_FROM, (middle,)).fetchone()
        if line is None or line[0] >= high:  # no row in [middle, high)
            high = middle
        elif line[1] >= when:
            found, high = (line[0], line[2]), middle
        else:
            low = line[0] + 1
    return found


def _filtered(
    raw: sqlite3.Connection,
    account_id: int,
    limit: int,
    *,
    kinds: Sequence[str],
    low: int,
    high: int,
) -> list[Any]:
    """Up to *limit* postings of *account_id* of transactions of *kinds* with
    sequences in [*low*, *high*), newest first, each with its transaction's
    columns (as :data:`_CHAIN` reads them): from the history table, a range
    of each kind."""
    if low >= high:
        return []
    sequences: list[int] = []
    for kind in kinds:
        sequences += [
            sequence for (sequence,) in raw.execute(_OF_KIND, (account_id, kind, low, high, limit))
        ]
    sequences.sort(reverse=True)
    del sequences[limit:]
    if not sequences:
        return []
    lines = raw.execute(
        f"{_POSTINGS_AT}({_placeholders(len(sequences))}) ORDER BY p.sequence DESC", sequences
    ).fetchall()
    for line in lines:
        if line[2] != account_id:
            raise _checks.unreadable(
                f"the postings of account {account_id} in the file",
                ValueError(f"posting {line[0]} of account {line[2]} is in its history"),
            )
    return lines
