"""Two origins that gave one id to two transfers (a client-supplied id, both
stores offline). The stock each moved is real and moves anyway (its
movements are applied from its own events); the *record* under that id must
be the same on every replica whatever order the events arrive in, so it
belongs to the origin with the smallest store id that wrote it (its
*holder*). A later origin's events are kept aside (``transfer_clashes``) and
its cancel returns its whole claim, outside any record. An origin with a
smaller id that arrives takes the record over: the holder's returns go back
to their claims, the origin side is cleared, and the new holder's kept
events are replayed into it. Each losing origin is listed once, as a
``transfer_id_clash`` conflict."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from agent.domain import Stamp, movement_id
from agent.ledger.engine.envelope import dumps
from agent.ledger.engine.stock import adjust_movement

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine


def keep_aside(
    engine: Engine,
    conn: sqlite3.Connection,
    holder: sqlite3.Row,
    data: dict[str, Any],
    stamp: Stamp,
    eid: str,
) -> None:
    """An event of an origin that does not hold the record: kept, listed."""
    t = data["transfer"]
    conn.execute(
        "INSERT OR IGNORE INTO transfer_clashes (transfer_id, origin, hlc, event_id, data) "
        "VALUES (?,?,?,?,?)",
        (t["id"], t["fromStoreId"], stamp[0], eid, dumps(data)),
    )
    _list(engine, conn, t["id"], t, stamp[0])


def hand_over(
    engine: Engine,
    conn: sqlite3.Connection,
    holder: sqlite3.Row,
    data: dict[str, Any],
    stamp: Stamp,
    local: bool,
) -> list[tuple[dict[str, Any], Stamp, str]]:
    """The record passes to the origin of ``data`` (a smaller store id than
    its holder's): answers that origin's events kept aside, oldest first, to
    be merged into it before ``data``."""
    tid = holder["id"]
    claims = conn.execute(
        "SELECT sku, claim FROM transfer_lines WHERE transfer_id = ? AND claim > 0", (tid,)
    ).fetchall()
    for sku, claim in claims if holder["cancel_id"] else []:
        # outside the record now: worth its claim, as if it had never held it
        adjust_movement(engine, conn, movement_id(holder["cancel_id"], sku), claim, local)
    conn.execute(
        "UPDATE transfers SET state = NULL, note = '', actor = '', created_at_ms = NULL, "
        "shipped_at_ms = NULL, cancelled_at_ms = NULL, cancel_id = NULL, hlc = NULL, "
        "origin = NULL WHERE id = ?",
        (tid,),
    )
    conn.execute(
        "UPDATE transfer_lines SET quantity = 0, shipped = 0, claim = 0 WHERE transfer_id = ?",
        (tid,),
    )
    conn.execute(
        "DELETE FROM transfer_lines WHERE transfer_id = ? AND received = 0 AND damaged = 0",
        (tid,),
    )
    t = data["transfer"]
    _list(engine, conn, tid, holder, stamp[0])
    new = t["fromStoreId"]
    kept = conn.execute(
        "SELECT hlc, event_id, data FROM transfer_clashes WHERE transfer_id = ? AND origin = ? "
        "ORDER BY hlc",
        (tid, new),
    ).fetchall()
    conn.execute("DELETE FROM transfer_clashes WHERE transfer_id = ? AND origin = ?", (tid, new))
    return [(json.loads(d), (h, new), e) for h, e, d in kept]


def _list(engine: Engine, conn: sqlite3.Connection, tid: str, lost: Any, hlc: int) -> None:
    """One entry per transfer id and losing origin, whichever order they met in."""
    other = (
        (lost["fromStoreId"], lost["toStoreId"])
        if isinstance(lost, dict)
        else (lost["from_store"], lost["to_store"])
    )
    detail = {"transferId": tid, "field": other[0], "fromStoreId": other[0], "toStoreId": other[1]}
    engine._conflict(conn, "transfer_id_clash", None, other[0], None, tid, hlc, detail)
