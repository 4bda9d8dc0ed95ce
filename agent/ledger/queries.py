"""The read side: turns ledger rows into the API's camelCase objects."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from agent import digest
from agent.domain import ReservationStatus, ReservationView, available_online, safety_stock_of
from agent.errors import NotFound
from agent.hlc import now_ms
from agent.ledger import directory, keyrange, transit


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    secs, rem = divmod(int(ms), 1000)
    return f"{_iso_seconds(secs)}.{rem:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_seconds(secs: int) -> str:
    # a view formats three stamps, mostly of the same few seconds
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))


# ------------------------------------------------------------------ products
def product_row(conn: sqlite3.Connection, ref: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM products WHERE sku = ? OR id = ? ORDER BY sku = ? DESC LIMIT 1",
        (ref, ref, ref),
    ).fetchone()
    if row is None:
        raise NotFound(f"product {ref!r} not found; list products with: inv product list")
    return row


def product_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "category": row["category"],
        "price": row["price"],
        "active": bool(row["active"]),
        "createdAt": iso(row["created_at_ms"]),
        "updatedAt": iso(row["updated_at_ms"]),
    }


def get_product(conn: sqlite3.Connection, ref: str) -> dict[str, Any]:
    return product_view(product_row(conn, ref))


def list_products(
    conn: sqlite3.Connection,
    page: int,
    limit: int,
    category: str | None,
    search: str | None,
    include_inactive: bool = True,
    sku_prefix: str | None = None,
) -> dict[str, Any]:
    """A page of products. ``search`` matches a substring of the SKU or the
    name, or the beginnings of words of the SKU, name, description and
    category, all of them ("lap hp" finds "Laptop HP Pavilion");
    ``sku_prefix``: SKUs that start with it (a range of the primary key)."""
    where, params = ["1=1"], list[Any]()
    if sku_prefix:
        clause, bounds = keyrange.range_clause("sku", sku_prefix)
        where.append(clause)
        params += bounds
    if category:
        where.append(f"{keyrange.column(sku_prefix)('category')} = ?")
        params.append(category)
    if search:
        clause = "sku LIKE ? OR name LIKE ?"
        params += [f"%{search}%", f"%{search}%"]
        words = fts_words(search)
        if words:
            clause += " OR rowid IN (SELECT rowid FROM products_fts WHERE products_fts MATCH ?)"
            params.append(words)
        where.append(f"({clause})")
    if not include_inactive:
        where.append("active = 1")
    clause = " AND ".join(where)
    total = conn.execute(f"SELECT count(*) FROM products WHERE {clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM products WHERE {clause} ORDER BY sku LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    ).fetchall()
    return {
        "data": [product_view(r) for r in rows],
        "pagination": {"page": page, "limit": limit, "total": total},
    }


def fts_words(search: str) -> str:
    """``search`` as a full-text query: every word, as the start of a word
    (``"lap"* "hp"*``). Only letters and digits make words, as in the
    index's tokenizer, so nothing of the query syntax gets through."""
    return " ".join(f'"{w}"*' for w in _WORD.findall(search))


_WORD = re.compile(r"[^\W_]+")


# --------------------------------------------------------------------- stock
def stock_view(row: sqlite3.Row, product_id: str, asof_ms: int | None = None) -> dict[str, Any]:
    return {
        "productId": product_id,
        "sku": row["sku"],
        "storeId": row["store_id"],
        "quantity": row["on_hand"],
        "reserved": row["reserved"],
        "available": row["on_hand"] - row["reserved"],
        "version": row["version"],
        "lastUpdated": iso(row["updated_at_ms"]),
        "asOf": iso(asof_ms) if asof_ms is not None else iso(row["updated_at_ms"]),
    }


def zero_row(prod: sqlite3.Row, now: int) -> Callable[[str], dict[str, Any]]:
    """A store's stock as shown before it has any: nothing, as of ``now``."""

    def row(store: str) -> dict[str, Any]:
        return {
            "productId": prod["id"],
            "sku": prod["sku"],
            "storeId": store,
            "quantity": 0,
            "reserved": 0,
            "available": 0,
            "version": 0,
            "lastUpdated": None,
            "asOf": iso(now),
        }

    return row


def availability(
    conn: sqlite3.Connection,
    ref: str,
    store: str | None,
    local_store: str,
    freshness: dict[str, int] | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Stock of a product per store. Our own store's figures are as of
    ``now`` (they are the ledger itself); a peer's as of ``freshness`` (when
    we last heard from it), else as of the row's last change. Each store's
    ``safetyStock`` and what a routed (online) order may take there
    (``availableOnline``: nothing at a store that does not fulfil them)."""
    now = now_ms() if now is None else now
    prod = product_row(conn, ref)
    params: list[Any] = [prod["sku"]]
    sql = "SELECT * FROM stock WHERE sku = ?"
    if store:
        sql += " AND store_id = ?"
        params.append(store)
    rows = conn.execute(sql + " ORDER BY store_id", params).fetchall()
    if store and not rows:
        raise NotFound(f"no stock of {prod['sku']} recorded for store {store!r}")
    fresh = freshness or {}
    stores = [
        stock_view(
            r,
            prod["id"],
            now if r["store_id"] == local_store else fresh.get(r["store_id"], r["updated_at_ms"]),
        )
        for r in rows
    ]
    transit.add_to(conn, prod["sku"], store, stores, zero_row(prod, now))
    terms = _online_terms(conn, prod["sku"], [s["storeId"] for s in stores])
    for s in stores:
        safety, online = terms[s["storeId"]]
        s["safetyStock"] = safety
        s["availableOnline"] = available_online(s["available"], safety, online)
    return {
        "productId": prod["id"],
        "sku": prod["sku"],
        "stores": stores,
        "totalAvailable": sum(max(s["available"], 0) for s in stores),
        "totalAvailableOnline": sum(s["availableOnline"] for s in stores),
        "totalInTransit": sum(s["inTransit"] for s in stores),
    }


def _online_terms(
    conn: sqlite3.Connection, sku: str, stores: list[str]
) -> dict[str, tuple[int, bool]]:
    """(safety stock, fulfils online orders) of ``sku`` at each of ``stores``:
    one query for their directory entries and one for the SKU's settings,
    never a scan (an availability read is on the hot path)."""
    own = dict(
        conn.execute(
            "SELECT store_id, safety_stock FROM stock_settings WHERE sku = ?", (sku,)
        ).fetchall()
    )
    return {
        store: (safety_stock_of(own.get(store), entry.safety_stock), entry.online)
        for store, entry in directory.store_entries(conn, stores).items()
    }


def stock_level(conn: sqlite3.Connection, sku: str, store: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM stock WHERE sku = ? AND store_id = ?", (sku, store)
    ).fetchone()
    return row


def history(
    conn: sqlite3.Connection, ref: str, store: str | None, since_ms: int | None, limit: int
) -> dict[str, Any]:
    prod = product_row(conn, ref)
    sql = "SELECT * FROM movements WHERE sku = ?"
    params: list[Any] = [prod["sku"]]
    if store:
        sql += " AND store_id = ?"
        params.append(store)
    if since_ms is not None:
        sql += " AND hlc >= ?"
        params.append(since_ms << 16)
    rows = conn.execute(sql + " ORDER BY hlc DESC, origin DESC LIMIT ?", [*params, limit])
    return {"productId": prod["id"], "sku": prod["sku"], "data": [movement_view(r) for r in rows]}


def movement_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "movementId": row["id"],
        "sku": row["sku"],
        "storeId": row["store_id"],
        "kind": row["kind"],
        "quantity": row["quantity"],
        "reason": row["reason"],
        "actor": row["actor"],
        "reservationId": row["reservation_id"],
        "transferId": row["transfer_id"],
        "origin": row["origin"],
        "at": iso(row["hlc"] >> 16),
        "hlc": row["hlc"],
        "superseded": bool(row["superseded"]),
    }


# -------------------------------------------------------------- reservations
def reservation_view(row: sqlite3.Row, product_id: str, now: int | None = None) -> dict[str, Any]:
    now = now_ms() if now is None else now
    status = ReservationView(row["status"], row["expires_at_ms"]).effective(now)
    remaining = max(0, -(-(row["expires_at_ms"] - now) // 1000))  # rounded up
    return {
        "reservationId": row["id"],
        "productId": product_id,
        "sku": row["sku"],
        "storeId": row["store_id"],
        "quantity": row["quantity"],
        "customerId": row["customer_id"],
        "status": status,
        "orderId": row["order_id"],
        "channel": row["channel"],
        "createdBy": row["created_by"],
        "updatedBy": row["updated_by"],
        "createdAt": iso(row["created_at_ms"]),
        "updatedAt": iso(row["updated_at_ms"]),
        "expiresAt": iso(row["expires_at_ms"]),
        "remainingSeconds": remaining if status == ReservationStatus.PENDING else 0,
    }


def _product_id(conn: sqlite3.Connection, sku: str) -> str:
    row = conn.execute("SELECT id FROM products WHERE sku = ?", (sku,)).fetchone()
    return row[0] if row else ""


def reservation_row(conn: sqlite3.Connection, rid: str) -> sqlite3.Row:
    sql = "SELECT * FROM reservations WHERE id = ?"
    row: sqlite3.Row | None = conn.execute(sql, (rid,)).fetchone()
    if row is None:
        raise NotFound(f"reservation {rid!r} not found; list them with: inv reservation list")
    return row


def get_reservation(conn: sqlite3.Connection, rid: str, now: int | None = None) -> dict[str, Any]:
    row = reservation_row(conn, rid)
    return reservation_view(row, _product_id(conn, row["sku"]), now)


def list_reservations(
    conn: sqlite3.Connection,
    status: str | None,
    store: str | None,
    sku: str | None,
    limit: int,
    now: int | None = None,
    id_prefix: str | None = None,
) -> dict[str, Any]:
    """Newest first; ``id_prefix``: only ids that start with it, in id order
    (one probe of the primary key: ``agent.ledger.keyrange``)."""
    sql, params = "SELECT * FROM reservations WHERE 1=1", list[Any]()
    col = keyrange.column(id_prefix)
    now = now_ms() if now is None else now
    if status == ReservationStatus.EXPIRED:
        sql += f" AND ({col('status')} = 'EXPIRED' OR ({col('status')} = 'PENDING' AND "
        sql += f"{col('expires_at_ms')} <= ?))"
        params.append(now)
    elif status == ReservationStatus.PENDING:
        sql += f" AND {col('status')} = 'PENDING' AND {col('expires_at_ms')} > ?"
        params.append(now)
    elif status:
        sql += f" AND {col('status')} = ?"
        params.append(status)
    for name, value in (("store_id", store), ("sku", sku)):
        if value:
            sql += f" AND {col(name)} = ?"
            params.append(value)
    order = "created_at_ms DESC, id"
    if id_prefix:
        clause, bounds = keyrange.range_clause("id", id_prefix)
        sql, params, order = f"{sql} AND {clause}", [*params, *bounds], "id"
    rows = conn.execute(f"{sql} ORDER BY {order} LIMIT ?", [*params, limit])
    ids: dict[str, str] = {}
    out = []
    for r in rows.fetchall():
        if r["sku"] not in ids:
            ids[r["sku"]] = _product_id(conn, r["sku"])
        out.append(reservation_view(r, ids[r["sku"]], now))
    return {"data": out}


# ----------------------------------------------------------------- conflicts
def list_conflicts(conn: sqlite3.Connection, since_ms: int | None, limit: int) -> dict[str, Any]:
    sql, params = "SELECT * FROM conflicts", []
    if since_ms is not None:
        sql += " WHERE detected_at_ms >= ?"
        params.append(since_ms)
    rows = conn.execute(sql + " ORDER BY detected_at_ms DESC, id LIMIT ?", [*params, limit])
    return {
        "data": [
            {
                "id": r["id"],
                "kind": r["kind"],
                "sku": r["sku"],
                "storeId": r["store_id"],
                "winner": r["winner"],
                "loser": r["loser"],
                "detail": json.loads(r["detail"]),
                "at": iso(r["hlc"] >> 16),
                "detectedAt": iso(r["detected_at_ms"]),
            }
            for r in rows
        ]
    }


# -------------------------------------------------------------------- digest
def digests(conn: sqlite3.Connection) -> dict[str, str]:
    """This replica's digests (``agent.digest``, shared with HQ)."""
    return digest.digests(
        stock=conn.execute("SELECT store_id, sku, on_hand, reserved FROM stock"),
        reservations=conn.execute(
            "SELECT store_id, id, sku, quantity, status, order_id FROM reservations"
        ),
        settings=conn.execute("SELECT store_id, sku, safety_stock FROM stock_settings"),
        stores=conn.execute(
            "SELECT store_id, name, address, lat, lon, priority, online, safety_stock FROM stores"
        ),
        products=conn.execute(
            "SELECT sku, id, name, description, category, price, active FROM products"
        ),
        reorder=conn.execute(
            "SELECT store_id, sku, reorder_point, max_stock, reorder_qty FROM stock_settings"
        ),
        transfers=conn.execute(
            "SELECT t.from_store, t.id, t.to_store, t.state, l.sku, l.quantity, l.shipped, "
            "l.claim, l.received, l.damaged FROM transfers t "
            "JOIN transfer_lines l ON l.transfer_id = t.id"
        ),
        alerts=conn.execute(
            "SELECT store_id, id, kind, sku, before, after, reorder_point FROM alerts"
        ),
    )


def outbox_backlog(conn: sqlite3.Connection, origin: str) -> int:
    # through the outbox's own index: O(backlog), not O(every event of origin)
    n: int = conn.execute(
        "SELECT count(*) FROM events INDEXED BY events_outbox WHERE origin = ? AND published = 0",
        (origin,),
    ).fetchone()[0]
    return n
