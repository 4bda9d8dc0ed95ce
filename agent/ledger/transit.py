"""Stock in transit between stores: what transfers have shipped and nobody has
received, damaged or cancelled yet (``transfer_lines.pending``). It counts in
nobody's available; availability shows it as ``inTransit`` at the origin and
``incoming`` at the destination."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any


def incoming(
    conn: sqlite3.Connection, sku: str | None = None, store: str | None = None
) -> dict[tuple[str, str], int]:
    """{(sku, destination store): units on their way to it}."""
    sql, params = (
        "SELECT l.sku, t.to_store, sum(l.pending) FROM transfer_lines l "
        "JOIN transfers t ON t.id = l.transfer_id WHERE l.pending > 0",
        list[Any](),
    )
    if sku is not None:
        sql += " AND l.sku = ?"
        params.append(sku)
    if store is not None:
        sql += " AND t.to_store = ?"
        params.append(store)
    rows = conn.execute(sql + " GROUP BY l.sku, t.to_store", params)
    return {(r[0], r[1]): int(r[2]) for r in rows}


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
    out: dict[tuple[str, str], int] = {}
    into: dict[tuple[str, str], int] = {}
    # one pass over the SKU's lines in transit, both sides at once (a hot read)
    rows = conn.execute(
        "SELECT t.from_store, t.to_store, sum(l.pending) FROM transfer_lines l "
        "JOIN transfers t ON t.id = l.transfer_id WHERE l.pending > 0 AND l.sku = ? "
        "GROUP BY t.from_store, t.to_store",
        (sku,),
    )
    for origin, dest, units in rows:
        if store is None or origin == store:
            out[sku, origin] = out.get((sku, origin), 0) + int(units)
        if store is None or dest == store:
            into[sku, dest] = into.get((sku, dest), 0) + int(units)
    listed = {s["storeId"] for s in stores}
    for sid in sorted({k[1] for k in (*out, *into)} - listed):
        stores.append(zero(sid))
    stores.sort(key=lambda s: str(s["storeId"]))
    for s in stores:
        s["inTransit"] = out.get((sku, s["storeId"]), 0)
        s["incoming"] = into.get((sku, s["storeId"]), 0)
