"""The stock a batch's transfer events move (``agent.hq.transfers`` took them
apart into ``hq_tline`` and merged the lines): steps for ``stock.CALC``,
which merges them with every other movement.

- ``MOVES`` (``hq_tmv``): ``transfer_out`` per line of a ship,
  ``transfer_in`` and ``damaged`` per line of a receipt, ``transfer_return``
  per claim of a cancel, worth what the line allows at the cancel's place
  in the stamp order (its claim less what the receipts before it show
  arrived);
- ``ADJUSTS`` (``hq_adj``): the corrections of a return by each later
  receipt, a step of the origin's stock row at the receipt's place, as the
  agent's ``adjust_movement``: it moves on_hand only while no count newer
  than the return has been applied (``effective``);
- ``RETURNS``, after the stock merge: every return the batch wrote or
  corrected, at its final worth."""

from __future__ import annotations

# Each line's events in stamp order with what the receipts sum to after each
# (``upto``: the line's final total less the batch's receipts after it), and
# the batch's last cancel before it (``last_c``); only for the lines that
# need it (``{lines}``: a whole line's events or none). LineCounts.cancelled of a
# total x: least(claim, greatest(0, shipped - x)), with the line's shipped
# and claim as the batch leaves them (an origin ships and cancels once, its
# cancel carrying the lines as shipped).
_TIMELINE = """
t AS (
    SELECT l.*, l.got + l.broken AS amt,
           row_number() OVER w AS n,
           sum(l.got + l.broken) OVER w AS upto_batch,
           sum(l.got + l.broken) OVER (PARTITION BY l.tid, l.sku) AS batch_total
    FROM hq_tline l WHERE {lines}
    WINDOW w AS (PARTITION BY l.tid, l.sku ORDER BY l.hlc, l.origin, l.side
                 ROWS UNBOUNDED PRECEDING)
), tl AS (
    SELECT t.*, x.shipped AS s, x.claim AS k, x.cancelled AS final_cancelled,
           x.received + x.damaged - t.batch_total + t.upto_batch AS upto,
           max(CASE WHEN t.side = 'c' AND NOT t.clash THEN t.n END) OVER w AS last_c
    FROM t LEFT JOIN LATERAL (  -- a probe of the key, never a scan of every line
        SELECT * FROM transfer_lines x WHERE x.transfer_id = t.tid AND x.sku = t.sku OFFSET 0
    ) x ON true
    WINDOW w AS (PARTITION BY t.tid, t.sku ORDER BY t.n ROWS UNBOUNDED PRECEDING)
)"""

_WORTH = "least({k}, greatest(0, {s} - {x}))"

# the lines of a cancel of the batch
_CANCELLED = "(l.tid, l.sku) IN (SELECT tid, sku FROM hq_tline WHERE side = 'c')"
# and those whose recorded cancel a receipt of the batch may correct
_CORRECTED = (
    "l.r0_cancel IS NOT NULL "
    "OR (l.tid, l.sku) IN (SELECT tid, sku FROM hq_tline WHERE side = 'c' AND NOT clash)"
)

MOVES = f"""
INSERT INTO hq_tmv (store_id, sku, hlc, origin, seq, sub, kind, quantity, reason, actor,
                    mid, transfer_id, final_qty)
WITH {_TIMELINE.format(lines=_CANCELLED)}
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
-- a clash's return is what it claims: there is no record of its own to check it by
SELECT store_id, sku, hlc, origin, seq, 0, 'transfer_return',
       CASE WHEN clash THEN claim ELSE {_WORTH.format(k="claim", s="s", x="upto")} END,
       'transfer ' || tid, actor, eid || '/' || sku, tid,
       CASE WHEN clash THEN claim ELSE final_cancelled END
FROM tl WHERE side = 'c' AND state = 'CANCELLED'
"""

# A receipt corrects the return of the cancel the record holds when the
# receipt is applied: the batch's last one before it, else the recorded one
# (if its movement is there). The step moves the origin's on_hand only
# while the return is not superseded: no count newer than it applied yet
# (the row's recorded count, or one of the batch's between the two).
ADJUSTS = f"""
INSERT INTO hq_adj (store_id, sku, hlc, origin, seq, quantity, mid, transfer_id, ret_hlc,
                    ret_origin, recorded, effective, final_qty)
WITH {_TIMELINE.format(lines=_CORRECTED)}, steps AS (
    SELECT r.tid, r.sku, r.hlc, r.origin, r.seq, r.final_cancelled,
           {_WORTH.format(k="r.k", s="r.s", x="r.upto")}
           - {_WORTH.format(k="r.k", s="r.s", x="(r.upto - r.amt)")} AS delta,
           coalesce(c.eid || '/' || c.sku, m.event_id) AS mid,
           coalesce(c.store_id, m.store_id) AS store_id, coalesce(c.hlc, m.hlc) AS ret_hlc,
           coalesce(c.origin, m.origin) AS ret_origin, c.eid IS NULL AS recorded
    FROM tl r
    LEFT JOIN tl c ON c.tid = r.tid AND c.sku = r.sku AND c.n = r.last_c
    LEFT JOIN LATERAL (
        SELECT * FROM movements m
        WHERE r.last_c IS NULL AND m.event_id = r.r0_cancel || '/' || r.sku OFFSET 0
    ) m ON true
    WHERE r.side = 'r' AND r.k > 0
), counts AS MATERIALIZED (
    SELECT n.hlc, n.origin, n.body->'data'->>'storeId' AS store_id, n.body->'data'->>'sku' AS sku
    FROM hq_new n
    WHERE n.type = 'stock.movement' AND n.body->'data'->>'kind' = 'count'
)
SELECT s.store_id, s.sku, s.hlc, s.origin, s.seq, s.delta, s.mid, s.tid, s.ret_hlc,
       s.ret_origin, s.recorded,
       (k.count_hlc IS NULL OR (s.ret_hlc, s.ret_origin) > (k.count_hlc, k.count_origin))
       AND NOT EXISTS (
           SELECT 1 FROM counts w WHERE w.store_id = s.store_id AND w.sku = s.sku
             AND (w.hlc, w.origin) > (s.ret_hlc, s.ret_origin)
             AND (w.hlc, w.origin) < (s.hlc, s.origin)
       ),
       s.final_cancelled
FROM steps s LEFT JOIN LATERAL (
    SELECT * FROM stock k WHERE k.store_id = s.store_id AND k.sku = s.sku OFFSET 0
) k ON true
WHERE s.delta <> 0 AND s.mid IS NOT NULL AND s.store_id IS NOT NULL
"""

# the batch's statements, in order: after transfers.STATEMENTS, before stock.STATEMENTS
STATEMENTS = (MOVES, ADJUSTS)

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
