"""Products: per-field last-writer-wins by ``(hlc, origin)`` (``lww``), keyed
by SKU. A product made by its first write gets that write's id (or none
yet) and the write's time as its creation time."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from agent import hlc as hlc_mod
from agent.domain import Stamp
from agent.ledger.engine import lww

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine


def _stored(field: str, value: Any) -> Any:
    return int(value) if field == "active" and value is not None else value


def _shown(field: str, value: Any) -> Any:
    """Compare and report values as the API shows them (active is a bool)."""
    if field == "active" and value is not None:
        return bool(value)
    if field == "price" and value is not None:
        return float(value)
    return value


PRODUCTS = lww.Record("products", ("sku",), "product_field", stored=_stored, shown=_shown, sku_at=0)


def apply_product(
    engine: Engine,
    conn: sqlite3.Connection,
    data: dict[str, Any],
    stamp: Stamp,
    eid: str,
) -> None:
    fields = data["fields"]
    created = {"id": fields.get("id") or "", "created_at_ms": hlc_mod.wall_ms(stamp[0])}
    write = lww.FieldWrite(fields, stamp, eid, data.get("basis") or {})
    lww.merge(engine, conn, PRODUCTS, (data["sku"],), write, created)
