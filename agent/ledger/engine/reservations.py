"""Reservations: single-writer records (the agent of the store holding the
stock writes them); a replica takes a newer state only. ``reserved`` on the
stock row is the sum of PENDING reservations; a confirmation carries its sale
as a movement, applied in the same event."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from agent.domain import ReservationStatus, Stamp
from agent.ledger.engine.stock import apply_movement, stock_row

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine


def apply_reservation(
    engine: Engine,
    conn: sqlite3.Connection,
    data: dict[str, Any],
    stamp: Stamp,
    eid: str,
    local: bool,
) -> None:
    r = data["reservation"]
    cur = conn.execute("SELECT * FROM reservations WHERE id = ?", (r["id"],)).fetchone()
    if cur is not None and stamp <= (cur["hlc"], cur["origin"]):
        return  # an older state of a single-writer record: the newer one stands
    pending = ReservationStatus.PENDING
    new_res = r["quantity"] if r["status"] == pending else 0
    old_res = cur["quantity"] if cur is not None and cur["status"] == pending else 0
    conn.execute(
        "INSERT INTO reservations (id, sku, store_id, quantity, customer_id, status, "
        "order_id, expires_at_ms, created_at_ms, updated_at_ms, hlc, origin, channel, "
        "created_by, updated_by) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
        "status = excluded.status, order_id = excluded.order_id, "
        "quantity = excluded.quantity, expires_at_ms = excluded.expires_at_ms, "
        "updated_at_ms = excluded.updated_at_ms, hlc = excluded.hlc, origin = excluded.origin, "
        "created_by = excluded.created_by, updated_by = excluded.updated_by",
        (
            r["id"],
            r["sku"],
            r["storeId"],
            r["quantity"],
            r.get("customerId"),
            r["status"],
            r.get("orderId"),
            r["expiresAtMs"],
            r["createdAtMs"],
            r["updatedAtMs"],
            *stamp,
            r.get("channel") or "store",  # events of agents before the chain have none
            # events of agents before logins have neither
            r.get("createdBy") or "",
            r.get("updatedBy") or "",
        ),
    )
    if new_res != old_res:
        row, _ = stock_row(conn, r["sku"], r["storeId"])
        engine.touch(r["sku"], r["storeId"], row)
        conn.execute(
            "UPDATE stock SET reserved = reserved + ?, version = version + 1, "
            "updated_hlc = max(updated_hlc, ?), updated_at_ms = ? "
            "WHERE sku = ? AND store_id = ?",
            (new_res - old_res, stamp[0], engine.wall_ms(), r["sku"], r["storeId"]),
        )
    if data.get("movement"):
        apply_movement(engine, conn, data["movement"], stamp, eid, local, r["id"])
