"""Stock in transit between stores: what transfers have shipped and nobody has
received, damaged or cancelled yet (``transfer_lines.pending``). It counts in
nobody's available; availability shows it as ``inTransit`` at the origin and
``incoming`` at the destination."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

_SUM = (
    "SELECT l.sku, t.{side}, sum(l.pending) FROM transfer_lines l "
    "JOIN transfers t ON t.id = l.transfer_id WHERE l.pending > 0"
)


def _sums(
    conn: sqlite3.Connection, side: str, sku: str | None, store: str | None
) -> dict[tuple[str, str], int]:
    sql, params = _SUM.format(side=side), []
    if sku is not None:
        sql += " AND l.sku = ?"
        params.append(sku)
    if store is not None:
        sql += f" AND t.{side} = ?"
        params.append(store)
    rows = conn.execute(sql + f" GROUP BY l.sku, t.{side}", params)
    return {(r[0], r[1]): int(r[2]) for r in rows}


def in_transit(
    conn: sqlite3.Connection, sku: str | None = None, store: str | None = None
) -> dict[tuple[str, str], int]:
    """{(sku, origin store): units shipped from it and still on their way}."""
    return _sums(conn, "from_store", sku, store)


def incoming(
    conn: sqlite3.Connection, sku: str | None = None, store: str | None = None
) -> dict[tuple[str, str], int]:
    """{(sku, destination store): units on their way to it}."""
    return _sums(conn, "to_store", sku, store)


def add_to(
    conn: sqlite3.Connection,
    sku: str,
    store: str | None,
    stores: list[dict[str, Any]],
    zero: Callable[[str], dict[str, Any]],
) -> None:
    """Give each store of an availability (``stores``, one SKU) its units in
    transit: shipped from it (``inTransit``) and on their way to it
    (``incoming``). A store with stock on its way and no row yet is listed
    too, as ``zero`` makes it."""
    out, into = in_transit(conn, sku, store), incoming(conn, sku, store)
    listed = {s["storeId"] for s in stores}
    for sid in sorted({k[1] for k in (*out, *into)} - listed):
        stores.append(zero(sid))
    stores.sort(key=lambda s: str(s["storeId"]))
    for s in stores:
        s["inTransit"] = out.get((sku, s["storeId"]), 0)
        s["incoming"] = into.get((sku, s["storeId"]), 0)
