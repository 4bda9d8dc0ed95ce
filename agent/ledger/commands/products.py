"""Creating and changing products."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import product_id_for
from agent.errors import Conflict
from agent.ledger import queries
from agent.ledger.engine import Engine


def create_product(
    conn: sqlite3.Connection, engine: Engine, fields: dict[str, Any]
) -> dict[str, Any]:
    sku = fields["sku"]
    existing = conn.execute("SELECT * FROM products WHERE sku = ?", (sku,)).fetchone()
    pid = fields.get("id") or product_id_for(sku)
    if existing is not None:
        same = all(
            existing[k] == (int(v) if k == "active" else v)
            for k, v in fields.items()
            if k not in ("sku",) and v is not None
        )
        if same:
            return queries.product_view(existing)
        raise Conflict(f"product {sku!r} already exists; change it with: inv product update {sku}")
    other = conn.execute("SELECT sku FROM products WHERE id = ?", (pid,)).fetchone()
    if other is not None:
        raise Conflict(f"product id {pid!r} is already used by {other[0]!r}")
    values = {
        "id": pid,
        "name": fields.get("name") or "",
        "description": fields.get("description") or "",
        "category": fields.get("category") or "",
        "price": float(fields.get("price") or 0),
        "active": bool(fields.get("active", True)),
    }
    engine.emit(
        conn, "product.upserted", {"sku": sku, "fields": values, "basis": engine.basis(conn)}
    )
    return queries.get_product(conn, sku)


def update_product(
    conn: sqlite3.Connection, engine: Engine, ref: str, changes: dict[str, Any]
) -> dict[str, Any]:
    row = queries.product_row(conn, ref)
    diff = {
        k: v
        for k, v in changes.items()
        if v is not None and row[k] != (int(v) if k == "active" else v)
    }
    if diff:
        engine.emit(
            conn,
            "product.upserted",
            {"sku": row["sku"], "fields": diff, "basis": engine.basis(conn)},
        )
    return queries.get_product(conn, row["sku"])
