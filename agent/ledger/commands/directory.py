"""Describing stores (the directory) and setting a SKU's safety stock at a store.

Only what changes is written: a field given its current value emits nothing,
so a script that sets the whole directory every night adds no events (and no
conflicts) when nothing changed."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import ANY_STORE, STORE_RE
from agent.errors import InvalidInput
from agent.ledger import directory_views, queries
from agent.ledger.engine import Engine
from agent.ledger.engine.directory import STORES

STORE_FIELDS = ("name", "address", "lat", "lon", "priority", "online", "safetyStock")


def check_store_id(store_id: str, field: str = "storeId") -> None:
    """A store id that can be described: valid, and not ``any`` (which asks for routing)."""
    if not STORE_RE.match(store_id):
        raise InvalidInput(
            f"{field}: {store_id!r} is not a store id (letters, digits, '-' and '_', at most 64)"
        )
    if store_id == ANY_STORE:
        raise InvalidInput(f"{field}: {ANY_STORE!r} is not a store: it asks for a routed order")


def _differs(row: sqlite3.Row | None, field: str, value: Any) -> bool:
    old = row[STORES.column(field)] if row is not None else None
    return bool(STORES.shown(field, old) != STORES.shown(field, value))


def set_store(
    conn: sqlite3.Connection, engine: Engine, store_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Write the fields of ``changes`` (API names; None: unset, the default
    applies) that differ from the store's entry, creating the entry if it is
    new; answers the entry as it is now."""
    check_store_id(store_id)
    unknown = sorted(set(changes) - set(STORE_FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not a store field ({', '.join(STORE_FIELDS)})")
    row = conn.execute("SELECT * FROM stores WHERE store_id = ?", (store_id,)).fetchone()
    diff = {k: v for k, v in changes.items() if _differs(row, k, v)}
    if diff:
        engine.emit(
            conn,
            "store.upserted",
            {"storeId": store_id, "fields": diff, "basis": engine.basis(conn)},
        )
    return directory_views.get_store(conn, store_id, engine.store_id)


def set_safety_stock(
    conn: sqlite3.Connection, engine: Engine, ref: str, store_id: str, value: int | None
) -> dict[str, Any]:
    """Set (``value`` None: clear, back to the store's default) the safety
    stock of a product at a store this agent knows of."""
    check_store_id(store_id)
    prod = queries.product_row(conn, ref)
    directory_views.require_known(conn, store_id, engine.store_id)
    sku = prod["sku"]
    if value != setting(conn, sku, store_id):
        emit_safety_stock(conn, engine, sku, store_id, value)
    return directory_views.safety_view(conn, sku, prod["id"], store_id)


def setting(conn: sqlite3.Connection, sku: str, store_id: str) -> int | None:
    """The SKU's own safety stock setting at the store (None: none)."""
    row = conn.execute(
        "SELECT safety_stock FROM stock_settings WHERE sku = ? AND store_id = ?", (sku, store_id)
    ).fetchone()
    return int(row[0]) if row is not None and row[0] is not None else None


def emit_safety_stock(
    conn: sqlite3.Connection, engine: Engine, sku: str, store_id: str, value: int | None
) -> None:
    engine.emit(
        conn,
        "stock.settings",
        {
            "sku": sku,
            "storeId": store_id,
            "fields": {"safetyStock": value},
            "basis": engine.basis(conn),
        },
    )
