"""Stock: movements are a set; a row's on_hand is the value of its latest
physical count by ``(hlc, origin)`` plus the deltas ordered after it.

A movement either
- is a count newer than the row's count: it becomes the count, supersedes the
  old one and the deltas ordered between them (``_apply_winning_count``);
- is older than the row's count (a count or a delta): it is kept, superseded
  (``_supersede_late``);
- or is a delta after the count: on_hand moves by it.
Each superseded write the winner had not seen is logged as a conflict, and so
is a peer's movement that takes the row's available below zero."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from agent.domain import MovementKind, Stamp, covered, split_event_id
from agent.ledger.engine.envelope import dumps

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine

Count = tuple[int | None, str | None, str | None]  # a row's count: (hlc, origin, event id)


def add_writer(writers: str, origin: str) -> str:
    """A stock row's ``writers`` (sorted origins, comma-separated) with ``origin``."""
    names = writers.split(",") if writers else []
    if origin in names:
        return writers
    return ",".join(sorted([*names, origin]))


def stock_row(conn: sqlite3.Connection, sku: str, store: str) -> tuple[sqlite3.Row, bool]:
    """The stock row, created if absent, and whether it was: a created row
    has no movements yet (every movement creates its row first)."""
    sql = "SELECT * FROM stock WHERE sku = ? AND store_id = ?"
    row: sqlite3.Row | None = conn.execute(sql, (sku, store)).fetchone()
    if row is not None:
        return row, False
    conn.execute("INSERT INTO stock (sku, store_id) VALUES (?, ?)", (sku, store))
    created: sqlite3.Row = conn.execute(sql, (sku, store)).fetchone()
    return created, True


def apply_movement(
    engine: Engine,
    conn: sqlite3.Connection,
    mv: dict[str, Any],
    stamp: Stamp,
    eid: str,
    local: bool,
    reservation_id: str | None = None,
    *,
    tid: str | None = None,
) -> None:
    """``eid``: the movement's id (its event's, or ``domain.movement_id`` for
    one of several); ``tid``: the transfer that moved it."""
    hlc, origin = stamp
    sku, store, qty = mv["sku"], mv["storeId"], int(mv["quantity"])
    row, created = stock_row(conn, sku, store)
    engine.touch(sku, store, row)
    count: Count = (row["count_hlc"], row["count_origin"], row["count_id"])
    count_stamp = (row["count_hlc"], row["count_origin"]) if row["count_id"] else None
    on_hand, superseded = row["on_hand"], 0
    if mv["kind"] == MovementKind.COUNT:
        if count_stamp is None or stamp > count_stamp:
            on_hand = _apply_winning_count(engine, conn, row, created, mv, stamp, eid)
            count = (hlc, origin, eid)
        else:
            superseded = _supersede_late(engine, conn, row, eid, hlc, qty, "count")
    elif count_stamp is not None and stamp < count_stamp:
        superseded = _supersede_late(engine, conn, row, eid, hlc, qty, "delta")
    else:
        on_hand += qty
    _insert_movement(conn, mv, stamp, eid, reservation_id, superseded, tid)
    conn.execute(
        "UPDATE stock SET on_hand = ?, count_hlc = ?, count_origin = ?, count_id = ?, "
        "version = version + 1, updated_hlc = max(updated_hlc, ?), updated_at_ms = ?, "
        "writers = ? WHERE sku = ? AND store_id = ?",
        (on_hand, *count, hlc, engine.wall_ms(), add_writer(row["writers"], origin), sku, store),
    )
    if not local and on_hand - row["reserved"] < 0 <= row["on_hand"] - row["reserved"]:
        detail = {"onHand": on_hand, "reserved": row["reserved"]}
        engine._conflict(conn, "negative_available", sku, store, None, eid, hlc, detail)


def _insert_movement(
    conn: sqlite3.Connection,
    mv: dict[str, Any],
    stamp: Stamp,
    eid: str,
    reservation_id: str | None,
    superseded: int,
    tid: str | None = None,
) -> None:
    basis = mv.get("basis")
    conn.execute(
        "INSERT INTO movements (id, sku, store_id, kind, quantity, reason, actor, "
        "reservation_id, hlc, origin, basis, superseded, transfer_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            eid,
            mv["sku"],
            mv["storeId"],
            mv["kind"],
            int(mv["quantity"]),
            mv.get("reason", ""),
            mv.get("actor", ""),
            reservation_id,
            *stamp,
            dumps(basis) if basis else None,
            superseded,
            tid,
        ),
    )


def adjust_movement(
    engine: Engine, conn: sqlite3.Connection, mid: str, quantity: int, local: bool
) -> None:
    """Set a delta's quantity after the fact (a transfer's return, when a
    receipt shows some of it had arrived): on_hand follows unless a count
    superseded the movement. The movement keeps its stamp, so the result is
    the one it would have had at that quantity from the start."""
    mv = conn.execute(
        "SELECT sku, store_id, quantity, superseded, hlc FROM movements WHERE id = ?", (mid,)
    ).fetchone()
    if mv is None or mv["quantity"] == quantity:
        return
    conn.execute("UPDATE movements SET quantity = ? WHERE id = ?", (quantity, mid))
    if mv["superseded"]:
        return
    row, _ = stock_row(conn, mv["sku"], mv["store_id"])
    engine.touch(mv["sku"], mv["store_id"], row)
    on_hand = row["on_hand"] + quantity - mv["quantity"]
    conn.execute(
        "UPDATE stock SET on_hand = ?, version = version + 1, updated_at_ms = ? "
        "WHERE sku = ? AND store_id = ?",
        (on_hand, engine.wall_ms(), mv["sku"], mv["store_id"]),
    )
    if not local and on_hand - row["reserved"] < 0 <= row["on_hand"] - row["reserved"]:
        detail = {"onHand": on_hand, "reserved": row["reserved"]}
        engine._conflict(
            conn, "negative_available", mv["sku"], mv["store_id"], None, mid, mv["hlc"], detail
        )


def _apply_winning_count(
    engine: Engine,
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    created: bool,
    mv: dict[str, Any],
    stamp: Stamp,
    eid: str,
) -> int:
    """A count newer than the row's: supersede the old count and the deltas
    ordered between the two; returns the new on_hand (the count plus the
    deltas ordered after it)."""
    sku, store, qty, basis = mv["sku"], mv["storeId"], int(mv["quantity"]), mv.get("basis")
    if row["count_id"]:
        _supersede_old_count(engine, conn, row, basis, qty, stamp[0], eid)
    if created:  # a created row has no movements: none between, none after
        return qty
    floor = (row["count_hlc"], row["count_origin"]) if row["count_id"] else (0, "")
    between = conn.execute(
        "SELECT id, quantity FROM movements WHERE sku = ? AND store_id = ? "
        "AND kind != 'count' AND superseded = 0 AND (hlc, origin) > (?, ?) "
        "AND (hlc, origin) < (?, ?)",
        (sku, store, *floor, *stamp),
    ).fetchall()
    later: int = conn.execute(
        "SELECT coalesce(sum(quantity), 0) FROM movements WHERE sku = ? AND "
        "store_id = ? AND kind != 'count' AND (hlc, origin) > (?, ?)",
        (sku, store, *stamp),
    ).fetchone()[0]
    for old_id, delta in between:
        conn.execute("UPDATE movements SET superseded = 1 WHERE id = ?", (old_id,))
        if not covered(basis, *split_event_id(old_id)):
            detail = {"delta": delta, "count": qty}
            engine._conflict(conn, "superseded_delta", sku, store, eid, old_id, stamp[0], detail)
    return qty + later


def _supersede_old_count(
    engine: Engine,
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    basis: dict[str, int] | None,
    qty: int,
    hlc: int,
    eid: str,
) -> None:
    old_id = row["count_id"]
    conn.execute("UPDATE movements SET superseded = 1 WHERE id = ?", (old_id,))
    lost = conn.execute("SELECT quantity FROM movements WHERE id = ?", (old_id,)).fetchone()
    if lost is not None and lost[0] != qty and not covered(basis, *split_event_id(old_id)):
        detail = {"kept": qty, "lost": lost[0]}
        sku, store = row["sku"], row["store_id"]
        engine._conflict(conn, "concurrent_count", sku, store, eid, old_id, hlc, detail)


def _supersede_late(
    engine: Engine,
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    eid: str,
    hlc: int,
    qty: int,
    what: str,
) -> int:
    """A movement ordered before the row's count (``what``: a "count" or a
    "delta"): it changes nothing; a loss its winner had not seen is logged.
    Returns the movement's ``superseded`` flag."""
    winner = conn.execute(
        "SELECT basis, quantity FROM movements WHERE id = ?", (row["count_id"],)
    ).fetchone()
    winner_basis = json.loads(winner[0]) if winner and winner[0] else None
    if what == "count" and winner is not None and winner[1] == qty:
        return 1  # two counts that agree: nothing was lost
    if not covered(winner_basis, *split_event_id(eid)):
        kind = "superseded_delta" if what == "delta" else "concurrent_count"
        detail = {"lost": qty, "what": what}
        if winner is not None:
            detail["kept" if what == "count" else "count"] = winner[1]
        sku, store = row["sku"], row["store_id"]
        engine._conflict(conn, kind, sku, store, row["count_id"], eid, hlc, detail)
    return 1
