"""Transfers and alerts, set-based: the rules of ``agent/ledger/engine/
transfers.py`` and ``alerts.py`` over a batch (``hq_new``), merged as if its
events were applied one by one in stamp order ``(hlc, origin)``, like the
rest of the batch.

- ``EVENTS`` takes the batch's transfer events apart (``hq_tev``) and judges
  each against the record as the agent would at its place in that order: a
  ``transfer.changed`` naming other stores than the record's first origin
  event is a clash (its stock moves, the record does not), a receipt at
  another store than the record's destination is at the wrong store;
- ``LINES`` one row per event and SKU (``hq_tline``: the origin's lines, its
  cancel's claims, the receipts' lines), and ``MERGE_LINES`` each line's new
  state: the origin's newest word on quantity, shipped and claim (what the
  agent last applied: the batch's newest), the receipts summed, cancelled
  and pending derived (``agent.domain.LineCounts``);
- ``HEADERS`` the records (the newest origin state, the cancel, status),
  ``CONFLICTS`` the clashes and wrong stores, ``CANCELS_BEATEN`` the cancels
  a receipt beat (one per cancel and line, its detail kept up to date),
  ``RECEIPTS`` and ``ALERTS`` the immutable rows.

The stock the events move is ``transfer_moves``'s."""

from __future__ import annotations

_STAMP = "e.hlc, e.origin, e.seq"

EVENTS = f"""
INSERT INTO hq_tev
WITH e AS (
    SELECT coalesce(x.t->>'id', x.r->>'transferId') AS tid,
           CASE WHEN n.type = 'transfer.changed' THEN 'o' ELSE 'r' END AS side,
           n.hlc, n.origin, n.seq, n.origin || ':' || n.seq AS eid,
           d->>'fromStoreId' AS from_store, d->>'toStoreId' AS to_store, x.t->>'state' AS state,
           coalesce(x.t->>'note', '') AS note, coalesce(d->>'actor', '') AS actor,
           (x.t->>'createdAtMs')::bigint AS created_at_ms,
           (x.t->>'shippedAtMs')::bigint AS shipped_at_ms,
           (x.t->>'cancelledAtMs')::bigint AS cancelled_at_ms,
           x.r->>'id' AS receipt_id, (x.r->>'receivedAtMs')::bigint AS received_at_ms,
           d->'lines' AS lines,
           CASE WHEN jsonb_typeof(n.body->'data'->'claims') = 'array'
                THEN n.body->'data'->'claims' END AS claims
    FROM hq_new n
    CROSS JOIN LATERAL (
        SELECT n.body->'data'->'transfer' AS t, n.body->'data'->'receipt' AS r
    ) x
    CROSS JOIN LATERAL (SELECT coalesce(x.t, x.r) AS d) y
    WHERE n.type IN ('transfer.changed', 'transfer.received')
), j AS (
    -- f: the batch's first origin event of the transfer, else its first receipt
    SELECT e.*, o.transfer_id IS NOT NULL AS r0, o.hlc AS r0_hlc, o.from_store AS r0_from,
           o.to_store AS r0_to, o.cancel_id AS r0_cancel,
           first_value(e.side) OVER f AS f_side, first_value(e.from_store) OVER f AS f_from,
           first_value(e.to_store) OVER f AS f_to, first_value(e.hlc) OVER f AS f_hlc,
           first_value(e.origin) OVER f AS f_origin,
           first_value(e.to_store) OVER (PARTITION BY e.tid, e.side ORDER BY {_STAMP}) AS r1_to
    FROM e LEFT JOIN LATERAL (
        SELECT * FROM transfers o WHERE o.transfer_id = e.tid
        OFFSET 0  -- kept a subquery: a probe of the key, never a scan of every transfer
    ) o ON true
    WINDOW f AS (PARTITION BY e.tid ORDER BY e.side, {_STAMP})
), k AS (
    SELECT j.*,
           CASE WHEN r0_hlc IS NOT NULL THEN r0_from ELSE f_from END AS kept_from,
           CASE WHEN r0_hlc IS NOT NULL THEN r0_to ELSE f_to END AS kept_to,
           -- where the record says the transfer goes, when this receipt meets it
           CASE WHEN r0_hlc IS NOT NULL THEN r0_to
                WHEN f_side = 'o' AND (f_hlc, f_origin) < (hlc, origin) THEN f_to
                WHEN r0 THEN r0_to
                ELSE r1_to END AS to_at
    FROM j
)
SELECT tid, side, hlc, origin, seq, eid, from_store, to_store, state, note, actor,
       created_at_ms, shipped_at_ms, cancelled_at_ms, receipt_id, received_at_ms, lines, claims,
       r0_cancel, kept_from, kept_to, to_at,
       side = 'o' AND (from_store, to_store) IS DISTINCT FROM (kept_from, kept_to) AS clash,
       side = 'r' AND to_at IS DISTINCT FROM to_store AS wrong
FROM k
"""

LINES = """
INSERT INTO hq_tline (tid, sku, side, hlc, origin, seq, eid, store_id, state, clash, qty,
                      position, shipped, claim, got, broken, actor, r0_cancel)
SELECT e.tid, l->>'sku', 'o', e.hlc, e.origin, e.seq, e.eid, e.from_store, e.state, e.clash,
       (l->>'quantity')::bigint, p::integer - 1,
       CASE WHEN e.shipped_at_ms IS NOT NULL THEN (l->>'quantity')::bigint END, NULL, 0, 0, e.actor,
       e.r0_cancel
FROM hq_tev e CROSS JOIN LATERAL jsonb_array_elements(e.lines) WITH ORDINALITY z (l, p)
WHERE e.side = 'o'
UNION ALL
SELECT e.tid, c->>'sku', 'c', e.hlc, e.origin, e.seq, e.eid, e.from_store, e.state, e.clash,
       NULL, NULL, NULL, (c->>'quantity')::bigint, 0, 0, e.actor, e.r0_cancel
FROM hq_tev e CROSS JOIN LATERAL jsonb_array_elements(e.claims) c
WHERE e.side = 'o' AND e.claims IS NOT NULL
UNION ALL
SELECT e.tid, l->>'sku', 'r', e.hlc, e.origin, e.seq, e.eid, e.to_store, NULL, false,
       NULL, NULL, NULL, NULL, (l->>'received')::bigint, (l->>'damaged')::bigint, e.actor,
       e.r0_cancel
FROM hq_tev e CROSS JOIN LATERAL jsonb_array_elements(e.lines) l
WHERE e.side = 'r'
"""


def _newest(column: str, where: str) -> str:
    """The value of ``column`` in the stamp-newest row of the group matching ``where``."""
    return f"(array_agg({column} ORDER BY hlc DESC, origin DESC) FILTER (WHERE {where}))[1]"


# a clash's lines touch no record (the agent leaves the record alone)
_ORIGIN = "side = 'o' AND NOT clash"

MERGE_LINES = f"""
INSERT INTO transfer_lines AS x (transfer_id, sku, position, quantity, shipped, claim,
                                 received, damaged, cancelled, pending)
WITH a AS (
    SELECT tid, sku, {_newest("position", _ORIGIN)} AS position,
           {_newest("qty", _ORIGIN)} AS qty,
           {_newest("shipped", _ORIGIN + " AND shipped IS NOT NULL")} AS shipped,
           {_newest("claim", "side = 'c' AND NOT clash")} AS claim,
           coalesce(sum(got), 0) AS got, coalesce(sum(broken), 0) AS broken
    FROM hq_tline WHERE NOT clash GROUP BY tid, sku
), v AS (
    SELECT a.tid, a.sku, coalesce(a.position, o.position) AS position,
           coalesce(a.qty, o.quantity, 0) AS quantity, coalesce(a.shipped, o.shipped, 0) AS shipped,
           coalesce(a.claim, o.claim, 0) AS claim, coalesce(o.received, 0) + a.got AS received,
           coalesce(o.damaged, 0) + a.broken AS damaged
    FROM a LEFT JOIN LATERAL (
        SELECT * FROM transfer_lines o WHERE o.transfer_id = a.tid AND o.sku = a.sku OFFSET 0
    ) o ON true
)
SELECT tid, sku, position, quantity, shipped, claim, received, damaged, c.cancelled,
       greatest(0, shipped - received - damaged) - c.cancelled
FROM v CROSS JOIN LATERAL (
    SELECT least(claim, greatest(0, shipped - received - damaged)) AS cancelled
) c
ON CONFLICT (transfer_id, sku) DO UPDATE
SET position = excluded.position, quantity = excluded.quantity, shipped = excluded.shipped,
    claim = excluded.claim, received = excluded.received, damaged = excluded.damaged,
    cancelled = excluded.cancelled, pending = excluded.pending
"""

# agent.domain.transfer_status over a transfer's lines (``st``) and state
_STATUS = """CASE WHEN h.state = 'CANCELLED'
                THEN CASE WHEN st.got AND st.claimed AND NOT st.returned THEN 'RECEIVED'
                          ELSE 'CANCELLED' END
            WHEN NOT st.got THEN CASE WHEN h.state = 'SHIPPED' THEN 'SHIPPED' ELSE 'DRAFT' END
            WHEN h.state IS DISTINCT FROM 'SHIPPED' THEN 'RECEIVED'
            WHEN st.pending THEN 'PARTIALLY_RECEIVED'
            ELSE 'RECEIVED' END"""

# The record: who sends and receives (the record's origin events' word, else
# the first receipt's packing slip), the newest origin state, the last
# cancel, the status of it all. After MERGE_LINES.
HEADERS = f"""
INSERT INTO transfers AS x (transfer_id, from_store, to_store, state, status, note, actor,
                            created_at, shipped_at, cancelled_at, cancel_id, hlc, origin,
                            updated_hlc, updated_at)
WITH a AS (
    SELECT tid, max(hlc) AS hlc FROM hq_tev GROUP BY tid
), n AS (
    SELECT DISTINCT ON (tid) * FROM hq_tev WHERE side = 'o' AND NOT clash
    ORDER BY tid, hlc DESC, origin DESC
), c AS (
    SELECT DISTINCT ON (tid) tid, eid FROM hq_tev
    WHERE side = 'o' AND NOT clash AND claims IS NOT NULL ORDER BY tid, hlc DESC, origin DESC
), r1 AS (
    SELECT DISTINCT ON (tid) tid, from_store, to_store FROM hq_tev WHERE side = 'r'
    ORDER BY tid, hlc, origin
), h AS (
    SELECT a.tid, o.hlc IS NOT NULL OR n.tid IS NULL AND o.transfer_id IS NOT NULL AS kept,
           n.tid IS NOT NULL AND (o.hlc IS NULL OR (n.hlc, n.origin) > (o.hlc, o.origin)) AS newer,
           o.transfer_id AS o_id, o.from_store AS o_from, o.to_store AS o_to, o.state AS o_state,
           o.note AS o_note, o.actor AS o_actor, o.created_at AS o_created,
           o.shipped_at AS o_shipped, o.cancelled_at AS o_cancelled, o.hlc AS o_hlc,
           o.origin AS o_origin, coalesce(c.eid, o.cancel_id) AS cancel_id,
           greatest(o.updated_hlc, a.hlc) AS updated_hlc,
           coalesce(n.from_store, r1.from_store) AS b_from,
           coalesce(n.to_store, r1.to_store) AS b_to,
           n.state, n.note, n.actor, n.created_at_ms, n.shipped_at_ms, n.cancelled_at_ms,
           n.hlc, n.origin
    FROM a LEFT JOIN LATERAL (
        SELECT * FROM transfers o WHERE o.transfer_id = a.tid OFFSET 0
    ) o ON true
    LEFT JOIN n USING (tid) LEFT JOIN c USING (tid) LEFT JOIN r1 USING (tid)
), v AS (
    SELECT h.tid, CASE WHEN kept THEN o_from ELSE b_from END AS from_store,
           CASE WHEN kept THEN o_to ELSE b_to END AS to_store,
           CASE WHEN newer THEN h.state ELSE o_state END AS state,
           CASE WHEN newer THEN h.note ELSE coalesce(o_note, '') END AS note,
           CASE WHEN newer THEN h.actor ELSE coalesce(o_actor, '') END AS actor,
           CASE WHEN newer THEN ms_ts(created_at_ms) ELSE o_created END AS created_at,
           CASE WHEN newer THEN ms_ts(shipped_at_ms) ELSE o_shipped END AS shipped_at,
           CASE WHEN newer THEN ms_ts(cancelled_at_ms) ELSE o_cancelled END AS cancelled_at,
           cancel_id, CASE WHEN newer THEN h.hlc ELSE o_hlc END AS hlc,
           CASE WHEN newer THEN h.origin ELSE o_origin END AS origin, updated_hlc
    FROM h
)
SELECT h.tid, h.from_store, h.to_store, h.state, {_STATUS}, h.note, h.actor, h.created_at,
       h.shipped_at, h.cancelled_at, h.cancel_id, h.hlc, h.origin, h.updated_hlc,
       ms_ts(h.updated_hlc >> 16)
FROM v h CROSS JOIN LATERAL (  -- the transfer's lines, a range of their key
    SELECT bool_or(received > 0 OR damaged > 0) AS got, bool_or(claim > 0) AS claimed,
           bool_or(cancelled > 0) AS returned, bool_or(pending > 0) AS pending
    FROM transfer_lines l WHERE l.transfer_id = h.tid
) st
ON CONFLICT (transfer_id) DO UPDATE
SET from_store = excluded.from_store, to_store = excluded.to_store, state = excluded.state,
    status = excluded.status, note = excluded.note, actor = excluded.actor,
    created_at = excluded.created_at, shipped_at = excluded.shipped_at,
    cancelled_at = excluded.cancelled_at, cancel_id = excluded.cancel_id, hlc = excluded.hlc,
    origin = excluded.origin, updated_hlc = excluded.updated_hlc, updated_at = excluded.updated_at
"""

# the agent's ids: kind:loser:winner:field (engine/conflicts.py), the winner
# "None" when there is none; a cancel beaten by a receipt is one entry per
# (cancel, line), its detail following the receipts
CONFLICTS = """
INSERT INTO conflicts (conflict_id, kind, store_id, sku, winner, loser, detail, hlc, at)
SELECT 'transfer_id_clash:' || eid || ':None:', 'transfer_id_clash', from_store, NULL, NULL,
       eid, jsonb_build_object('transferId', tid, 'kept', jsonb_build_array(kept_from, kept_to),
                               'other', jsonb_build_array(from_store, to_store)),
       hlc, ms_ts(%(now)s)
FROM hq_tev WHERE clash
UNION ALL
SELECT 'transfer_wrong_store:' || eid || ':None:', 'transfer_wrong_store', to_store, NULL, NULL,
       eid, jsonb_build_object('transferId', tid, 'toStoreId', to_at, 'receivedBy', to_store),
       hlc, ms_ts(%(now)s)
FROM hq_tev WHERE wrong
ON CONFLICT (conflict_id) DO NOTHING
"""

CANCELS_BEATEN = """
INSERT INTO conflicts AS x (conflict_id, kind, store_id, sku, winner, loser, detail, hlc, at)
SELECT 'cancel_vs_receipt:' || t.cancel_id || ':' || t.transfer_id || ':' || l.sku,
       'cancel_vs_receipt', t.from_store, l.sku, t.transfer_id, t.cancel_id,
       jsonb_build_object('transferId', t.transfer_id, 'field', l.sku, 'shipped', l.shipped,
                          'claimed', l.claim, 'cancelled', l.cancelled,
                          'received', l.received, 'damaged', l.damaged),
       coalesce(t.hlc, 0), ms_ts(%(now)s)
FROM (SELECT DISTINCT tid FROM hq_tev WHERE NOT clash) b
CROSS JOIN LATERAL (SELECT * FROM transfers t WHERE t.transfer_id = b.tid OFFSET 0) t
CROSS JOIN LATERAL (
    SELECT * FROM transfer_lines l WHERE l.transfer_id = t.transfer_id OFFSET 0
) l
WHERE t.cancel_id IS NOT NULL AND l.claim > l.cancelled
ON CONFLICT (conflict_id) DO UPDATE SET detail = excluded.detail
WHERE x.detail IS DISTINCT FROM excluded.detail
"""

RECEIPTS = """
INSERT INTO transfer_receipts (event_id, transfer_id, receipt_id, store_id, from_store, lines,
                               actor, received_at, hlc, at)
SELECT eid, tid, receipt_id, to_store, from_store, lines, actor, ms_ts(received_at_ms), hlc,
       ms_ts(hlc >> 16)
FROM hq_tev WHERE side = 'r'
"""

# the batch's transfer statements, in order: before transfer_moves.STATEMENTS
STATEMENTS = (
    EVENTS,
    LINES,
    MERGE_LINES,
    HEADERS,
    CONFLICTS,
    CANCELS_BEATEN,
    RECEIPTS,
)

ALERTS = """
INSERT INTO alerts (alert_id, kind, store_id, sku, before, after, reorder_point, cause,
                    raised_at, at, hlc, origin, seq)
SELECT n.origin || ':' || n.seq, a->>'kind', a->>'storeId', a->>'sku', (a->>'before')::bigint,
       (a->>'after')::bigint, (a->>'reorderPoint')::bigint, a->>'cause',
       ms_ts((a->>'raisedAtMs')::bigint), ms_ts(n.hlc >> 16), n.hlc, n.origin, n.seq
FROM hq_new n CROSS JOIN LATERAL (SELECT n.body->'data'->'alert' AS a) x
WHERE n.type = 'alert.raised'
"""
