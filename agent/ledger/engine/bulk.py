"""Local stock movements on rows that do not exist yet, written in bulk."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, ClassVar

from agent.domain import MovementKind
from agent.ledger.engine.envelope import dumps, envelope

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine


class NewStockMovements:
    """Local stock movements on (sku, store) rows that do not exist yet, written
    in bulk: the same events, movements and stock rows ``Engine.emit`` writes
    one statement at a time (each is stamped and numbered when added, in
    order), with one ``executemany`` per table on ``flush``.

    Why it is the same: a movement always creates its stock row, so a row that
    does not exist has no movements. A count then supersedes nothing and finds
    nothing ordered after its stamp (a local stamp is the newest this node
    knows), so on_hand is the count or the delta, version 1, and no conflict
    is possible; nobody has written the row, so a count carries no basis
    (``Engine.count_basis``) and this node becomes its only writer. Flush
    before anything else reads or writes those rows or the outbox, and before
    adding a (sku, store) that is in ``keys`` again. It flushes itself every
    FLUSH_EVERY rows, which bounds its memory.

    A flush hands this store's new rows to ``Engine.judge`` (available 0
    before, as a row that did not exist), so a row made at or below its
    reorder point (set before its first stock) raises its alert, as it would
    through ``Engine.emit``."""

    FLUSH_EVERY: ClassVar[int] = 10_000

    def __init__(self, engine: Engine, conn: sqlite3.Connection) -> None:
        self.engine = engine
        self.conn = conn
        self.keys: set[tuple[str, str]] = set()  # (sku, store) added since the last flush
        self.events: list[tuple[Any, ...]] = []
        self.movements: list[tuple[Any, ...]] = []
        self.stock: list[tuple[Any, ...]] = []
        self.own: dict[tuple[str, str], tuple[int, str]] = {}  # this store's rows: (0, event id)
        self.first_seq = self.seq = 0
        self.last_hlc = 0

    def add(self, key: tuple[str, str], mv: dict[str, Any]) -> dict[str, Any]:
        engine, me = self.engine, self.engine.store_id
        if mv.get("basis"):  # a row nobody has written: nothing to have seen
            raise ValueError("a movement on a new stock row carries no basis")
        if not self.events:
            self.first_seq = self.seq = engine.next_seq(self.conn)
        else:
            self.seq += 1
        seq, hlc = self.seq, engine.clock.now()
        event = envelope(me, seq, hlc, "stock.movement", mv)
        eid = event["id"]
        self.events.append((me, seq, hlc, "stock.movement", dumps(event)))
        qty = int(mv["quantity"])
        self.movements.append(
            (
                eid,
                mv["sku"],
                mv["storeId"],
                mv["kind"],
                qty,
                mv.get("reason", ""),
                mv.get("actor", ""),
                None,
                hlc,
                me,
                None,
                0,
            )
        )
        count = (hlc, me, eid) if mv["kind"] == MovementKind.COUNT else (None, None, None)
        self.stock.append((mv["sku"], mv["storeId"], qty, *count, hlc, engine.wall_ms(), me))
        self.last_hlc = hlc
        self.keys.add(key)
        if mv["storeId"] == me:
            self.own[key] = (0, eid)
        if len(self.events) >= self.FLUSH_EVERY:
            self.flush()
        return event

    def flush(self) -> None:
        if not self.events:
            return
        conn = self.conn
        conn.executemany(
            "INSERT INTO events (origin, seq, hlc, type, body, published) VALUES (?,?,?,?,?,0)",
            self.events,
        )
        conn.executemany(
            "INSERT INTO movements (id, sku, store_id, kind, quantity, reason, actor, "
            "reservation_id, hlc, origin, basis, superseded) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            self.movements,
        )
        conn.executemany(
            "INSERT INTO stock (sku, store_id, on_hand, version, count_hlc, count_origin, "
            "count_id, updated_hlc, updated_at_ms, writers) VALUES (?,?,?,1,?,?,?,?,?,?)",
            sorted(self.stock),  # in key order: far fewer B-tree pages touched (keys are unique)
        )
        self.engine._advance_origin_range(
            conn, self.engine.store_id, self.first_seq, self.seq, self.last_hlc
        )
        own = self.own
        self.events.clear()
        self.movements.clear()
        self.stock.clear()
        self.keys.clear()
        self.own = {}
        if own:
            self.engine.judge(conn, own)
