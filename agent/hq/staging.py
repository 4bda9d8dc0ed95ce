"""Staging one batch: the events COPY'd into a temporary table (``hq_new``),
the ones already recorded taken out again, the rest recorded in ``events``,
and taken apart into typed rows per entity for the set-based merges
(``fields``, ``stock``).

The temporary tables belong to the projector's connection (made once, when
the projector is built) and are emptied at every commit (``ON COMMIT DELETE
ROWS``) and before every round of a rebuild (``clear``).

An event is COPY'd as the JSON it arrived as when PostgreSQL can take that
text as it is (nearly always): re-encoding it in Python cost more than every
other Python step of a batch. Taking the events apart is SQL over that JSON,
so a rebuild from ``events`` and a live batch go through the same statements."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import psycopg

TEMP_TABLES = {
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
    "created_by text, updated_by text, expires_at_ms bigint, created_at_ms bigint, "
    "updated_at_ms bigint, hlc bigint, "
    'origin text COLLATE "C", seq bigint, movement jsonb, applied boolean, d_reserved bigint',
    # a batch's transfer events (transfers.EVENTS), each with the record's holder
    # before it and after the batch; one row per event and SKU (LINES); the
    # steps of the lines whose returns move (transfer_moves.TIMELINE), the stock
    # they move (MOVES) and the corrections of returns (ADJUSTS)
    "hq_tev": 'tid text COLLATE "C", side text COLLATE "C", hlc bigint, origin text COLLATE "C", '
    'seq bigint, eid text COLLATE "C", from_store text COLLATE "C", to_store text COLLATE "C", '
    "state text, note text, actor text, created_at_ms bigint, shipped_at_ms bigint, "
    "cancelled_at_ms bigint, receipt_id text, received_at_ms bigint, lines jsonb, claims jsonb, "
    'r0_cancel text COLLATE "C", r0_holder text COLLATE "C", holder text COLLATE "C", '
    'holder_to text COLLATE "C", final_holder text COLLATE "C", '
    "clash boolean, takeover boolean, in_record boolean",
    "hq_tline": 'tid text COLLATE "C", sku text COLLATE "C", side text COLLATE "C", hlc bigint, '
    'origin text COLLATE "C", seq bigint, eid text COLLATE "C", store_id text COLLATE "C", '
    "state text, clash boolean, in_record boolean, qty bigint, position integer, "
    "shipped bigint, claim bigint, got bigint, broken bigint, actor text, "
    'r0_cancel text COLLATE "C"',
    "hq_tstep": 'tid text COLLATE "C", sku text COLLATE "C", step smallint, hlc bigint, '
    'origin text COLLATE "C", seq bigint, eid text COLLATE "C", store_id text COLLATE "C", '
    "state text, clash boolean, in_record boolean, k bigint, s bigint, got bigint, "
    "broken bigint, actor text, got_before bigint, broken_before bigint, total bigint, "
    'h_k bigint, h_s bigint, h_cancel text COLLATE "C", h_store text COLLATE "C", h_hlc bigint, '
    'h_origin text COLLATE "C", h_recorded boolean, h_final bigint',
    "hq_tmv": 'store_id text COLLATE "C", sku text COLLATE "C", hlc bigint, '
    'origin text COLLATE "C", seq bigint, sub smallint, kind text COLLATE "C", quantity bigint, '
    'reason text, actor text, mid text COLLATE "C", transfer_id text COLLATE "C", '
    "final_qty bigint",
    "hq_adj": 'store_id text COLLATE "C", sku text COLLATE "C", hlc bigint, '
    'origin text COLLATE "C", seq bigint, quantity bigint, mid text COLLATE "C", '
    'transfer_id text COLLATE "C", ret_hlc bigint, ret_origin text COLLATE "C", '
    "recorded boolean, effective boolean, final_qty bigint",
    # every step of a stock row in the batch (stock.CALC): a movement (phase 1) or
    # a reservation's change of reserved (phase 0), with the row's recorded state
    "hq_calc": 'store_id text COLLATE "C", sku text COLLATE "C", hlc bigint, '
    'origin text COLLATE "C", phase smallint, sub smallint, seq bigint, kind text COLLATE "C", '
    "quantity bigint, basis jsonb, reason text, actor text, reservation_id text, "
    'mid text COLLATE "C", transfer_id text COLLATE "C", ret_hlc bigint, '
    "existed boolean, late boolean, win boolean, grp bigint, wins bigint, last boolean, "
    "on_hand_before bigint, on_hand_after bigint, reserved_at bigint, "
    'c0_hlc bigint, c0_origin text COLLATE "C", c0_seq bigint, c0_qty bigint, c0_basis jsonb, '
    'c0_mid text COLLATE "C"',
    "hq_final": 'store_id text COLLATE "C", sku text COLLATE "C", on_hand bigint, '
    "reserved bigint, hlc bigint, existed boolean, "
    'c0_hlc bigint, c0_origin text COLLATE "C", c0_seq bigint, '
    'c0_qty bigint, c0_basis jsonb, win_hlc bigint, win_origin text COLLATE "C", '
    'win_seq bigint, win_qty bigint, win_basis jsonb, c0_mid text COLLATE "C", '
    'win_mid text COLLATE "C"',
}


def create_temp_tables(conn: psycopg.Connection[Any]) -> None:
    for name, columns in TEMP_TABLES.items():
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT DELETE ROWS")


def clear(conn: psycopg.Connection[Any]) -> None:
    conn.execute("TRUNCATE " + ", ".join(TEMP_TABLES))


# ------------------------------------------------------------------ staging
# one encoder, made once; non-ASCII kept as is (PostgreSQL parses it faster
# than \u escapes, and an unencodable string shows up when encoding); NaN
# and Infinity refused (JSON has no such numbers, PostgreSQL takes none)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# the bytes a payload may hold and be COPY'd as it is: printable ASCII but
# the backslash (an escape: a \\u0000 or a lone surrogate jsonb refuses, and
# a backslash COPY would read as its own escape)
_PLAIN = bytes(c for c in range(0x20, 0x7F) if c != 0x5C)


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


def as_arrived(payload: bytes) -> bytes | None:
    """The payload as a field of COPY's text format, when it is plain (see
    ``_PLAIN``), an object, and has no NaN or Infinity (Python's json takes
    them, jsonb does not): what an agent sends. None when the event must be
    encoded anew; a false alarm only costs that."""
    if (
        payload.translate(None, _PLAIN)
        or b"NaN" in payload
        or b"Infinity" in payload
        or not payload.startswith(b"{")
    ):
        return None
    return payload


def _copy_text(value: bytes) -> bytes:
    """``value`` as a field of COPY's text format."""
    if b"\\" in value:
        value = value.replace(b"\\", b"\\\\")
    if b"\n" in value or b"\r" in value or b"\t" in value:
        value = value.replace(b"\n", b"\\n").replace(b"\r", b"\\r").replace(b"\t", b"\\t")
    return value


@dataclass(frozen=True)
class Encoded:
    """A batch as COPY's input for ``hq_new`` (``encode``): made apart from
    the transaction, so a caller can make the next batch's while PostgreSQL
    works on the one before."""

    events: Sequence[dict[str, Any]]  # as handed in
    copy: bytes  # COPY's text format: one line per event to stage
    rows: int  # lines: the batch less its repeats and refusals
    types: frozenset[str]  # the event types among them
    refused: list[dict[str, Any]]  # quarantine records: events PostgreSQL cannot store


def _refusal(event: dict[str, Any], body: str, problem: str) -> dict[str, Any]:
    return {
        "eventId": event.get("id"),
        "subject": None,
        "reason": "malformed",
        "body": body[:65536].encode("utf-8", "replace").decode("utf-8"),
        "detail": problem,
    }


def _encoded(event: dict[str, Any]) -> tuple[str, str | None]:
    """The event's JSON encoded anew, and why PostgreSQL cannot store it (if not)."""
    try:
        body = _dumps(event)
    except ValueError:
        return json.dumps(event, ensure_ascii=False), "a number is NaN or Infinity, not JSON"
    return body, unstorable(body)


def encode(events: Sequence[dict[str, Any]], payloads: Sequence[bytes] | None = None) -> Encoded:
    """The lines to COPY into ``hq_new``: each (origin, seq) once (its first
    occurrence), as its payload (``payloads[i]``, the JSON ``events[i]`` was
    parsed from) when that is plain, else encoded anew. Events PostgreSQL
    cannot store are left out, with a quarantine record each."""
    if payloads is not None and len(payloads) != len(events):
        raise ValueError("payloads: one per event, or none")
    refused: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    # per (origin, type): a line's start, with the line break before it
    heads: dict[tuple[str, str], bytes] = {}
    parts: list[bytes] = []  # head, body, head, body...: one copy of each body, by join
    for event, payload in zip(events, payloads or repeat(None), strict=False):
        origin, seq = event["origin"], event["seq"]
        key = (origin, seq)
        if key in seen:
            continue
        body = as_arrived(payload) if payload is not None else None
        if body is None:
            text, problem = _encoded(event)
            if problem:
                refused.append(_refusal(event, text, problem))
                continue
            body = _copy_text(text.encode("utf-8"))
        seen.add(key)
        kind = (origin, event["type"])
        head = heads.get(kind)
        if head is None:
            o, t = (_copy_text(str(v).encode()).replace(b"%", b"%%") for v in kind)
            head = heads[kind] = b"\n" + o + b"\t%d\t%d\t" + t + b"\t"
        parts.append(head % (seq, event["hlc"]))
        parts.append(body)
    copy = b"".join(parts)[1:] + b"\n" if parts else b""
    types = frozenset(t for _, t in heads)
    return Encoded(events, copy, len(parts) // 2, types, refused)


def stage(conn: psycopg.Connection[Any], batch: Encoded) -> None:
    """COPY the batch into ``hq_new``."""
    if batch.rows:
        with conn.cursor().copy("COPY hq_new (origin, seq, hlc, type, body) FROM STDIN") as copy:
            copy.write(batch.copy)


# Repeats of events recorded before (a batch delivered again) taken out of
# the batch. An origin's watermarks settle most without a look: a seq up to
# its applied_seq is recorded, one past its max_seq is not (both are moved in
# the transaction that records an event); only those between are probed, in
# the primary key (a scalar subquery, not EXISTS: a semi join could read all
# of ``events``). Then the rest recorded with a plain INSERT, not ON CONFLICT
# DO NOTHING: the events are nearly all new, and a speculative insertion
# costs each of them extra WAL. One projector writes (inv-hq holds an
# advisory lock); were two to race, the primary key would refuse the
# second's batch, which its projector retries: a duplicate is never recorded
# either way.
DROP_RECORDED = """
DELETE FROM hq_new n USING origins o
WHERE o.origin = n.origin AND n.seq <= o.max_seq
  AND (n.seq <= o.applied_seq
       OR (SELECT 1 FROM events e WHERE e.origin = n.origin AND e.seq = n.seq) IS NOT NULL)
"""

RECORD_NEW = """
INSERT INTO events (origin, seq, hlc, type, body, received_at)
SELECT origin, seq, hlc, type, body, ms_ts(%(now)s) FROM hq_new
"""

# A rebuild's order: every recorded event numbered in stamp order, once (a
# sort of the keys alone), so that ``events`` needs no index of that order,
# which every live event would have paid for.
ORDER_RECORDED = """
CREATE TEMP TABLE hq_order ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY hlc, origin, seq) AS n, origin, seq FROM events;
CREATE INDEX ON hq_order (n);
ANALYZE hq_order
"""

# a rebuild's round: the next recorded events in stamp order, each looked up
# by its primary key
NEXT_RECORDED = """
INSERT INTO hq_new
SELECT e.origin, e.seq, e.hlc, e.type, e.body
FROM hq_order o CROSS JOIN LATERAL (
    SELECT * FROM events e WHERE e.origin = o.origin AND e.seq = o.seq
    OFFSET 0  -- kept a subquery: a probe of the key, never a join with every event
) e
WHERE o.n > %(after)s AND o.n <= %(after)s + %(limit)s
"""

NEW_TYPES = "SELECT DISTINCT type FROM hq_new"

# ------------------------------------------------------------ taking apart
EXTRACT_FIELDS = """
WITH e AS (
    SELECT CASE n.type WHEN 'product.upserted' THEN 'product'
                       WHEN 'store.upserted' THEN 'store' ELSE 'setting' END AS entity,
           CASE n.type WHEN 'product.upserted' THEN d->>'sku' ELSE d->>'storeId' END AS k1,
           CASE WHEN n.type IN ('stock.settings', 'stock.reorder') THEN d->>'sku' ELSE '' END
               AS k2,
           n.hlc, n.origin, n.seq, nullif(d->'basis', 'null') AS basis, d->'fields' AS fields
    FROM hq_new n CROSS JOIN LATERAL (SELECT n.body->'data' AS d) x
    WHERE n.type IN ('product.upserted', 'store.upserted', 'stock.settings', 'stock.reorder')
), touched AS (
    INSERT INTO hq_touched
    SELECT entity, k1, k2, min(hlc), max(hlc) FROM e GROUP BY entity, k1, k2
)
INSERT INTO hq_fields (entity, k1, k2, field, value, hlc, origin, seq, basis)
SELECT e.entity, e.k1, e.k2, f.key, f.value, e.hlc, e.origin, e.seq, e.basis
FROM e CROSS JOIN LATERAL jsonb_each(e.fields) f
"""
