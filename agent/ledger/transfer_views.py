"""Transfers as the API shows them: both sides merged, per line what was
asked for, shipped, received, damaged, cancelled and is still pending, the
receipts, and what does not add up (``discrepancies``)."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import LineCounts, TransferState
from agent.errors import NotFound
from agent.ledger import keyrange
from agent.ledger.engine.transfers import receipt_lines
from agent.ledger.queries import iso

LINE_FIELDS = ("quantity", "shipped", "received", "damaged", "cancelled", "pending")
DIRECTIONS = ("incoming", "outgoing")


def transfer_row(conn: sqlite3.Connection, tid: str) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM transfers WHERE id = ?", (tid,)
    ).fetchone()
    if row is None:
        raise NotFound(
            f"transfer {tid!r} is not known to this agent; list them with: inv transfer list",
            transferId=tid,
        )
    return row


def sides(conn: sqlite3.Connection, tid: str) -> tuple[str, str, str | None] | None:
    """(origin, destination, the origin's state) of a transfer known here."""
    row = conn.execute(
        "SELECT from_store, to_store, state FROM transfers WHERE id = ?", (tid,)
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def own_receipt(conn: sqlite3.Connection, tid: str, store: str, rid: str) -> str | None:
    """The lines (JSON) of receipt ``rid`` of a transfer at ``store``, if recorded."""
    row = conn.execute(
        "SELECT lines FROM transfer_receipts WHERE transfer_id = ? AND store_id = ? AND id = ?",
        (tid, store, rid),
    ).fetchone()
    return None if row is None else str(row[0])


def received_elsewhere(conn: sqlite3.Connection, tid: str, me: str, rid: str | None) -> str | None:
    """The store a receipt of transfer ``tid`` asked at ``me`` is for, when not
    ``me``. A retry of a receipt (its id seen here) is answered by the store
    that recorded it, even if that is not the destination (else it would be
    counted twice); a new receipt goes to the destination the origin named.
    None (received here) for a transfer this store has not heard of, or knows
    from receipts only (no origin has named a destination yet)."""
    if rid:
        row = conn.execute(
            "SELECT store_id FROM transfer_receipts WHERE transfer_id = ? AND id = ? "
            "ORDER BY store_id = ? DESC, hlc LIMIT 1",
            (tid, rid, me),
        ).fetchone()
        if row is not None:
            return None if row[0] == me else str(row[0])
    known = sides(conn, tid)
    if known is None or known[2] is None or known[1] == me:
        return None
    return known[1]


def line_rows(conn: sqlite3.Connection, tid: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT l.*, p.id AS product_id, p.name AS name FROM transfer_lines l "
        "LEFT JOIN products p ON p.sku = l.sku WHERE l.transfer_id = ? ORDER BY l.position, l.sku",
        (tid,),
    ).fetchall()


def discrepancies(state: str | None, lines: list[sqlite3.Row]) -> list[dict[str, Any]]:
    """What the two sides disagree on, line by line:

    - ``received_before_shipped``: received while this store had not seen it
      shipped (its shipment's events had not arrived, or the origin has not
      shipped it): reconciled when they arrive;
    - ``not_on_transfer``: received, but not a line of the transfer;
    - ``over_received``: more received (and damaged) than shipped;
    - ``cancel_corrected``: the origin's cancel had returned units that the
      destination received; the return was corrected (also in conflicts)."""
    out: list[dict[str, Any]] = []
    shipped = (
        state is not None and state != TransferState.DRAFT and any(ln["shipped"] for ln in lines)
    )
    for ln in lines:
        counts = LineCounts(ln["shipped"], ln["claim"], ln["received"], ln["damaged"])
        got = ln["received"] + ln["damaged"]
        if got and not shipped:
            out.append(_gap(ln, "received_before_shipped", got))
        elif got and not ln["quantity"]:
            out.append(_gap(ln, "not_on_transfer", got))
        elif counts.over_received:
            out.append(_gap(ln, "over_received", counts.over_received))
        if counts.cancel_lost:
            out.append(_gap(ln, "cancel_corrected", counts.cancel_lost))
    return out


def _gap(line: sqlite3.Row, kind: str, quantity: int) -> dict[str, Any]:
    return {"sku": line["sku"], "kind": kind, "quantity": quantity}


def transfer_view(conn: sqlite3.Connection, tid: str, receipts: bool = True) -> dict[str, Any]:
    return view_of(conn, transfer_row(conn, tid), receipts)


def view_of(conn: sqlite3.Connection, row: sqlite3.Row, receipts: bool = True) -> dict[str, Any]:
    lines = line_rows(conn, row["id"])
    shown = [
        {
            "sku": ln["sku"],
            "productId": ln["product_id"],
            "name": ln["name"],
            **{f: ln[f] for f in LINE_FIELDS},
        }
        for ln in lines
    ]
    view: dict[str, Any] = {
        "transferId": row["id"],
        "fromStoreId": row["from_store"],
        "toStoreId": row["to_store"],
        "status": row["status"],
        "originState": row["state"],
        "note": row["note"],
        "actor": row["actor"],
        "lines": shown,
        "totals": {f: sum(int(ln[f]) for ln in lines) for f in LINE_FIELDS},
        "discrepancies": discrepancies(row["state"], lines),
        "createdAt": iso(row["created_at_ms"]) if row["created_at_ms"] else None,
        "shippedAt": iso(row["shipped_at_ms"]) if row["shipped_at_ms"] else None,
        "cancelledAt": iso(row["cancelled_at_ms"]) if row["cancelled_at_ms"] else None,
        "updatedAt": iso(row["updated_at_ms"]),
    }
    if receipts:
        view["receipts"] = [
            {
                "receiptId": r["id"],
                "storeId": r["storeId"],
                "lines": r["lines"],
                "actor": r["actor"],
                "receivedAt": iso(r["receivedAtMs"]),
            }
            for r in receipt_lines(conn, row["id"])
        ]
    return view


def list_transfers(
    conn: sqlite3.Connection,
    status: str | None,
    store: str | None,
    direction: str | None,
    limit: int,
    id_prefix: str | None = None,
) -> dict[str, Any]:
    """Newest first. ``store``: transfers from or to it (``direction``:
    only those coming to it, or only those leaving it); ``id_prefix``: only
    ids that start with it, in id order (one probe of the primary key)."""
    col = keyrange.column(id_prefix)
    clauses: list[str] = []
    params: list[Any] = []
    if status:
        clauses.append(f"{col('status')} = ?")
        params.append(status)
    if store and direction == "incoming":
        clauses.append(f"{col('to_store')} = ?")
        params.append(store)
    elif store and direction == "outgoing":
        clauses.append(f"{col('from_store')} = ?")
        params.append(store)
    elif store:
        clauses.append(f"({col('from_store')} = ? OR {col('to_store')} = ?)")
        params += [store, store]
    order = "updated_at_ms DESC, id"
    if id_prefix:
        clause, bounds = keyrange.range_clause("id", id_prefix)
        clauses.append(clause)
        params += bounds
        order = "id"
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT * FROM transfers {where} ORDER BY {order} LIMIT ?", [*params, limit]
    ).fetchall()
    return {"data": [view_of(conn, r, receipts=False) for r in rows]}
