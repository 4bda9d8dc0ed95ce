"""Per-field last-writer-wins, set-based: products, store directory entries
and per-SKU stock settings (safety stock and reorder settings), the rule of
``agent/ledger/engine/lww.py``.

Each field's winning write is a row of ``field_stamps`` (entity, key, field:
value, stamp, basis). A batch is merged as if its new writes were applied
one by one in stamp order ``(hlc, origin)`` on top of what is recorded, which
is what makes one statement per step possible:

- a write older than the field's recorded winner loses to it;
- the others win in turn: the first beats the recorded winner, each next one
  the one before it (``lag`` over the stamp order);
- a loss is a conflict when the two writers differ, the winner's basis does
  not cover the loser (``covered(basis, origin, seq)``, agent.domain) and
  the values differ; its id is the agent's ``kind:loser:winner:field``.

Then the newest write per field replaces the recorded one when newer, and the
rows of every key the batch named are rebuilt from their fields (a write of
no fields still makes the row, as in the agent)."""

from __future__ import annotations

# the conflict kind of a lost field write, per entity (agent/ledger/engine:
# products.PRODUCTS, directory.STORES, directory.SETTINGS)
CONFLICT_KINDS = {"product": "product_field", "store": "store_field", "setting": "stock_setting"}

_KINDS = ", ".join(f"('{entity}', '{kind}')" for entity, kind in CONFLICT_KINDS.items())

CONFLICTS = f"""
WITH cand AS (
    SELECT f.entity, f.k1, f.k2, f.field, f.value, f.hlc, f.origin, f.seq, f.basis,
           s.origin AS w_origin, s.seq AS w_seq, s.basis AS w_basis, s.value AS w_value,
           s.hlc IS NOT NULL AND (f.hlc, f.origin) < (s.hlc, s.origin) AS late
    FROM hq_fields f LEFT JOIN field_stamps s USING (entity, k1, k2, field)
), chain AS (
    SELECT c.*, lag(origin) OVER w AS p_origin, lag(seq) OVER w AS p_seq,
           lag(value) OVER w AS p_value
    FROM cand c WHERE NOT late
    WINDOW w AS (PARTITION BY entity, k1, k2, field ORDER BY hlc, origin, seq)
), pairs AS (
    SELECT entity, k1, k2, field, hlc, w_origin AS win_origin, w_seq AS win_seq,
           w_basis AS win_basis, w_value AS kept, origin AS lose_origin, seq AS lose_seq,
           value AS lost
    FROM cand WHERE late
    UNION ALL
    SELECT entity, k1, k2, field, hlc, origin, seq, basis, value,
           coalesce(p_origin, w_origin), CASE WHEN p_origin IS NULL THEN w_seq ELSE p_seq END,
           CASE WHEN p_origin IS NULL THEN w_value ELSE p_value END
    FROM chain WHERE p_origin IS NOT NULL OR w_origin IS NOT NULL
)
INSERT INTO conflicts (conflict_id, kind, store_id, sku, winner, loser, detail, hlc, at)
SELECT k.kind || ':' || lose_origin || ':' || lose_seq || ':' || win_origin || ':' || win_seq
           || ':' || field,
       k.kind,
       CASE entity WHEN 'product' THEN NULL ELSE k1 END,
       CASE entity WHEN 'product' THEN k1 WHEN 'setting' THEN k2 END,
       win_origin || ':' || win_seq, lose_origin || ':' || lose_seq,
       jsonb_build_object('field', field, 'kept', kept, 'lost', lost), hlc, ms_ts(%(now)s)
FROM pairs JOIN (VALUES {_KINDS}) k (entity, kind) USING (entity)
WHERE win_origin <> lose_origin
  AND NOT covered(win_basis, lose_origin, lose_seq)
  AND kept IS DISTINCT FROM lost
ON CONFLICT (conflict_id) DO NOTHING
"""

STAMPS = """
INSERT INTO field_stamps AS s (entity, k1, k2, field, value, hlc, origin, seq, basis)
SELECT DISTINCT ON (entity, k1, k2, field) entity, k1, k2, field, value, hlc, origin, seq, basis
FROM hq_fields ORDER BY entity, k1, k2, field, hlc DESC, origin DESC, seq DESC
ON CONFLICT (entity, k1, k2, field) DO UPDATE
SET value = excluded.value, hlc = excluded.hlc, origin = excluded.origin, seq = excluded.seq,
    basis = excluded.basis
WHERE (excluded.hlc, excluded.origin) > (s.hlc, s.origin)
"""


def _text(field: str) -> str:
    return f"max(value #>> '{{}}') FILTER (WHERE field = '{field}')"


def _cast(field: str, type_: str) -> str:
    return f"max((value #>> '{{}}')::{type_}) FILTER (WHERE field = '{field}')"


def _flag(field: str) -> str:
    return f"bool_or((value #>> '{{}}')::boolean) FILTER (WHERE field = '{field}')"


def _pivot(entity: str, columns: dict[str, str]) -> str:
    """The current values of the touched keys of ``entity``, one column each."""
    picked = ",\n           ".join(f"{expr} AS {col}" for col, expr in columns.items())
    return f"""
    FROM hq_touched t LEFT JOIN LATERAL (
        SELECT {picked}
        FROM field_stamps s WHERE s.entity = '{entity}' AND s.k1 = t.k1 AND s.k2 = t.k2
    ) v ON true
    WHERE t.entity = '{entity}'"""


PRODUCTS = f"""
INSERT INTO products AS p (sku, product_id, name, description, category, price, active,
                           created_at, updated_at)
SELECT t.k1, coalesce(v.product_id, ''), coalesce(v.name, ''), coalesce(v.description, ''),
       coalesce(v.category, ''), coalesce(v.price, 0), coalesce(v.active, true),
       ms_ts(t.hlc_min >> 16), ms_ts(t.hlc_max >> 16)
{
    _pivot(
        "product",
        {
            "product_id": _text("id"),
            "name": _text("name"),
            "description": _text("description"),
            "category": _text("category"),
            "price": _cast("price", "float8"),
            "active": _flag("active"),
        },
    )
}
ON CONFLICT (sku) DO UPDATE
SET product_id = excluded.product_id, name = excluded.name, description = excluded.description,
    category = excluded.category, price = excluded.price, active = excluded.active,
    created_at = least(p.created_at, excluded.created_at),
    updated_at = greatest(p.updated_at, excluded.updated_at)
"""

STORES = f"""
INSERT INTO store_entries AS e (store_id, name, address, lat, lon, priority, online,
                                safety_stock, updated_at)
SELECT t.k1, v.name, v.address, v.lat, v.lon, v.priority, v.online, v.safety_stock,
       ms_ts(t.hlc_max >> 16)
{
    _pivot(
        "store",
        {
            "name": _text("name"),
            "address": _text("address"),
            "lat": _cast("lat", "float8"),
            "lon": _cast("lon", "float8"),
            "priority": _cast("priority", "bigint"),
            "online": _flag("online"),
            "safety_stock": _cast("safetyStock", "bigint"),
        },
    )
}
ON CONFLICT (store_id) DO UPDATE
SET name = excluded.name, address = excluded.address, lat = excluded.lat, lon = excluded.lon,
    priority = excluded.priority, online = excluded.online, safety_stock = excluded.safety_stock,
    updated_at = greatest(e.updated_at, excluded.updated_at)
"""

# stock.settings and stock.reorder write fields of the same rows, as in the
# agent (directory.SETTINGS)
SETTINGS = f"""
INSERT INTO stock_settings AS x (store_id, sku, safety_stock, reorder_point, max_stock,
                                 reorder_qty, updated_at)
SELECT t.k1, t.k2, v.safety_stock, v.reorder_point, v.max_stock, v.reorder_qty,
       ms_ts(t.hlc_max >> 16)
{
    _pivot(
        "setting",
        {
            "safety_stock": _cast("safetyStock", "bigint"),
            "reorder_point": _cast("reorderPoint", "bigint"),
            "max_stock": _cast("maxStock", "bigint"),
            "reorder_qty": _cast("reorderQty", "bigint"),
        },
    )
}
ON CONFLICT (store_id, sku) DO UPDATE
SET safety_stock = excluded.safety_stock, reorder_point = excluded.reorder_point,
    max_stock = excluded.max_stock, reorder_qty = excluded.reorder_qty,
    updated_at = greatest(x.updated_at, excluded.updated_at)
"""

# the statements of a batch with field writes, in order; the row statements
# run only for the entities the batch names (see ``Projector``)
ROWS = {"product": PRODUCTS, "store": STORES, "setting": SETTINGS}
