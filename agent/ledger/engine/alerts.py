"""Low-stock alerts: raised by the store that holds the stock, at the moment a
write takes a SKU's available to or below its reorder point (``low``), and
back above it (``restored``). One per crossing, never one per write: the
store's newest alert of the SKU says which side it was last reported on.

An alert is an event of its own (``alert.raised``), stamped after the write
that caused it and naming it (``cause``); it replicates like any event and
is immutable. Only the owner raises them, so a replica applying the owner's
writes raises none.

What counts as "a write" is judged by the engine (``Engine.judge``): one
event (a confirm releases and sells the same units: nothing), or everything
an import writes (``Engine.as_one_write``: a row it counts and gives a point
raises at most one alert, judged on the level before the import). Setting or
clearing a reorder point is a write too: the owner judges the row when it
applies the ``stock.reorder`` event, whoever wrote it (an admin at another
store sets the point; the owner raises the alert when the event reaches it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from agent.domain import AlertKind, is_low

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine

Key = tuple[str, str]  # (sku, store)
# the rows a write changed: {(sku, store): (available before it, its event id)}
Touched = dict[Key, tuple[int, str]]
# up to this many rows, their points are looked up one by one; more (an
# import), the store's points are read in one pass of their partial index
KEYED_LOOKUPS = 64


def reorder_point(conn: sqlite3.Connection, sku: str, store: str) -> int | None:
    row = conn.execute(
        "SELECT reorder_point FROM stock_settings WHERE sku = ? AND store_id = ?", (sku, store)
    ).fetchone()
    return None if row is None else row[0]


def reorder_points(conn: sqlite3.Connection, store: str, keys: Collection[Key]) -> dict[Key, int]:
    """The reorder points of those of ``keys`` (all of ``store``) that have one."""
    if len(keys) <= KEYED_LOOKUPS:
        found = {k: reorder_point(conn, *k) for k in keys}
        return {k: p for k, p in found.items() if p is not None}
    rows = conn.execute(
        "SELECT sku, reorder_point FROM stock_settings "
        "WHERE store_id = ? AND reorder_point IS NOT NULL",
        (store,),
    )
    return {(r[0], store): int(r[1]) for r in rows if (r[0], store) in keys}


def last_kind(conn: sqlite3.Connection, sku: str, store: str) -> str | None:
    """The kind of the store's newest alert of the SKU (None: never alerted)."""
    row = conn.execute(
        "SELECT kind FROM alerts WHERE sku = ? AND store_id = ? ORDER BY hlc DESC LIMIT 1",
        (sku, store),
    ).fetchone()
    return None if row is None else str(row[0])


def available(conn: sqlite3.Connection, sku: str, store: str) -> int:
    row = conn.execute(
        "SELECT on_hand - reserved FROM stock WHERE sku = ? AND store_id = ?", (sku, store)
    ).fetchone()
    return 0 if row is None else int(row[0])


def crossing(was: str | None, after: int, point: int | None) -> AlertKind | None:
    """The alert a row now at ``after`` calls for, given the last one raised
    (``was``): low when it is at or below its point and was not reported low,
    restored when it is above and was."""
    low = is_low(after, point)
    if low and was != AlertKind.LOW:
        return AlertKind.LOW
    if not low and was == AlertKind.LOW:
        return AlertKind.RESTORED
    return None


def check(
    engine: Engine, conn: sqlite3.Connection, touched: Touched, settled: Collection[Key] = ()
) -> None:
    """After a write changed this store's rows ``touched``: raise the alerts
    of those it took across their reorder point. ``settled``: rows whose
    point the write set or cleared, judged even with no point now (a row
    reported low is restored by having no point to be below)."""
    points = reorder_points(conn, engine.store_id, touched)
    for key, (before, cause) in touched.items():
        if key in points or key in settled:
            raise_if_crossed(engine, conn, *key, before, points.get(key), cause)


def raise_if_crossed(
    engine: Engine,
    conn: sqlite3.Connection,
    sku: str,
    store: str,
    before: int,
    point: int | None,
    cause: str,
) -> dict[str, Any] | None:
    """Raise the alert the row's available now calls for, if any (``point``:
    its reorder point now; None: it has none, and a row reported low is
    restored by having no point to be below)."""
    after = available(conn, sku, store)
    kind = crossing(last_kind(conn, sku, store), after, point)
    if kind is None:
        return None
    alert = {
        "kind": str(kind),
        "sku": sku,
        "storeId": store,
        "before": before,
        "after": after,
        "reorderPoint": point,
        "cause": cause,
        "raisedAtMs": engine.wall_ms(),
    }
    return engine.emit(conn, "alert.raised", {"alert": alert})


def apply_alert(
    engine: Engine, conn: sqlite3.Connection, data: dict[str, Any], event: dict[str, Any]
) -> None:
    a = data["alert"]
    conn.execute(
        "INSERT OR IGNORE INTO alerts (id, kind, sku, store_id, before, after, reorder_point, "
        "cause, seq, hlc, raised_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            event["id"],
            a["kind"],
            a["sku"],
            a["storeId"],
            a["before"],
            a["after"],
            a.get("reorderPoint"),  # optional: null for a point taken away
            a.get("cause"),
            event["seq"],
            event["hlc"],
            a["raisedAtMs"],
        ),
    )
