"""Versioned migrations, tracked in ``PRAGMA user_version``.

Append a new migration to MIGRATIONS to change the schema; never change what a
shipped one does (the ``--`` comments of a script are stripped before it runs,
so they may be corrected). A migration is an SQL script or a function of the
connection; each runs in a transaction of its own, with its version bump.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

# the columns of products that full-text search looks in
SEARCHED = ("sku", "name", "description", "category")


def _product_search(conn: sqlite3.Connection) -> None:
    """3: a full-text index of products (``products_fts``, FTS5, external
    content: it holds the words, the products table the text), filled with
    the products there are and kept up to date by triggers on every insert,
    update and delete of a product, whoever makes it (a command, a peer's
    event, a snapshot restore). On a plain connection already in a
    transaction, sqlite-utils runs its statements one by one, inside it."""
    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    db.table("products").enable_fts(SEARCHED, fts_version="FTS5", create_triggers=True)


# the state tables a snapshot carries (``snapshot.STATE_TABLES``) have been the
# same since this version: a peer's snapshot from it on can be restored here
STATE_SINCE = 2

MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    # 1: the initial ledger
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    CREATE TABLE products (
        sku           TEXT PRIMARY KEY,
        id            TEXT NOT NULL,
        name          TEXT NOT NULL DEFAULT '',
        description   TEXT NOT NULL DEFAULT '',
        category      TEXT NOT NULL DEFAULT '',
        price         REAL NOT NULL DEFAULT 0,
        active        INTEGER NOT NULL DEFAULT 1,
        stamps        TEXT NOT NULL DEFAULT '{}',   -- {field: [hlc, origin, event id, basis]}
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX products_id ON products(id);
    CREATE INDEX products_category ON products(category);

    CREATE TABLE stock (
        sku           TEXT NOT NULL,
        store_id      TEXT NOT NULL,
        on_hand       INTEGER NOT NULL DEFAULT 0,
        reserved      INTEGER NOT NULL DEFAULT 0,
        version       INTEGER NOT NULL DEFAULT 0,
        count_hlc     INTEGER,            -- stamp of the latest physical count
        count_origin  TEXT,
        count_id      TEXT,
        updated_hlc   INTEGER NOT NULL DEFAULT 0,
        updated_at_ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sku, store_id)
    ) WITHOUT ROWID;
    CREATE INDEX stock_store ON stock(store_id);

    CREATE TABLE movements (
        id             TEXT PRIMARY KEY,  -- the event id origin:seq
        sku            TEXT NOT NULL,
        store_id       TEXT NOT NULL,
        kind           TEXT NOT NULL,     -- receive | sell | adjust | count
        quantity       INTEGER NOT NULL,  -- count: absolute; others: signed delta
        reason         TEXT NOT NULL DEFAULT '',
        actor          TEXT NOT NULL DEFAULT '',
        reservation_id TEXT,
        hlc            INTEGER NOT NULL,
        origin         TEXT NOT NULL,
        basis          TEXT,              -- counts: what the writer had seen of the row's writers
        superseded     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX movements_stock ON movements(sku, store_id, hlc, origin);

    CREATE TABLE reservations (
        id            TEXT PRIMARY KEY,
        sku           TEXT NOT NULL,
        store_id      TEXT NOT NULL,
        quantity      INTEGER NOT NULL,
        customer_id   TEXT,
        status        TEXT NOT NULL,
        order_id      TEXT,
        expires_at_ms INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        hlc           INTEGER NOT NULL,
        origin        TEXT NOT NULL
    );
    CREATE INDEX reservations_due ON reservations(status, expires_at_ms);
    CREATE INDEX reservations_stock ON reservations(sku, store_id, status);

    -- Every event this node applied. Own events keep their body forever (the
    -- origin can resend them); published = 0 rows are the outbox.
    CREATE TABLE events (
        origin    TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        hlc       INTEGER NOT NULL,
        type      TEXT NOT NULL,
        body      TEXT,
        published INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (origin, seq)
    ) WITHOUT ROWID;
    CREATE INDEX events_outbox ON events(origin, seq) WHERE published = 0;

    CREATE TABLE origins (
        origin        TEXT PRIMARY KEY,
        applied_seq   INTEGER NOT NULL DEFAULT 0,  -- contiguous watermark
        max_seq       INTEGER NOT NULL DEFAULT 0,
        last_hlc      INTEGER NOT NULL DEFAULT 0,
        last_event_at_ms INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE idempotency (
        key           TEXT PRIMARY KEY,
        fingerprint   TEXT NOT NULL,
        response      TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );

    CREATE TABLE imports (
        id            TEXT PRIMARY KEY,   -- sha256 of the normalised rows
        kind          TEXT NOT NULL,
        rows          INTEGER NOT NULL,
        changes       INTEGER NOT NULL,
        actor         TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );

    CREATE TABLE conflicts (
        id             TEXT PRIMARY KEY,  -- kind:loser:winner:field, so a replay records it once
        kind           TEXT NOT NULL,
        sku            TEXT,
        store_id       TEXT,
        winner         TEXT,
        loser          TEXT,
        detail         TEXT NOT NULL,
        hlc            INTEGER NOT NULL,
        detected_at_ms INTEGER NOT NULL
    );
    CREATE INDEX conflicts_time ON conflicts(detected_at_ms);

    CREATE TABLE quarantine (
        id             INTEGER PRIMARY KEY,
        event_id       TEXT,
        subject        TEXT,
        reason         TEXT NOT NULL,
        body           TEXT,
        received_at_ms INTEGER NOT NULL
    );
    """,
    # 2: who has written each stock row (the origins of its movements, sorted,
    # comma-separated): a count's basis names only these, not every store
    """
    ALTER TABLE stock ADD COLUMN writers TEXT NOT NULL DEFAULT '';
    UPDATE stock SET writers = coalesce((
        SELECT group_concat(origin, ',') FROM (
            SELECT DISTINCT origin FROM movements m
            WHERE m.sku = stock.sku AND m.store_id = stock.store_id ORDER BY origin
        )
    ), '');
    """,
    _product_search,
    # 4: the chain. The store directory (per-field LWW, like products: NULL is
    # "not set", the defaults of ``agent.domain`` apply), per-SKU stock
    # settings of a store (NULL safety_stock: the store's default), and the
    # channel a reservation came through (routed online orders may not take
    # a store's safety stock)
    """
    CREATE TABLE stores (
        store_id      TEXT PRIMARY KEY,
        name          TEXT,
        address       TEXT,
        lat           REAL,
        lon           REAL,
        priority      INTEGER,
        online        INTEGER,
        safety_stock  INTEGER,
        stamps        TEXT NOT NULL DEFAULT '{}',   -- {field: [hlc, origin, event id, basis]}
        updated_at_ms INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE stock_settings (
        sku           TEXT NOT NULL,
        store_id      TEXT NOT NULL,
        safety_stock  INTEGER,
        stamps        TEXT NOT NULL DEFAULT '{}',
        updated_at_ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sku, store_id)
    ) WITHOUT ROWID;
    CREATE INDEX stock_settings_store ON stock_settings(store_id);

    ALTER TABLE reservations ADD COLUMN channel TEXT NOT NULL DEFAULT 'store';
    """,
    # 5: routed reservations, as the router recorded them (this agent's own
    # bookkeeping: no events, not replicated, not in snapshots). The plan is
    # written before the first store is asked, each refusal before the next
    # ask, the outcome and the cleanups it leaves in the same transaction
    """
    CREATE TABLE routings (
        request_id     TEXT PRIMARY KEY,          -- the client's reservationId
        fingerprint    TEXT NOT NULL,             -- of the request: a retry must match it
        sku            TEXT NOT NULL,
        quantity       INTEGER NOT NULL,
        customer_id    TEXT,
        ttl            INTEGER NOT NULL,
        strategy       TEXT NOT NULL,
        stores         TEXT,                      -- JSON list as asked, NULL: default candidates
        near           TEXT,
        status         TEXT NOT NULL,             -- routing | granted | refused | unreachable
        store_id       TEXT,                      -- granted: where
        reservation_id TEXT,                      -- granted: the owner's reservation id
        granted        TEXT,                      -- granted: the owner's answer (JSON)
        error          TEXT,                      -- refused / unreachable: what the client was told
        created_at_ms  INTEGER NOT NULL,
        updated_at_ms  INTEGER NOT NULL
    );
    CREATE INDEX routings_created ON routings(created_at_ms);

    CREATE TABLE routing_attempts (
        request_id       TEXT NOT NULL,
        position         INTEGER NOT NULL,        -- 0, 1, ...: the ranked order
        store_id         TEXT NOT NULL,
        reservation_id   TEXT NOT NULL,           -- domain.attempt_id(request_id, store_id)
        available_online INTEGER NOT NULL,        -- what this replica showed when ranking
        outcome          TEXT NOT NULL,           -- planned | asking | granted | insufficient
                                                  -- | unreachable | timeout | skipped
        error            TEXT,
        asked_at_ms      INTEGER,
        answered_at_ms   INTEGER,
        cleanup          TEXT,                    -- NULL | pending | cancelled | never-granted
                                                  -- | expired | confirmed
        cleanup_tries    INTEGER NOT NULL DEFAULT 0,
        cleanup_next_ms  INTEGER,
        cleanup_at_ms    INTEGER,                 -- when it was settled
        cleanup_error    TEXT,
        PRIMARY KEY (request_id, position)
    ) WITHOUT ROWID;
    CREATE INDEX routing_attempts_cleanup ON routing_attempts(cleanup, cleanup_next_ms)
        WHERE cleanup IS NOT NULL;
    CREATE INDEX routing_attempts_reservation ON routing_attempts(reservation_id);
    """,
    # 6: transfers between stores, reorder points and low-stock alerts.
    # A transfer's origin side (the header's state, the lines' shipped and
    # cancel claim) is written by its origin store only, its receipts by the
    # destination only (``engine.transfers``); received, damaged, cancelled and
    # pending are kept up to date from both. Alerts are immutable events of the
    # store that holds the stock; ``alert_deliveries`` is this agent's own
    # bookkeeping of what it has handed to each webhook (not replicated)
    """
    CREATE TABLE transfers (
        id              TEXT PRIMARY KEY,
        from_store      TEXT NOT NULL,
        to_store        TEXT NOT NULL,
        note            TEXT NOT NULL DEFAULT '',
        state           TEXT,             -- the origin's: DRAFT | SHIPPED | CANCELLED;
                                          -- NULL: only the destination's receipts seen
        status          TEXT NOT NULL DEFAULT 'DRAFT',  -- domain.transfer_status of it all
        actor           TEXT NOT NULL DEFAULT '',
        created_at_ms   INTEGER,
        shipped_at_ms   INTEGER,
        cancelled_at_ms INTEGER,
        cancel_id       TEXT,             -- the cancel's event id (its returns: cancel_id/sku)
        hlc             INTEGER,          -- stamp of the origin's newest state (NULL: none)
        origin          TEXT,
        updated_at_ms   INTEGER NOT NULL
    );
    CREATE INDEX transfers_from ON transfers(from_store, status);
    CREATE INDEX transfers_to ON transfers(to_store, status);
    CREATE INDEX transfers_status ON transfers(status, updated_at_ms);

    CREATE TABLE transfer_lines (
        transfer_id  TEXT NOT NULL,
        sku          TEXT NOT NULL,
        position     INTEGER NOT NULL,           -- the order written (origin's, then receipts')
        quantity     INTEGER NOT NULL DEFAULT 0, -- asked for (origin); 0: only in receipts
        shipped      INTEGER NOT NULL DEFAULT 0, -- origin
        claim        INTEGER NOT NULL DEFAULT 0, -- origin: what its cancel returned, as it saw it
        received     INTEGER NOT NULL DEFAULT 0, -- destination: sum of its receipts
        damaged      INTEGER NOT NULL DEFAULT 0,
        cancelled    INTEGER NOT NULL DEFAULT 0, -- domain.LineCounts.cancelled
        pending      INTEGER NOT NULL DEFAULT 0, -- domain.LineCounts.pending: in transit
        PRIMARY KEY (transfer_id, sku)
    ) WITHOUT ROWID;
    CREATE INDEX transfer_lines_pending ON transfer_lines(sku) WHERE pending > 0;

    CREATE TABLE transfer_receipts (
        transfer_id    TEXT NOT NULL,
        store_id       TEXT NOT NULL,   -- who received: the destination (the event's origin)
        id             TEXT NOT NULL,   -- the receipt's id (the client's, or drawn)
        from_store     TEXT NOT NULL,   -- the origin, as the receiving store had it
        event_id       TEXT NOT NULL,
        lines          TEXT NOT NULL,   -- JSON [{sku, received, damaged}]
        actor          TEXT NOT NULL DEFAULT '',
        received_at_ms INTEGER NOT NULL,
        hlc            INTEGER NOT NULL,
        PRIMARY KEY (transfer_id, store_id, id)
    ) WITHOUT ROWID;

    ALTER TABLE movements ADD COLUMN transfer_id TEXT;

    ALTER TABLE stock_settings ADD COLUMN reorder_point INTEGER;
    ALTER TABLE stock_settings ADD COLUMN max_stock INTEGER;
    ALTER TABLE stock_settings ADD COLUMN reorder_qty INTEGER;
    CREATE INDEX stock_settings_reorder ON stock_settings(store_id)
        WHERE reorder_point IS NOT NULL;

    CREATE TABLE alerts (
        id            TEXT PRIMARY KEY,   -- the alert's event id, origin:seq
        kind          TEXT NOT NULL,      -- low | restored
        sku           TEXT NOT NULL,
        store_id      TEXT NOT NULL,      -- the store that holds the stock (the event's origin)
        before        INTEGER NOT NULL,   -- available before the write that crossed
        after         INTEGER NOT NULL,   -- and after it
        reorder_point INTEGER,            -- NULL: a restored alert of a point taken away
        cause         TEXT,               -- the event id of that write
        seq           INTEGER NOT NULL,   -- the alert event's seq (delivery order)
        hlc           INTEGER NOT NULL,
        raised_at_ms  INTEGER NOT NULL
    );
    CREATE INDEX alerts_stock ON alerts(sku, store_id, hlc);
    CREATE INDEX alerts_store ON alerts(store_id, seq);
    CREATE INDEX alerts_time ON alerts(raised_at_ms);

    CREATE TABLE alert_deliveries (
        target        TEXT PRIMARY KEY,   -- a webhook's url, or "nats" (the bus)
        cursor        INTEGER NOT NULL,   -- seq of our last alert handed over (or given up)
        tries         INTEGER NOT NULL DEFAULT 0,  -- of the alert after the cursor
        next_at_ms    INTEGER,            -- its next try (NULL: as soon as it is there)
        last_status   INTEGER,            -- HTTP status of the last try (NULL: no answer)
        last_error    TEXT,               -- what went wrong last (NULL after a delivery)
        delivered     INTEGER NOT NULL DEFAULT 0,
        given_up      INTEGER NOT NULL DEFAULT 0,
        delivered_at_ms INTEGER,
        tried_at_ms   INTEGER,            -- when the last try ended
        updated_at_ms INTEGER NOT NULL
    );
    """,
    # 7: who made a reservation and who changed it last (the acting user: a
    # login over TCP, the OS user over the socket, NAME@STORE when forwarded;
    # '' for a change nobody made, an expiry, and for rows older than this)
    """
    ALTER TABLE reservations ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE reservations ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; returns the version reached."""
    current: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"ledger schema version {current} is newer than this agent knows "
            f"({len(MIGRATIONS)}); upgrade inv-agent"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            step = MIGRATIONS[version - 1]
            if isinstance(step, str):
                for statement in _split(step):
                    conn.execute(statement)
            else:
                step(conn)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _split(script: str) -> list[str]:
    """Split a migration into statements (our scripts contain no ';' in strings)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
