"""Staging one batch: the events COPY'd into a temporary table, recorded once
each in ``events``, and the new ones taken apart into typed rows per entity
for the set-based merges (``fields``, ``stock``).

The temporary tables belong to the projector's connection (made once, when
the projector is built) and are emptied at every commit (``ON COMMIT DELETE
ROWS``) and before every round of a rebuild (``clear``).

Taking the events apart is SQL over their stored JSON, so a rebuild from
``events`` and a live batch go through the same statements."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import psycopg

TEMP_TABLES = {
    "hq_stage": 'ord integer, origin text COLLATE "C", seq bigint, hlc bigint, '
    'type text COLLATE "C", body jsonb',
    "hq_new": 'origin text COLLATE "C", seq bigint, hlc bigint, type text COLLATE "C", body jsonb',
    # one row per field written: entity product | store | setting
    "hq_fields": 'entity text COLLATE "C", k1 text COLLATE "C", k2 text COLLATE "C", '
    'field text COLLATE "C", value jsonb, hlc bigint, origin text COLLATE "C", seq bigint, '
    "basis jsonb",
    # every key an event of those types names (a write of no fields still makes the row)
    "hq_touched": 'entity text COLLATE "C", k1 text COLLATE "C", k2 text COLLATE "C", '
    "hlc_min bigint, hlc_max bigint",
    "hq_res": 'reservation_id text COLLATE "C", store_id text COLLATE "C", sku text COLLATE "C", '
    'quantity bigint, status text COLLATE "C", customer_id text, order_id text, channel text, '
    "expires_at_ms bigint, created_at_ms bigint, updated_at_ms bigint, hlc bigint, "
    'origin text COLLATE "C", seq bigint, movement jsonb, applied boolean, d_reserved bigint',
    "hq_mv": 'event_id text COLLATE "C", origin text COLLATE "C", seq bigint, hlc bigint, '
    'store_id text COLLATE "C", sku text COLLATE "C", kind text COLLATE "C", quantity bigint, '
    "reason text, actor text, reservation_id text, basis jsonb",
    "hq_calc": 'store_id text COLLATE "C", sku text COLLATE "C", hlc bigint, '
    'origin text COLLATE "C", phase smallint, seq bigint, kind text COLLATE "C", '
    "quantity bigint, basis jsonb, late boolean, win boolean, grp bigint, "
    "on_hand_before bigint, on_hand_after bigint, reserved_at bigint, "
    'c0_hlc bigint, c0_origin text COLLATE "C", c0_seq bigint, c0_qty bigint, c0_basis jsonb',
    "hq_final": 'store_id text COLLATE "C", sku text COLLATE "C", on_hand bigint, '
    'reserved bigint, hlc bigint, c0_hlc bigint, c0_origin text COLLATE "C", c0_seq bigint, '
    'c0_qty bigint, c0_basis jsonb, win_hlc bigint, win_origin text COLLATE "C", '
    "win_seq bigint, win_qty bigint, win_basis jsonb",
}


def create_temp_tables(conn: psycopg.Connection[Any]) -> None:
    for name, columns in TEMP_TABLES.items():
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT DELETE ROWS")


def clear(conn: psycopg.Connection[Any]) -> None:
    conn.execute("TRUNCATE " + ", ".join(TEMP_TABLES))


# ------------------------------------------------------------------ staging
# one encoder, made once; non-ASCII kept as is (PostgreSQL parses it faster
# than \u escapes, and an unencodable string shows up when encoding)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def unstorable(body: str) -> str | None:
    """Why PostgreSQL cannot keep this event's JSON, if it cannot: text and
    jsonb hold no NUL character and no lone surrogate (SQLite holds both)."""
    if "\\u0000" in body and _NUL.search(body):
        return "a string holds a NUL character, which PostgreSQL cannot store"
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        return "a string holds a lone surrogate, which PostgreSQL cannot store"
    return None


def stage(conn: psycopg.Connection[Any], events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """COPY the events into ``hq_stage``; returns a quarantine record for
    each that PostgreSQL could not store (left out)."""
    refused: list[dict[str, Any]] = []
    with conn.cursor().copy("COPY hq_stage (ord, origin, seq, hlc, type, body) FROM STDIN") as copy:
        for ord_, event in enumerate(events):
            body = _dumps(event)
            problem = unstorable(body)
            if problem:
                refused.append(
                    {
                        "eventId": event.get("id"),
                        "subject": None,
                        "reason": "malformed",
                        "body": body[:65536].encode("utf-8", "replace").decode("utf-8"),
                        "detail": problem,
                    }
                )
                continue
            copy.write_row((ord_, event["origin"], event["seq"], event["hlc"], event["type"], body))
    return refused


# A plain INSERT behind a per-row probe rather than ON CONFLICT DO NOTHING: the
# events are nearly all new, and a speculative insertion costs each of them
# extra WAL. One projector writes (inv-hq holds an advisory lock); were two
# to race, the primary key would refuse the second's batch, which its
# projector retries: a duplicate is never recorded either way.
RECORD_NEW = """
WITH ins AS (
    INSERT INTO events (origin, seq, hlc, type, body, received_at)
    SELECT DISTINCT ON (s.origin, s.seq) s.origin, s.seq, s.hlc, s.type, s.body, ms_ts(%(now)s)
    FROM hq_stage s
    WHERE (SELECT 1 FROM events e WHERE e.origin = s.origin AND e.seq = s.seq) IS NULL
    ORDER BY s.origin, s.seq, s.ord
    RETURNING origin, seq, hlc, type, body
)
INSERT INTO hq_new SELECT origin, seq, hlc, type, body FROM ins
"""

# a rebuild's round: the next recorded events in stamp order
NEXT_RECORDED = """
INSERT INTO hq_new
SELECT origin, seq, hlc, type, body FROM events
WHERE (hlc, origin, seq) > (%(hlc)s, %(origin)s, %(seq)s)
ORDER BY hlc, origin, seq LIMIT %(limit)s
"""

NEW_TYPES = "SELECT type, count(*) FROM hq_new GROUP BY type"

LAST_NEW = "SELECT hlc, origin, seq FROM hq_new ORDER BY hlc DESC, origin DESC, seq DESC LIMIT 1"

# ------------------------------------------------------------ taking apart
EXTRACT_FIELDS = """
WITH e AS (
    SELECT CASE n.type WHEN 'product.upserted' THEN 'product'
                       WHEN 'store.upserted' THEN 'store' ELSE 'setting' END AS entity,
           CASE n.type WHEN 'product.upserted' THEN d->>'sku' ELSE d->>'storeId' END AS k1,
           CASE n.type WHEN 'stock.settings' THEN d->>'sku' ELSE '' END AS k2,
           n.hlc, n.origin, n.seq, nullif(d->'basis', 'null') AS basis, d->'fields' AS fields
    FROM hq_new n CROSS JOIN LATERAL (SELECT n.body->'data' AS d) x
    WHERE n.type IN ('product.upserted', 'store.upserted', 'stock.settings')
), touched AS (
    INSERT INTO hq_touched
    SELECT entity, k1, k2, min(hlc), max(hlc) FROM e GROUP BY entity, k1, k2
)
INSERT INTO hq_fields (entity, k1, k2, field, value, hlc, origin, seq, basis)
SELECT e.entity, e.k1, e.k2, f.key, f.value, e.hlc, e.origin, e.seq, e.basis
FROM e CROSS JOIN LATERAL jsonb_each(e.fields) f
"""

_MOVEMENT_COLUMNS = """
    m->>'storeId', m->>'sku', m->>'kind', (m->>'quantity')::bigint,
    coalesce(m->>'reason', ''), coalesce(m->>'actor', '')"""

# a reservation's movement (a confirm's sale) counts only with its state: an
# older state of a reservation is ignored whole, as the agent does
EXTRACT_MOVEMENTS = f"""
INSERT INTO hq_mv (event_id, origin, seq, hlc, store_id, sku, kind, quantity, reason, actor,
                   reservation_id, basis)
SELECT n.origin || ':' || n.seq, n.origin, n.seq, n.hlc, {_MOVEMENT_COLUMNS},
       NULL, nullif(m->'basis', 'null')
FROM hq_new n CROSS JOIN LATERAL (SELECT n.body->'data' AS m) x
WHERE n.type = 'stock.movement'
UNION ALL
SELECT r.origin || ':' || r.seq, r.origin, r.seq, r.hlc, {_MOVEMENT_COLUMNS},
       r.reservation_id, nullif(m->'basis', 'null')
FROM hq_res r CROSS JOIN LATERAL (SELECT r.movement AS m) x
WHERE r.applied AND r.movement IS NOT NULL
"""
