"""The read model's schema in PostgreSQL: versioned migrations, like the
ledger's (``agent/ledger/schema.py``), tracked in the table ``schema_version``
of the read model's own PostgreSQL schema (default ``inv_hq``).

Append a new migration to MIGRATIONS to change the model; never change what a
shipped one does. Each runs in a transaction of its own with its version row,
under a transaction-level advisory lock on the schema's name, so two
projectors starting together migrate once. Every script runs with
``search_path`` set to the model's schema: it names no schema itself.

Text keys are ``COLLATE "C"``: stamps order by ``(hlc, origin)`` and origins
must compare as the agent's Python compares them (by code point), whatever
the database's default collation is.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from agent.hq import schema_moves

SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DEFAULT_SCHEMA = "inv_hq"

# 1: the read model. Contract tables and views (docs/HQ.md) plus the internal
# ones: events, the stamps of last-writer-wins fields, checkpoint, quarantine.
# The defaults in the views (priority 100, online, safety stock 0) are those
# of agent.domain when this was written; tests/test_hq_projector.py checks
# that they still are.
_V1 = """
CREATE FUNCTION ms_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN ms BETWEEN 0 AND 253402300799999 THEN to_timestamp(ms::float8 / 1000) END;

-- agent.domain.covered: had the writer whose basis this is seen origin:seq?
CREATE FUNCTION covered(basis jsonb, origin text, seq bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce((basis ->> origin)::bigint, 0) >= seq;

CREATE TABLE events (
    origin      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    hlc         bigint NOT NULL,
    type        text COLLATE "C" NOT NULL,
    body        jsonb NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (origin, seq)
);
CREATE INDEX events_order ON events (hlc, origin, seq);  -- a rebuild's order
-- what came in lately (inv-hq status: events/s); one value per batch, ever
-- growing: a cheap index (deduplicated, appended at its right edge)
CREATE INDEX events_received ON events (received_at);

CREATE TABLE origins (
    origin        text COLLATE "C" PRIMARY KEY,
    applied_seq   bigint NOT NULL DEFAULT 0,
    max_seq       bigint NOT NULL DEFAULT 0,
    last_hlc      bigint NOT NULL DEFAULT 0,
    last_event_at timestamptz,
    received_at   timestamptz
);

CREATE TABLE checkpoint (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    stream_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    event_id    text COLLATE "C",
    subject     text,
    reason      text NOT NULL,
    detail      text,
    body        text,
    received_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX quarantine_once ON quarantine (event_id, reason) WHERE event_id IS NOT NULL;

CREATE TABLE field_stamps (
    entity text COLLATE "C" NOT NULL,
    k1     text COLLATE "C" NOT NULL,
    k2     text COLLATE "C" NOT NULL DEFAULT '',
    field  text COLLATE "C" NOT NULL,
    value  jsonb,
    hlc    bigint NOT NULL,
    origin text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL,
    basis  jsonb,
    PRIMARY KEY (entity, k1, k2, field)
);

CREATE TABLE products (
    sku         text COLLATE "C" PRIMARY KEY,
    product_id  text NOT NULL DEFAULT '',
    name        text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    category    text NOT NULL DEFAULT '',
    price       double precision NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz,
    updated_at  timestamptz
);
CREATE INDEX products_id ON products (product_id);

CREATE TABLE store_entries (
    store_id     text COLLATE "C" PRIMARY KEY,
    name         text,
    address      text,
    lat          double precision,
    lon          double precision,
    priority     bigint,
    online       boolean,
    safety_stock bigint,
    updated_at   timestamptz
);

CREATE TABLE stock_settings (
    store_id     text COLLATE "C" NOT NULL,
    sku          text COLLATE "C" NOT NULL,
    safety_stock bigint,
    updated_at   timestamptz,
    PRIMARY KEY (store_id, sku)
);

CREATE TABLE stock (
    store_id     text COLLATE "C" NOT NULL,
    sku          text COLLATE "C" NOT NULL,
    on_hand      bigint NOT NULL DEFAULT 0,
    reserved     bigint NOT NULL DEFAULT 0,
    count_hlc    bigint,
    count_origin text COLLATE "C",
    count_seq    bigint,
    count_qty    bigint,
    count_basis  jsonb,
    updated_hlc  bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz,
    PRIMARY KEY (store_id, sku)
) WITH (fillfactor = 80);  -- room on the page: a row's update is a HOT one

CREATE TABLE movements (
    event_id       text COLLATE "C" PRIMARY KEY,
    store_id       text COLLATE "C" NOT NULL,
    sku            text COLLATE "C" NOT NULL,
    kind           text COLLATE "C" NOT NULL,
    quantity       bigint NOT NULL,
    reason         text NOT NULL DEFAULT '',
    actor          text NOT NULL DEFAULT '',
    reservation_id text,
    hlc            bigint NOT NULL,
    origin         text COLLATE "C" NOT NULL,
    seq            bigint NOT NULL,
    basis          jsonb,
    superseded     boolean NOT NULL DEFAULT false,
    at             timestamptz
);
CREATE INDEX movements_stock ON movements (store_id, sku, hlc, origin);

CREATE TABLE reservations (
    reservation_id text COLLATE "C" PRIMARY KEY,
    store_id       text COLLATE "C" NOT NULL,
    sku            text COLLATE "C" NOT NULL,
    quantity       bigint NOT NULL,
    status         text COLLATE "C" NOT NULL,
    customer_id    text,
    order_id       text,
    channel        text NOT NULL DEFAULT 'store',
    expires_at_ms  bigint NOT NULL,
    created_at_ms  bigint NOT NULL,
    updated_at_ms  bigint NOT NULL,
    expires_at     timestamptz,
    created_at     timestamptz,
    updated_at     timestamptz,
    hlc            bigint NOT NULL,
    origin         text COLLATE "C" NOT NULL
);
CREATE INDEX reservations_stock ON reservations (store_id, sku, status);

CREATE TABLE conflicts (
    conflict_id text COLLATE "C" PRIMARY KEY,
    kind        text COLLATE "C" NOT NULL,
    store_id    text COLLATE "C",
    sku         text COLLATE "C",
    winner      text COLLATE "C",
    loser       text COLLATE "C" NOT NULL,
    detail      jsonb NOT NULL,
    hlc         bigint NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX conflicts_at ON conflicts (at);

CREATE VIEW stores AS
    WITH known AS (
        SELECT store_id FROM store_entries
        UNION SELECT origin FROM origins
        UNION SELECT DISTINCT store_id FROM stock
    )
    SELECT k.store_id, e.name, e.address, e.lat, e.lon,
           coalesce(e.online, true) AS online,
           coalesce(e.priority, 100) AS priority,
           coalesce(e.safety_stock, 0) AS safety_stock,
           e.store_id IS NOT NULL AS listed,
           e.updated_at
    FROM known k LEFT JOIN store_entries e USING (store_id);

CREATE VIEW stock_levels AS
    SELECT s.store_id, s.sku, s.on_hand, s.reserved, s.on_hand - s.reserved AS available,
           coalesce(t.safety_stock, e.safety_stock, 0) AS safety_stock,
           CASE WHEN coalesce(e.online, true)
                THEN greatest(0, s.on_hand - s.reserved
                                 - coalesce(t.safety_stock, e.safety_stock, 0))
                ELSE 0 END AS available_online,
           s.updated_at
    FROM stock s
    LEFT JOIN stock_settings t USING (store_id, sku)
    LEFT JOIN store_entries e USING (store_id);

CREATE VIEW chain_availability AS
    SELECT sku, sum(on_hand) AS total_on_hand, sum(available) AS total_available,
           sum(available_online) AS total_available_online,
           jsonb_object_agg(store_id, available) AS stores
    FROM stock_levels GROUP BY sku;

CREATE VIEW sales_daily AS
    SELECT (at AT TIME ZONE 'UTC')::date AS day, store_id, sku, sum(-quantity) AS units
    FROM movements WHERE kind = 'sell' GROUP BY 1, 2, 3;

CREATE VIEW low_stock AS
    SELECT store_id, sku, available, safety_stock FROM stock_levels
    WHERE available <= safety_stock;
"""

# 2: lighter writes of an event (docs/HQ.md, "Performance"). The stamp order
# (events_order) is only a rebuild's, which now sorts the keys once itself.
# ``events.received_at`` is read only for the events of the last minute
# (inv-hq status), and grows with the table's physical order: a BRIN index (a
# summary per range of pages) serves that and costs a batch next to nothing,
# where a B-tree took an entry per event. ``inbox``: batches COPY'd ahead on
# a second connection (agent.hq.inbox), unlogged scratch.
_V2 = """
DROP INDEX events_order;
DROP INDEX events_received;
CREATE INDEX events_received ON events USING brin (received_at);

CREATE UNLOGGED TABLE inbox (
    token  bigint NOT NULL DEFAULT current_setting('inv_hq.inbox_token')::bigint,
    origin text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL,
    hlc    bigint NOT NULL,
    type   text COLLATE "C" NOT NULL,
    body   jsonb NOT NULL
);
CREATE INDEX inbox_token ON inbox (token);

-- raised in the batch's transaction when what it takes from the inbox falls
-- short of what was posted (the inbox emptied by a restart of the server)
CREATE FUNCTION inbox_short(found bigint, posted bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the batch posted to the inbox is not whole there (% of % events): '
        'nothing applied; it comes again', found, posted;
END $$;
"""

# 5: who reserved and who changed a reservation last, as the agent records
# them ('' for rows of events from before)
_V5 = """
ALTER TABLE reservations ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE reservations ADD COLUMN updated_by text NOT NULL DEFAULT '';
"""

# 6: a row's count may be one of a stock.batch's movements: its id
# (``origin:seq/i``), which conflicts name; NULL for the id ``origin:seq``
# of a count that is its event (every row's count before)
_V6 = """
ALTER TABLE stock ADD COLUMN count_mid text COLLATE "C";
"""

# 3: transfers, alerts, reorder settings, stock in transit; 4: receipts keyed
# as the agent keys them (``schema_moves``)
MIGRATIONS: list[str] = [_V1, _V2, schema_moves.V3, schema_moves.V4, _V5, _V6]


def quoted(schema: str) -> sql.Identifier:
    """The schema's name as an SQL identifier, once checked: it is spliced
    into statements, never passed as a parameter."""
    if not SCHEMA_RE.match(schema):
        raise ValueError(
            f"schema: {schema!r} is not a plain PostgreSQL name "
            "(letters, digits and '_', not starting with a digit, at most 63)"
        )
    return sql.Identifier(schema)


def use(conn: psycopg.Connection[Any], schema: str) -> None:
    """Inside a transaction: resolve the model's names in ``schema`` until it ends."""
    conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(quoted(schema)))


def _lock(conn: psycopg.Connection[Any], schema: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('inv-hq migrate ' || %s))", (schema,))


def _exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        is not None
    )


def migrate(conn: psycopg.Connection[Any], schema: str = DEFAULT_SCHEMA) -> int:
    """Create ``schema`` if absent and bring it to the newest version; returns
    the version reached. ``conn`` must be in autocommit mode (each migration
    commits on its own)."""
    if not conn.autocommit:
        raise ValueError("migrate() needs a connection in autocommit mode")
    name = quoted(schema)
    with conn.transaction():
        _lock(conn, schema)
        if not _exists(conn, schema):  # a role may use a schema it could not create
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        use(conn, schema)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
    for version in range(1, len(MIGRATIONS) + 1):
        with conn.transaction():
            _lock(conn, schema)
            use(conn, schema)
            current = _version(conn)
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"HQ schema {schema!r} is at version {current}, newer than this inv-hq "
                    f"knows ({len(MIGRATIONS)}); upgrade inv-hq"
                )
            if current >= version:
                continue
            conn.execute(MIGRATIONS[version - 1].encode())
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return len(MIGRATIONS)


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def version(conn: psycopg.Connection[Any], schema: str = DEFAULT_SCHEMA) -> int:
    """The version ``schema`` is at (0: not migrated)."""
    if not _exists(conn, schema):
        return 0
    with conn.transaction():
        use(conn, schema)
        found = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_version'",
            (schema,),
        ).fetchone()
        return _version(conn) if found else 0
