"""Transfers and alerts, set-based: the rules of ``agent/ledger/engine/
transfers.py``, ``transfer_clash.py`` and ``alerts.py`` over a batch
(``hq_new``), merged as if its events were applied one by one in stamp
order ``(hlc, origin)``, like the rest of the batch.

The record under a transfer id belongs to its *holder*: the origin with the
smallest store id whose ``transfer.changed`` events are applied (two stores
may give one id to two transfers). Another origin's events touch no record
(their stock moves all the same); a smaller origin arriving takes the record
over from the holder.

- ``EVENTS`` takes the batch's transfer events apart (``hq_tev``) and judges
  each against the record as the agent would at its place in that order:
  the holder before it (``holder``: the recorded one and the batch's
  origins before it, the smallest) and after the batch (``final_holder``);
  a ``transfer.changed`` of a larger origin than the holder is a clash, of
  a smaller one a takeover, of the final holder part of the record
  (``in_record``);
- ``LINES`` one row per event and SKU (``hq_tline``: the origin's lines, its
  cancel's claims, the receipts' lines); then ``transfer_moves`` reads the
  lines as recorded for the stock the events move;
- ``TAKEOVERS`` clears the origin side of the records handed over in the
  batch, and ``MERGE_LINES`` each line's new state: the holder's newest word
  on quantity, shipped and claim (what the agent last applied: the batch's
  newest), the receipts summed, cancelled and pending derived
  (``agent.domain.LineCounts``);
- ``HEADERS`` the records (the holder's newest state, its cancel, status),
  ``CONFLICTS`` the clashes, ``CANCELS_BEATEN`` the cancels a receipt beat
  (one per cancel and line, its detail kept up to date), ``RECEIPTS`` and
  ``ALERTS`` the immutable rows;
- ``SIDES`` a receipts-only record's stores (its earliest receipt's), then
  ``RIGHT_STORES`` and ``WRONG_STORES`` every receipt of the batch's
  transfers judged against the record as it is now."""

from __future__ import annotations

_STAMP = "e.hlc, e.origin, e.seq"

EVENTS = f"""
INSERT INTO hq_tev (tid, side, hlc, origin, seq, eid, from_store, to_store, state, note, actor,
                    created_at_ms, shipped_at_ms, cancelled_at_ms, receipt_id, received_at_ms,
                    lines, claims, r0_cancel, r0_holder, holder, holder_to, final_holder,
                    clash, takeover, in_record)
WITH e AS MATERIALIZED (
    SELECT coalesce(x.t->>'id', x.r->>'transferId') AS tid,
           CASE WHEN n.type = 'transfer.changed' THEN 'o' ELSE 'r' END AS side,
           n.hlc, n.origin, n.seq, n.origin || ':' || n.seq AS eid,
           -- compared as the agent compares them (byte order): who holds the record
           (d->>'fromStoreId') COLLATE "C" AS from_store, (d->>'toStoreId') COLLATE "C" AS to_store,
           x.t->>'state' AS state,
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
    SELECT e.*, o.cancel_id AS r0_cancel, o.to_store AS r0_to,
           CASE WHEN o.hlc IS NOT NULL THEN o.from_store END AS r0_holder,
           min(e.from_store) FILTER (WHERE e.side = 'o') OVER before AS b_holder,
           min(e.from_store) FILTER (WHERE e.side = 'o') OVER (PARTITION BY e.tid) AS b_min
    FROM e LEFT JOIN LATERAL (
        SELECT * FROM transfers o WHERE o.transfer_id = e.tid
        OFFSET 0  -- kept a subquery: a probe of the key, never a scan of every transfer
    ) o ON true
    WINDOW before AS (PARTITION BY e.tid ORDER BY {_STAMP}
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), k AS (
    -- the holder: the smallest origin whose events are applied (least() skips NULLs)
    SELECT j.*, least(r0_holder, b_holder) AS holder, least(r0_holder, b_min) AS final_holder
    FROM j
), h AS (
    SELECT k.*, CASE WHEN k.holder = k.r0_holder THEN k.r0_to ELSE f.to_store END AS holder_to
    FROM k LEFT JOIN (  -- where each origin of the batch sends its transfer under the id
        SELECT DISTINCT ON (tid, from_store) tid, from_store, to_store FROM e
        WHERE side = 'o' ORDER BY tid, from_store, {_STAMP}
    ) f ON f.tid = k.tid AND f.from_store = k.holder
)
SELECT tid, side, hlc, origin, seq, eid, from_store, to_store, state, note, actor,
       created_at_ms, shipped_at_ms, cancelled_at_ms, receipt_id, received_at_ms, lines, claims,
       r0_cancel, r0_holder, holder, holder_to, final_holder,
       coalesce(side = 'o' AND from_store > holder, false),
       coalesce(side = 'o' AND from_store < holder, false),
       side = 'o' AND from_store = final_holder
FROM h
"""

LINES = """
INSERT INTO hq_tline (tid, sku, side, hlc, origin, seq, eid, store_id, state, clash, in_record,
                      qty, position, shipped, claim, got, broken, actor, r0_cancel)
SELECT e.tid, l->>'sku', 'o', e.hlc, e.origin, e.seq, e.eid, e.from_store, e.state, e.clash,
       e.in_record, (l->>'quantity')::bigint, p::integer - 1,
       CASE WHEN e.shipped_at_ms IS NOT NULL THEN (l->>'quantity')::bigint END, NULL, 0, 0, e.actor,
       e.r0_cancel
FROM hq_tev e CROSS JOIN LATERAL jsonb_array_elements(e.lines) WITH ORDINALITY z (l, p)
WHERE e.side = 'o'
UNION ALL
-- a claim, with what its cancel says was shipped of the line (a cancel after
-- shipping carries the lines as shipped)
SELECT e.tid, c->>'sku', 'c', e.hlc, e.origin, e.seq, e.eid, e.from_store, e.state, e.clash,
       e.in_record, NULL, NULL,
       coalesce((SELECT (l->>'quantity')::bigint FROM jsonb_array_elements(e.lines) l
                 WHERE e.shipped_at_ms IS NOT NULL AND l->>'sku' = c->>'sku'), 0),
       (c->>'quantity')::bigint, 0, 0, e.actor, e.r0_cancel
FROM hq_tev e CROSS JOIN LATERAL jsonb_array_elements(e.claims) c
WHERE e.side = 'o' AND e.claims IS NOT NULL
UNION ALL
SELECT e.tid, l->>'sku', 'r', e.hlc, e.origin, e.seq, e.eid, e.to_store, NULL, false, false,
       NULL, NULL, NULL, NULL, (l->>'received')::bigint, (l->>'damaged')::bigint, e.actor,
       e.r0_cancel
FROM hq_tev e CROSS JOIN LATERAL jsonb_array_elements(e.lines) l
WHERE e.side = 'r'
"""

# A record handed over in the batch (a smaller origin arrived): what its
# holder wrote is gone from it, as the agent's ``transfer_clash.hand_over``
# leaves it: the origin side of the header and lines cleared, the lines no
# receipt names deleted; the receipts stay (they belong to the id). The
# batch's events of the new holder are merged into it next. After
# ``transfer_moves.TIMELINE``, which reads the lines as they were.
TAKEOVERS = """
WITH d AS MATERIALIZED (
    SELECT DISTINCT tid FROM hq_tev WHERE final_holder < r0_holder
), gone AS (
    DELETE FROM transfer_lines l USING d
    WHERE l.transfer_id = d.tid AND l.received = 0 AND l.damaged = 0
), kept AS (
    UPDATE transfer_lines l
    SET quantity = 0, shipped = 0, claim = 0, cancelled = 0, pending = 0
    FROM d WHERE l.transfer_id = d.tid AND NOT (l.received = 0 AND l.damaged = 0)
)
UPDATE transfers t
SET state = NULL, note = '', actor = '', created_at = NULL, shipped_at = NULL,
    cancelled_at = NULL, cancel_id = NULL, hlc = NULL, origin = NULL
FROM d WHERE t.transfer_id = d.tid
"""


def _newest(column: str, where: str) -> str:
    """The value of ``column`` in the stamp-newest row of the group matching ``where``."""
    return f"(array_agg({column} ORDER BY hlc DESC, origin DESC) FILTER (WHERE {where}))[1]"


# only the holder's events write the origin side (the agent's other origins'
# touch no record); the receipts all count
_ORIGIN = "side = 'o'"

MERGE_LINES = f"""
INSERT INTO transfer_lines AS x (transfer_id, sku, position, quantity, shipped, claim,
                                 received, damaged, cancelled, pending)
WITH a AS (
    SELECT tid, sku, {_newest("position", _ORIGIN)} AS position,
           {_newest("qty", _ORIGIN)} AS qty,
           {_newest("shipped", _ORIGIN + " AND shipped IS NOT NULL")} AS shipped,
           {_newest("claim", "side = 'c'")} AS claim,
           coalesce(sum(got), 0) AS got, coalesce(sum(broken), 0) AS broken
    FROM hq_tline WHERE side = 'r' OR in_record GROUP BY tid, sku
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

# The record: who sends and receives (the holder's word, else the first
# receipt's packing slip), the holder's newest state, its last cancel, the
# status of it all. After MERGE_LINES.
HEADERS = f"""
INSERT INTO transfers AS x (transfer_id, from_store, to_store, state, status, note, actor,
                            created_at, shipped_at, cancelled_at, cancel_id, hlc, origin,
                            updated_hlc, updated_at)
WITH a AS (
    SELECT tid, max(hlc) AS hlc FROM hq_tev WHERE NOT clash GROUP BY tid
), n AS (
    SELECT DISTINCT ON (tid) * FROM hq_tev WHERE in_record
    ORDER BY tid, hlc DESC, origin DESC
), c AS (
    SELECT DISTINCT ON (tid) tid, eid FROM hq_tev
    WHERE in_record AND claims IS NOT NULL ORDER BY tid, hlc DESC, origin DESC
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
# "None" when there is none. A clash is one entry per (transfer id, losing
# origin: met as a clash, or the holder a smaller one took over from), the
# loser the id and the field the losing store, whichever order they met in
CONFLICTS = """
INSERT INTO conflicts (conflict_id, kind, store_id, sku, winner, loser, detail, hlc, at)
SELECT 'transfer_id_clash:' || tid || ':None:' || lost, 'transfer_id_clash', lost, NULL, NULL,
       tid, jsonb_build_object('transferId', tid, 'field', lost, 'fromStoreId', lost,
                               'toStoreId', lost_to),
       hlc, ms_ts(%(now)s)
FROM (
    SELECT DISTINCT ON (tid, lost) * FROM (
        -- a later origin met, or the holder a smaller one took the record from
        SELECT tid, from_store AS lost, to_store AS lost_to, hlc FROM hq_tev WHERE clash
        UNION ALL
        SELECT tid, holder, holder_to, hlc FROM hq_tev WHERE takeover
    ) c
    ORDER BY tid, lost, hlc
) c
ON CONFLICT (conflict_id) DO NOTHING
"""

# a cancel beaten by a receipt is one entry per (cancel, line), its detail
# following the receipts (the holder's; those of holders that lost the
# record in the batch: transfer_moves.HANDED_OVER)
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

# one row per (transfer, receiving store, receipt id), as in the agent: a
# second event of a receipt moves stock and counts in the lines all the same
# (hq_tline), but the receipt stays the first one applied
RECEIPTS = """
INSERT INTO transfer_receipts (event_id, transfer_id, receipt_id, store_id, from_store, lines,
                               actor, received_at, hlc, at)
SELECT eid, tid, receipt_id, to_store, from_store, lines, actor, ms_ts(received_at_ms), hlc,
       ms_ts(hlc >> 16)
FROM hq_tev WHERE side = 'r' ORDER BY hlc, origin, seq
ON CONFLICT (transfer_id, store_id, receipt_id) DO NOTHING
"""

# a transfer known only from receipts is sent and received as its earliest
# receipt says, by (stamp, receiving store, receipt id): whichever came
# first. After RECEIPTS
SIDES = """
UPDATE transfers t SET from_store = r.from_store, to_store = r.store_id
FROM (SELECT DISTINCT tid FROM hq_tev) b
CROSS JOIN LATERAL (
    SELECT from_store, store_id FROM transfer_receipts r WHERE r.transfer_id = b.tid
    ORDER BY hlc, store_id, receipt_id LIMIT 1
) r
WHERE t.transfer_id = b.tid AND t.hlc IS NULL
  AND (t.from_store, t.to_store) IS DISTINCT FROM (r.from_store, r.store_id)
"""

# A receipt at another store than the record's destination, judged against
# the record as it is now (once an origin's side is known): listed; a
# listing the record no longer bears out (the record changed hands, or is
# receipts-only again) is taken away. The set follows the final record
# alone. After SIDES.
_JUDGED = """
    SELECT r.event_id, r.transfer_id, r.store_id, r.hlc, t.to_store,
           t.hlc IS NOT NULL AND r.store_id <> t.to_store AS wrong
    FROM (SELECT DISTINCT tid FROM hq_tev) b
    CROSS JOIN LATERAL (SELECT * FROM transfers t WHERE t.transfer_id = b.tid OFFSET 0) t
    CROSS JOIN LATERAL (
        SELECT * FROM transfer_receipts r WHERE r.transfer_id = b.tid OFFSET 0
    ) r
"""

WRONG_STORES = f"""
INSERT INTO conflicts (conflict_id, kind, store_id, sku, winner, loser, detail, hlc, at)
SELECT 'transfer_wrong_store:' || event_id || ':None:', 'transfer_wrong_store', store_id, NULL,
       NULL, event_id,
       jsonb_build_object('transferId', transfer_id, 'toStoreId', to_store,
                          'receivedBy', store_id),
       hlc, ms_ts(%(now)s)
FROM ({_JUDGED}) j WHERE wrong
ON CONFLICT (conflict_id) DO NOTHING
"""

RIGHT_STORES = f"""
DELETE FROM conflicts c USING ({_JUDGED}) j
WHERE NOT j.wrong AND c.conflict_id = 'transfer_wrong_store:' || j.event_id || ':None:'
"""

# the batch's transfer events taken apart: before transfer_moves.STATEMENTS
TAKE_APART = (EVENTS, LINES)

# the records merged: after transfer_moves.STATEMENTS
STATEMENTS = (
    TAKEOVERS,
    MERGE_LINES,
    HEADERS,
    CONFLICTS,
    CANCELS_BEATEN,
    RECEIPTS,
    SIDES,
    RIGHT_STORES,
    WRONG_STORES,
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
