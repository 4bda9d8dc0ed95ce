"""The store directory and safety stock as the API shows them (camelCase),
built on the reads of ``directory``.

Every field of a store reads as its effective value: an unset ``priority``,
``online`` or ``safetyStock`` is the default of ``agent.domain``, and
``defaults`` names the fields that are. A store this replica knows only from
its events (or this agent's own store, before anyone described it) has
``"listed": false`` and null details."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import safety_stock_of
from agent.errors import NotFound
from agent.ledger import directory, local
from agent.ledger.directory import StoreEntry
from agent.ledger.queries import iso

# the fields whose unset value reads as a default, by their column
DEFAULTED = {"priority": "priority", "online": "online", "safetyStock": "safety_stock"}
_RAW = "store_id, priority, online, safety_stock, updated_at_ms"


def store_view(entry: StoreEntry, raw: sqlite3.Row | None) -> dict[str, Any]:
    """``entry`` (defaults applied) with ``raw``, its row of the ``stores``
    table (None: not listed), for what is set and when it last changed."""
    return {
        "storeId": entry.store_id,
        "listed": entry.listed,
        "name": entry.name,
        "address": entry.address,
        "lat": entry.lat,
        "lon": entry.lon,
        "priority": entry.priority,
        "online": entry.online,
        "safetyStock": safety_stock_of(None, entry.safety_stock),
        "defaults": [f for f, col in DEFAULTED.items() if raw is None or raw[col] is None],
        "updatedAt": iso(raw["updated_at_ms"]) if raw is not None else None,
    }


def _raw_rows(conn: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    return {r["store_id"]: r for r in conn.execute(f"SELECT {_RAW} FROM stores")}


def list_stores(conn: sqlite3.Connection, local_store: str) -> dict[str, Any]:
    """Every store this replica knows of, this agent's own always among them."""
    entries = {e.store_id: e for e in directory.all_stores(conn)}
    entries.setdefault(local_store, StoreEntry(local_store))
    raw = _raw_rows(conn)
    return {"data": [store_view(entries[s], raw.get(s)) for s in sorted(entries)]}


def is_known(conn: sqlite3.Connection, store_id: str, local_store: str) -> bool:
    """This agent's own store, or one this replica has heard of (a few index lookups)."""
    return store_id == local_store or local.store_known(conn, store_id)


def require_known(conn: sqlite3.Connection, store_id: str, local_store: str) -> None:
    """Refuse a setting for a store this agent has never heard of (a typo, most
    likely): 404, with how to describe it first."""
    if not is_known(conn, store_id, local_store):
        raise NotFound(
            f"store {store_id!r} is not known to this agent; describe it first with: "
            f"inv store set {store_id} --name NAME",
            storeId=store_id,
        )


def get_store(conn: sqlite3.Connection, store_id: str, local_store: str) -> dict[str, Any]:
    if not is_known(conn, store_id, local_store):
        raise NotFound(
            f"store {store_id!r} is not known to this agent; list stores with: inv store list, "
            f"or describe it with: inv store set {store_id} --name NAME",
            storeId=store_id,
        )
    raw = conn.execute(f"SELECT {_RAW} FROM stores WHERE store_id = ?", (store_id,)).fetchone()
    return store_view(directory.store_entry(conn, store_id), raw)


def safety_view(
    conn: sqlite3.Connection, sku: str, product_id: str, store_id: str
) -> dict[str, Any]:
    """A SKU's safety stock at a store: its own setting (null: none), the
    store's default, and the effective one (``safetyStock``)."""
    own = conn.execute(
        "SELECT safety_stock FROM stock_settings WHERE sku = ? AND store_id = ?", (sku, store_id)
    ).fetchone()
    setting = own[0] if own is not None else None
    default = safety_stock_of(None, directory.store_entry(conn, store_id).safety_stock)
    return {
        "productId": product_id,
        "sku": sku,
        "storeId": store_id,
        "safetyStock": safety_stock_of(setting, default),
        "skuSetting": setting,
        "storeDefault": default,
    }
