"""The PostgreSQL schema of coinecon and the migrations that build it.

``MIGRATIONS[i]`` takes a schema from version ``i`` to ``i + 1`` (version 0
is an empty schema), so the latest version is ``len(MIGRATIONS)``. Every
statement names its tables through ``{s}``, the schema's identifier, put in
by :func:`psycopg.sql.SQL.format`; none takes a parameter. :func:`migrate`
runs every pending step in one transaction, under an advisory lock taken on
the schema's name, and records each version it reached in
``coinecon_schema``.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from coinecon.errors import StorageError

POSTINGS_PER_TRANSACTION = 65536
"""A posting's sequence is its transaction's row times this, plus its place
(from 1) in the transaction: a transaction holds at most this many minus one
postings, and the postings of one transaction follow each other."""

NO_DEBT_MESSAGE = "a debit takes a holder's account below zero outside a chargeback or refund"
"""The error the schema raises for such a posting, whoever writes it."""
OVERPAID_MESSAGE = "a posting pays a creator more than their payable account owes them"
"""The error the schema raises for a posting taking a creator's payable
account (negative by what is owed) above zero, whoever writes it."""

_VERSION_1: Sequence[str] = (
    # Accounts: a wallet or payable account keeps its balance on its row,
    # locked by the unit of work that reads it; a platform or earnings
    # account's balance is the sum of its shards (account_shards), which no
    # reader locks.
    """
    CREATE TABLE {s}.accounts (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        owner text NOT NULL,
        asset_kind text NOT NULL CHECK (asset_kind IN ('unit', 'money')),
        asset_code text NOT NULL,
        balance bigint NOT NULL DEFAULT 0,
        posted boolean NOT NULL DEFAULT false,
        UNIQUE (kind, owner, asset_kind, asset_code),
        CHECK ((owner <> '@platform' AND kind <> 'earnings') OR (balance = 0 AND NOT posted))
    )
    """,
    "CREATE INDEX accounts_of_owner ON {s}.accounts (owner)",
    """
    CREATE TABLE {s}.account_shards (
        account_id bigint NOT NULL,
        owner text NOT NULL,
        shard smallint NOT NULL CHECK (shard >= 0),
        balance bigint NOT NULL,
        PRIMARY KEY (account_id, shard)
    )
    """,
    """
    CREATE TABLE {s}.transactions (
        row bigint PRIMARY KEY,
        id text NOT NULL UNIQUE,
        kind text NOT NULL,
        occurred_at timestamptz NOT NULL,
        idempotency_key text NOT NULL,
        cause_type text NOT NULL,
        cause_id text NOT NULL,
        metadata text NOT NULL,
        postings integer NOT NULL CHECK (postings > 0 AND postings < 65536)
    )
    """,
    "CREATE SEQUENCE {s}.transaction_rows AS bigint",
    "CREATE INDEX transactions_by_time ON {s}.transactions (occurred_at, row)",
    # A posting on a wallet or payable account stores its balance after; one
    # on a sharded account stores NULL, and readers add up its postings
    # (amount plus correction: what the service gave as the balance after
    # beyond the amount).
    """
    CREATE TABLE {s}.postings (
        sequence bigint PRIMARY KEY,
        account_id bigint NOT NULL,
        owner text NOT NULL,
        kind text NOT NULL,
        amount bigint NOT NULL CHECK (amount <> 0),
        balance_after bigint,
        correction bigint NOT NULL DEFAULT 0,
        CHECK (sequence % 65536 > 0),
        CHECK (correction = 0 OR balance_after IS NULL)
    )
    """,
    "CREATE INDEX postings_history ON {s}.postings (account_id, sequence)",
    "CREATE INDEX postings_history_by_kind ON {s}.postings (account_id, kind, sequence)",
    f"""
    CREATE FUNCTION {{s}}.postings_no_debt() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        IF NEW.kind NOT IN ('chargeback', 'refund') AND (
            (NEW.amount < 0 AND NEW.balance_after < 0 AND (
                SELECT kind FROM {{s}}.accounts WHERE id = NEW.account_id
            ) IN ('wallet', 'earnings'))
            OR (NEW.amount > 0 AND NEW.balance_after > 0 AND (
                SELECT kind FROM {{s}}.accounts WHERE id = NEW.account_id
            ) = 'creator-payable')
        ) THEN
            RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = CASE
                WHEN NEW.amount < 0 THEN '{NO_DEBT_MESSAGE.replace("'", "''")}'
                ELSE '{OVERPAID_MESSAGE}' END;
        END IF;
        RETURN NEW;
    END
    $body$
    """,
    """
    CREATE TRIGGER postings_no_debt BEFORE INSERT ON {s}.postings FOR EACH ROW
    WHEN ((NEW.amount < 0 AND NEW.balance_after < 0) OR (NEW.amount > 0 AND NEW.balance_after > 0))
    EXECUTE FUNCTION {s}.postings_no_debt()
    """,
    """
    CREATE FUNCTION {s}.append_only() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
            MESSAGE = 'the ledger is append-only: ' || TG_TABLE_NAME || ' are never changed';
    END
    $body$
    """,
    *(
        f"""
        CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {{s}}.{table}
        FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.append_only()
        """
        for table in ("transactions", "postings")
    ),
    # Lots, by id (compared as Python compares text: COLLATE "C").
    """
    CREATE TABLE {s}.lots (
        row bigserial PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        account_kind text NOT NULL,
        owner text NOT NULL,
        asset_kind text NOT NULL CHECK (asset_kind IN ('unit', 'money')),
        asset_code text NOT NULL,
        origin text NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        remaining bigint NOT NULL CHECK (remaining BETWEEN 0 AND amount),
        created_at timestamptz NOT NULL,
        transaction_id text NOT NULL,
        value_minor bigint CHECK (value_minor >= 0),
        value_currency text,
        value_recognised bigint NOT NULL
            CHECK (value_recognised BETWEEN 0 AND coalesce(value_minor, 0)),
        expires_at timestamptz CHECK (expires_at > created_at),
        CHECK ((value_minor IS NULL) = (value_currency IS NULL))
    )
    """,
    """
    CREATE INDEX lots_open ON {s}.lots (owner, account_kind, asset_kind, asset_code, row)
        WHERE remaining > 0
    """,
    """
    CREATE INDEX lots_oldest_first ON {s}.lots
        (owner, account_kind, asset_kind, asset_code, created_at, id) WHERE remaining > 0
    """,
    """
    CREATE INDEX lots_expiring_first ON {s}.lots (
        owner, account_kind, asset_kind, asset_code, (expires_at IS NULL),
        (origin = 'purchase' AND expires_at IS NULL), coalesce(expires_at, created_at),
        created_at, id
    ) WHERE remaining > 0
    """,
    """
    CREATE INDEX lots_purchased_first ON {s}.lots (
        owner, account_kind, asset_kind, asset_code, (origin <> 'purchase'),
        (expires_at IS NULL), coalesce(expires_at, created_at), created_at, id
    ) WHERE remaining > 0
    """,
    """
    CREATE INDEX lots_expiring ON {s}.lots (expires_at, id)
        WHERE remaining > 0 AND expires_at IS NOT NULL
    """,
    """
    CREATE TABLE {s}.lot_consumptions (
        transaction_id text NOT NULL,
        owner text,  -- the lot's holder (NULL only for a lot the schema does not hold)
        position integer NOT NULL CHECK (position >= 0),
        lot_id text NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        value_minor bigint CHECK (value_minor >= 0),
        value_currency text,
        PRIMARY KEY (transaction_id, position),
        CHECK ((value_minor IS NULL) = (value_currency IS NULL))
    )
    """,
    """
    CREATE TRIGGER lot_consumptions_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.lot_consumptions
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.append_only()
    """,
    """
    CREATE TABLE {s}.idempotency (
        key text PRIMARY KEY,
        fingerprint text NOT NULL,
        result text NOT NULL,
        created_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX idempotency_by_age ON {s}.idempotency (created_at)",
    """
    CREATE TABLE {s}.outbox (
        row bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        type text NOT NULL,
        occurred_at timestamptz NOT NULL,
        payload text NOT NULL,
        transaction_id text,
        delivered_at timestamptz
    )
    """,
    "CREATE INDEX outbox_pending ON {s}.outbox (row) WHERE delivered_at IS NULL",
    """
    CREATE TABLE {s}.records (
        kind text NOT NULL,
        id text COLLATE "C" NOT NULL,
        owner text NOT NULL,
        created_at timestamptz NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        body text NOT NULL,
        PRIMARY KEY (kind, id)
    )
    """,
    "CREATE INDEX records_of_owner ON {s}.records (kind, owner, created_at, id)",
)

MIGRATIONS: Sequence[Sequence[str]] = (_VERSION_1,)
"""``MIGRATIONS[i]`` migrates a schema from version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this version of coinecon writes and reads."""

_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS {s}.coinecon_schema (
        version integer PRIMARY KEY CHECK (version > 0),
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""


def migrate(connection: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """Bring *schema* to :data:`SCHEMA_VERSION` on *connection* (idle, not in
    autocommit), creating it if it does not exist; return the version it
    was at (0 for a new schema).

    Every pending step runs in one transaction, after taking a transaction
    advisory lock on the schema's name: two processes that start together
    migrate once, the second finding the work done.

    Raises:
        StorageError: if the schema is at a version newer than this
            library's (nothing is changed), or a step fails (nothing is
            changed either).
    """
    name = sql.Identifier(schema)

    def run(text: str) -> None:
        connection.execute(sql.SQL(text).format(s=name))

    # First a read, which needs no lock and no CREATE privilege (a role with
    # table privileges only, a read replica): a current schema is left alone.
    current = current_version(connection, schema)
    if current == SCHEMA_VERSION:
        return current
    _refuse_newer(current, schema)
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"coinecon:{schema}",))
        run("CREATE SCHEMA IF NOT EXISTS {s}")
        run(_VERSION_TABLE)
        found = connection.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {s}.coinecon_schema").format(s=name)
        ).fetchone()
        version = int(str(found[0])) if found is not None else 0
        _refuse_newer(version, schema)
        for step, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                run(statement)
            connection.execute(
                sql.SQL("INSERT INTO {s}.coinecon_schema (version) VALUES (%s)").format(s=name),
                (step,),
            )
    return version


def current_version(connection: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """The version *schema* is at (0: no coinecon schema there), read
    without writing anything, in a transaction of its own."""
    name = sql.Identifier(schema)
    with connection.transaction():
        table = connection.execute(
            "SELECT to_regclass(%s)",
            (sql.SQL("{s}.coinecon_schema").format(s=name).as_string(connection),),
        ).fetchone()
        if table is None or table[0] is None:
            return 0
        found = connection.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {s}.coinecon_schema").format(s=name)
        ).fetchone()
    return int(str(found[0])) if found is not None else 0


def _refuse_newer(version: int, schema: str) -> None:
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"the PostgreSQL schema {schema!r} is at version {version}, newer than this "
            f"version of coinecon knows ({SCHEMA_VERSION}): upgrade coinecon to use it"
        )
