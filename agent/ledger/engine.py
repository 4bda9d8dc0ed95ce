"""The write path: every change is an event, applied by the same code whether
it was made here or arrived from a peer. That is what makes replicas converge:
applying the same set of events in any order gives the same state.

Event envelope: ``{id: "origin:seq", origin, seq, hlc, type, schemaVersion, data}``.

Types (schemaVersion 1):
- ``product.upserted``  data: {sku, fields: {...}, basis}
- ``stock.movement``    data: {sku, storeId, kind, quantity, reason, actor, basis?}
- ``reservation.changed`` data: {reservation: {...}, movement?: {...}}

Merge rules (DESIGN.md §2): product fields are per-field LWW by (hlc, origin);
movements are a set; on_hand = latest count + deltas ordered after it;
reservations take the newest state from their single writer (the owner).
A losing write that its winner had not seen (not covered by the winner's
``basis``, the writer's per-origin watermarks) is a conflict and is logged.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from agent import hlc as hlc_mod
from agent.domain import MovementKind, ReservationStatus, covered, split_event_id

SCHEMA_VERSION = 1
EVENT_TYPES = ("product.upserted", "stock.movement", "reservation.changed")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# one encoder, made once: ``json.dumps`` with options builds a new one per call
dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def add_writer(writers: str, origin: str) -> str:
    """A stock row's ``writers`` (sorted origins, comma-separated) with ``origin``."""
    names = writers.split(",") if writers else []
    if origin in names:
        return writers
    return ",".join(sorted([*names, origin]))


class Engine:
    """Applies events to the ledger. Used only on the writer thread."""

    def __init__(self, store_id: str, clock: hlc_mod.HybridLogicalClock) -> None:
        self.store_id = store_id
        self.clock = clock

    # ---------------------------------------------------------------- local
    def next_seq(self, conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "SELECT max_seq FROM origins WHERE origin = ?", (self.store_id,)
        ).fetchone()
        return (row[0] if row else 0) + 1

    def basis(self, conn: sqlite3.Connection) -> dict[str, int]:
        """What this node has seen: per-origin contiguous applied watermark."""
        return {r[0]: r[1] for r in conn.execute("SELECT origin, applied_seq FROM origins")}

    @staticmethod
    def count_basis(seen: dict[str, int], writers: str) -> dict[str, int]:
        """A count's basis: ``seen`` (``basis()``) cut down to the origins that
        have written the stock row (its ``writers``). That is all a count's
        conflicts are judged on: the only events a count can supersede or be
        superseded by are that row's movements, and if this node had applied
        one, its origin is among the row's writers here. So the answer of
        ``covered()`` for any of them is the same as with the whole basis,
        which would list every store of the network (~2 KB per count with
        100 stores, in the movement row and in the event)."""
        if not writers:
            return {}
        return {o: seen[o] for o in writers.split(",") if seen.get(o)}

    def emit(self, conn: sqlite3.Connection, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        """Record a local change: stamp it, append it to the outbox, apply it."""
        seq = self.next_seq(conn)
        event = {
            "id": f"{self.store_id}:{seq}",
            "origin": self.store_id,
            "seq": seq,
            "hlc": self.clock.now(),
            "type": type_,
            "schemaVersion": SCHEMA_VERSION,
            "data": data,
        }
        conn.execute(
            "INSERT INTO events (origin, seq, hlc, type, body, published) VALUES (?,?,?,?,?,0)",
            (self.store_id, seq, event["hlc"], type_, dumps(event)),
        )
        self._advance_origin(conn, self.store_id, seq, event["hlc"])
        self.apply_effects(conn, event, local=True)
        return event

    # ---------------------------------------------------------------- remote
    def has_event(self, conn: sqlite3.Connection, origin: str, seq: int) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM events WHERE origin = ? AND seq = ?", (origin, seq)
            ).fetchone()
            is not None
        )

    def apply_remote(self, conn: sqlite3.Connection, event: dict[str, Any]) -> bool:
        """Apply a peer's event once. Returns False if it was already applied.
        The caller has validated the envelope and observed its hlc."""
        origin, seq = event["origin"], event["seq"]
        if self.has_event(conn, origin, seq):
            return False
        conn.execute(
            "INSERT INTO events (origin, seq, hlc, type, body, published) VALUES (?,?,?,?,NULL,1)",
            (origin, seq, event["hlc"], event["type"]),
        )
        self._advance_origin(conn, origin, seq, event["hlc"])
        self.apply_effects(conn, event, local=False)
        return True

    def _advance_origin(self, conn: sqlite3.Connection, origin: str, seq: int, hlc: int) -> None:
        self._advance_origin_range(conn, origin, seq, seq, hlc)

    def _advance_origin_range(
        self, conn: sqlite3.Connection, origin: str, first: int, last: int, hlc: int
    ) -> None:
        """Record events ``first..last`` of one origin (all present now; ``hlc``
        is the largest of their stamps): its newest seq and stamp, and its
        contiguous applied watermark, advanced over any events that had
        arrived early."""
        conn.execute(
            "INSERT INTO origins (origin, applied_seq, max_seq, last_hlc, last_event_at_ms) "
            "VALUES (?, 0, ?, ?, ?) ON CONFLICT(origin) DO UPDATE SET "
            "max_seq = max(max_seq, excluded.max_seq), last_hlc = max(last_hlc, excluded.last_hlc),"
            " last_event_at_ms = excluded.last_event_at_ms",
            (origin, last, hlc, now_ms()),
        )
        applied = conn.execute(
            "SELECT applied_seq FROM origins WHERE origin = ?", (origin,)
        ).fetchone()[0]
        if first == applied + 1:
            applied = last
            while conn.execute(
                "SELECT 1 FROM events WHERE origin = ? AND seq = ?", (origin, applied + 1)
            ).fetchone():
                applied += 1
            conn.execute("UPDATE origins SET applied_seq = ? WHERE origin = ?", (applied, origin))

    def new_stock_movements(self, conn: sqlite3.Connection) -> NewStockMovements:
        return NewStockMovements(self, conn)

    # --------------------------------------------------------------- effects
    def apply_effects(self, conn: sqlite3.Connection, event: dict[str, Any], local: bool) -> None:
        data = event["data"]
        stamp = (event["hlc"], event["origin"])
        if event["type"] == "product.upserted":
            self._apply_product(conn, data, stamp, event["id"])
        elif event["type"] == "stock.movement":
            self._apply_movement(conn, data, stamp, event["id"], local)
        elif event["type"] == "reservation.changed":
            self._apply_reservation(conn, data, stamp, event["id"], local)
        else:  # validated before; never reached for known schema versions
            raise ValueError(f"unknown event type {event['type']!r}")

    def _apply_product(
        self, conn: sqlite3.Connection, data: dict[str, Any], stamp: tuple[int, str], eid: str
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
                if (
                    cur is not None
                    and cur[1] != origin
                    and not covered(basis, *split_event_id(cur[2]))
                ):
                    self._field_conflict(conn, sku, field, eid, cur[2], hlc, value, old)
                stamps[field] = [hlc, origin, eid, basis]
                changed[field] = int(value) if field == "active" else value
            elif cur[1] != origin and not covered(cur[3], origin, split_event_id(eid)[1]):
                self._field_conflict(conn, sku, field, cur[2], eid, hlc, old, value)
        sets = ", ".join(f"{f} = ?" for f in changed)
        params = [*changed.values()]
        conn.execute(
            f"UPDATE products SET {sets + ', ' if sets else ''}stamps = ?, "
            "updated_at_ms = max(updated_at_ms, ?) WHERE sku = ?",
            (*params, dumps(stamps), wall, sku),
        )

    def _field_conflict(
        self,
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
        self._conflict(
            conn,
            "product_field",
            sku,
            None,
            winner,
            loser,
            hlc,
            {"field": field, "kept": _norm(field, kept), "lost": _norm(field, lost)},
        )

    def _stock_row(
        self, conn: sqlite3.Connection, sku: str, store: str
    ) -> tuple[sqlite3.Row, bool]:
        """The stock row, created if absent, and whether it was: a created row
        has no movements yet (every movement creates its row first)."""
        row = conn.execute(
            "SELECT * FROM stock WHERE sku = ? AND store_id = ?", (sku, store)
        ).fetchone()
        if row is not None:
            return row, False
        conn.execute("INSERT INTO stock (sku, store_id) VALUES (?, ?)", (sku, store))
        row = conn.execute(
            "SELECT * FROM stock WHERE sku = ? AND store_id = ?", (sku, store)
        ).fetchone()
        return row, True

    def _apply_movement(
        self,
        conn: sqlite3.Connection,
        mv: dict[str, Any],
        stamp: tuple[int, str],
        eid: str,
        local: bool,
        reservation_id: str | None = None,
    ) -> None:
        hlc, origin = stamp
        sku, store, kind, qty = mv["sku"], mv["storeId"], mv["kind"], int(mv["quantity"])
        basis = mv.get("basis")
        row, created = self._stock_row(conn, sku, store)
        count_stamp = (row["count_hlc"], row["count_origin"]) if row["count_id"] else None
        superseded = 0
        on_hand = row["on_hand"]
        new_count: tuple[int | None, str | None, str | None] = (
            row["count_hlc"],
            row["count_origin"],
            row["count_id"],
        )
        if kind == MovementKind.COUNT:
            if count_stamp is None or stamp > count_stamp:
                if count_stamp is not None:
                    conn.execute(
                        "UPDATE movements SET superseded = 1 WHERE id = ?", (row["count_id"],)
                    )
                    lost = conn.execute(
                        "SELECT quantity FROM movements WHERE id = ?", (row["count_id"],)
                    ).fetchone()
                    if (
                        lost is not None
                        and lost[0] != qty
                        and not covered(basis, *split_event_id(row["count_id"]))
                    ):
                        self._conflict(
                            conn,
                            "concurrent_count",
                            sku,
                            store,
                            eid,
                            row["count_id"],
                            hlc,
                            {"kept": qty, "lost": lost[0]},
                        )
                floor = count_stamp or (0, "")
                deltas_between: list[Any] = []
                later = 0
                if not created:  # a created row has no movements: none between, none after
                    deltas_between = conn.execute(
                        "SELECT id, quantity FROM movements WHERE sku = ? AND store_id = ? "
                        "AND kind != 'count' AND superseded = 0 AND (hlc, origin) > (?, ?) "
                        "AND (hlc, origin) < (?, ?)",
                        (sku, store, *floor, *stamp),
                    ).fetchall()
                    later = conn.execute(
                        "SELECT coalesce(sum(quantity), 0) FROM movements WHERE sku = ? AND "
                        "store_id = ? AND kind != 'count' AND (hlc, origin) > (?, ?)",
                        (sku, store, *stamp),
                    ).fetchone()[0]
                for old in deltas_between:
                    conn.execute("UPDATE movements SET superseded = 1 WHERE id = ?", (old[0],))
                    if not covered(basis, *split_event_id(old[0])):
                        self._conflict(
                            conn,
                            "superseded_delta",
                            sku,
                            store,
                            eid,
                            old[0],
                            hlc,
                            {"delta": old[1], "count": qty},
                        )
                on_hand = qty + later
                new_count = (hlc, origin, eid)
            else:
                superseded = 1
                self._maybe_conflict_with_count(conn, row, sku, store, eid, hlc, qty, "count")
        elif count_stamp is not None and stamp < count_stamp:
            superseded = 1
            self._maybe_conflict_with_count(conn, row, sku, store, eid, hlc, qty, "delta")
        else:
            on_hand += qty
        conn.execute(
            "INSERT INTO movements (id, sku, store_id, kind, quantity, reason, actor, "
            "reservation_id, hlc, origin, basis, superseded) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                eid,
                sku,
                store,
                kind,
                qty,
                mv.get("reason", ""),
                mv.get("actor", ""),
                reservation_id,
                hlc,
                origin,
                dumps(basis) if basis else None,
                superseded,
            ),
        )
        conn.execute(
            "UPDATE stock SET on_hand = ?, count_hlc = ?, count_origin = ?, count_id = ?, "
            "version = version + 1, updated_hlc = max(updated_hlc, ?), updated_at_ms = ?, "
            "writers = ? WHERE sku = ? AND store_id = ?",
            (on_hand, *new_count, hlc, now_ms(), add_writer(row["writers"], origin), sku, store),
        )
        if not local and on_hand - row["reserved"] < 0 <= row["on_hand"] - row["reserved"]:
            self._conflict(
                conn,
                "negative_available",
                sku,
                store,
                None,
                eid,
                hlc,
                {"onHand": on_hand, "reserved": row["reserved"]},
            )

    def _maybe_conflict_with_count(
        self,
        conn: sqlite3.Connection,
        row: sqlite3.Row,
        sku: str,
        store: str,
        eid: str,
        hlc: int,
        qty: int,
        what: str,
    ) -> None:
        winner = conn.execute(
            "SELECT basis, quantity FROM movements WHERE id = ?", (row["count_id"],)
        ).fetchone()
        winner_basis = json.loads(winner[0]) if winner and winner[0] else None
        if what == "count" and winner is not None and winner[1] == qty:
            return  # two counts that agree: nothing was lost
        if not covered(winner_basis, *split_event_id(eid)):
            kind = "superseded_delta" if what == "delta" else "concurrent_count"
            detail = {"lost": qty, "what": what}
            if winner is not None:
                detail["kept" if what == "count" else "count"] = winner[1]
            self._conflict(conn, kind, sku, store, row["count_id"], eid, hlc, detail)

    def _apply_reservation(
        self,
        conn: sqlite3.Connection,
        data: dict[str, Any],
        stamp: tuple[int, str],
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
            "order_id, expires_at_ms, created_at_ms, updated_at_ms, hlc, origin) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "status = excluded.status, order_id = excluded.order_id, "
            "quantity = excluded.quantity, expires_at_ms = excluded.expires_at_ms, "
            "updated_at_ms = excluded.updated_at_ms, hlc = excluded.hlc, origin = excluded.origin",
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
            ),
        )
        if new_res != old_res:
            self._stock_row(conn, r["sku"], r["storeId"])
            conn.execute(
                "UPDATE stock SET reserved = reserved + ?, version = version + 1, "
                "updated_hlc = max(updated_hlc, ?), updated_at_ms = ? "
                "WHERE sku = ? AND store_id = ?",
                (new_res - old_res, stamp[0], now_ms(), r["sku"], r["storeId"]),
            )
        if data.get("movement"):
            self._apply_movement(conn, data["movement"], stamp, eid, local, r["id"])

    def _conflict(
        self,
        conn: sqlite3.Connection,
        kind: str,
        sku: str | None,
        store: str | None,
        winner: str | None,
        loser: str,
        hlc: int,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO conflicts (id, kind, sku, store_id, winner, loser, detail, "
            "hlc, detected_at_ms) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                f"{kind}:{loser}:{winner}:{detail.get('field', '')}",
                kind,
                sku,
                store,
                winner,
                loser,
                dumps(detail),
                hlc,
                now_ms(),
            ),
        )


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
    FLUSH_EVERY rows, which bounds its memory."""

    FLUSH_EVERY = 10_000

    def __init__(self, engine: Engine, conn: sqlite3.Connection) -> None:
        self.engine = engine
        self.conn = conn
        self.keys: set[tuple[str, str]] = set()  # (sku, store) added since the last flush
        self.events: list[tuple[Any, ...]] = []
        self.movements: list[tuple[Any, ...]] = []
        self.stock: list[tuple[Any, ...]] = []
        self.first_seq = self.seq = 0
        self.last_hlc = 0

    def add(self, key: tuple[str, str], mv: dict[str, Any]) -> dict[str, Any]:
        engine, me = self.engine, self.engine.store_id
        if not self.events:
            self.first_seq = self.seq = engine.next_seq(self.conn)
        else:
            self.seq += 1
        seq, hlc = self.seq, engine.clock.now()
        eid = f"{me}:{seq}"
        event = {
            "id": eid,
            "origin": me,
            "seq": seq,
            "hlc": hlc,
            "type": "stock.movement",
            "schemaVersion": SCHEMA_VERSION,
            "data": mv,
        }
        if mv.get("basis"):  # a row nobody has written: nothing to have seen
            raise ValueError("a movement on a new stock row carries no basis")
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
        self.stock.append((mv["sku"], mv["storeId"], qty, *count, hlc, now_ms(), me))
        self.last_hlc = hlc
        self.keys.add(key)
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
        self.events.clear()
        self.movements.clear()
        self.stock.clear()
        self.keys.clear()


def _norm(field: str, value: Any) -> Any:
    """Compare and report values as the API shows them (active is a bool)."""
    if field == "active" and value is not None:
        return bool(value)
    if field == "price" and value is not None:
        return float(value)
    return value
