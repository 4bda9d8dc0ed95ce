"""Stock and reservations, set-based: the rules of
``agent/ledger/engine/stock.py`` and ``reservations.py``.

A batch is merged as if its new events were applied one by one in stamp
order ``(hlc, origin)`` on top of what is recorded (the row's count ``C0``,
its on_hand and reserved). In that order:

- a reservation state is taken when newer than the recorded one; ``reserved``
  moves by the PENDING quantity of the new state minus that of the state it
  replaces (the recorded one, or the batch's previous one: ``lag``). A
  confirm's sale counts only with its state, as in the agent;
- a movement older than ``C0`` is *late*: superseded, on_hand unchanged;
- every other count *wins*: it supersedes the count before it (``C0`` or the
  batch's previous winner) and the deltas between the two; on_hand becomes
  the count plus the recorded deltas ordered after it;
- every other delta adds to on_hand.

``CALC`` numbers the winning counts of a row (``grp``, a running count) and
sums the deltas after each, which gives on_hand and reserved after every
step; from those come the conflicts (``CONFLICTS``: superseded_delta,
concurrent_count, negative_available, with the agent's ids), the movements'
``superseded`` flags and the rows' new state.

Transfers (``agent.hq.transfer_moves``, run first) add their movements as steps
(``hq_tmv``; one event's steps of one row ordered by ``sub``) and the
corrections of recorded or earlier returns by later receipts (``hq_adj``:
steps that move on_hand, when ``effective``, but are no movement)."""

from __future__ import annotations

_PEND = "CASE WHEN {s} = 'PENDING' THEN {q} ELSE 0 END"

RESERVATIONS = f"""
INSERT INTO hq_res (reservation_id, store_id, sku, quantity, status, customer_id, order_id,
                    channel, created_by, updated_by, expires_at_ms, created_at_ms,
                    updated_at_ms, hlc, origin, seq, movement, applied, d_reserved)
SELECT reservation_id, store_id, sku, quantity, status, customer_id, order_id, channel,
       created_by, updated_by, expires_at_ms, created_at_ms, updated_at_ms, hlc, origin, seq,
       movement, applied,
       CASE WHEN applied THEN pend - coalesce(lag(pend) OVER w, x_pend) ELSE 0 END
FROM (
    SELECT e.*, {_PEND.format(s="e.status", q="e.quantity")} AS pend,
           {_PEND.format(s="x.status", q="x.quantity")} AS x_pend,
           x.hlc IS NULL OR (e.hlc, e.origin) > (x.hlc, x.origin) AS applied
    FROM (
        SELECT r->>'id' AS reservation_id, r->>'storeId' AS store_id, r->>'sku' AS sku,
               (r->>'quantity')::bigint AS quantity, r->>'status' AS status,
               r->>'customerId' AS customer_id, r->>'orderId' AS order_id,
               coalesce(r->>'channel', 'store') AS channel,
               coalesce(r->>'createdBy', '') AS created_by,
               coalesce(r->>'updatedBy', '') AS updated_by,
               (r->>'expiresAtMs')::bigint AS expires_at_ms,
               (r->>'createdAtMs')::bigint AS created_at_ms,
               (r->>'updatedAtMs')::bigint AS updated_at_ms, n.hlc, n.origin, n.seq,
               CASE WHEN jsonb_typeof(n.body->'data'->'movement') = 'object'
                    THEN n.body->'data'->'movement' END AS movement
        FROM hq_new n CROSS JOIN LATERAL (SELECT n.body->'data'->'reservation' AS r) y
        WHERE n.type = 'reservation.changed'
    ) e LEFT JOIN reservations x USING (reservation_id)
) c
WINDOW w AS (PARTITION BY reservation_id, applied ORDER BY hlc, origin, seq)
"""

UPSERT_RESERVATIONS = """
INSERT INTO reservations AS x (reservation_id, store_id, sku, quantity, status, customer_id,
                               order_id, channel, created_by, updated_by, expires_at_ms,
                               created_at_ms, updated_at_ms, expires_at, created_at, updated_at,
                               hlc, origin)
SELECT DISTINCT ON (reservation_id) reservation_id, store_id, sku, quantity, status, customer_id,
       order_id, channel, created_by, updated_by, expires_at_ms, created_at_ms, updated_at_ms,
       ms_ts(expires_at_ms),
       ms_ts(created_at_ms), ms_ts(updated_at_ms), hlc, origin
FROM hq_res WHERE applied ORDER BY reservation_id, hlc DESC, origin DESC, seq DESC
ON CONFLICT (reservation_id) DO UPDATE
SET status = excluded.status, order_id = excluded.order_id, quantity = excluded.quantity,
    channel = excluded.channel, created_by = excluded.created_by,
    updated_by = excluded.updated_by, expires_at_ms = excluded.expires_at_ms,
    updated_at_ms = excluded.updated_at_ms, expires_at = excluded.expires_at,
    updated_at = excluded.updated_at, hlc = excluded.hlc, origin = excluded.origin
"""

_MOVEMENT = """m->>'storeId' AS store_id, m->>'sku' AS sku, m->>'kind' AS kind,
           (m->>'quantity')::bigint AS quantity, nullif(m->'basis', 'null') AS basis,
           coalesce(m->>'reason', '') AS reason, coalesce(m->>'actor', '') AS actor"""
_ROW = "PARTITION BY sku, store_id"
# one event's steps of one row (a receipt's transfer_in, damaged, and the
# correction of a return) in the agent's order: ``sub``
_ORDER = "hlc, origin, phase, sub"
_IN_ORDER = f"{_ROW} ORDER BY {_ORDER} ROWS UNBOUNDED PRECEDING"

# Every window is over a row's steps in stamp order, so one sort serves
# them all. Most rows have no winning count in a batch: their on_hand after
# a step is the recorded one plus the running sum of their deltas, one pass.
# In the others (``counted``), the on_hand after a step of group g (from the
# g-th winning count on) is that count's base plus the deltas after it: with
# ``dsum`` the running sum of the row's deltas, base - dsum(at the count) +
# dsum(now). That anchor is carried along as the max of [grp, anchor] (the
# groups only grow), so no window per group is needed. ``wins`` (the row's
# winning counts) > ``grp``: a later count of the batch supersedes the step.
# The steps are taken out of the JSON once (MATERIALIZED), not at every use.
# what a step of a stock.movement or a reservation leaves empty
_PLAIN = """NULL::text AS mid, NULL::text AS transfer_id, NULL::bigint AS ret_hlc,
           NULL::boolean AS effective"""
_COLUMNS = """store_id, sku, hlc, origin, phase, sub, seq, kind, quantity, basis, reason, actor,
       reservation_id, mid, transfer_id, ret_hlc, existed, late, win, grp, wins"""
_RECORDED = """c0_hlc, c0_origin, c0_seq, c0_qty, c0_basis, c0_mid"""

CALC = f"""
INSERT INTO hq_calc ({_COLUMNS}, last, on_hand_before, on_hand_after, reserved_at,
                     {_RECORDED})
WITH steps AS MATERIALIZED (
    SELECT n.hlc, n.origin, 1::smallint AS phase, 0::smallint AS sub, n.seq, {_MOVEMENT},
           NULL::text AS reservation_id, 0::bigint AS d_res, {_PLAIN}
    FROM hq_new n CROSS JOIN LATERAL (SELECT n.body->'data' AS m) x
    WHERE n.type = 'stock.movement'
    UNION ALL  -- a batch's movements, each on its own row, with the event's stamp
    SELECT n.hlc, n.origin, 1::smallint, 0::smallint, n.seq, {_MOVEMENT}, NULL::text, 0::bigint,
           n.origin || ':' || n.seq || '/' || (b.i - 1), NULL, NULL, NULL
    FROM hq_new n
    CROSS JOIN LATERAL jsonb_array_elements(n.body->'data'->'movements') WITH ORDINALITY b(m, i)
    WHERE n.type = 'stock.batch'
    UNION ALL
    SELECT r.hlc, r.origin, 1::smallint, 0::smallint, r.seq, {_MOVEMENT}, r.reservation_id,
           0::bigint, NULL, NULL, NULL, NULL
    FROM hq_res r CROSS JOIN LATERAL (SELECT r.movement AS m) x
    WHERE r.applied AND r.movement IS NOT NULL
    UNION ALL
    SELECT hlc, origin, 0::smallint, 0::smallint, seq, store_id, sku, NULL, NULL, NULL, NULL,
           NULL, NULL, d_reserved, NULL, NULL, NULL, NULL
    FROM hq_res WHERE d_reserved <> 0
    UNION ALL
    SELECT hlc, origin, 1::smallint, sub, seq, store_id, sku, kind, quantity, NULL, reason,
           actor, NULL, 0::bigint, mid, transfer_id, NULL, true
    FROM hq_tmv
    UNION ALL
    SELECT hlc, origin, 1::smallint, 2::smallint, seq, store_id, sku, 'return_adjust',
           quantity, NULL, '', '', NULL, 0::bigint, mid, transfer_id, ret_hlc, effective
    FROM hq_adj
), s AS MATERIALIZED (
    SELECT st.*, k.store_id IS NOT NULL AS existed, coalesce(k.on_hand, 0) AS oh0,
           coalesce(k.reserved, 0) AS r0,
           k.count_hlc AS c0_hlc, k.count_origin AS c0_origin, k.count_seq AS c0_seq,
           k.count_qty AS c0_qty, k.count_basis AS c0_basis, k.count_mid AS c0_mid, l.late,
           st.phase = 1 AND st.kind = 'count' AND NOT l.late AS win,
           CASE WHEN st.kind = 'return_adjust'
                THEN CASE WHEN st.effective THEN st.quantity ELSE 0 END
                WHEN st.phase = 1 AND st.kind <> 'count' AND NOT l.late THEN st.quantity
                ELSE 0 END AS delta
    FROM steps st LEFT JOIN stock k USING (store_id, sku)
    CROSS JOIN LATERAL (
        SELECT st.phase = 1 AND k.count_hlc IS NOT NULL AND st.kind <> 'return_adjust'
               AND (st.hlc, st.origin) < (k.count_hlc, k.count_origin) AS late
    ) l
), counted AS (
    SELECT DISTINCT sku, store_id FROM s WHERE win
), plain AS (
    SELECT s.*, 0::bigint AS grp, 0::bigint AS wins,
           NOT lead(true, 1, false) OVER o AS last,
           oh0 + (sum(delta) OVER o)::bigint AS on_hand_after,
           r0 + (sum(d_res) OVER o)::bigint AS reserved_at
    FROM s
    WHERE NOT EXISTS (SELECT 1 FROM counted c WHERE c.sku = s.sku AND c.store_id = s.store_id)
    WINDOW o AS ({_IN_ORDER})
), g AS (
    SELECT s.*,
           count(*) FILTER (WHERE win) OVER o AS grp,
           count(*) FILTER (WHERE win) OVER ({_ROW}) AS wins,
           r0 + (sum(d_res) OVER o)::bigint AS reserved_at,
           (sum(delta) OVER o)::bigint AS dsum,
           CASE WHEN win THEN quantity + (
               SELECT coalesce(sum(m.quantity), 0) FROM movements m
               WHERE m.store_id = s.store_id AND m.sku = s.sku AND m.kind <> 'count'
                 AND (m.hlc, m.origin) > (s.hlc, s.origin)
           )::bigint + (  -- recorded returns after the count, as corrected before it
               SELECT coalesce(sum(a.quantity), 0) FROM hq_adj a
               WHERE a.recorded AND a.store_id = s.store_id AND a.sku = s.sku
                 AND (a.hlc, a.origin) < (s.hlc, s.origin)
                 AND (a.ret_hlc, a.ret_origin) > (s.hlc, s.origin)
           )::bigint END AS base_win
    FROM s WHERE EXISTS (SELECT 1 FROM counted c WHERE c.sku = s.sku AND c.store_id = s.store_id)
    WINDOW o AS ({_IN_ORDER})
), a AS (
    SELECT g.*,
           CASE WHEN grp = 0 THEN oh0
                ELSE (max(CASE WHEN win THEN ARRAY[grp, base_win - dsum] END) OVER o)[2] END
           + dsum AS on_hand_after
    FROM g WINDOW o AS ({_IN_ORDER})
)
SELECT {_COLUMNS}, last, on_hand_after - delta, on_hand_after, reserved_at, {_RECORDED}
FROM plain
UNION ALL
SELECT {_COLUMNS}, NOT lead(true, 1, false) OVER o, lag(on_hand_after, 1, oh0) OVER o,
       on_hand_after, reserved_at, {_RECORDED}
FROM a WINDOW o AS ({_ROW} ORDER BY {_ORDER})
"""

# a step's movement id: its event's, or one of the several a transfer or a
# batch event writes; the same of a row's recorded count (c0)
_ID = "coalesce(mid, origin || ':' || seq)"
_C0_ID = "coalesce(c0_mid, c0_origin || ':' || c0_seq)"

# the winning counts, each with the count it replaced (the batch's previous
# winner, else the row's recorded count)
_WINNERS = f"""
w AS (
    SELECT c.*, lag(hlc) OVER p AS p_hlc, lag(origin) OVER p AS p_origin,
           lag(seq) OVER p AS p_seq, lag(quantity) OVER p AS p_qty,
           lag({_ID}) OVER p AS p_id
    FROM hq_calc c WHERE win
    WINDOW p AS (PARTITION BY store_id, sku ORDER BY hlc, origin)
), wp AS (
    SELECT w.*,
           CASE WHEN p_origin IS NULL THEN c0_hlc ELSE p_hlc END AS prev_hlc,
           coalesce(p_origin, c0_origin) AS prev_origin,
           CASE WHEN p_origin IS NULL THEN c0_seq ELSE p_seq END AS prev_seq,
           CASE WHEN p_origin IS NULL THEN c0_qty ELSE p_qty END AS prev_qty,
           CASE WHEN p_origin IS NULL THEN {_C0_ID} ELSE p_id END AS prev_id
    FROM w
)"""

CONFLICTS = f"""
WITH {_WINNERS}, found AS (
    SELECT CASE WHEN kind = 'count' THEN 'concurrent_count' ELSE 'superseded_delta' END AS kind,
           store_id, sku, {_C0_ID} AS winner, {_ID} AS loser, hlc,
           CASE WHEN kind = 'count'
                THEN jsonb_build_object('lost', quantity, 'what', 'count', 'kept', c0_qty)
                ELSE jsonb_build_object('lost', quantity, 'what', 'delta', 'count', c0_qty)
           END AS detail
    FROM hq_calc
    WHERE late AND NOT covered(c0_basis, origin, seq)
      AND (kind <> 'count' OR quantity <> c0_qty)
    UNION ALL
    SELECT 'concurrent_count', store_id, sku, {_ID}, prev_id, hlc,
           jsonb_build_object('kept', quantity, 'lost', prev_qty)
    FROM wp
    WHERE prev_origin IS NOT NULL AND prev_qty <> quantity
      AND NOT covered(basis, prev_origin, prev_seq)
    UNION ALL
    SELECT 'superseded_delta', d.store_id, d.sku, coalesce(wp.mid, wp.origin || ':' || wp.seq),
           coalesce(d.mid, d.origin || ':' || d.seq), wp.hlc,
           jsonb_build_object('delta', d.quantity, 'count', wp.quantity)
    FROM wp JOIN hq_calc d
      ON d.store_id = wp.store_id AND d.sku = wp.sku AND d.grp = wp.grp - 1
     AND d.phase = 1 AND d.kind NOT IN ('count', 'return_adjust') AND NOT d.late
    WHERE NOT covered(wp.basis, d.origin, d.seq)
    UNION ALL
    SELECT 'superseded_delta', wp.store_id, wp.sku, coalesce(wp.mid, wp.origin || ':' || wp.seq),
           m.event_id, wp.hlc, jsonb_build_object('delta', m.quantity, 'count', wp.quantity)
    FROM wp CROSS JOIN LATERAL (  -- a range of the row's index, never a scan of them all
        SELECT m.event_id, m.quantity FROM movements m
        WHERE m.store_id = wp.store_id AND m.sku = wp.sku AND m.kind <> 'count'
          AND NOT m.superseded AND (m.hlc, m.origin) < (wp.hlc, wp.origin)
          AND (wp.prev_origin IS NULL OR (m.hlc, m.origin) > (wp.prev_hlc, wp.prev_origin))
          AND NOT covered(wp.basis, m.origin, m.seq)
        OFFSET 0  -- kept a subquery: never flattened into a join with every movement
    ) m
    UNION ALL
    SELECT 'negative_available', store_id, sku, NULL, {_ID}, coalesce(ret_hlc, hlc),
           jsonb_build_object('onHand', on_hand_after, 'reserved', reserved_at)
    FROM hq_calc
    WHERE phase = 1 AND on_hand_after - reserved_at < 0 AND on_hand_before - reserved_at >= 0
)
INSERT INTO conflicts (conflict_id, kind, store_id, sku, winner, loser, detail, hlc, at)
SELECT kind || ':' || loser || ':' || coalesce(winner, 'None') || ':', kind, store_id, sku,
       winner, loser, detail, hlc, ms_ts(%(now)s)
FROM found
ON CONFLICT (conflict_id) DO NOTHING
"""

# per row touched: its state after the batch (its last step), the count it
# had (c0) and the newest winning count of the batch (win_*, NULL if none)
FINAL = """
INSERT INTO hq_final
SELECT l.store_id, l.sku, l.on_hand_after, l.reserved_at, l.hlc, l.existed,
       l.c0_hlc, l.c0_origin, l.c0_seq, l.c0_qty, l.c0_basis,
       f.hlc, f.origin, f.seq, f.quantity, f.basis, l.c0_mid, f.mid
FROM hq_calc l LEFT JOIN hq_calc f
  ON f.sku = l.sku AND f.store_id = l.store_id AND f.win AND f.grp = f.wins
WHERE l.last
"""

# recorded movements from the row's count (itself included) up to the new one
SUPERSEDE_RECORDED = """
UPDATE movements m SET superseded = true
FROM (
    SELECT x.ctid AS at_ FROM hq_final f CROSS JOIN LATERAL (  -- a range of the row's index
        SELECT r.ctid FROM movements r
        WHERE r.store_id = f.store_id AND r.sku = f.sku AND NOT r.superseded
          AND (r.hlc, r.origin) < (f.win_hlc, f.win_origin)
          AND (r.hlc, r.origin) >= (coalesce(f.c0_hlc, -1), coalesce(f.c0_origin, ''))
        OFFSET 0  -- kept a subquery: never flattened into a join with every movement
    ) x
    WHERE f.win_hlc IS NOT NULL
) s
WHERE m.ctid = s.at_
"""

# a movement is superseded when older than the row's count after the batch:
# late (older than the recorded one), or a later count of the batch wins
INSERT_MOVEMENTS = f"""
INSERT INTO movements (event_id, store_id, sku, kind, quantity, reason, actor, reservation_id,
                       hlc, origin, seq, basis, superseded, at, transfer_id)
SELECT {_ID}, store_id, sku, kind, quantity, reason, actor, reservation_id,
       hlc, origin, seq, basis, late OR wins > grp, ms_ts(hlc >> 16), transfer_id
FROM hq_calc WHERE phase = 1 AND kind <> 'return_adjust'
"""

# one write per row touched (made by its first movement or change of reserved):
# an UPDATE of the rows there (HOT: no indexed column changes) and an INSERT
# of the new ones, rather than an upsert's speculative insertion for each
_COUNT = """coalesce(f.win_hlc, f.c0_hlc), coalesce(f.win_origin, f.c0_origin),
       CASE WHEN f.win_hlc IS NULL THEN f.c0_seq ELSE f.win_seq END,
       CASE WHEN f.win_hlc IS NULL THEN f.c0_qty ELSE f.win_qty END,
       CASE WHEN f.win_hlc IS NULL THEN f.c0_basis ELSE f.win_basis END,
       CASE WHEN f.win_hlc IS NULL THEN f.c0_mid ELSE f.win_mid END"""

UPDATE_ROWS = f"""
UPDATE stock k
SET (on_hand, reserved, count_hlc, count_origin, count_seq, count_qty, count_basis, count_mid,
     updated_hlc, updated_at) = (
    f.on_hand, f.reserved, {_COUNT}, greatest(k.updated_hlc, f.hlc),
    ms_ts(greatest(k.updated_hlc, f.hlc) >> 16))
FROM hq_final f
WHERE f.existed AND k.store_id = f.store_id AND k.sku = f.sku
"""

INSERT_ROWS = f"""
INSERT INTO stock (store_id, sku, on_hand, reserved, count_hlc, count_origin, count_seq,
                   count_qty, count_basis, count_mid, updated_hlc, updated_at)
SELECT f.store_id, f.sku, f.on_hand, f.reserved, {_COUNT}, f.hlc, ms_ts(f.hlc >> 16)
FROM hq_final f WHERE NOT f.existed
"""

# in order, after RESERVATIONS
STATEMENTS = (
    CALC,
    CONFLICTS,
    FINAL,
    SUPERSEDE_RECORDED,
    INSERT_MOVEMENTS,
    UPDATE_ROWS,
    INSERT_ROWS,
)
