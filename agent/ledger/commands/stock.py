"""Changing a stock level by hand: add, subtract, or set (a physical count)."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import OPERATION_KIND, MovementKind
from agent.errors import Conflict, InsufficientStock
from agent.inputs import StockChange
from agent.ledger import queries
from agent.ledger.commands.common import fingerprint, recall, remember
from agent.ledger.engine import Engine


def update_stock(conn: sqlite3.Connection, engine: Engine, change: StockChange) -> dict[str, Any]:
    store, operation, quantity = change.store_id, change.operation, change.quantity
    reason, actor = change.reason, change.actor
    expected_version, idem_key = change.expected_version, change.idempotency_key
    prod = queries.product_row(conn, change.ref)
    request = {
        "ref": prod["sku"],
        "store": store,
        "op": operation,
        "qty": quantity,
        "reason": reason,
        "expectedVersion": expected_version,
    }
    fp = fingerprint(request)
    if idem_key:
        previous = recall(conn, f"stock:{idem_key}", fp)
        if previous is not None:
            return {**previous, "replayed": True}
    row = queries.stock_level(conn, prod["sku"], store)
    version = row["version"] if row else 0
    if expected_version is not None and expected_version != version:
        raise Conflict(
            f"version mismatch: expected {expected_version}, current version is {version}; "
            "re-read with: inv stock show " + prod["sku"],
            currentVersion=version,
        )
    movement = _movement(conn, engine, prod["sku"], store, row, operation, quantity)
    movement.update(reason=reason, actor=actor)
    event = engine.emit(conn, "stock.movement", movement)
    after = queries.stock_level(conn, prod["sku"], store)
    assert after is not None
    result = {
        "message": "Stock updated",
        "movementId": event["id"],
        "operation": operation,
        **queries.stock_view(after, prod["id"]),
    }
    if idem_key:
        remember(conn, f"stock:{idem_key}", fp, result, engine.wall_ms())
    return result


def _movement(
    conn: sqlite3.Connection,
    engine: Engine,
    sku: str,
    store: str,
    row: sqlite3.Row | None,
    operation: str,
    quantity: int,
) -> dict[str, Any]:
    """The movement an operation makes on the row as it is now (``row``)."""
    kind = OPERATION_KIND[operation]
    on_hand = row["on_hand"] if row else 0
    reserved = row["reserved"] if row else 0
    if kind in (MovementKind.ADJUST, MovementKind.SELL):
        if quantity > on_hand - reserved:
            raise InsufficientStock(on_hand - reserved, quantity)
        quantity = -quantity
    movement: dict[str, Any] = {
        "sku": sku,
        "storeId": store,
        "kind": str(kind),
        "quantity": quantity,
    }
    if kind == MovementKind.COUNT and row is not None:
        basis = engine.count_basis(engine.basis(conn), row["writers"])
        if basis:
            movement["basis"] = basis
    return movement
