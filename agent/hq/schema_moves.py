"""Migration 3 of the read model (``agent.hq.schema``): stock that moves and
stock that runs low. Transfers with their lines and receipts, alerts, the
reorder settings beside the safety stock, the movements' transfer, and the
views that read them: in transit per store and across the chain, and what
is at or below its reorder point.

A transfer's row is the merge of its two sides (``agent/ledger/engine/
transfers.py``, projected by ``agent.hq.transfers``): the origin's state and
lines, the destination's receipts summed per line; ``cancelled`` and
``pending`` are derived (``agent.domain.LineCounts``), ``status`` too
(``agent.domain.transfer_status``). In transit = the lines' ``pending``: at
the origin's side ``in_transit``, at the destination's ``incoming``; it
counts in nobody's available."""

from __future__ import annotations

V3 = """
ALTER TABLE stock_settings ADD COLUMN reorder_point bigint, ADD COLUMN max_stock bigint,
                           ADD COLUMN reorder_qty bigint;
-- "what is low at this store": the rows with a reorder point, by store
CREATE INDEX stock_settings_reorder ON stock_settings (store_id, sku)
    WHERE reorder_point IS NOT NULL;

ALTER TABLE movements ADD COLUMN transfer_id text COLLATE "C";

CREATE TABLE transfers (
    transfer_id     text COLLATE "C" PRIMARY KEY,
    from_store      text COLLATE "C" NOT NULL,
    to_store        text COLLATE "C" NOT NULL,
    state           text COLLATE "C",  -- the origin's: DRAFT|SHIPPED|CANCELLED; NULL: receipts only
    status          text COLLATE "C" NOT NULL,  -- agent.domain.transfer_status
    note            text NOT NULL DEFAULT '',
    actor           text NOT NULL DEFAULT '',
    created_at      timestamptz,
    shipped_at      timestamptz,
    cancelled_at    timestamptz,
    cancel_id       text COLLATE "C",  -- the cancel's event id (its returns: cancel_id/sku)
    hlc             bigint,            -- stamp of the origin's newest state (NULL: none yet)
    origin          text COLLATE "C",
    updated_hlc     bigint NOT NULL,   -- newest event of either side
    updated_at      timestamptz
);
CREATE INDEX transfers_from ON transfers (from_store, status);
CREATE INDEX transfers_to ON transfers (to_store, status);

CREATE TABLE transfer_lines (
    transfer_id text COLLATE "C" NOT NULL,
    sku         text COLLATE "C" NOT NULL,
    position    integer,                    -- in the origin's list; NULL: named by receipts only
    quantity    bigint NOT NULL DEFAULT 0,  -- asked for (origin); 0: only in receipts
    shipped     bigint NOT NULL DEFAULT 0,  -- origin
    claim       bigint NOT NULL DEFAULT 0,  -- origin: what its cancel returned, as it saw it
    received    bigint NOT NULL DEFAULT 0,  -- destination: its receipts summed
    damaged     bigint NOT NULL DEFAULT 0,
    cancelled   bigint NOT NULL DEFAULT 0,  -- LineCounts.cancelled
    pending     bigint NOT NULL DEFAULT 0,  -- LineCounts.pending: in transit
    PRIMARY KEY (transfer_id, sku)
);
-- "what is in transit of this SKU": the few lines with units on their way
CREATE INDEX transfer_lines_pending ON transfer_lines (sku, transfer_id) WHERE pending > 0;

-- every receipt event (two events of one receipt id count twice, as in the agent)
CREATE TABLE transfer_receipts (
    event_id    text COLLATE "C" PRIMARY KEY,
    transfer_id text COLLATE "C" NOT NULL,
    receipt_id  text COLLATE "C" NOT NULL,
    store_id    text COLLATE "C" NOT NULL,  -- who received (the event's origin)
    from_store  text COLLATE "C" NOT NULL,  -- as the packing slip names it
    lines       jsonb NOT NULL,             -- [{sku, received, damaged}]
    actor       text NOT NULL DEFAULT '',
    received_at timestamptz,
    hlc         bigint NOT NULL,
    at          timestamptz
);
CREATE INDEX transfer_receipts_transfer ON transfer_receipts (transfer_id, hlc);

CREATE TABLE alerts (
    alert_id      text COLLATE "C" PRIMARY KEY,  -- the alert's event id
    kind          text COLLATE "C" NOT NULL,     -- low | restored
    store_id      text COLLATE "C" NOT NULL,
    sku           text COLLATE "C" NOT NULL,
    before        bigint NOT NULL,               -- available before the write that crossed
    after         bigint NOT NULL,
    reorder_point bigint,                        -- NULL: restored by a point taken away
    cause         text COLLATE "C",              -- that write's event id
    raised_at     timestamptz,
    at            timestamptz,                   -- the event's stamp
    hlc           bigint NOT NULL,
    origin        text COLLATE "C" NOT NULL,
    seq           bigint NOT NULL
);
CREATE INDEX alerts_stock ON alerts (store_id, sku, hlc);
CREATE INDEX alerts_at ON alerts (at);

-- units on their way, per (store, SKU): from it (in_transit) and to it (incoming)
CREATE VIEW transit AS
    SELECT store_id, sku, sum(in_transit)::bigint AS in_transit, sum(incoming)::bigint AS incoming
    FROM (
        SELECT t.from_store AS store_id, l.sku, l.pending AS in_transit, 0 AS incoming
        FROM transfer_lines l JOIN transfers t USING (transfer_id) WHERE l.pending > 0
        UNION ALL
        SELECT t.to_store, l.sku, 0, l.pending
        FROM transfer_lines l JOIN transfers t USING (transfer_id) WHERE l.pending > 0
    ) x
    GROUP BY store_id, sku;

CREATE OR REPLACE VIEW stock_levels AS
    SELECT s.store_id, s.sku, s.on_hand, s.reserved, s.on_hand - s.reserved AS available,
           coalesce(t.safety_stock, e.safety_stock, 0) AS safety_stock,
           CASE WHEN coalesce(e.online, true)
                THEN greatest(0, s.on_hand - s.reserved
                                 - coalesce(t.safety_stock, e.safety_stock, 0))
                ELSE 0 END AS available_online,
           s.updated_at,
           coalesce(x.in_transit, 0) AS in_transit,
           coalesce(x.incoming, 0) AS incoming
    FROM stock s
    LEFT JOIN stock_settings t USING (store_id, sku)
    LEFT JOIN store_entries e USING (store_id)
    LEFT JOIN transit x USING (store_id, sku);

CREATE VIEW chain_in_transit AS
    SELECT sku, sum(in_transit)::bigint AS units,
           jsonb_object_agg(store_id, in_transit) FILTER (WHERE in_transit > 0) AS from_stores,
           jsonb_object_agg(store_id, incoming) FILTER (WHERE incoming > 0) AS to_stores
    FROM transit GROUP BY sku;

CREATE OR REPLACE VIEW chain_availability AS
    SELECT sku, sum(on_hand) AS total_on_hand, sum(available) AS total_available,
           sum(available_online) AS total_available_online,
           jsonb_object_agg(store_id, available) AS stores,
           sum(in_transit)::bigint AS total_in_transit
    FROM stock_levels GROUP BY sku;

-- agent.domain.is_low and suggested_order: at or below the reorder point,
-- and what to order (up to max_stock counting what is on its way; else the
-- fixed reorder_qty; else just enough to be above the point again)
CREATE VIEW reorder_due AS
    SELECT r.store_id, r.sku, coalesce(s.on_hand - s.reserved, 0) AS available,
           coalesce(i.incoming, 0) AS incoming, r.reorder_point, r.max_stock,
           r.reorder_qty,
           CASE WHEN r.max_stock IS NOT NULL
                THEN greatest(0, r.max_stock - coalesce(s.on_hand - s.reserved, 0)
                                 - coalesce(i.incoming, 0))
                WHEN r.reorder_qty IS NOT NULL THEN r.reorder_qty
                ELSE greatest(0, r.reorder_point + 1 - coalesce(s.on_hand - s.reserved, 0)
                                 - coalesce(i.incoming, 0))
           END::bigint AS suggested
    FROM stock_settings r
    LEFT JOIN stock s USING (store_id, sku)
    LEFT JOIN transit i USING (store_id, sku)
    WHERE r.reorder_point IS NOT NULL
      AND coalesce(s.on_hand - s.reserved, 0) <= r.reorder_point;
"""

# 4: a receipt is one row per (transfer, receiving store, receipt id), the
# agent's key: a second event of one receipt (a replay under a new stamp)
# counts in the lines and moves stock, but is not a second receipt. Rows
# already doubled keep the earliest by stamp.
V4 = """
DELETE FROM transfer_receipts r USING transfer_receipts e
WHERE e.transfer_id = r.transfer_id AND e.store_id = r.store_id AND e.receipt_id = r.receipt_id
  AND (e.hlc, e.event_id) < (r.hlc, r.event_id);
CREATE UNIQUE INDEX transfer_receipts_key ON transfer_receipts (transfer_id, store_id, receipt_id);
"""
