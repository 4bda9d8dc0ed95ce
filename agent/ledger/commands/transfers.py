"""Transfers between stores. Who writes what, as with reservations: the
origin store creates, ships and cancels (its stock is what moves out); the
destination receives (its stock is what moves in). A command for the other
side is refused here (``Conflict``); the service forwards it to that store's
agent. Each command is one transaction and safe to retry: create by the
transfer's id, receive by the receipt's id, ship and cancel by what they
leave behind (shipping a shipped transfer changes nothing).

A forwarded command carries a ``Deadline``, checked on the writer thread as
for reservations (``reservations.check_in_time``)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agent.domain import MAX_TRANSFER_LINES, TransferState
from agent.errors import Conflict, InsufficientStock, InvalidInput, NotFound
from agent.inputs import Deadline, ReceiptRequest, TransferRequest
from agent.ledger import directory_views, queries, transfer_views
from agent.ledger.commands.directory import check_store_id
from agent.ledger.commands.reservations import check_in_time
from agent.ledger.engine import Engine


# ------------------------------------------------------------------- origin
def create(
    conn: sqlite3.Connection,
    engine: Engine,
    request: TransferRequest,
    deadline: Deadline | None = None,
) -> tuple[dict[str, Any], bool]:
    """Returns (transfer, created). ``request`` is resolved (its id and origin set)."""
    check_in_time(engine, deadline, "nothing was created")
    tid, origin, dest = str(request.transfer_id), str(request.from_store), request.to_store
    if origin != engine.store_id:
        raise Conflict(f"store {origin!r} sends that stock; only its agent can create the transfer")
    check_store_id(dest, "toStoreId")
    if dest == origin:
        raise InvalidInput("toStoreId: a transfer goes to another store than the one it comes from")
    if not directory_views.is_known(conn, dest, engine.store_id):
        raise NotFound(
            f"store {dest!r} is not known to this agent; list stores with: inv store list",
            storeId=dest,
        )
    lines = _ordered_lines(conn, request)
    current = conn.execute("SELECT * FROM transfers WHERE id = ?", (tid,)).fetchone()
    if current is not None and current["state"] is not None:
        _same_request(conn, current, dest, lines, request.note)
        view = transfer_views.transfer_view(conn, tid)
        if request.ship and current["state"] == TransferState.DRAFT:
            return ship(conn, engine, tid, request.actor), False
        return view, False
    if current is not None and current["to_store"] != dest:
        raise Conflict(
            f"transfer {tid!r} was received by store {current['to_store']!r}, not {dest!r}",
            transferId=tid,
        )
    now = engine.wall_ms()
    if request.ship:
        _check_available(conn, origin, lines)
    transfer = {
        "id": tid,
        "fromStoreId": origin,
        "toStoreId": dest,
        "note": request.note,
        "state": str(TransferState.SHIPPED if request.ship else TransferState.DRAFT),
        "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines],
        "actor": request.actor,
        "createdAtMs": now,
        "shippedAtMs": now if request.ship else None,
        "cancelledAtMs": None,
        "updatedAtMs": now,
    }
    engine.emit(conn, "transfer.changed", {"transfer": transfer})
    return transfer_views.transfer_view(conn, tid), True


def ship(
    conn: sqlite3.Connection,
    engine: Engine,
    tid: str,
    actor: str,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """Ship a DRAFT: the origin's on-hand falls by every line, never below
    what it has available. Shipping a shipped transfer changes nothing."""
    check_in_time(engine, deadline, "nothing was shipped")
    row = _own(conn, engine, tid)
    if row["state"] == TransferState.CANCELLED:
        raise Conflict(
            f"transfer {tid!r} is cancelled; it can no longer be shipped", status=row["status"]
        )
    if row["state"] == TransferState.SHIPPED:
        return transfer_views.transfer_view(conn, tid)
    lines = _origin_lines(conn, tid)
    _check_available(conn, engine.store_id, lines)
    now = engine.wall_ms()
    engine.emit(conn, "transfer.changed", {"transfer": _state(row, lines, actor, now, shipped=now)})
    return transfer_views.transfer_view(conn, tid)


def cancel(
    conn: sqlite3.Connection,
    engine: Engine,
    tid: str,
    actor: str,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """Cancel: a DRAFT simply; a shipped transfer returns to the origin what
    is still pending as this store sees it (its *claims*). A receipt this
    store has not seen yet beats the cancel wherever the two meet (the goods
    arrived): the engine corrects the return and lists it."""
    check_in_time(engine, deadline, "nothing was cancelled")
    row = _own(conn, engine, tid)
    if row["state"] == TransferState.CANCELLED:
        return transfer_views.transfer_view(conn, tid)
    lines = _origin_lines(conn, tid)
    now = engine.wall_ms()
    state = _state(row, lines, actor, now, shipped=row["shipped_at_ms"], cancelled=now)
    data: dict[str, Any] = {"transfer": state}
    if row["state"] == TransferState.SHIPPED:
        pending = conn.execute(
            "SELECT sku, pending FROM transfer_lines WHERE transfer_id = ? AND pending > 0 "
            "ORDER BY position, sku",
            (tid,),
        ).fetchall()
        if not pending:
            raise Conflict(
                f"transfer {tid!r} has been received in full; a received transfer cannot be "
                "cancelled",
                status=row["status"],
            )
        data["claims"] = [{"sku": sku, "quantity": qty} for sku, qty in pending]
    engine.emit(conn, "transfer.changed", data)
    return transfer_views.transfer_view(conn, tid)


def _own(conn: sqlite3.Connection, engine: Engine, tid: str) -> sqlite3.Row:
    row = transfer_views.transfer_row(conn, tid)
    if row["from_store"] != engine.store_id:
        raise Conflict(
            f"transfer {tid!r} comes from store {row['from_store']!r}; only its agent can "
            "ship or cancel it",
            owner=row["from_store"],
        )
    if row["state"] is None:
        raise Conflict(
            f"transfer {tid!r} is known here only from its receipts; create it with its "
            f"lines first: inv transfer create --id {tid} --to {row['to_store']} SKU:QTY...",
            transferId=tid,
        )
    return row


def _state(
    row: sqlite3.Row,
    lines: list[tuple[str, int]],
    actor: str,
    now: int,
    shipped: int | None,
    cancelled: int | None = None,
) -> dict[str, Any]:
    """The transfer's next state as its ``transfer.changed`` event carries it."""
    state = TransferState.CANCELLED if cancelled else TransferState.SHIPPED
    return {
        "id": row["id"],
        "fromStoreId": row["from_store"],
        "toStoreId": row["to_store"],
        "note": row["note"],
        "state": str(state),
        "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines],
        "actor": actor,
        "createdAtMs": row["created_at_ms"],
        "shippedAtMs": shipped,
        "cancelledAtMs": cancelled,
        "updatedAtMs": now,
    }


def _origin_lines(conn: sqlite3.Connection, tid: str) -> list[tuple[str, int]]:
    """The lines as the origin wrote them (not SKUs known only from receipts)."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT sku, quantity FROM transfer_lines WHERE transfer_id = ? AND quantity > 0 "
            "ORDER BY position, sku",
            (tid,),
        )
    ]


def _ordered_lines(conn: sqlite3.Connection, request: TransferRequest) -> list[tuple[str, int]]:
    """The request's lines as (sku, quantity), each product once."""
    if not 1 <= len(request.lines) <= MAX_TRANSFER_LINES:
        raise InvalidInput(f"lines: a transfer has 1 to {MAX_TRANSFER_LINES} lines")
    out: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(request.lines, 1):
        sku = _sku(conn, line.ref, n)
        if line.quantity < 1:
            raise InvalidInput(f"lines[{n}].quantity: must be at least 1")
        if sku in seen:
            raise InvalidInput(f"lines[{n}]: {sku} is on line {seen[sku]} already")
        seen[sku] = n
        out.append((sku, line.quantity))
    return out


def _sku(conn: sqlite3.Connection, ref: str, n: int) -> str:
    try:
        return str(queries.product_row(conn, ref)["sku"])
    except NotFound:
        raise InvalidInput(f"lines[{n}].productId: product {ref!r} not found") from None


def _same_request(
    conn: sqlite3.Connection,
    current: sqlite3.Row,
    dest: str,
    lines: list[tuple[str, int]],
    note: str,
) -> None:
    """A create retried with the transfer's id: the same request, or a 409."""
    if (current["to_store"], _origin_lines(conn, current["id"]), current["note"]) != (
        dest,
        lines,
        note,
    ):
        raise Conflict(
            f"transfer id {current['id']!r} already exists with a different request; use a "
            "new id for a new transfer",
            transferId=current["id"],
        )


def _check_available(conn: sqlite3.Connection, store: str, lines: list[tuple[str, int]]) -> None:
    """Every line fits in what the store has available (on hand less reserved)."""
    for sku, qty in lines:
        row = queries.stock_level(conn, sku, store)
        available = (row["on_hand"] - row["reserved"]) if row else 0
        if qty > available:
            raise InsufficientStock(max(available, 0), qty, note=f"{sku} at {store}", sku=sku)


# -------------------------------------------------------------- destination
def receive(
    conn: sqlite3.Connection,
    engine: Engine,
    request: ReceiptRequest,
    deadline: Deadline | None = None,
) -> tuple[dict[str, Any], bool]:
    """Record what arrived; returns (transfer, recorded). ``request`` is
    resolved (its receipt id set). The same receipt id again is the same
    receipt (a retry), never a second one."""
    check_in_time(engine, deadline, "nothing was received")
    tid, me, rid = request.transfer_id, engine.store_id, str(request.receipt_id)
    existing = transfer_views.own_receipt(conn, tid, me, rid)
    if existing is not None:
        # a retry: answered here even if the transfer has since been found to
        # go elsewhere (its destination would count it a second time)
        lines = _receipt_lines(conn, tid, request, True)
        if request.lines is not None and json.loads(existing) != lines:
            raise Conflict(
                f"receipt {rid!r} of transfer {tid!r} was recorded with other lines; use a new "
                "receipt id for a new receipt",
                receiptId=rid,
            )
        return transfer_views.transfer_view(conn, tid), False
    known = transfer_views.sides(conn, tid)
    origin = _receiving_from(tid, me, known, request.from_store)
    lines = _receipt_lines(conn, tid, request, known is not None)
    if not lines:
        raise Conflict(
            f"nothing is pending on transfer {tid!r}; to record more than was shipped, name the "
            "lines received (SKU:RECEIVED[:DAMAGED])",
            transferId=tid,
        )
    receipt = {
        "id": rid,
        "transferId": tid,
        "fromStoreId": origin,
        "toStoreId": me,
        "lines": lines,
        "actor": request.actor,
        "receivedAtMs": engine.wall_ms(),
    }
    engine.emit(conn, "transfer.received", {"receipt": receipt})
    return transfer_views.transfer_view(conn, tid), True


def _receiving_from(
    tid: str, me: str, known: tuple[str, str, str | None] | None, slip_from: str | None
) -> str:
    """The origin of a transfer this store receives: as recorded, or as the
    packing slip names it for one this store has not heard of yet."""
    if known is not None and known[2] is None:
        # known from receipts only (this store's or another's): nobody has
        # said where it goes yet, so whoever has the truck receives it
        origin = slip_from or known[0]
        if slip_from:
            check_store_id(slip_from, "fromStoreId")
        if origin == me:
            raise InvalidInput("fromStoreId: a store does not receive a transfer from itself")
        return origin
    if known is not None:
        origin, dest, state = known
        if dest != me:
            raise Conflict(
                f"transfer {tid!r} goes to store {dest!r}; only its agent can receive it",
                owner=dest,
            )
        if slip_from and state is not None and slip_from != origin:
            raise InvalidInput(
                f"fromStoreId: transfer {tid!r} comes from {origin!r}, not {slip_from!r}"
            )
        return origin
    if not slip_from:
        raise InvalidInput(
            f"fromStoreId: transfer {tid!r} is not known here yet; to receive it before its "
            "shipment has arrived, give the store it comes from (--from) and the lines on "
            "the packing slip"
        )
    check_store_id(slip_from, "fromStoreId")
    if slip_from == me:
        raise InvalidInput("fromStoreId: a store does not receive a transfer from itself")
    return slip_from


def _receipt_lines(
    conn: sqlite3.Connection, tid: str, request: ReceiptRequest, known: bool
) -> list[dict[str, Any]]:
    """The receipt's lines as the event carries them: the request's, or with
    none given, everything still pending, as shipped."""
    if request.lines is None:
        if not known:
            raise InvalidInput(
                f"lines: transfer {tid!r} is not known here yet; give the lines on the "
                "packing slip (SKU:RECEIVED[:DAMAGED])"
            )
        return [
            {"sku": sku, "received": qty, "damaged": 0}
            for sku, qty in conn.execute(
                "SELECT sku, pending FROM transfer_lines WHERE transfer_id = ? AND pending > 0 "
                "ORDER BY position, sku",
                (tid,),
            )
        ]
    if not 1 <= len(request.lines) <= MAX_TRANSFER_LINES:
        raise InvalidInput(f"lines: a receipt has 1 to {MAX_TRANSFER_LINES} lines")
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(request.lines, 1):
        sku = _sku(conn, line.ref, n)
        if line.received < 0 or line.damaged < 0:
            raise InvalidInput(f"lines[{n}]: received and damaged cannot be negative")
        if line.received + line.damaged < 1:
            raise InvalidInput(f"lines[{n}]: receive at least one unit (received or damaged)")
        if sku in seen:
            raise InvalidInput(f"lines[{n}]: {sku} is on line {seen[sku]} already")
        seen[sku] = n
        out.append({"sku": sku, "received": line.received, "damaged": line.damaged})
    return out
