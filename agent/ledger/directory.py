"""Reads of the store directory and of per-SKU stock settings, as the rest of
the ledger (availability, the reservation command) and the router use them.

A store is known from its directory entry, or only from its events (an origin
or a stock row): then every field reads as unset and the defaults of
``agent.domain`` apply."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from agent.domain import (
    DEFAULT_ONLINE,
    DEFAULT_PRIORITY,
    available_online,
    safety_stock_of,
)


@dataclass(frozen=True, slots=True)
class StoreEntry:
    store_id: str
    name: str | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    priority: int = DEFAULT_PRIORITY
    online: bool = DEFAULT_ONLINE
    safety_stock: int | None = None  # the store's default for its SKUs; None: unset
    listed: bool = False  # has a directory entry (else: seen through its events only)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A store a routed reservation of one SKU could go to, as this replica sees it."""

    store: StoreEntry
    available: int
    safety_stock: int
    available_online: int


_STORE_COLUMNS = "store_id, name, address, lat, lon, priority, online, safety_stock"


def _entry(row: sqlite3.Row | tuple[object, ...] | None, store_id: str) -> StoreEntry:
    if row is None:
        return StoreEntry(store_id)
    _, name, address, lat, lon, priority, online, safety = tuple(row)
    return StoreEntry(
        store_id,
        name=name if isinstance(name, str) else None,
        address=address if isinstance(address, str) else None,
        lat=float(lat) if isinstance(lat, int | float) else None,
        lon=float(lon) if isinstance(lon, int | float) else None,
        priority=int(priority) if isinstance(priority, int) else DEFAULT_PRIORITY,
        online=bool(online) if isinstance(online, int) else DEFAULT_ONLINE,
        safety_stock=int(safety) if isinstance(safety, int) else None,
        listed=True,
    )


def store_entry(conn: sqlite3.Connection, store_id: str) -> StoreEntry:
    row = conn.execute(
        f"SELECT {_STORE_COLUMNS} FROM stores WHERE store_id = ?", (store_id,)
    ).fetchone()
    return _entry(row, store_id)


def store_entries(conn: sqlite3.Connection, store_ids: list[str]) -> dict[str, StoreEntry]:
    """The entries of ``store_ids``, in one query (an availability read lists
    a few stores of a directory that may hold many)."""
    rows = conn.execute(
        f"SELECT {_STORE_COLUMNS} FROM stores WHERE store_id IN (SELECT value FROM json_each(?))",
        (json.dumps(store_ids),),
    )
    listed = {r[0]: _entry(r, r[0]) for r in rows}
    return {s: listed.get(s) or StoreEntry(s) for s in store_ids}


def known_store_ids(conn: sqlite3.Connection) -> list[str]:
    """Every store this replica knows of: listed, or seen through its events.

    The stores of the stock rows are found by skipping from one store to the
    next on the ``stock_store`` index (a lookup per store), not by reading
    every row: ``DISTINCT store_id`` walks the whole index, ~45 ms for a
    million stock rows, on every routed reservation."""
    rows = conn.execute(
        "WITH RECURSIVE stocked(id) AS ("
        " SELECT min(store_id) FROM stock"
        " UNION ALL SELECT (SELECT min(store_id) FROM stock WHERE store_id > id)"
        " FROM stocked WHERE id IS NOT NULL) "
        "SELECT store_id FROM stores UNION SELECT origin FROM origins "
        "UNION SELECT id FROM stocked WHERE id IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def all_stores(conn: sqlite3.Connection) -> list[StoreEntry]:
    listed = {r[0]: _entry(r, r[0]) for r in conn.execute(f"SELECT {_STORE_COLUMNS} FROM stores")}
    return [listed.get(s) or StoreEntry(s) for s in known_store_ids(conn)]


def safety_stock(conn: sqlite3.Connection, sku: str, store_id: str) -> int:
    """The units of ``sku`` at ``store_id`` a routed reservation may not take."""
    own = conn.execute(
        "SELECT safety_stock FROM stock_settings WHERE sku = ? AND store_id = ?", (sku, store_id)
    ).fetchone()
    return safety_stock_of(own[0] if own else None, store_entry(conn, store_id).safety_stock)


def candidates(conn: sqlite3.Connection, sku: str) -> list[Candidate]:
    """Every known store with what it has of ``sku`` for a routed order (in
    store id order; ranking is the router's business)."""
    stock = {
        r[0]: int(r[1])
        for r in conn.execute(
            "SELECT store_id, on_hand - reserved FROM stock WHERE sku = ?", (sku,)
        )
    }
    settings = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT store_id, safety_stock FROM stock_settings WHERE sku = ?", (sku,)
        )
    }
    out = []
    for entry in all_stores(conn):
        available = stock.get(entry.store_id, 0)
        safety = safety_stock_of(settings.get(entry.store_id), entry.safety_stock)
        out.append(
            Candidate(entry, available, safety, available_online(available, safety, entry.online))
        )
    return out
