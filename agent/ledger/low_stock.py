"""Reorder settings, what is low, and the alerts log, as the API shows them.

A SKU is low at a store when its available (on hand less reserved) is at or
below its reorder point (``domain.is_low``); the suggested order counts what
transfers are already bringing (``transit.incoming``)."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import is_low, suggested_order
from agent.errors import NotFound
from agent.ledger import directory_views, transit
from agent.ledger.engine.alerts import available
from agent.ledger.engine.directory import REORDER
from agent.ledger.queries import iso

ALL_STORES = "all"  # ``storeId=all``: every store this replica knows


def reorder_settings(conn: sqlite3.Connection, sku: str, store_id: str) -> dict[str, int | None]:
    """A SKU's reorder settings at a store, by their API names (None: unset)."""
    row = conn.execute(
        f"SELECT {', '.join(REORDER.values())} FROM stock_settings WHERE sku = ? AND store_id = ?",
        (sku, store_id),
    ).fetchone()
    return {name: (row[i] if row is not None else None) for i, name in enumerate(REORDER)}


def _figures(
    point: int | None,
    max_stock: int | None,
    qty: int | None,
    units: int,
    incoming: int,
) -> dict[str, Any]:
    low = is_low(units, point)
    return {
        "reorderPoint": point,
        "maxStock": max_stock,
        "reorderQty": qty,
        "available": units,
        "incoming": incoming,
        "low": low,
        "suggested": suggested_order(units, incoming, point, max_stock, qty)
        if low and point is not None
        else 0,
    }


def reorder_view(
    conn: sqlite3.Connection, sku: str, product_id: str, store_id: str
) -> dict[str, Any]:
    """A SKU's reorder settings at a store, with where it stands now."""
    s = reorder_settings(conn, sku, store_id)
    coming = transit.incoming(conn, sku, store_id).get((sku, store_id), 0)
    figures = _figures(
        s["reorderPoint"],
        s["maxStock"],
        s["reorderQty"],
        available(conn, sku, store_id),
        coming,
    )
    return {"productId": product_id, "sku": sku, "storeId": store_id, **figures}


_LOW = (
    "SELECT s.sku, s.store_id, s.reorder_point, s.max_stock, s.reorder_qty, "
    "coalesce(k.on_hand - k.reserved, 0) AS units, p.id AS product_id, p.name "
    "FROM stock_settings s "
    "LEFT JOIN stock k ON k.sku = s.sku AND k.store_id = s.store_id "
    "LEFT JOIN products p ON p.sku = s.sku "
    "WHERE s.reorder_point IS NOT NULL AND coalesce(k.on_hand - k.reserved, 0) <= s.reorder_point"
)


def low_stock(conn: sqlite3.Connection, store: str | None) -> list[dict[str, Any]]:
    """Every SKU at or below its reorder point at ``store`` (None: at every
    store), by store and SKU, with what to order."""
    sql, params = _LOW, list[Any]()
    if store is not None:
        sql += " AND s.store_id = ?"
        params.append(store)
    rows = conn.execute(sql + " ORDER BY s.store_id, s.sku", params).fetchall()
    coming = transit.incoming(conn, store=store) if rows else {}
    return [
        {
            "sku": r["sku"],
            "productId": r["product_id"],
            "name": r["name"],
            "storeId": r["store_id"],
            **_figures(
                r["reorder_point"],
                r["max_stock"],
                r["reorder_qty"],
                int(r["units"]),
                coming.get((r["sku"], r["store_id"]), 0),
            ),
        }
        for r in rows
    ]


def low_stock_view(conn: sqlite3.Connection, store: str, local_store: str) -> dict[str, Any]:
    """``GET /api/v1/stock/low``: ``store`` is a store id or ``all``."""
    if store != ALL_STORES and not directory_views.is_known(conn, store, local_store):
        raise NotFound(
            f"store {store!r} is not known to this agent; list stores with: inv store list",
            storeId=store,
        )
    return {"storeId": store, "data": low_stock(conn, None if store == ALL_STORES else store)}


# ---------------------------------------------------------------- alerts log
def alert_view(row: sqlite3.Row) -> dict[str, Any]:
    """One alert as the API lists it and the webhooks receive it."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "sku": row["sku"],
        "productId": row["product_id"],
        "storeId": row["store_id"],
        "before": row["before"],
        "after": row["after"],
        "reorderPoint": row["reorder_point"],
        "cause": row["cause"],
        "raisedAt": iso(row["raised_at_ms"]),
    }


ALERT_SELECT = "SELECT a.*, p.id AS product_id FROM alerts a LEFT JOIN products p ON p.sku = a.sku"


def list_alerts(
    conn: sqlite3.Connection,
    since_ms: int | None,
    store: str | None,
    sku: str | None,
    limit: int,
) -> dict[str, Any]:
    """Alerts of every store (or one), newest first (by stamp: the order they
    were raised in, across stores too)."""
    sql, params = ALERT_SELECT + " WHERE 1 = 1", list[Any]()
    for clause, value in (
        (" AND a.raised_at_ms >= ?", since_ms),
        (" AND a.store_id = ?", store),
        (" AND a.sku = ?", sku),
    ):
        if value is not None:
            sql += clause
            params.append(value)
    rows = conn.execute(sql + " ORDER BY a.hlc DESC, a.id DESC LIMIT ?", [*params, limit])
    return {"data": [alert_view(r) for r in rows]}
