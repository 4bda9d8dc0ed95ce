"""The store directory and per-SKU stock settings: per-field last-writer-wins
by ``(hlc, origin)`` (``lww``), like products.

- ``store.upserted`` writes a store's directory entry (name, address, lat,
  lon, priority, online, its default safetyStock), keyed by store id;
- ``stock.settings`` writes one SKU's settings at one store (safetyStock),
  keyed by (sku, store id).

A field written ``null`` is unset: the defaults of ``agent.domain`` apply
(for a SKU's safety stock: the store's default). Any store may write any
entry (admins describe stores before they come online); the merge, not the
writer, decides."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from agent.domain import Stamp
from agent.ledger.engine import lww

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine

SAFETY = {"safetyStock": "safety_stock"}
# ``stock.reorder``'s fields, kept in the same rows as the safety stock
REORDER = {"reorderPoint": "reorder_point", "maxStock": "max_stock", "reorderQty": "reorder_qty"}


def _stored(field: str, value: Any) -> Any:
    return int(value) if field == "online" and value is not None else value


def _shown(field: str, value: Any) -> Any:
    """As the API shows them: online a bool, coordinates floats."""
    if value is None:
        return None
    if field == "online":
        return bool(value)
    if field in ("lat", "lon"):
        return float(value)
    return value


STORES = lww.Record(
    "stores",
    ("store_id",),
    "store_field",
    columns=SAFETY,
    stored=_stored,
    shown=_shown,
    store_at=0,
)
SETTINGS = lww.Record(
    "stock_settings",
    ("sku", "store_id"),
    "stock_setting",
    columns={**SAFETY, **REORDER},
    sku_at=0,
    store_at=1,
)


def apply_store(
    engine: Engine, conn: sqlite3.Connection, data: dict[str, Any], stamp: Stamp, eid: str
) -> None:
    write = lww.FieldWrite(data["fields"], stamp, eid, data.get("basis") or {})
    lww.merge(engine, conn, STORES, (data["storeId"],), write)


def apply_settings(
    engine: Engine, conn: sqlite3.Connection, data: dict[str, Any], stamp: Stamp, eid: str
) -> None:
    write = lww.FieldWrite(data["fields"], stamp, eid, data.get("basis") or {})
    lww.merge(engine, conn, SETTINGS, (data["sku"], data["storeId"]), write)
