"""Products: per-field last-writer-wins by ``(hlc, origin)``.

Each field's winning write is kept in the row's ``stamps``:
``{field: [hlc, origin, event id, basis]}``. A losing write that its winner
had not seen (not covered by the winner's ``basis``, the writer's per-origin
watermarks) was concurrent: that loss is logged as a conflict."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from agent import hlc as hlc_mod
from agent.domain import Stamp, covered, split_event_id
from agent.ledger.engine.envelope import dumps

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine


def apply_product(
    engine: Engine,
    conn: sqlite3.Connection,
    data: dict[str, Any],
    stamp: Stamp,
    eid: str,
) -> None:
    sku, fields, basis = data["sku"], data["fields"], data.get("basis") or {}
    hlc, origin = stamp
    wall = hlc_mod.wall_ms(hlc)
    row = conn.execute("SELECT * FROM products WHERE sku = ?", (sku,)).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO products (sku, id, created_at_ms, updated_at_ms) VALUES (?,?,?,?)",
            (sku, fields.get("id") or "", wall, wall),
        )
        stamps: dict[str, list[Any]] = {}
    else:
        stamps = json.loads(row["stamps"])
    changed: dict[str, Any] = {}
    for field, value in fields.items():
        cur = stamps.get(field)
        old = row[field] if row is not None else None
        if cur is None or stamp > (cur[0], cur[1]):
            # we win; the value we replace lost, if its writer was concurrent
            if cur is not None and cur[1] != origin and not covered(basis, *split_event_id(cur[2])):
                _field_conflict(engine, conn, sku, field, eid, cur[2], hlc, value, old)
            stamps[field] = [hlc, origin, eid, basis]
            changed[field] = int(value) if field == "active" else value
        elif cur[1] != origin and not covered(cur[3], origin, split_event_id(eid)[1]):
            _field_conflict(engine, conn, sku, field, cur[2], eid, hlc, old, value)
    sets = ", ".join(f"{f} = ?" for f in changed)
    conn.execute(
        f"UPDATE products SET {sets + ', ' if sets else ''}stamps = ?, "
        "updated_at_ms = max(updated_at_ms, ?) WHERE sku = ?",
        (*changed.values(), dumps(stamps), wall, sku),
    )


def _field_conflict(
    engine: Engine,
    conn: sqlite3.Connection,
    sku: str,
    field: str,
    winner: str,
    loser: str,
    hlc: int,
    kept: Any,
    lost: Any,
) -> None:
    if _norm(field, kept) == _norm(field, lost):
        return  # both wrote the same value: nothing was lost
    engine._conflict(
        conn,
        "product_field",
        sku,
        None,
        winner,
        loser,
        hlc,
        {"field": field, "kept": _norm(field, kept), "lost": _norm(field, lost)},
    )


def _norm(field: str, value: Any) -> Any:
    """Compare and report values as the API shows them (active is a bool)."""
    if field == "active" and value is not None:
        return bool(value)
    if field == "price" and value is not None:
        return float(value)
    return value
