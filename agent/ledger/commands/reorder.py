"""Setting a SKU's reorder point (the minimum), its maximum stock and its
reorder quantity at a store.

Only what changes is written (one ``stock.reorder`` event, its changed
fields only); a setting given its current value emits nothing. Any admin may
set them for any store the agent knows, like the safety stock: the store
that holds the stock judges the row when the setting reaches it
(``engine.alerts``), so setting a point above what is available raises the
``low`` alert there, and clearing the point of a row reported low restores it."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.errors import InvalidInput
from agent.ledger import directory_views, low_stock, queries
from agent.ledger.commands.directory import check_store_id
from agent.ledger.engine import Engine
from agent.ledger.engine.directory import REORDER

REORDER_FIELDS = tuple(REORDER)  # reorderPoint, maxStock, reorderQty


def check_levels(settings: dict[str, int | None], where: str = "") -> None:
    """A maximum below the reorder point could never be reached by an order
    made at the point: refused, naming the field (``where``: a prefix, the
    line of an import)."""
    point, most = settings.get("reorderPoint"), settings.get("maxStock")
    if point is not None and most is not None and most < point:
        raise InvalidInput(
            f"{where}maxStock: {most} is below the reorder point {point}; the stock to "
            "order up to must be at least the point"
        )


def set_reorder(
    conn: sqlite3.Connection,
    engine: Engine,
    ref: str,
    store_id: str,
    changes: dict[str, int | None],
) -> dict[str, Any]:
    """Write those of ``changes`` (API names; None clears one) that differ
    from the SKU's settings at ``store_id``; answers the settings as they are
    now, with the row's available, incoming and suggested order."""
    check_store_id(store_id)
    unknown = sorted(set(changes) - set(REORDER_FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not a reorder setting ({', '.join(REORDER_FIELDS)})")
    prod = queries.product_row(conn, ref)
    directory_views.require_known(conn, store_id, engine.store_id)
    sku = prod["sku"]
    current = low_stock.reorder_settings(conn, sku, store_id)
    check_levels({**current, **changes})
    diff = {k: v for k, v in changes.items() if current[k] != v}
    if diff:
        emit_reorder(conn, engine, sku, store_id, diff)
    return low_stock.reorder_view(conn, sku, prod["id"], store_id)


def emit_reorder(
    conn: sqlite3.Connection, engine: Engine, sku: str, store_id: str, fields: dict[str, Any]
) -> None:
    engine.emit(
        conn,
        "stock.reorder",
        {"sku": sku, "storeId": store_id, "fields": fields, "basis": engine.basis(conn)},
    )
