r"""Exports for auditors and support staff: the ledger and account statements,
as CSV or JSON Lines.

:func:`export_ledger` writes the whole journal, one record per posting, with
the transaction it belongs to and the balance it left behind.
:func:`export_statement` writes the statement of one account, or of every
account of a holder, over an optional period: an opening balance, each posting
with the running balance, and a closing balance::

    >>> import io
    >>> from datetime import datetime, timezone
    >>> from coinecon import Cause, LotOrigin, ManualClock, Unit, Wallets
    >>> from coinecon.adapters.memory import MemoryStore
    >>> store = MemoryStore()
    >>> clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> wallets = Wallets(store, clock=clock, new_id=iter(["tx-1", "lot-1", "ev-1"]).__next__)
    >>> _ = wallets.credit("grant-1", holder="alice", amount=Unit("COIN")(50),
    ...                    origin=LotOrigin.BONUS, cause=Cause("bonus", "welcome"))
    >>> out = io.StringIO()
    >>> export_ledger(store, out, file_format="jsonl")
    2
    >>> print(out.getvalue().splitlines()[1])
    {"sequence":2,"transaction_id":"tx-1","occurred_at":"2026-01-01T00:00:00+00:00","kind":"bonus",...,"account_kind":"wallet","account_owner":"alice","asset_type":"unit","asset_code":"COIN","amount":50,"balance_after":50,"metadata":{}}

Both read inside one unit of work, so what they write is one consistent
snapshot of the store, and both stream: the ledger export writes each posting
as the store's iterators yield it, and a statement holds one page of an
account's history at a time. Amounts and balances are integers of the asset's
smallest unit (cents for USD, whole coins for a unit), never floats. Times are
ISO 8601 in UTC with their offset (``+00:00``).

CSV files follow RFC 4180 (comma-separated, ``\r\n`` line ends, quotes where
needed) with one header row; open the file with ``newline=""``. Text cells that
a spreadsheet would run as a formula are escaped unless ``escape_formulas=False``
(see :func:`escape_formula`). JSON Lines files hold one JSON object per line,
ASCII only, with integers as JSON integers.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Final, Literal, NamedTuple, Protocol, TypeAlias, cast

from coinecon import _checks
from coinecon._ids import check_identifier
from coinecon.errors import ExportError, InvalidTypeError, StorageError, ValidationError
from coinecon.ledger.journal import (
    AccountKey,
    AccountKind,
    HistoryEntry,
    Metadata,
    RecordedPosting,
    Transaction,
)
from coinecon.money.units import Unit
from coinecon.ports import LedgerRepository, Store

__all__ = [
    "LEDGER_COLUMNS",
    "STATEMENT_COLUMNS",
    "ExportFormat",
    "TextOutput",
    "escape_formula",
    "export_ledger",
    "export_statement",
]

LEDGER_COLUMNS: Final = (
    "sequence",
    "transaction_id",
    "occurred_at",
    "kind",
    "idempotency_key",
    "cause_type",
    "cause_id",
    "account_kind",
    "account_owner",
    "asset_type",
    "asset_code",
    "amount",
    "balance_after",
    "metadata",
)
"""The columns of a ledger export, in order (the CSV header row, and the keys
of each JSON Lines record).

``sequence`` is the posting's place in the whole ledger (strictly increasing);
``occurred_at``, ``kind``, ``idempotency_key``, ``cause_type``, ``cause_id`` and
``metadata`` describe its transaction; ``account_kind``, ``account_owner``,
``asset_type`` (``"unit"`` or ``"currency"``) and ``asset_code`` name its
account; ``amount`` is the signed amount posted and ``balance_after`` the
account's balance once it was applied, both integers of the asset's smallest
unit. ``metadata`` is a JSON object (in CSV, its text with sorted keys)."""

STATEMENT_COLUMNS: Final = (
    "record_type",
    "account_kind",
    "account_owner",
    "asset_type",
    "asset_code",
    "occurred_at",
    "sequence",
    "transaction_id",
    "kind",
    "idempotency_key",
    "cause_type",
    "cause_id",
    "amount",
    "balance",
    "metadata",
)
"""The columns of a statement export, in order (the CSV header row, and the
keys of a JSON Lines ``posting`` record).

``record_type`` is ``"opening"``, ``"posting"`` or ``"closing"``. An opening or
closing record holds the account, ``occurred_at`` (the start or end of the
period, empty or ``null`` when open-ended) and ``balance``; in CSV its other
cells are empty, and in JSON Lines it has only those keys. A posting record
holds what a :data:`LEDGER_COLUMNS` row holds, with ``balance`` the account's
running balance after the posting."""


class ExportFormat(enum.Enum):
    """The file formats an export writes. Functions that take one also accept
    its value, ``"csv"`` or ``"jsonl"``."""

    CSV = "csv"
    """Comma-separated values per RFC 4180, with a header row."""
    JSONL = "jsonl"
    """JSON Lines, one JSON object per line."""


FileFormat: TypeAlias = ExportFormat | Literal["csv", "jsonl"]


class TextOutput(Protocol):
    """Where an export writes: any object with a ``write(str)`` method, such as
    a file opened in text mode (``open(path, "w", newline="")``),
    ``io.StringIO`` or ``sys.stdout``."""

    def write(self, text: str, /) -> object:
        """Write *text*."""
        ...


# Cells starting with one of these are read as a formula by some spreadsheet
# (OWASP's list, ASVS's NUL, line feed, and their full-width forms); the quote
# itself is escaped too, so that removing one leading quote always recovers
# the original text.
_FORMULA_STARTS = frozenset("=+-@\t\r\n\0'\uff1d\uff0b\uff0d\uff20")

_PAGE = 500  # history entries read per query while writing a statement


def escape_formula(text: str) -> str:
    """Return *text* made safe for a spreadsheet cell.

    Text that starts with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return,
    a line feed or NUL (or the full-width forms of the first four, U+FF1D,
    U+FF0B, U+FF0D, U+FF20) could run as a formula when a CSV file is opened
    in a spreadsheet; it gets a single quote in front, as OWASP recommends.
    Text starting with a single quote gets one more, so removing one leading
    quote from a cell that starts with one always gives back the original.
    Anything else is returned unchanged::

        >>> escape_formula("=SUM(A1:A9)")
        "'=SUM(A1:A9)"
        >>> escape_formula("@platform"), escape_formula("alice")
        ("'@platform", 'alice')

    CSV exports apply it to every text cell unless ``escape_formulas=False``;
    numbers are never changed (``-500`` stays a number).
    """
    if not isinstance(text, str):
        raise InvalidTypeError(f"text must be a str, got {type(text).__name__}")
    return "'" + text if text[:1] in _FORMULA_STARTS else text


# -- arguments -------------------------------------------------------------------


def _file_format(value: object) -> ExportFormat:
    if isinstance(value, ExportFormat):
        return value
    if not isinstance(value, str):
        raise InvalidTypeError(
            f"file_format must be an ExportFormat or a str, got {type(value).__name__}"
        )
    try:
        return ExportFormat(value)
    except ValueError:
        known = ", ".join(repr(f.value) for f in ExportFormat)
        raise ValidationError(f"file_format must be one of {known}, got {value!r}") from None


def _check_output(out: object) -> TextOutput:
    binary = isinstance(out, io.RawIOBase | io.BufferedIOBase) or "b" in str(
        getattr(out, "mode", "")
    )
    if binary or not callable(getattr(out, "write", None)):
        raise InvalidTypeError(
            f"out must be a text stream with a write(str) method (a file opened in text mode, "
            f"io.StringIO...), got {out!r}"
        )
    return cast("TextOutput", out)


def _check_store(store: object) -> Store:
    _checks.store(store)
    return cast("Store", store)


def _check_flag(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise InvalidTypeError(f"{name} must be True or False, got {value!r}")
    return value


class _Request(NamedTuple):
    """The arguments every export takes, checked before anything is written."""

    store: Store
    out: TextOutput
    file_format: ExportFormat
    escape: bool
    since: datetime | None
    until: datetime | None

    @classmethod
    def of(
        cls,
        store: object,
        out: object,
        file_format: object,
        escape_formulas: object,
        since: object,
        until: object,
    ) -> _Request:
        checked_store = _check_store(store)
        checked_out = _check_output(out)
        checked_format = _file_format(file_format)
        escape = _check_flag(escape_formulas, "escape_formulas")
        start, end = _checks.period(since, until)
        return cls(checked_store, checked_out, checked_format, escape, start, end)

    def writer(self, columns: tuple[str, ...]) -> _Writer:
        return _Writer(self.out, self.file_format, columns, escape=self.escape)


# -- writing ---------------------------------------------------------------------

_Record: TypeAlias = dict[str, object]


class _Writer:
    """Writes records in one format, counting them."""

    def __init__(
        self,
        out: TextOutput,
        file_format: ExportFormat,
        columns: tuple[str, ...],
        *,
        escape: bool,
    ) -> None:
        self.count = 0
        self._columns = columns
        self._escape = escape
        self._out = out
        self._row: Callable[[Iterable[str]], object] | None = None
        if file_format is ExportFormat.CSV:
            self._row = csv.writer(out, lineterminator="\r\n").writerow
            self._row(columns)

    def write(self, record: _Record) -> None:
        if self._row is None:
            self._out.write(json.dumps(record, separators=(",", ":")) + "\n")
        else:
            self._row([self._cell(record.get(column)) for column in self._columns])
        self.count += 1

    def _cell(self, value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, int):
            return str(value)
        text = (
            json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            if isinstance(value, dict)
            else str(value)
        )
        return escape_formula(text) if self._escape else text


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _account_fields(account: AccountKey) -> _Record:
    return {
        "account_kind": account.kind.value,
        "account_owner": account.owner,
        "asset_type": "unit" if isinstance(account.asset, Unit) else "currency",
        "asset_code": account.asset.code,
    }


def _metadata(metadata: Metadata) -> dict[str, object]:
    return dict(metadata)


def _ledger_record(posting: RecordedPosting, transaction: Transaction) -> _Record:
    return {
        "sequence": posting.sequence,
        "transaction_id": transaction.id,
        "occurred_at": _time(transaction.occurred_at),
        "kind": transaction.kind.value,
        "idempotency_key": transaction.idempotency_key,
        "cause_type": transaction.cause.type,
        "cause_id": transaction.cause.id,
        **_account_fields(posting.account),
        "amount": posting.amount,
        "balance_after": posting.balance_after,
        "metadata": _metadata(transaction.metadata),
    }


def _statement_record(entry: HistoryEntry) -> _Record:
    return {
        "record_type": "posting",
        **_account_fields(entry.account),
        "occurred_at": _time(entry.occurred_at),
        "sequence": entry.sequence,
        "transaction_id": entry.transaction_id,
        "kind": entry.kind.value,
        "idempotency_key": entry.idempotency_key,
        "cause_type": entry.cause.type,
        "cause_id": entry.cause.id,
        "amount": entry.amount,
        "balance": entry.balance_after,
        "metadata": _metadata(entry.metadata),
    }


def _boundary_record(
    record_type: str, account: AccountKey, at: datetime | None, balance: int
) -> _Record:
    return {
        "record_type": record_type,
        **_account_fields(account),
        "occurred_at": _time(at),
        "balance": balance,
    }


# -- the ledger ------------------------------------------------------------------


def _journal(
    transactions: Iterable[Transaction], postings: Iterator[RecordedPosting]
) -> Iterator[tuple[RecordedPosting, Transaction]]:
    """Pair each recorded posting with its transaction.

    Both come in ledger order and a transaction's postings are recorded
    together, so one pass over each suffices: the next ``len(postings)``
    recorded postings belong to the next transaction.
    """
    for transaction in transactions:
        for _ in transaction.postings:
            recorded = next(postings, None)
            if recorded is None or recorded.transaction_id != transaction.id:
                found = "nothing" if recorded is None else f"posting {recorded.sequence}"
                raise StorageError(
                    f"the store's postings and transactions disagree: expected a posting of "
                    f"transaction {transaction.id!r}, found {found}; run Wallets.verify()"
                )
            yield recorded, transaction
    leftover = next(postings, None)
    if leftover is not None:
        raise StorageError(
            f"the store's posting {leftover.sequence} belongs to no transaction "
            f"({leftover.transaction_id!r}); run Wallets.verify()"
        )


def export_ledger(
    store: Store,
    out: TextOutput,
    *,
    file_format: FileFormat,
    since: datetime | None = None,
    until: datetime | None = None,
    escape_formulas: bool = True,
) -> int:
    """Write the ledger's journal to *out*: one record per posting, in ledger
    order, with the columns of :data:`LEDGER_COLUMNS`.

    Args:
        store: the store to read, in one unit of work that is rolled back.
        out: where to write (a text file opened with ``newline=""`` for CSV).
        file_format: an :class:`ExportFormat`, or its value ``"csv"`` or
            ``"jsonl"`` (unlike other enum arguments, text is accepted here:
            a file format usually comes from a command line or configuration).
        since: only transactions that occurred at or after this time.
        until: only transactions that occurred before this time.
        escape_formulas: in CSV, pass every text cell through
            :func:`escape_formula`; ignored for JSON Lines.

    Returns:
        The number of postings written (not counting the CSV header row).

    Raises:
        InvalidTypeError: an argument has the wrong type.
        ValidationError: an unknown *file_format*, or *until* not after *since*.
        NaiveDatetimeError: *since* or *until* has no time zone.
        StorageError: the store failed, or its postings and transactions
            disagree (the output is then incomplete).
    """
    request = _Request.of(store, out, file_format, escape_formulas, since, until)
    since, until = request.since, request.until
    writer = request.writer(LEDGER_COLUMNS)
    with request.store.unit_of_work() as uow:
        ledger = uow.ledger
        period = {"since": since, "until": until}
        for posting, transaction in _journal(
            ledger.transactions(**period), ledger.postings(**period)
        ):
            writer.write(_ledger_record(posting, transaction))
    return writer.count


# -- statements ------------------------------------------------------------------

_KIND_ORDER = {kind: position for position, kind in enumerate(AccountKind)}


def _account_order(account: AccountKey) -> tuple[int, bool, str]:
    return (_KIND_ORDER[account.kind], not isinstance(account.asset, Unit), account.asset.code)


class _Section:
    """One account's part of a statement, planned before anything is written.

    Planning walks the account's postings in the period newest first, a page at
    a time, and keeps only the cursor of each page; writing replays the pages
    oldest first. Memory stays at one page plus one cursor per page.
    """

    def __init__(
        self,
        ledger: LedgerRepository,
        account: AccountKey,
        since: datetime | None,
        until: datetime | None,
    ) -> None:
        self.account = account
        self._ledger = ledger
        self._since = since
        self._until = until
        self._cursors: list[int | None] = []
        newest: HistoryEntry | None = None
        newer: HistoryEntry | None = None
        before: int | None = None
        while True:
            page = self._page(before)
            if not page:
                break
            self._cursors.append(before)
            for entry in page:
                if newer is None:
                    newest = entry
                elif newer.balance_after - newer.amount != entry.balance_after:
                    raise self._gap(entry, newer)
                newer = entry
            if len(page) < _PAGE:
                break
            before = page[-1].sequence
        self._check_order()
        if newest is None or newer is None:  # no posting in the period
            self.opening = self.closing = self._balance_before_period()
        else:
            self.opening = newer.balance_after - newer.amount
            self.closing = newest.balance_after

    def _page(self, before: int | None) -> list[HistoryEntry]:
        return self._ledger.history(
            self.account, limit=_PAGE, before=before, since=self._since, until=self._until
        )

    def _check_order(self) -> None:
        """Check that, in ledger order, the account's postings before the
        period all come before those in it, and those all come before the ones
        after it; only then do the running balances give the balances at the
        period's bounds. A posting recorded while the clock was behind can
        break this."""
        for bound in (self._since, self._until):
            if bound is None:
                continue
            last_before = self._ledger.history(self.account, limit=1, until=bound)
            if last_before and self._ledger.history(
                self.account, limit=1, before=last_before[0].sequence, since=bound
            ):
                raise ExportError(
                    f"cannot write a statement of {self.account} for this period: a posting "
                    f"dated before {bound.isoformat()} was recorded after one dated at or after "
                    "it (while the clock was behind), so the balance at that bound is not a "
                    "running balance of the ledger; choose other period bounds or export "
                    "the ledger"
                )

    def _balance_before_period(self) -> int:
        if self._since is None:
            return 0
        last = self._ledger.history(self.account, limit=1, until=self._since)
        return last[0].balance_after if last else 0

    def _gap(self, older: HistoryEntry, newer: HistoryEntry) -> ExportError:
        return ExportError(
            f"cannot write a statement of {self.account} for this period: postings "
            f"{older.sequence} and {newer.sequence} are in it, but a posting between them "
            "in the ledger occurred outside it (recorded while the clock was behind); "
            "choose other period bounds or export the ledger"
        )

    def records(self) -> Iterator[_Record]:
        account = self.account
        yield _boundary_record("opening", account, self._since, self.opening)
        for cursor in reversed(self._cursors):
            for entry in reversed(self._page(cursor)):
                yield _statement_record(entry)
        yield _boundary_record("closing", account, self._until, self.closing)


def export_statement(
    store: Store,
    out: TextOutput,
    *,
    file_format: FileFormat,
    account: AccountKey | None = None,
    holder: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    escape_formulas: bool = True,
) -> int:
    """Write the statement of *account*, or of every account of *holder*, over
    the period [*since*, *until*) to *out*.

    Each account's section is an ``opening`` record (its balance at *since*),
    one ``posting`` record per posting in the period, oldest first, with the
    running balance after it, and a ``closing`` record (its balance at *until*),
    with the columns of :data:`STATEMENT_COLUMNS`. The opening balance plus
    the amounts always equals the closing balance. A holder's accounts
    (wallets, earnings, money owed, in each unit and currency ever posted) come
    one section after another, ordered by kind, then units before currencies,
    then code; an account never posted to has an opening and a closing record
    of 0. A holder with no accounts gets no records.

    Args:
        store: the store to read, in one unit of work that is rolled back.
        out: where to write (a text file opened with ``newline=""`` for CSV).
        file_format: an :class:`ExportFormat`, or its value ``"csv"`` or
            ``"jsonl"`` (unlike other enum arguments, text is accepted here:
            a file format usually comes from a command line or configuration).
        account: the account; give this or *holder*.
        holder: the holder or creator whose accounts to include.
        since: the start of the period (inclusive); from the first posting
            when ``None``.
        until: the end of the period (exclusive); up to the last posting when
            ``None``.
        escape_formulas: in CSV, pass every text cell through
            :func:`escape_formula`; ignored for JSON Lines.

    Returns:
        The number of records written, opening and closing ones included (not
        counting the CSV header row).

    Raises:
        InvalidTypeError: an argument has the wrong type.
        ValidationError: both or neither of *account* and *holder*, an unknown
            *file_format*, or *until* not after *since*.
        InvalidIdentifierError: *holder* is not a valid identifier.
        NaiveDatetimeError: *since* or *until* has no time zone.
        ExportError: the ledger's order of an account's postings does not
            respect the period's bounds (see the error); nothing is written.
        StorageError: the store failed.
    """
    request = _Request.of(store, out, file_format, escape_formulas, since, until)
    since, until = request.since, request.until
    chosen = _statement_accounts(account, holder)
    with request.store.unit_of_work() as uow:
        ledger = uow.ledger
        sections = [_Section(ledger, key, since, until) for key in chosen(ledger)]
        writer = request.writer(STATEMENT_COLUMNS)
        for section in sections:
            for record in section.records():
                writer.write(record)
    return writer.count


def _statement_accounts(
    account: object, holder: object
) -> Callable[[LedgerRepository], list[AccountKey]]:
    if (account is None) == (holder is None):
        raise ValidationError(
            "give either the account or the holder of the statement: exactly one of them"
        )
    if account is not None:
        if not isinstance(account, AccountKey):
            raise InvalidTypeError(f"account must be an AccountKey, got {account!r}")
        return lambda _ledger: [account]
    owner = check_identifier(holder, "holder")

    def owned(ledger: LedgerRepository) -> list[AccountKey]:
        return sorted(ledger.accounts_of(owner), key=_account_order)

    return owned
