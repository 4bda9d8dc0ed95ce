"""Stock batches: a ``stock.batch`` event carries many stock movements (an
import's chunk), each on a different (sku, store), all with the event's stamp.

Applying one is applying each of its movements as a ``stock.movement`` of the
same stamp would be (``stock.apply_movement``: counts by LWW with their basis,
deltas, supersession, conflicts, the low-stock alerts through
``Engine.touch``), the i-th named ``origin:seq/i`` (``domain.batch_movement_id``).
Since no two of them touch the same row, their order within the event changes
nothing; they are applied in it all the same.

The rows that do not exist yet (the bulk of a first import, here or at a
peer) are written with one ``executemany`` per table instead. It is the same:
a movement always creates its row, so a row that does not exist has no
movements; a count on it supersedes nothing and finds nothing ordered after
it, so on_hand is the count or the delta, version 1, and its only writer is
the event's origin. The one conflict such a row can have, a peer's negative
delta taking available below zero, goes the ordinary way.

``StockBatch`` gathers a local write's movements into such events."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from agent.domain import BATCH_BYTES, BATCH_ROWS, MovementKind, Stamp, batch_movement_id
from agent.ledger.engine import stock
from agent.ledger.engine.envelope import dumps

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine

Key = tuple[str, str]  # (sku, store)
NO_STOCK = {"on_hand": 0, "reserved": 0}  # a row that did not exist, as ``Engine.touch`` reads it


def apply_batch(
    engine: Engine,
    conn: sqlite3.Connection,
    data: dict[str, Any],
    stamp: Stamp,
    eid: str,
    local: bool,
) -> None:
    """Apply a ``stock.batch`` event's movements, in order (validated: each
    (sku, storeId) once)."""
    rows: list[dict[str, Any]] = data["movements"]
    existing = _existing(conn, rows)
    hlc, origin = stamp
    now, me = engine.wall_ms(), engine.store_id
    movements: list[tuple[Any, ...]] = []
    created: list[tuple[Any, ...]] = []
    seen: set[Key] = set()
    for i, mv in enumerate(rows):
        mid = batch_movement_id(eid, i)
        sku, store, kind, qty = mv["sku"], mv["storeId"], mv["kind"], int(mv["quantity"])
        if (sku, store) in seen:  # validation refuses such an event
            raise ValueError(f"{eid}: a stock.batch moves ({sku}, {store}) twice")
        seen.add((sku, store))
        if (sku, store) in existing or (not local and kind != MovementKind.COUNT and qty < 0):
            stock.apply_movement(engine, conn, mv, stamp, mid, local)
            continue
        basis = mv.get("basis")
        reason, actor = mv.get("reason", ""), mv.get("actor", "")
        movements.append(
            (
                mid,
                sku,
                store,
                kind,
                qty,
                reason,
                actor,
                dumps(basis) if basis else None,
                hlc,
                origin,
            )
        )
        count = (hlc, origin, mid) if kind == MovementKind.COUNT else (None, None, None)
        created.append((sku, store, qty, *count, hlc, now, origin))
        if store == me:  # only this store's rows are judged for alerts
            engine.touch(sku, store, NO_STOCK)
    if not movements:
        return
    conn.executemany(
        "INSERT INTO movements (id, sku, store_id, kind, quantity, reason, actor, basis, hlc, "
        "origin, superseded) VALUES (?,?,?,?,?,?,?,?,?,?,0)",
        movements,
    )
    conn.executemany(
        "INSERT INTO stock (sku, store_id, on_hand, version, count_hlc, count_origin, "
        "count_id, updated_hlc, updated_at_ms, writers) VALUES (?,?,?,1,?,?,?,?,?,?)",
        sorted(created),  # in key order: far fewer B-tree pages touched (keys are unique)
    )


def stocked_stores(conn: sqlite3.Connection, stores: set[str]) -> set[str]:
    """Those of ``stores`` that have any stock row: a look each in the store
    index. A row of any other cannot exist, and a first import (here or at a
    peer) is nearly all such rows: no need to look them up one by one."""
    sql = "SELECT 1 FROM stock WHERE store_id = ? LIMIT 1"
    return {s for s in stores if conn.execute(sql, (s,)).fetchone() is not None}


def _existing(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> set[Key]:
    """Those of the rows' (sku, store) that have a stock row, in one query."""
    stocked = stocked_stores(conn, {mv["storeId"] for mv in rows})
    if not stocked:
        return set()
    keys = dumps([[mv["sku"], mv["storeId"]] for mv in rows if mv["storeId"] in stocked])
    found = conn.execute(
        "SELECT s.sku, s.store_id FROM json_each(?) AS k CROSS JOIN stock AS s "
        "ON s.sku = json_extract(k.value, '$[0]') AND s.store_id = json_extract(k.value, '$[1]')",
        (keys,),
    )
    return {(r[0], r[1]) for r in found}


class StockBatch:
    """A local write's stock movements, emitted as ``stock.batch`` events in
    the order they were added: an event ends when a movement names a row it
    already moves, at BATCH_ROWS movements, or at about BATCH_BYTES of them.
    Flush before anything else reads or writes those rows (``keys``)."""

    def __init__(self, engine: Engine, conn: sqlite3.Connection) -> None:
        self.engine, self.conn = engine, conn
        self.movements: list[dict[str, Any]] = []
        self.keys: set[Key] = set()
        self.size = 0
        self.events = 0  # emitted so far

    def add(self, mv: dict[str, Any]) -> None:
        key = (mv["sku"], mv["storeId"])
        # the JSON's size, near enough: the strings, the basis, ~70 bytes of keys and numbers
        size = 70 + len(key[0]) + len(key[1]) + len(mv.get("reason", "")) + len(mv.get("actor", ""))
        if mv.get("basis"):
            size += len(dumps(mv["basis"]))
        if key in self.keys or len(self.movements) >= BATCH_ROWS or self.size + size > BATCH_BYTES:
            self.flush()
        self.movements.append(mv)
        self.keys.add(key)
        self.size += size

    def flush(self) -> None:
        if not self.movements:
            return
        self.engine.emit(self.conn, "stock.batch", {"movements": self.movements})
        self.events += 1
        self.movements, self.keys, self.size = [], set(), 0
