"""Transfers: stock sent from one store to another.

Two single writers share a record. The origin store writes the header's
state (DRAFT → SHIPPED → CANCELLED, or DRAFT → CANCELLED) and, per line, what
it shipped and what its cancel returned (its *claim*): ``transfer.changed``
events, of which a replica keeps the newest state. The destination writes
receipts (``transfer.received``): immutable, each counted once, summed per
line. Neither side ever overwrites the other's fields, so the two merge
without a last-writer-wins race.

Stock moves by movements, a set like every other (``stock``): shipping writes
``transfer_out`` (−shipped) at the origin, a receipt ``transfer_in``
(+received +damaged) and ``damaged`` (−damaged) at the destination, a cancel
``transfer_return`` at the origin. Each is applied once, from its own event,
whatever order the events arrive in, and is superseded by a later count like
any delta. Movement ids are ``event id/sku`` (``domain.movement_id``).

What a cancel returns is derived, not trusted: ``LineCounts.cancelled``, its
claim less whatever the receipts show arrived (a receipt beats a concurrent
cancel of the same units: the goods are physically there). The return
movement keeps the cancel's stamp and its quantity follows the receipts
(``_settle``), so every replica ends with the same movements at the same
stamps, hence the same on_hand, in any order of arrival; each corrected
claim is listed as a ``cancel_vs_receipt`` conflict.

A receipt may arrive before anything of the origin's (the truck came while
the network was down): the transfer is recorded from the receipt, and the
origin's events fill it in when they come. Two origins that used one id:
``transfer_clash``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from agent.domain import (
    LineCounts,
    MovementKind,
    Stamp,
    TransferState,
    movement_id,
    transfer_status,
)
from agent.ledger.engine import transfer_clash
from agent.ledger.engine.envelope import dumps
from agent.ledger.engine.stock import adjust_movement, apply_movement

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine


def apply_transfer(
    engine: Engine,
    conn: sqlite3.Connection,
    data: dict[str, Any],
    stamp: Stamp,
    eid: str,
    local: bool,
) -> None:
    """The origin's new state of a transfer, and the stock it moves."""
    t = data["transfer"]
    tid, origin = t["id"], t["fromStoreId"]
    cur = conn.execute("SELECT * FROM transfers WHERE id = ?", (tid,)).fetchone()
    holder = cur["from_store"] if cur is not None and cur["hlc"] is not None else None
    # another origin gave the same id to its own transfer: ``transfer_clash``
    clash = holder is not None and origin > holder
    if clash:
        transfer_clash.keep_aside(engine, conn, cur, data, stamp, eid)
    elif holder is not None and origin < holder:
        for old, old_stamp, old_eid in transfer_clash.hand_over(
            engine, conn, cur, data, stamp, local
        ):
            _merge(engine, conn, old, old_stamp, old_eid)
        _merge(engine, conn, data, stamp, eid)
        _settle(engine, conn, tid, local)  # its kept cancel's returns, now in the record
    else:
        _merge(engine, conn, data, stamp, eid)
    shipped = t["state"] == TransferState.SHIPPED
    for line in t["lines"] if shipped else []:
        mv = _movement(t, line["sku"], origin, MovementKind.TRANSFER_OUT, -line["quantity"])
        apply_movement(engine, conn, mv, stamp, movement_id(eid, line["sku"]), local, tid=tid)
    if t["state"] == TransferState.CANCELLED and data.get("claims"):
        for claim in data["claims"]:
            # written at what it is worth now; ``_settle`` keeps it true
            counts = None if clash else _line_counts(conn, tid, claim["sku"])
            qty = counts.cancelled if counts is not None else claim["quantity"]
            mv = _movement(t, claim["sku"], origin, MovementKind.TRANSFER_RETURN, qty)
            mid = movement_id(eid, claim["sku"])
            apply_movement(engine, conn, mv, stamp, mid, local, tid=tid)


def apply_receipt(
    engine: Engine,
    conn: sqlite3.Connection,
    data: dict[str, Any],
    stamp: Stamp,
    eid: str,
    local: bool,
) -> None:
    """One receipt of the destination's, and the stock it moves there."""
    r = data["receipt"]
    tid, store = r["transferId"], r["toStoreId"]
    cur = conn.execute("SELECT * FROM transfers WHERE id = ?", (tid,)).fetchone()
    now = engine.wall_ms()
    if cur is None:  # received before any of the origin's events arrived here
        conn.execute(
            "INSERT INTO transfers (id, from_store, to_store, updated_at_ms) VALUES (?,?,?,?)",
            (tid, r["fromStoreId"], store, now),
        )
    conn.execute(
        "INSERT OR IGNORE INTO transfer_receipts (transfer_id, store_id, id, from_store, "
        "event_id, lines, actor, received_at_ms, hlc) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            tid,
            store,
            r["id"],
            r["fromStoreId"],
            eid,
            dumps(r["lines"]),
            r.get("actor", ""),
            r["receivedAtMs"],
            stamp[0],
        ),
    )
    for line in r["lines"]:
        sku, got, broken = line["sku"], int(line["received"]), int(line["damaged"])
        _line(conn, tid, sku)
        conn.execute(
            "UPDATE transfer_lines SET received = received + ?, damaged = damaged + ? "
            "WHERE transfer_id = ? AND sku = ?",
            (got, broken, tid, sku),
        )
        mv = _movement(r, sku, store, MovementKind.TRANSFER_IN, got + broken)
        apply_movement(engine, conn, mv, stamp, movement_id(eid, sku), local, tid=tid)
        if broken:
            mv = _movement(r, sku, store, MovementKind.DAMAGED, -broken)
            mid = movement_id(eid, sku, damaged=True)
            apply_movement(engine, conn, mv, stamp, mid, local, tid=tid)
    conn.execute("UPDATE transfers SET updated_at_ms = ? WHERE id = ?", (now, tid))
    _sides_from_receipts(conn, tid)
    _wrong_stores(engine, conn, tid)
    _settle(engine, conn, tid, local)


def _sides_from_receipts(conn: sqlite3.Connection, tid: str) -> None:
    """A transfer known only from receipts is sent and received as its
    earliest receipt says (by stamp): the same on every replica, whichever
    receipt it applied first, until the origin's events say otherwise."""
    conn.execute(
        "UPDATE transfers SET (from_store, to_store) = (SELECT from_store, store_id FROM "
        "transfer_receipts WHERE transfer_id = ?1 ORDER BY hlc, store_id, id LIMIT 1) "
        "WHERE id = ?1 AND hlc IS NULL",
        (tid,),
    )


def _wrong_stores(engine: Engine, conn: sqlite3.Connection, tid: str) -> None:
    """List each receipt by a store that is not the destination the origin
    named (a truck unloaded at the wrong store). Judged once the origin's
    side is known, so every replica lists the same ones."""
    rows = conn.execute(
        "SELECT r.event_id, r.store_id, r.hlc, t.to_store FROM transfer_receipts r "
        "JOIN transfers t ON t.id = r.transfer_id WHERE r.transfer_id = ? "
        "AND t.hlc IS NOT NULL AND r.store_id != t.to_store",
        (tid,),
    ).fetchall()
    for eid, store, hlc, dest in rows:
        detail = {"transferId": tid, "toStoreId": dest, "receivedBy": store}
        engine._conflict(conn, "transfer_wrong_store", None, store, None, eid, hlc, detail)


# ----------------------------------------------------------------- header
def _merge(
    engine: Engine, conn: sqlite3.Connection, data: dict[str, Any], stamp: Stamp, eid: str
) -> None:
    cur = conn.execute("SELECT * FROM transfers WHERE id = ?", (data["transfer"]["id"],)).fetchone()
    _merge_header(engine, conn, cur, data["transfer"], stamp, eid, data.get("claims") or [])


def _merge_header(
    engine: Engine,
    conn: sqlite3.Connection,
    cur: sqlite3.Row | None,
    t: dict[str, Any],
    stamp: Stamp,
    eid: str,
    claims: list[dict[str, Any]],
) -> None:
    tid = t["id"]
    now = engine.wall_ms()
    if cur is None:
        conn.execute(
            "INSERT INTO transfers (id, from_store, to_store, updated_at_ms) VALUES (?,?,?,?)",
            (tid, t["fromStoreId"], t["toStoreId"], now),
        )
    elif cur["hlc"] is None:
        # known from receipts only: the origin's word on who sent it and to
        # whom stands over the packing slip's (a slip may have been misread)
        conn.execute(
            "UPDATE transfers SET from_store = ?, to_store = ? WHERE id = ?",
            (t["fromStoreId"], t["toStoreId"], tid),
        )
    newer = cur is None or cur["hlc"] is None or stamp > (cur["hlc"], cur["origin"])
    if newer:
        conn.execute(
            "UPDATE transfers SET note = ?, state = ?, actor = ?, created_at_ms = ?, "
            "shipped_at_ms = ?, cancelled_at_ms = ?, hlc = ?, origin = ?, updated_at_ms = ? "
            "WHERE id = ?",
            (
                t.get("note", ""),
                t["state"],
                t.get("actor", ""),
                t["createdAtMs"],
                t.get("shippedAtMs"),
                t.get("cancelledAtMs"),
                *stamp,
                now,
                tid,
            ),
        )
    for position, line in enumerate(t["lines"] if newer else []):
        # an origin never changes a transfer's lines; the newest state's stand
        _line(conn, tid, line["sku"], position)
        conn.execute(
            "UPDATE transfer_lines SET quantity = ?, position = ? "
            "WHERE transfer_id = ? AND sku = ?",
            (line["quantity"], position, tid, line["sku"]),
        )
    if t.get("shippedAtMs") is not None:
        # every state after shipping carries the lines as shipped; a cancel
        # that arrives before its ship event knows what was shipped from it
        for line in t["lines"]:
            conn.execute(
                "UPDATE transfer_lines SET shipped = ? WHERE transfer_id = ? AND sku = ?",
                (line["quantity"], tid, line["sku"]),
            )
    if claims:
        conn.execute("UPDATE transfers SET cancel_id = ? WHERE id = ?", (eid, tid))
        for claim in claims:
            _line(conn, tid, claim["sku"])
            conn.execute(
                "UPDATE transfer_lines SET claim = ? WHERE transfer_id = ? AND sku = ?",
                (claim["quantity"], tid, claim["sku"]),
            )
    _wrong_stores(engine, conn, tid)
    _settle(engine, conn, tid, local=False, recount_only=True)


# ------------------------------------------------------------------ lines
def _line(conn: sqlite3.Connection, tid: str, sku: str, position: int | None = None) -> None:
    """The line's row, created (after the lines there are) if absent."""
    if position is None:
        position = conn.execute(
            "SELECT coalesce(max(position) + 1, 0) FROM transfer_lines WHERE transfer_id = ?",
            (tid,),
        ).fetchone()[0]
    conn.execute(
        "INSERT OR IGNORE INTO transfer_lines (transfer_id, sku, position) VALUES (?,?,?)",
        (tid, sku, position),
    )


def _line_counts(conn: sqlite3.Connection, tid: str, sku: str) -> LineCounts | None:
    row = conn.execute(
        "SELECT shipped, claim, received, damaged FROM transfer_lines "
        "WHERE transfer_id = ? AND sku = ?",
        (tid, sku),
    ).fetchone()
    return LineCounts(*row) if row is not None else None


def _settle(
    engine: Engine, conn: sqlite3.Connection, tid: str, local: bool, recount_only: bool = False
) -> None:
    """Bring the derived columns of a transfer's lines (cancelled, pending) up
    to date with both sides, and each of the cancel's returns to what it is
    now worth (``LineCounts.cancelled``), listing each correction.

    ``recount_only``: the origin's own event is being applied; its returns
    are written by ``apply_transfer`` after this, at their current worth."""
    header = conn.execute(
        "SELECT from_store, state, status, cancel_id, hlc FROM transfers WHERE id = ?", (tid,)
    ).fetchone()
    rows = conn.execute(
        "SELECT sku, shipped, claim, received, damaged, cancelled, pending "
        "FROM transfer_lines WHERE transfer_id = ?",
        (tid,),
    ).fetchall()
    lines = [LineCounts(*r[1:5]) for r in rows]
    status = transfer_status(header["state"], lines)
    if status != header["status"]:
        conn.execute("UPDATE transfers SET status = ? WHERE id = ?", (str(status), tid))
    for (sku, _, claim, _, _, cancelled, pending), counts in zip(rows, lines, strict=True):
        if (counts.cancelled, counts.pending) != (cancelled, pending):
            conn.execute(
                "UPDATE transfer_lines SET cancelled = ?, pending = ? "
                "WHERE transfer_id = ? AND sku = ?",
                (counts.cancelled, counts.pending, tid, sku),
            )
        if header["cancel_id"] is None or not claim:
            continue
        if not recount_only:
            mid = movement_id(header["cancel_id"], sku)
            adjust_movement(engine, conn, mid, counts.cancelled, local)
        if counts.cancel_lost:
            _cancel_lost(engine, conn, tid, sku, header, counts)


def _cancel_lost(
    engine: Engine,
    conn: sqlite3.Connection,
    tid: str,
    sku: str,
    header: sqlite3.Row,
    counts: LineCounts,
) -> None:
    """List a cancel that returned units a receipt shows had arrived. One
    entry per (cancel, line), kept up to date as receipts come in: the same
    id and detail on every replica once they have the same receipts."""
    detail = {
        "transferId": tid,
        "field": sku,
        "shipped": counts.shipped,
        "claimed": counts.claim,
        "cancelled": counts.cancelled,
        "received": counts.received,
        "damaged": counts.damaged,
    }
    loser = header["cancel_id"]
    conn.execute(
        "INSERT INTO conflicts (id, kind, sku, store_id, winner, loser, detail, hlc, "
        "detected_at_ms) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
        "detail = excluded.detail",
        (
            f"cancel_vs_receipt:{loser}:{tid}:{sku}",
            "cancel_vs_receipt",
            sku,
            header["from_store"],
            tid,
            loser,
            dumps(detail),
            header["hlc"] or 0,
            engine.wall_ms(),
        ),
    )


def _movement(
    src: dict[str, Any], sku: str, store: str, kind: MovementKind, quantity: int
) -> dict[str, Any]:
    return {
        "sku": sku,
        "storeId": store,
        "kind": str(kind),
        "quantity": quantity,
        "reason": f"transfer {src.get('transferId') or src['id']}",
        "actor": src.get("actor", ""),
    }


def receipt_lines(conn: sqlite3.Connection, tid: str) -> list[dict[str, Any]]:
    """Every receipt of a transfer, oldest first."""
    return [
        {
            "id": r["id"],
            "storeId": r["store_id"],
            "eventId": r["event_id"],
            "lines": json.loads(r["lines"]),
            "actor": r["actor"],
            "receivedAtMs": r["received_at_ms"],
        }
        for r in conn.execute(
            "SELECT * FROM transfer_receipts WHERE transfer_id = ? ORDER BY hlc, id", (tid,)
        )
    ]
