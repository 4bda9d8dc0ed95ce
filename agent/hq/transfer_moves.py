"""The stock a batch's transfer events move (``agent.hq.transfers`` took them
apart into ``hq_tev`` and ``hq_tline``): steps for ``stock.CALC``, which
merges them with every other movement. Before the records are merged: the
timeline reads the lines as recorded.

- ``TIMELINE`` (``hq_tstep``): each line a return is written or moved on,
  its steps in stamp order: the takeovers of its record, the claims of
  cancels, the receipts; with what the receipts sum to before each step and
  the cancel the record holds at it (``h_*``, see below);
- ``MOVES`` (``hq_tmv``): ``transfer_out`` per line of a ship,
  ``transfer_in`` and ``damaged`` per line of a receipt, ``transfer_return``
  per claim of a cancel: worth what the line allows at the cancel's place
  in the stamp order (its claim less what the receipts before it show
  arrived), or its whole claim when another origin holds the record then;
- ``ADJUSTS`` (``hq_adj``): the corrections of the held cancel's return, a
  step of the origin's stock row as the agent's ``adjust_movement`` (it
  moves on_hand only while no count newer than the return has been
  applied: ``effective``): by each later receipt, to what the line allows
  now; and by a takeover, back to its whole claim (outside the record now);
- ``HANDED_OVER``: a cancel whose holder lost the record in the batch, once
  a receipt had beaten it, listed as the agent left it (``cancel_vs_receipt``);
- ``RETURNS``, after the stock merge: every return the batch wrote or
  corrected, at its final worth (the holder's: what its line allows;
  another origin's: its claim).

The record under an id belongs to the smallest origin whose events are
applied (``agent/ledger/engine/transfer_clash.py``): the cancel it holds at
a step is the last cancel written while its origin held the record, unless
a takeover came after it; before any step of the batch, the recorded one
(``cancel_id``) until the batch's first takeover."""

from __future__ import annotations

# LineCounts.cancelled of a line whose receipts sum to x
_WORTH = "least({k}, greatest(0, {s} - {x}))"

# Per line that needs one (a claim in the batch, a recorded cancel, or a
# takeover of a record whose cancel claimed it), its steps in stamp order:
# a takeover (0) before the claim (1) of the same event, receipts (2).
TIMELINE = f"""
INSERT INTO hq_tstep (tid, sku, step, hlc, origin, seq, eid, store_id, state, clash, in_record,
                      k, s, got, broken, actor, got_before, broken_before, total, h_k, h_s,
                      h_cancel, h_store, h_hlc, h_origin, h_recorded, h_final)
WITH need AS (
    SELECT DISTINCT tid, sku, r0_cancel FROM hq_tline WHERE side = 'c' OR r0_cancel IS NOT NULL
    UNION
    SELECT d.tid, x.sku, d.r0_cancel
    FROM (SELECT DISTINCT tid, r0_cancel FROM hq_tev WHERE takeover AND r0_cancel IS NOT NULL) d
    CROSS JOIN LATERAL (  -- a range of the record's lines
        SELECT x.sku FROM transfer_lines x WHERE x.transfer_id = d.tid AND x.claim > 0 OFFSET 0
    ) x
), lines AS (
    SELECT n.*, coalesce(x.received, 0) AS r0_got, coalesce(x.damaged, 0) AS r0_broken,
           coalesce(x.shipped, 0) AS r0_s, coalesce(x.claim, 0) AS r0_k
    FROM need n LEFT JOIN LATERAL (  -- a probe of the key, never a scan of every line
        SELECT * FROM transfer_lines x WHERE x.transfer_id = n.tid AND x.sku = n.sku OFFSET 0
    ) x ON true
), steps AS (
    SELECT l.tid, l.sku, CASE WHEN l.side = 'c' THEN 1 ELSE 2 END AS step, l.hlc, l.origin,
           l.seq, l.eid, l.store_id, l.state, l.clash, l.in_record, l.claim AS k,
           l.shipped AS s, l.got, l.broken, l.actor
    FROM hq_tline l WHERE l.side IN ('c', 'r')
    UNION ALL
    SELECT e.tid, x.sku, 0, e.hlc, e.origin, e.seq, e.eid, e.from_store, e.state, false,
           e.in_record, NULL, NULL, 0, 0, e.actor
    FROM hq_tev e JOIN need x ON x.tid = e.tid WHERE e.takeover
), t AS (
    SELECT s.*, l.r0_cancel, l.r0_k, l.r0_s, row_number() OVER w AS n,
           l.r0_got + coalesce(sum(s.got) OVER b, 0) AS got_before,
           l.r0_broken + coalesce(sum(s.broken) OVER b, 0) AS broken_before,
           l.r0_got + l.r0_broken + sum(s.got + s.broken) OVER (PARTITION BY s.tid, s.sku) AS total,
           bool_or(s.step = 0) OVER (PARTITION BY s.tid, s.sku) AS handed_over
    FROM steps s JOIN lines l USING (tid, sku)
    WINDOW w AS (PARTITION BY s.tid, s.sku ORDER BY s.hlc, s.origin, s.step),
           b AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), tt AS MATERIALIZED (
    SELECT t.*,
           max(n) FILTER (WHERE step = 1 AND NOT clash) OVER b AS last_c,
           max(n) FILTER (WHERE step = 0) OVER b AS last_t
    FROM t WINDOW b AS (PARTITION BY tid, sku ORDER BY n
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT r.tid, r.sku, r.step, r.hlc, r.origin, r.seq, r.eid, r.store_id, r.state, r.clash,
       r.in_record, r.k, r.s, r.got, r.broken, r.actor, r.got_before, r.broken_before, r.total,
       coalesce(c.k, m.r0_k), coalesce(c.s, m.r0_s), coalesce(c.eid, r.r0_cancel),
       coalesce(c.store_id, m.store_id), coalesce(c.hlc, m.hlc), coalesce(c.origin, m.origin),
       c.n IS NULL AND m.r0_k IS NOT NULL,
       CASE WHEN c.n IS NOT NULL  -- the holder's return at what its line allows; else its claim
            THEN CASE WHEN c.in_record THEN {_WORTH.format(k="c.k", s="c.s", x="r.total")}
                      ELSE c.k END
            WHEN r.handed_over THEN m.r0_k
            ELSE {_WORTH.format(k="m.r0_k", s="m.r0_s", x="r.total")} END
FROM tt r
LEFT JOIN tt c  -- the batch's cancel the record holds, if any: no takeover since
  ON c.tid = r.tid AND c.sku = r.sku AND c.n = r.last_c AND r.last_c > coalesce(r.last_t, 0)
LEFT JOIN LATERAL (  -- else the recorded one, until a takeover (its movement, by its id)
    SELECT r.r0_k, r.r0_s, m.store_id, m.hlc, m.origin FROM movements m
    WHERE r.last_c IS NULL AND r.last_t IS NULL AND r.step <> 1
      AND m.event_id = r.r0_cancel || '/' || r.sku OFFSET 0
) m ON true
"""

_BEFORE = "(got_before + broken_before)"
_HELD_NOW = _WORTH.format(k="h_k", s="h_s", x=_BEFORE)

MOVES = f"""
INSERT INTO hq_tmv (store_id, sku, hlc, origin, seq, sub, kind, quantity, reason, actor,
                    mid, transfer_id, final_qty)
SELECT store_id, sku, hlc, origin, seq, 0, 'transfer_out', -qty, 'transfer ' || tid, actor,
       eid || '/' || sku, tid, NULL::bigint
FROM hq_tline WHERE side = 'o' AND state = 'SHIPPED'
UNION ALL
SELECT store_id, sku, hlc, origin, seq, 0, 'transfer_in', got + broken, 'transfer ' || tid,
       actor, eid || '/' || sku, tid, NULL
FROM hq_tline WHERE side = 'r'
UNION ALL
SELECT store_id, sku, hlc, origin, seq, 1, 'damaged', -broken, 'transfer ' || tid, actor,
       eid || '/' || sku || '#damaged', tid, NULL
FROM hq_tline WHERE side = 'r' AND broken > 0
UNION ALL
-- another origin's return is what it claims: the record is not its to check it by
SELECT store_id, sku, hlc, origin, seq, 0, 'transfer_return',
       CASE WHEN clash THEN k ELSE {_WORTH.format(k="k", s="s", x=_BEFORE)} END,
       'transfer ' || tid, actor, eid || '/' || sku, tid,
       CASE WHEN in_record THEN {_WORTH.format(k="k", s="s", x="total")} ELSE k END
FROM hq_tstep WHERE step = 1 AND state = 'CANCELLED'
"""

# A receipt corrects the held cancel's return by the change of worth it
# makes; a takeover sets it back to its claim. The step moves the origin's
# on_hand only while the return is not superseded: no count newer than it
# applied yet (the row's recorded count, or one of the batch's between the
# two).
ADJUSTS = f"""
INSERT INTO hq_adj (store_id, sku, hlc, origin, seq, quantity, mid, transfer_id, ret_hlc,
                    ret_origin, recorded, effective, final_qty)
WITH steps AS (
    SELECT r.*,
           CASE WHEN r.step = 0 THEN r.h_k
                ELSE {_WORTH.format(k="r.h_k", s="r.h_s", x="r.total_after")} END
           - {_HELD_NOW} AS delta
    FROM (
        SELECT *, got_before + broken_before + got + broken AS total_after FROM hq_tstep
        WHERE step <> 1 AND h_k > 0 AND h_store IS NOT NULL
    ) r
), counts AS MATERIALIZED (
    SELECT n.hlc, n.origin, n.body->'data'->>'storeId' AS store_id, n.body->'data'->>'sku' AS sku
    FROM hq_new n
    WHERE n.type = 'stock.movement' AND n.body->'data'->>'kind' = 'count'
    UNION ALL
    SELECT n.hlc, n.origin, b.m->>'storeId', b.m->>'sku'
    FROM hq_new n CROSS JOIN LATERAL jsonb_array_elements(n.body->'data'->'movements') b(m)
    WHERE n.type = 'stock.batch' AND b.m->>'kind' = 'count'
)
SELECT s.h_store, s.sku, s.hlc, s.origin, s.seq, s.delta, s.h_cancel || '/' || s.sku, s.tid,
       s.h_hlc, s.h_origin, s.h_recorded,
       (k.count_hlc IS NULL OR (s.h_hlc, s.h_origin) > (k.count_hlc, k.count_origin))
       AND NOT EXISTS (
           SELECT 1 FROM counts w WHERE w.store_id = s.h_store AND w.sku = s.sku
             AND (w.hlc, w.origin) > (s.h_hlc, s.h_origin)
             AND (w.hlc, w.origin) < (s.hlc, s.origin)
       ),
       s.h_final
FROM steps s LEFT JOIN LATERAL (
    SELECT * FROM stock k WHERE k.store_id = s.h_store AND k.sku = s.sku OFFSET 0
) k ON true
WHERE s.delta <> 0
"""

# A holder's cancel a receipt had beaten, when a smaller origin takes the
# record over: listed as the agent last kept it up to date, while it held
HANDED_OVER = f"""
INSERT INTO conflicts AS x (conflict_id, kind, store_id, sku, winner, loser, detail, hlc, at)
SELECT 'cancel_vs_receipt:' || h_cancel || ':' || tid || ':' || sku, 'cancel_vs_receipt',
       h_store, sku, tid, h_cancel,
       jsonb_build_object('transferId', tid, 'field', sku, 'shipped', h_s, 'claimed', h_k,
                          'cancelled', {_HELD_NOW}, 'received', got_before,
                          'damaged', broken_before),
       h_hlc, ms_ts(%(now)s)
FROM hq_tstep
WHERE step = 0 AND h_k > {_HELD_NOW} AND h_store IS NOT NULL
ON CONFLICT (conflict_id) DO UPDATE SET detail = excluded.detail
WHERE x.detail IS DISTINCT FROM excluded.detail
"""

# the batch's statements, in order: after transfers.TAKE_APART, before
# transfers.STATEMENTS (the timeline reads the lines as recorded) and
# stock.STATEMENTS
STATEMENTS = (TIMELINE, MOVES, ADJUSTS, HANDED_OVER)

# after stock.STATEMENTS: every return the batch wrote or corrected, at its final worth
RETURNS = """
UPDATE movements m SET quantity = x.final_qty
FROM (
    SELECT r.final_qty, y.ctid AS at_
    FROM (
        SELECT mid, final_qty FROM hq_tmv WHERE kind = 'transfer_return'
        UNION SELECT mid, final_qty FROM hq_adj
    ) r CROSS JOIN LATERAL (  -- a probe of the key, never a join with every movement
        SELECT ctid FROM movements WHERE event_id = r.mid AND quantity <> r.final_qty OFFSET 0
    ) y
) x
WHERE m.ctid = x.at_
"""
