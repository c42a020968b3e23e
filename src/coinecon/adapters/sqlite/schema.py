"""The SQLite schema of coinecon and the migrations that build it, step by step.

The schema version lives in ``PRAGMA user_version``; ``PRAGMA application_id``
marks the file as coinecon's. ``MIGRATIONS[i]`` takes a file from version ``i``
to version ``i + 1``, so version 0 is an empty file and the latest version is
``len(MIGRATIONS)``. A migration is a sequence of SQL statements without
parameters; all pending steps run in one transaction, with foreign keys
checked at its commit.

Version 2 writes fewer rows, on fewer pages, per command (see "Schema" in
``docs/storage.md``): a transaction's row holds its idempotency record (its
command's fingerprint and result), its event (delivered up to a cursor,
rather than marked row by row) and where its postings are (postings are
numbered by the writer, so those of one transaction are consecutive and need
no index of their own); what a transaction consumed is one row per lot in one
table keyed by the transaction id; the index of consumptions by lot, which no
query used, is gone. Records and consumptions that arrive without their
transaction keep their own rows.

Version 3 writes to fewer indexes: an account's postings form a chain (the
account's row names its last posting, each posting the account's posting
before it), which history walks instead of an index of postings by account;
and a lot says whether it is exhausted, so that the indexes of open lots
need no change when a spend leaves coins in a lot; an event on its
transaction's row that has the transaction's id is stored with ``event_id``
``''``, and found by the transaction's id.

Version 4 indexes each wallet's open lots in the order of their creation and
by spend group (whether they expire, whether they were bought) in expiry
order, so that a spend reads a wallet's lots in any
:class:`~coinecon.ledger.lots.SpendOrder` only until its amount is covered.

Version 5 lets a refund, like a chargeback, leave a holder in debt; adds the
``records`` table, where the services keep their records (purchases,
provider events, holders' profiles, cases) as documents; and, for a file
made before it, records the transaction ``schema-v5-deferred-revenue`` that
puts the value its purchased lots have not recognised yet into deferred
revenue, out of clearing (see :mod:`coinecon.ledger.entries`).
"""

from __future__ import annotations

from collections.abc import Sequence

APPLICATION_ID = 0x636F696E
"""``PRAGMA application_id`` of a coinecon file (the bytes of ``"coin"``)."""

NO_DEBT_MESSAGE = "a debit takes a holder's account below zero outside a chargeback or refund"
"""The error of the trigger that refuses such a posting, whoever writes it."""
OVERPAID_MESSAGE = "a posting pays a creator more than their payable account owes them"
"""The error of the trigger that refuses a posting taking a creator's payable
account (negative by what is owed) above zero, whoever writes it."""

_VERSION_1 = (
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        asset_kind TEXT NOT NULL CHECK (asset_kind IN ('unit', 'money')),
        asset_code TEXT NOT NULL,
        balance INTEGER NOT NULL DEFAULT 0 CHECK (typeof(balance) = 'integer'),
        UNIQUE (kind, owner, asset_kind, asset_code)
    )
    """,
    """
    CREATE TABLE transactions (
        row INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        cause_type TEXT NOT NULL,
        cause_id TEXT NOT NULL,
        metadata TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE postings (
        sequence INTEGER PRIMARY KEY,
        transaction_row INTEGER NOT NULL REFERENCES transactions (row),
        account_id INTEGER NOT NULL REFERENCES accounts (id),
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount != 0),
        balance_after INTEGER NOT NULL CHECK (typeof(balance_after) = 'integer')
    )
    """,
    # A holder's account (wallet, earnings, creator payable) goes below zero
    # only by a chargeback's debit, whoever writes the file.
    f"""
    CREATE TRIGGER postings_no_debt_outside_a_chargeback
    BEFORE INSERT ON postings
    WHEN NEW.amount < 0 AND NEW.balance_after < 0
    BEGIN
        SELECT RAISE(ABORT, '{NO_DEBT_MESSAGE.replace("'", "''")}')
        WHERE (SELECT kind FROM accounts WHERE id = NEW.account_id)
                IN ('wallet', 'earnings', 'creator-payable')
            AND (SELECT kind FROM transactions WHERE row = NEW.transaction_row) != 'chargeback';
    END
    """,
    # The ledger is append-only, whoever writes the file.
    *(
        f"""
        CREATE TRIGGER {table}_append_only_{event} BEFORE {event.upper()} ON {table}
        BEGIN
            SELECT RAISE(ABORT, 'the ledger is append-only: {table} are never changed');
        END
        """
        for table in ("transactions", "postings")
        for event in ("update", "delete")
    ),
    "CREATE INDEX postings_history ON postings (account_id, sequence DESC)",
    "CREATE INDEX postings_of_transaction ON postings (transaction_row)",
    """
    CREATE TABLE lots (
        row INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        account_kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        asset_kind TEXT NOT NULL CHECK (asset_kind IN ('unit', 'money')),
        asset_code TEXT NOT NULL,
        origin TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
        remaining INTEGER NOT NULL
            CHECK (typeof(remaining) = 'integer' AND remaining BETWEEN 0 AND amount),
        created_at TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        value_minor INTEGER
            CHECK (typeof(value_minor) IN ('integer', 'null') AND value_minor >= 0),
        value_currency TEXT,
        value_recognised INTEGER NOT NULL CHECK (
            typeof(value_recognised) = 'integer'
            AND value_recognised BETWEEN 0 AND coalesce(value_minor, 0)
        ),
        expires_at TEXT CHECK (expires_at > created_at),
        CHECK ((value_minor IS NULL) = (value_currency IS NULL))
    )
    """,
    """
    CREATE INDEX lots_open ON lots (account_kind, owner, asset_kind, asset_code, row)
        WHERE remaining > 0
    """,
    """
    CREATE INDEX lots_expiring ON lots (expires_at, id)
        WHERE remaining > 0 AND expires_at IS NOT NULL
    """,
    "CREATE TABLE lot_consumptions (transaction_id TEXT PRIMARY KEY) WITHOUT ROWID",
    """
    CREATE TABLE lot_consumption_items (
        transaction_id TEXT NOT NULL REFERENCES lot_consumptions (transaction_id),
        position INTEGER NOT NULL,
        lot_id TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
        value_minor INTEGER
            CHECK (typeof(value_minor) IN ('integer', 'null') AND value_minor >= 0),
        value_currency TEXT,
        PRIMARY KEY (transaction_id, position),
        CHECK ((value_minor IS NULL) = (value_currency IS NULL))
    ) WITHOUT ROWID
    """,
    "CREATE INDEX lot_consumption_items_by_lot ON lot_consumption_items (lot_id)",
    """
    CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE outbox (
        row INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        payload TEXT NOT NULL,
        transaction_id TEXT,
        delivered_at TEXT
    )
    """,
    "CREATE INDEX outbox_pending ON outbox (row) WHERE delivered_at IS NULL",
)


def _triggers() -> tuple[str, ...]:
    """The rules every writer of the file obeys: the ledger is append-only,
    and a holder's account goes below zero only by a chargeback's debit."""
    return (
        f"""
        CREATE TRIGGER postings_no_debt_outside_a_chargeback
        BEFORE INSERT ON postings
        WHEN NEW.amount < 0 AND NEW.balance_after < 0
        BEGIN
            SELECT RAISE(ABORT, '{NO_DEBT_MESSAGE.replace("'", "''")}')
            WHERE (SELECT kind FROM accounts WHERE id = NEW.account_id)
                    IN ('wallet', 'earnings', 'creator-payable')
                AND (SELECT kind FROM transactions WHERE row = NEW.transaction_row)
                    != 'chargeback';
        END
        """,
        *(
            f"""
            CREATE TRIGGER {table}_append_only_{event} BEFORE {event.upper()} ON {table}
            BEGIN
                SELECT RAISE(ABORT, 'the ledger is append-only: {table} are never changed');
            END
            """
            for table in ("transactions", "postings", "lot_consumptions")
            for event in ("update", "delete")
        ),
    )


_VERSION_2 = (
    "DROP TRIGGER postings_no_debt_outside_a_chargeback",
    *(
        f"DROP TRIGGER {table}_append_only_{event}"
        for table in ("transactions", "postings")
        for event in ("update", "delete")
    ),
    """
    CREATE TABLE transactions_v2 (
        row INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        cause_type TEXT NOT NULL,
        cause_id TEXT NOT NULL,
        metadata TEXT NOT NULL,
        first_sequence INTEGER NOT NULL CHECK (typeof(first_sequence) = 'integer'),
        postings INTEGER NOT NULL CHECK (typeof(postings) = 'integer' AND postings > 0),
        fingerprint TEXT,
        result TEXT,
        event_id TEXT,
        event_type TEXT,
        event_payload TEXT,
        CHECK ((fingerprint IS NULL) = (result IS NULL)),
        CHECK ((event_id IS NULL) = (event_type IS NULL)),
        CHECK (event_payload IS NULL OR event_id IS NOT NULL),
        CHECK (event_id IS NULL OR event_payload IS NOT NULL OR result IS NOT NULL)
    )
    """,
    """
    CREATE TABLE postings_v2 (
        sequence INTEGER PRIMARY KEY,
        transaction_row INTEGER NOT NULL REFERENCES transactions_v2 (row),
        account_id INTEGER NOT NULL REFERENCES accounts (id),
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount != 0),
        balance_after INTEGER NOT NULL CHECK (typeof(balance_after) = 'integer')
    )
    """,
    """
    CREATE TABLE lot_consumptions_v2 (
        transaction_id TEXT NOT NULL,
        position INTEGER NOT NULL CHECK (typeof(position) = 'integer' AND position >= 0),
        lot_id TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
        value_minor INTEGER
            CHECK (typeof(value_minor) IN ('integer', 'null') AND value_minor >= 0),
        value_currency TEXT,
        PRIMARY KEY (transaction_id, position),
        CHECK ((value_minor IS NULL) = (value_currency IS NULL))
    ) WITHOUT ROWID
    """,
    "PRAGMA defer_foreign_keys = ON",
    # Postings of one transaction become consecutive (they already are in a
    # file coinecon wrote, which keeps their numbers).
    """
    INSERT INTO postings_v2 (sequence, transaction_row, account_id, amount, balance_after)
    SELECT row_number() OVER (ORDER BY transaction_row, sequence),
           transaction_row, account_id, amount, balance_after
    FROM postings
    """,
    "CREATE INDEX migration_postings_by_transaction ON postings_v2 (transaction_row)",
    "CREATE INDEX migration_transactions_by_key ON transactions (idempotency_key, row)",
    # A command's record joins its transaction: the first with its key, at
    # its time. Any other record stays in the idempotency table. A
    # transaction without postings (no coinecon writes one) fails the
    # migration rather than vanish.
    """
    INSERT INTO transactions_v2
    SELECT t.row, t.id, t.kind, t.occurred_at, t.idempotency_key, t.cause_type, t.cause_id,
           t.metadata, p.first, p.count, i.fingerprint, i.result, NULL, NULL, NULL
    FROM transactions AS t
    LEFT JOIN (
        SELECT transaction_row, min(sequence) AS first, count(*) AS count
        FROM postings_v2 GROUP BY transaction_row
    ) AS p ON p.transaction_row = t.row
    LEFT JOIN idempotency AS i
        ON i.key = t.idempotency_key AND i.created_at = t.occurred_at
        AND t.row = (SELECT min(row) FROM transactions WHERE idempotency_key = t.idempotency_key)
    """,
    """
    DELETE FROM idempotency
    WHERE key IN (SELECT idempotency_key FROM transactions_v2 WHERE fingerprint IS NOT NULL)
    """,
    """
    INSERT INTO lot_consumptions_v2
    SELECT transaction_id, position, lot_id, amount, value_minor, value_currency
    FROM lot_consumption_items
    """,
    "DROP INDEX migration_postings_by_transaction",
    "DROP TABLE lot_consumption_items",
    "DROP TABLE lot_consumptions",
    "DROP TABLE postings",
    "DROP TABLE transactions",
    "ALTER TABLE transactions_v2 RENAME TO transactions",
    "ALTER TABLE postings_v2 RENAME TO postings",
    "ALTER TABLE lot_consumptions_v2 RENAME TO lot_consumptions",
    """
    CREATE UNIQUE INDEX transactions_by_command ON transactions (idempotency_key)
        WHERE fingerprint IS NOT NULL
    """,
    "CREATE INDEX postings_history ON postings (account_id, sequence DESC)",
    # A transaction's event lives on its row; the outbox table keeps the events
    # that came without a transaction to join (and those of version 1, which
    # come first: after_row 0). Events on transactions are delivered up to a
    # cursor, and those delivered out of order beyond it are listed.
    """
    CREATE UNIQUE INDEX transactions_by_event ON transactions (event_id)
        WHERE event_id IS NOT NULL
    """,
    "ALTER TABLE outbox ADD COLUMN after_row INTEGER NOT NULL DEFAULT 0",
    """
    CREATE TABLE outbox_cursor (
        only INTEGER PRIMARY KEY CHECK (only = 1),
        delivered_to INTEGER NOT NULL
    )
    """,
    "INSERT INTO outbox_cursor (only, delivered_to) VALUES (1, 0)",
    "CREATE TABLE outbox_delivered_ahead (transaction_row INTEGER PRIMARY KEY)",
    *_triggers(),
)


def _posting_triggers() -> tuple[str, ...]:
    """The rules of :func:`_triggers` that guard the postings table."""
    return tuple(sql for sql in _triggers() if "ON postings" in sql)


_LOTS_V3 = """
    CREATE TABLE lots_v3 (
        row INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        account_kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        asset_kind TEXT NOT NULL CHECK (asset_kind IN ('unit', 'money')),
        asset_code TEXT NOT NULL,
        origin TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
        remaining INTEGER NOT NULL
            CHECK (typeof(remaining) = 'integer' AND remaining BETWEEN 0 AND amount),
        created_at TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        value_minor INTEGER
            CHECK (typeof(value_minor) IN ('integer', 'null') AND value_minor >= 0),
        value_currency TEXT,
        value_recognised INTEGER NOT NULL CHECK (
            typeof(value_recognised) = 'integer'
            AND value_recognised BETWEEN 0 AND coalesce(value_minor, 0)
        ),
        expires_at TEXT CHECK (expires_at > created_at),
        exhausted INTEGER NOT NULL CHECK (exhausted IS (remaining = 0)),
        CHECK ((value_minor IS NULL) = (value_currency IS NULL))
    )
    """

_VERSION_3 = (
    # A lot says whether it is exhausted, and the indexes of open lots list
    # those that are not: taking coins from a lot that keeps some changes
    # no column of theirs, so it rewrites the lot's row and no index page.
    "DROP INDEX lots_open",
    "DROP INDEX lots_expiring",
    _LOTS_V3,
    """
    INSERT INTO lots_v3
    SELECT row, id, account_kind, owner, asset_kind, asset_code, origin, amount, remaining,
           created_at, transaction_id, value_minor, value_currency, value_recognised,
           expires_at, remaining = 0
    FROM lots
    """,
    "DROP TABLE lots",
    "ALTER TABLE lots_v3 RENAME TO lots",
    """
    CREATE INDEX lots_open ON lots (account_kind, owner, asset_kind, asset_code, row)
        WHERE exhausted = 0
    """,
    """
    CREATE INDEX lots_expiring ON lots (expires_at, id)
        WHERE exhausted = 0 AND expires_at IS NOT NULL
    """,
    # An account's postings are a chain, newest first: the account holds the
    # sequence of its last posting, and each posting that of the account's
    # one before it. History walks the chain; the index of postings by
    # account, which cost every posting an index entry, is gone.
    *(
        f"DROP TRIGGER {name}"
        for name in (
            "postings_no_debt_outside_a_chargeback",
            "postings_append_only_update",
            "postings_append_only_delete",
        )
    ),
    """
    CREATE TABLE postings_v3 (
        sequence INTEGER PRIMARY KEY,
        transaction_row INTEGER NOT NULL REFERENCES transactions (row),
        account_id INTEGER NOT NULL REFERENCES accounts (id),
        amount INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount != 0),
        balance_after INTEGER NOT NULL CHECK (typeof(balance_after) = 'integer'),
        previous INTEGER
            CHECK (previous IS NULL OR (typeof(previous) = 'integer' AND previous < sequence))
    )
    """,
    """
    INSERT INTO postings_v3
    SELECT sequence, transaction_row, account_id, amount, balance_after,
           lag(sequence) OVER (PARTITION BY account_id ORDER BY sequence)
    FROM postings
    """,
    "DROP TABLE postings",
    "ALTER TABLE postings_v3 RENAME TO postings",
    """
    ALTER TABLE accounts ADD COLUMN last_sequence INTEGER
        CHECK (last_sequence IS NULL OR typeof(last_sequence) = 'integer')
    """,
    "CREATE INDEX migration_postings_by_account ON postings (account_id, sequence)",
    """
    UPDATE accounts
    SET last_sequence = (SELECT max(sequence) FROM postings WHERE account_id = accounts.id)
    """,
    "DROP INDEX migration_postings_by_account",
    *_posting_triggers(),
    # An event on its transaction's row with the transaction's id (every
    # event of the wallet service from now on) is stored with event_id '':
    # the transactions' own index finds it, and this one holds only the
    # events with ids of their own.
    "DROP INDEX transactions_by_event",
    """
    CREATE UNIQUE INDEX transactions_by_event ON transactions (event_id)
        WHERE event_id != ''
    """,
)

_ACCOUNT_COLUMNS = "account_kind, owner, asset_kind, asset_code"
HOLDER_KINDS = "('wallet', 'earnings', 'creator-payable')"
"""The kinds of the accounts holders own, as SQL: those with a history by
kind (and, in the no-debt trigger, those that may not go below zero)."""
# Every column of a transaction's row but its command's record and its
# event's payload (see the trigger transactions_append_only_records).
_JOURNAL_COLUMNS = (
    "row, id, kind, occurred_at, idempotency_key, cause_type, cause_id, metadata, "
    "first_sequence, postings, event_id, event_type"
)

# What a spend reads a wallet's open lots by (see _lots): their order of
# creation (SpendOrder.OLDEST_FIRST's key), and their spend groups (whether
# they last, whether they were bought) each in the order of the rest of
# SpendOrder.key, which the other orders read group by group.
_SPEND_GROUP = "expires_at IS NULL, origin = 'purchase'"
_IN_GROUP = "coalesce(expires_at, created_at), created_at, id"

_VERSION_4 = (
    # A spend reads its wallet's lots in its spend order and stops once they
    # cover the amount; a wallet's lapsed lots are the first of its groups
    # that expire. These replace the index of open lots in creation order.
    "DROP INDEX lots_open",
    f"""
    CREATE INDEX lots_oldest_first ON lots ({_ACCOUNT_COLUMNS}, created_at, id)
        WHERE exhausted = 0
    """,
    f"""
    CREATE INDEX lots_spend_groups ON lots ({_ACCOUNT_COLUMNS}, {_SPEND_GROUP}, {_IN_GROUP})
        WHERE exhausted = 0
    """,
    # Each holder's account's postings by the kind of their transaction, for
    # filtered history: one entry per posting, made by the schema for any
    # writer. The platform's accounts (issuance, spent, expired), which take
    # a posting in most commands and whose history is read by exports rather
    # than filtered, have none: their filtered history reads the chain.
    """
    CREATE TABLE history (
        account_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        PRIMARY KEY (account_id, kind, sequence)
    ) WITHOUT ROWID
    """,
    f"""
    INSERT INTO history
    SELECT p.account_id, t.kind, p.sequence
    FROM postings AS p JOIN transactions AS t ON t.row = p.transaction_row
    JOIN accounts AS a ON a.id = p.account_id
    WHERE a.kind IN {HOLDER_KINDS}
    """,
    f"""
    CREATE TRIGGER postings_in_history AFTER INSERT ON postings
    WHEN (SELECT kind FROM accounts WHERE id = NEW.account_id) IN {HOLDER_KINDS}
    BEGIN
        INSERT INTO history (account_id, kind, sequence)
        SELECT NEW.account_id, kind, NEW.sequence FROM transactions WHERE row = NEW.transaction_row;
    END
    """,
    *(
        f"""
        CREATE TRIGGER history_append_only_{event} BEFORE {event.upper()} ON history
        BEGIN
            SELECT RAISE(ABORT, 'the ledger is append-only: history is never changed');
        END
        """
        for event in ("update", "delete")
    ),
    # Whether the transactions are in the order of their times: while they
    # are, a time is a place in the ledger (found by bisecting the rows), and
    # a time filter a range of sequences. The first transaction recorded with
    # an earlier time than the one before it is noted, by the schema, for
    # any writer.
    """
    CREATE TABLE ledger_disorder (
        only INTEGER PRIMARY KEY CHECK (only = 1),
        first_row INTEGER NOT NULL
    )
    """,
    """
    INSERT INTO ledger_disorder (only, first_row)
    SELECT 1, min(row) FROM (
        SELECT row, occurred_at < max(occurred_at) OVER (
            ORDER BY row ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS back
        FROM transactions
    )
    WHERE back HAVING count(*) > 0
    """,
    # A command's record on its transaction's row may be forgotten (prune),
    # and nothing else of the row changes: the record's fingerprint and
    # result may only become NULL, and the event's payload only take the
    # result it stood for, so that the event keeps it.
    "DROP TRIGGER transactions_append_only_update",
    f"""
    CREATE TRIGGER transactions_append_only_update
    BEFORE UPDATE OF {_JOURNAL_COLUMNS} ON transactions
    BEGIN
        SELECT RAISE(ABORT, 'the ledger is append-only: transactions are never changed');
    END
    """,
    """
    CREATE TRIGGER transactions_append_only_records
    BEFORE UPDATE OF fingerprint, result, event_payload ON transactions
    WHEN NEW.fingerprint IS NOT NULL OR NEW.result IS NOT NULL
        OR (NEW.event_payload IS NOT OLD.event_payload
            AND NOT (OLD.event_payload IS NULL AND NEW.event_payload IS OLD.result))
    BEGIN
        SELECT RAISE(ABORT, 'the ledger is append-only: a command''s record is only forgotten');
    END
    """,
    """
    CREATE TRIGGER transactions_out_of_time_order AFTER INSERT ON transactions
    WHEN NEW.occurred_at < (
        SELECT occurred_at FROM transactions WHERE row < NEW.row ORDER BY row DESC LIMIT 1
    )
    BEGIN
        INSERT OR IGNORE INTO ledger_disorder (only, first_row) VALUES (1, NEW.row);
    END
    """,
)

OPENING_TRANSACTION = "schema-v5-deferred-revenue"
"""The id (and idempotency key) of the transaction with which version 5
puts the value of an older file's purchased lots into its books."""

_VERSION_5 = (
    # A refund, like a chargeback, may leave a holder in debt (money given
    # back for coins already spent).
    "DROP TRIGGER postings_no_debt_outside_a_chargeback",
    f"""
    CREATE TRIGGER postings_no_debt_outside_a_chargeback
    BEFORE INSERT ON postings
    WHEN NEW.amount < 0 AND NEW.balance_after < 0
    BEGIN
        SELECT RAISE(ABORT, '{NO_DEBT_MESSAGE.replace("'", "''")}')
        WHERE (SELECT kind FROM accounts WHERE id = NEW.account_id) IN {HOLDER_KINDS}
            AND (SELECT kind FROM transactions WHERE row = NEW.transaction_row)
                NOT IN ('chargeback', 'refund');
    END
    """,
    # The records of the services (purchases, provider events, holders'
    # profiles, cases): a document per (kind, id), with the owner and time it
    # is found by, and a version that each update raises by one.
    """
    CREATE TABLE records (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        owner TEXT NOT NULL,
        created_at TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (typeof(version) = 'integer' AND version > 0),
        body TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX records_of_owner ON records (kind, owner, created_at, id)",
    # The money side: a purchased lot's value not recognised yet is deferred
    # revenue, which a file made before version 5 does not hold. One
    # transaction puts it there, out of clearing, currency by currency.
    """
    CREATE TEMP TABLE migration_owed AS
    SELECT code, sum(owed) + coalesce((
               SELECT balance FROM accounts
               WHERE kind = 'deferred-revenue' AND owner = '@platform'
                   AND asset_kind = 'money' AND asset_code = code
           ), 0) AS adjust
    FROM (
        SELECT value_currency AS code, value_minor - value_recognised AS owed
        FROM lots WHERE value_minor IS NOT NULL
        UNION ALL
        SELECT asset_code, 0 FROM accounts
        WHERE kind = 'deferred-revenue' AND owner = '@platform' AND asset_kind = 'money'
    )
    GROUP BY code
    """,
    "DELETE FROM migration_owed WHERE adjust = 0",
    """
    INSERT OR IGNORE INTO accounts (kind, owner, asset_kind, asset_code)
    SELECT kind, '@platform', 'money', code
    FROM migration_owed, (SELECT 'clearing' AS kind UNION ALL SELECT 'deferred-revenue')
    """,
    f"""
    INSERT INTO transactions (
        id, kind, occurred_at, idempotency_key, cause_type, cause_id, metadata,
        first_sequence, postings
    )
    SELECT '{OPENING_TRANSACTION}', 'settlement',
        (SELECT occurred_at FROM transactions ORDER BY row DESC LIMIT 1),
        '{OPENING_TRANSACTION}', 'migration', 'schema-v5', '[]',
        (SELECT coalesce(max(sequence), 0) + 1 FROM postings), 2 * count(*)
    FROM migration_owed HAVING count(*) > 0
    """,
    f"""
    INSERT INTO postings (sequence, transaction_row, account_id, amount, balance_after, previous)
    SELECT t.first_sequence + 2 * (o.n - 1) + leg.i, t.row, a.id, leg.sign * o.adjust,
        a.balance + leg.sign * o.adjust, a.last_sequence
    FROM (SELECT code, adjust, row_number() OVER (ORDER BY code) AS n FROM migration_owed) AS o
    JOIN (SELECT 0 AS i, 'clearing' AS kind, 1 AS sign
          UNION ALL SELECT 1, 'deferred-revenue', -1) AS leg
    JOIN accounts AS a ON a.kind = leg.kind AND a.owner = '@platform'
        AND a.asset_kind = 'money' AND a.asset_code = o.code
    JOIN transactions AS t ON t.id = '{OPENING_TRANSACTION}'
    ORDER BY 1
    """,
    f"""
    UPDATE accounts SET (balance, last_sequence) = (
        SELECT p.balance_after, p.sequence FROM postings AS p
        WHERE p.account_id = accounts.id AND p.transaction_row = (
            SELECT row FROM transactions WHERE id = '{OPENING_TRANSACTION}'
        )
    )
    WHERE id IN (
        SELECT account_id FROM postings WHERE transaction_row = (
            SELECT row FROM transactions WHERE id = '{OPENING_TRANSACTION}'
        )
    )
    """,
    "DROP TABLE migration_owed",
)

_VERSION_6 = (
    # A creator's payable account follows the money side's signs: negative
    # by what the platform owes. Wallets and earnings may not go below zero
    # outside a chargeback or refund; a payable account may not go above
    # zero (a payout of more than is owed).
    "DROP TRIGGER postings_no_debt_outside_a_chargeback",
    f"""
    CREATE TRIGGER postings_no_debt_outside_a_chargeback
    BEFORE INSERT ON postings
    WHEN NEW.amount < 0 AND NEW.balance_after < 0
    BEGIN
        SELECT RAISE(ABORT, '{NO_DEBT_MESSAGE.replace("'", "''")}')
        WHERE (SELECT kind FROM accounts WHERE id = NEW.account_id) IN ('wallet', 'earnings')
            AND (SELECT kind FROM transactions WHERE row = NEW.transaction_row)
                NOT IN ('chargeback', 'refund');
    END
    """,
    f"""
    CREATE TRIGGER postings_no_overpayment
    BEFORE INSERT ON postings
    WHEN NEW.amount > 0 AND NEW.balance_after > 0
    BEGIN
        SELECT RAISE(ABORT, '{OVERPAID_MESSAGE}')
        WHERE (SELECT kind FROM accounts WHERE id = NEW.account_id) = 'creator-payable'
            AND (SELECT kind FROM transactions WHERE row = NEW.transaction_row)
                NOT IN ('chargeback', 'refund');
    END
    """,
)

MIGRATIONS: Sequence[Sequence[str]] = (
    _VERSION_1,
    _VERSION_2,
    _VERSION_3,
    _VERSION_4,
    _VERSION_5,
    _VERSION_6,
)
"""``MIGRATIONS[i]`` migrates a file from schema version ``i`` to ``i + 1``."""
