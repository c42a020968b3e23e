"""The PostgreSQL lot repository: lots, read in spend order from indexes, and
what spends consumed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from coinecon.adapters.postgres._rows import (
    LOT_COLUMNS,
    RetryableStorageError,
    account,
    account_row,
    guarded,
    lot,
    lot_values,
    moved,
)
from coinecon.clock import as_utc
from coinecon.errors import InvalidAmountError, InvalidTypeError, StorageError
from coinecon.ledger.journal import AccountKey
from coinecon.ledger.lots import (
    MERGE_WINDOW,
    Lot,
    LotConsumption,
    LotOrigin,
    SpendOrder,
    merge_candidate,
)
from coinecon.money.money import Money

if TYPE_CHECKING:
    from coinecon.adapters.postgres._unit_of_work import PostgresUnitOfWork

_OF_ACCOUNT = (
    "owner = %(owner)s AND account_kind = %(kind)s AND asset_kind = %(asset_kind)s "
    "AND asset_code = %(code)s AND remaining > 0"
)
_ADD = f"""
    INSERT INTO {{s}}.lots ({LOT_COLUMNS})
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (id) DO NOTHING
"""
_UPDATE = """
    UPDATE {s}.lots SET origin = %s, amount = %s, remaining = %s, created_at = %s,
        transaction_id = %s, value_minor = %s, value_currency = %s, value_recognised = %s,
        expires_at = %s
    WHERE id = %s AND account_kind = %s AND owner = %s AND asset_kind = %s AND asset_code = %s
"""
_ACCOUNT_OF = "SELECT account_kind, owner, asset_kind, asset_code FROM {s}.lots WHERE id = %s"
_GET = f"SELECT {LOT_COLUMNS} FROM {{s}}.lots WHERE id = %s"
_OPEN = f"SELECT {LOT_COLUMNS} FROM {{s}}.lots WHERE {_OF_ACCOUNT} ORDER BY row"
_LAPSED = f"""
    SELECT {LOT_COLUMNS} FROM {{s}}.lots WHERE {_OF_ACCOUNT} AND expires_at <= %(now)s
    ORDER BY expires_at, id
"""
_EXPIRED = f"""
    SELECT {LOT_COLUMNS} FROM {{s}}.lots
    WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= %s
    ORDER BY expires_at, id LIMIT %s
"""
_MERGEABLE = f"""
    SELECT {LOT_COLUMNS} FROM {{s}}.lots
    WHERE {_OF_ACCOUNT} AND expires_at IS NULL AND origin <> 'purchase'
    ORDER BY created_at DESC, id DESC LIMIT {MERGE_WINDOW}
"""
_LOTS = f"SELECT {LOT_COLUMNS} FROM {{s}}.lots WHERE id = ANY(%s::text[])"
_ALL = f"SELECT {LOT_COLUMNS} FROM {{s}}.lots ORDER BY row"
# SpendOrder.key as SQL (false sorts before true), as the indexes hold it.
_ORDERS = {
    SpendOrder.OLDEST_FIRST: "created_at, id",
    SpendOrder.EXPIRING_FIRST: (
        "expires_at IS NULL, (origin = 'purchase' AND expires_at IS NULL), "
        "coalesce(expires_at, created_at), created_at, id"
    ),
    SpendOrder.PURCHASED_FIRST: (
        "origin <> 'purchase', expires_at IS NULL, coalesce(expires_at, created_at), created_at, id"
    ),
}
# The lots a spend takes: those not lapsed, in spend order, up to the first
# at which they cover the amount.
_SPENDABLE = {
    order: f"""
        SELECT {LOT_COLUMNS} FROM (
            SELECT *, sum(remaining) OVER (ORDER BY {keys} ROWS UNBOUNDED PRECEDING) AS running
            FROM {{s}}.lots
            WHERE {_OF_ACCOUNT} AND (expires_at IS NULL OR expires_at > %(now)s)
        ) AS l
        WHERE running - remaining < %(coins)s
        ORDER BY {keys}
    """
    for order, keys in _ORDERS.items()
}
_CONSUME = """
    INSERT INTO {s}.lot_consumptions (
        transaction_id, owner, position, lot_id, amount, value_minor, value_currency
    )
    SELECT
        %(id)s, (SELECT l.owner FROM {s}.lots AS l WHERE l.id = x.lot_id), x.n - 1, x.lot_id,
        x.amount, x.value_minor, x.value_currency
    FROM unnest(
        %(lots)s::text[], %(amounts)s::bigint[], %(minors)s::bigint[], %(currencies)s::text[]
    ) WITH ORDINALITY AS x (lot_id, amount, value_minor, value_currency, n)
    WHERE NOT EXISTS (SELECT 1 FROM {s}.lot_consumptions WHERE transaction_id = %(id)s)
    ORDER BY x.n
    ON CONFLICT DO NOTHING
"""
_CONSUME_NEW = """
    INSERT INTO {s}.lot_consumptions (
        transaction_id, owner, position, lot_id, amount, value_minor, value_currency
    )
    SELECT
        %(id)s, (SELECT l.owner FROM {s}.lots AS l WHERE l.id = x.lot_id), x.n - 1, x.lot_id,
        x.amount, x.value_minor, x.value_currency
    FROM unnest(
        %(lots)s::text[], %(amounts)s::bigint[], %(minors)s::bigint[], %(currencies)s::text[]
    ) WITH ORDINALITY AS x (lot_id, amount, value_minor, value_currency, n)
"""
_CONSUMPTION = """
    SELECT lot_id, amount, value_minor, value_currency FROM {s}.lot_consumptions
    WHERE transaction_id = %s ORDER BY position
"""


# The lots a unit of work read or added and then changed, written in one
# statement with its commit; a lot gone meanwhile (none ever is) fails it.
_UPDATE_MANY = """
    WITH u AS (
        UPDATE {s}.lots AS l SET origin = x.origin, amount = x.amount,
            remaining = x.remaining, created_at = x.created_at,
            transaction_id = x.transaction_id, value_minor = x.value_minor,
            value_currency = x.value_currency, value_recognised = x.value_recognised,
            expires_at = x.expires_at
        FROM unnest(
            %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::text[],
            %s::bigint[], %s::text[], %s::bigint[], %s::timestamptz[]
        ) AS x (
            id, origin, amount, remaining, created_at, transaction_id, value_minor,
            value_currency, value_recognised, expires_at
        )
        WHERE l.id = x.id
        RETURNING 1
    )
    SELECT CASE WHEN count(*) = %s THEN 0
        ELSE ('coinecon: a lot changed in this unit of work is gone: ' || count(*))::integer END
    FROM u
"""


def update_many(updates: list[tuple[object, ...]]) -> tuple[str, list[object]]:
    """The statement and parameters writing *updates* (``lot_values``)."""
    columns = [list(column) for column in zip(*updates, strict=True)]
    # The id, then the columns an update changes (not the account's).
    return _UPDATE_MANY, [columns[0], *columns[5:], len(updates)]


def _of(account: AccountKey, **more: object) -> dict[str, object]:
    kind, owner, asset_kind, code = account_row(account)
    return {"owner": owner, "kind": kind, "asset_kind": asset_kind, "code": code, **more}


class _Lots:
    """See :class:`coinecon.ports.LotRepository`.

    Reading a holder's lots locks the holder's account first, as reading its
    balance does (the wallet service reads a wallet's lots before its
    balance): what a command read of them cannot change before it commits.
    """

    def __init__(self, uow: PostgresUnitOfWork) -> None:
        self._uow = uow

    def _read(self, text: str, parameters: object) -> list[Lot]:
        """The lots of a query, remembered as read (see :meth:`update`)."""
        uow = self._uow
        uow.flush()
        found = [lot(line) for line in uow.execute(text, parameters)]
        accounts = uow.lot_accounts
        for one in found:
            accounts[one.id] = one.account
        return found

    def _lock(self, accounts: list[AccountKey]) -> None:
        uow = self._uow
        unlocked = [a for a in dict.fromkeys(accounts) if guarded(a) and a not in uow.locked]
        if unlocked:
            uow.ledger._read(unlocked)  # noqa: SLF001

    def add(self, lot: Lot) -> None:
        uow = self._uow
        if lot.id in uow.lot_updates:
            uow.flush()
        if uow.execute(_ADD, lot_values(lot)).rowcount != 1:
            raise RetryableStorageError(f"lot {lot.id!r} already exists")
        uow.lot_accounts[lot.id] = lot.account

    def update(self, lot: Lot) -> None:
        """Store *lot*: at the commit if this unit of work read or added it
        (its account known, it cannot be gone), else at once."""
        uow = self._uow
        values = lot_values(lot)
        known = uow.lot_accounts.get(lot.id)
        if known is not None:
            uow.connection()
            if known is not lot.account and known != lot.account:
                raise StorageError(moved(lot, known))
            uow.lot_updates[lot.id] = values
            return
        if uow.execute(_UPDATE, (*values[5:], *values[:5])).rowcount == 1:
            uow.lot_accounts[lot.id] = lot.account
            return
        stored = self._uow.execute(_ACCOUNT_OF, (lot.id,)).fetchone()
        if stored is None:
            raise StorageError(f"lot {lot.id!r} does not exist")
        raise StorageError(moved(lot, account(*stored)))

    def get(self, lot_id: str) -> Lot | None:
        found = self._read(_GET, (lot_id,))
        return found[0] if found else None

    def open_lots(self, account: AccountKey) -> list[Lot]:
        self._lock([account])
        return self._read(_OPEN, _of(account))

    def spendable(
        self, account: AccountKey, order: SpendOrder, now: datetime, coins: int
    ) -> list[Lot]:
        if not isinstance(order, SpendOrder):
            raise InvalidTypeError(f"order must be a SpendOrder, got {order!r}")
        parameters = _of(account, now=as_utc(now, "now"), coins=max(coins, 1))
        self._lock([account])
        return self._read(_SPENDABLE[order], parameters)

    def mergeable(self, account: AccountKey, origin: LotOrigin) -> Lot | None:
        if not isinstance(origin, LotOrigin):
            raise InvalidTypeError(f"origin must be a LotOrigin, got {origin!r}")
        self._lock([account])
        newest = self._read(_MERGEABLE, _of(account))
        return merge_candidate(newest, origin)

    def expired(self, now: datetime, *, limit: int) -> list[Lot]:
        now = as_utc(now, "now")
        self._uow.connection()
        if limit < 1:
            return []
        due = self._read(_EXPIRED, (now, limit))
        accounts = [found.account for found in due]
        if not any(guarded(a) and a not in self._uow.locked for a in accounts):
            return due
        # Read again once their holders' accounts are locked: a spend may
        # have taken from them meanwhile.
        self._lock(accounts)
        again = {found.id: found for found in self._read(_LOTS, ([found.id for found in due],))}
        return [
            fresh
            for found in due
            if (fresh := again.get(found.id)) is not None
            and fresh.remaining > 0
            and fresh.expires_at is not None
            and fresh.expires_at <= now
        ]

    def lapsed(self, account: AccountKey, now: datetime) -> list[Lot]:
        parameters = _of(account, now=as_utc(now, "now"))
        self._lock([account])
        return self._read(_LAPSED, parameters)

    def all(self) -> Iterator[Lot]:
        self._uow.flush()
        return map(lot, self._uow.stream(_ALL))

    def record_consumption(self, transaction_id: str, consumed: Sequence[LotConsumption]) -> None:
        if not consumed:
            raise InvalidAmountError("a consumption lists at least one lot; this one is empty")
        uow = self._uow
        parameters = {
            "id": transaction_id,
            "lots": [c.lot_id for c in consumed],
            "amounts": [c.amount for c in consumed],
            "minors": [None if c.value is None else c.value.minor for c in consumed],
            "currencies": [None if c.value is None else c.value.currency.code for c in consumed],
        }
        if ("consumption", transaction_id) in uow.deferred:
            raise StorageError(f"consumption of {transaction_id!r} already recorded")
        if transaction_id in uow.recorded:
            # Of a transaction this unit of work recorded: none can be there.
            uow.defer("consumption", transaction_id, _CONSUME_NEW, parameters)
            return
        written = uow.execute(_CONSUME, parameters).rowcount
        if written != len(consumed):
            # None written: recorded already. Some: a concurrent unit of
            # work recorded it meanwhile, and this one must not commit.
            raise RetryableStorageError(f"consumption of {transaction_id!r} already recorded")

    def consumption(self, transaction_id: str) -> list[LotConsumption]:
        self._uow.flush()
        return [
            LotConsumption(
                lot_id, amount, None if minor is None else Money.from_minor(minor, currency)
            )
            for lot_id, amount, minor, currency in self._uow.execute(
                _CONSUMPTION, (transaction_id,)
            )
        ]
