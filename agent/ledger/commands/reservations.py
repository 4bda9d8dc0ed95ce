"""Reservations of this store's stock. The owner is the only writer: a
reservation for another store's stock is refused here (the service forwards
it to the owner's agent).

A command forwarded by another store carries a ``Deadline``: it is checked
here, on the writer thread inside the transaction, because that is when the
change would be made; checked on arrival only, a command queued behind a long
import committed seconds after the asker had given up."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import MovementKind, ReservationStatus, available_online
from agent.errors import Conflict, InsufficientStock, Unavailable
from agent.inputs import Deadline, ReservationRequest
from agent.ledger import directory, queries
from agent.ledger.engine import Engine


def check_in_time(engine: Engine, deadline: Deadline | None, nothing: str) -> None:
    """Refuse, changing nothing, a forwarded command that runs past its deadline."""
    if deadline is not None and engine.monotonic() >= deadline.at:
        raise Unavailable(
            f"store {engine.store_id!r} could not get to the request within the "
            f"{deadline.budget_ms / 1000:g} s its asker waits (its ledger was busy); "
            f"{nothing}",
            owner=engine.store_id,
            outcome="refused",
        )


def _reservation_event(
    conn: sqlite3.Connection,
    engine: Engine,
    row: dict[str, Any],
    status: str,
    order_id: str | None = None,
    movement: dict[str, Any] | None = None,
    actor: str = "",
) -> None:
    """``actor``: who made this change ('' for none: an expiry)."""
    r = {
        "id": row["id"],
        "sku": row["sku"],
        "storeId": row["store_id"],
        "quantity": row["quantity"],
        "customerId": row["customer_id"],
        "status": status,
        "orderId": order_id if order_id is not None else row.get("order_id"),
        "expiresAtMs": row["expires_at_ms"],
        "createdAtMs": row["created_at_ms"],
        "updatedAtMs": engine.wall_ms(),
        "channel": row.get("channel") or "store",
        "createdBy": row.get("created_by") or "",
        "updatedBy": actor,
    }
    data: dict[str, Any] = {"reservation": r}
    if movement:
        data["movement"] = movement
    engine.emit(conn, "reservation.changed", data)


def expire_due(
    conn: sqlite3.Connection,
    engine: Engine,
    sku: str | None = None,
    store: str | None = None,
    limit: int = 500,
) -> int:
    """Write EXPIRED for this store's PENDING reservations past their expiry."""
    sql = (
        "SELECT * FROM reservations WHERE status = 'PENDING' AND expires_at_ms <= ? "
        "AND store_id = ?"
    )
    params: list[Any] = [engine.wall_ms(), engine.store_id]
    if sku:
        sql += " AND sku = ?"
        params.append(sku)
    rows = conn.execute(sql + " ORDER BY expires_at_ms LIMIT ?", [*params, limit]).fetchall()
    for row in rows:
        _reservation_event(conn, engine, dict(row), ReservationStatus.EXPIRED)
    return len(rows)


def reserve(
    conn: sqlite3.Connection,
    engine: Engine,
    request: ReservationRequest,
    deadline: Deadline | None = None,
) -> tuple[dict[str, Any], bool]:
    """Returns (reservation, created). The owner is the only writer.
    ``request`` is resolved: it names its id, store and TTL."""
    check_in_time(engine, deadline, "nothing was reserved")
    rid, ref, store = str(request.reservation_id), request.ref, str(request.store_id)
    quantity, customer, ttl = request.quantity, request.customer_id, int(request.ttl or 0)
    if store != engine.store_id:
        # the service forwards these; reaching here is a request that can
        # never succeed at this agent (409), not an outage
        raise Conflict(f"store {store!r} owns that stock; only its agent can reserve it")
    prod = queries.product_row(conn, ref)
    existing = conn.execute("SELECT * FROM reservations WHERE id = ?", (rid,)).fetchone()
    if existing is not None:
        same = (
            existing["sku"],
            existing["store_id"],
            existing["quantity"],
            existing["customer_id"],
            existing["expires_at_ms"] - existing["created_at_ms"],
            existing["channel"],
        ) == (prod["sku"], store, quantity, customer, ttl * 1000, request.channel)
        if not same:
            raise Conflict(
                f"reservation id {rid!r} already exists with a different request; "
                "use a new id for a new reservation"
            )
        return queries.reservation_view(existing, prod["id"], engine.wall_ms()), False
    expire_due(conn, engine, prod["sku"], store)
    row = queries.stock_level(conn, prod["sku"], store)
    available = (row["on_hand"] - row["reserved"]) if row else 0
    if quantity > available:
        raise InsufficientStock(max(available, 0), quantity)
    if request.channel == "online":
        check_online(conn, prod["sku"], store, available, quantity)
    now = engine.wall_ms()
    new = {
        "id": rid,
        "sku": prod["sku"],
        "store_id": store,
        "quantity": quantity,
        "customer_id": customer,
        "expires_at_ms": now + ttl * 1000,
        "created_at_ms": now,
        "order_id": None,
        "channel": request.channel,
        "created_by": request.actor,
    }
    _reservation_event(conn, engine, new, ReservationStatus.PENDING, actor=request.actor)
    return queries.get_reservation(conn, rid, engine.wall_ms()), True


def check_online(
    conn: sqlite3.Connection, sku: str, store: str, available: int, quantity: int
) -> None:
    """An online (routed) order may take what is available above the store's
    safety stock, and nothing at a store that does not fulfil online orders.
    Judged here, inside the write transaction, like the no-oversell check: a
    replica's view of it is only the router's guess."""
    entry = directory.store_entry(conn, store)
    if not entry.online:
        raise InsufficientStock(
            0,
            quantity,
            note=f"store {store!r} does not fulfil online orders",
            availableOnline=0,
            online=False,
        )
    safety = directory.safety_stock(conn, sku, store)
    online = available_online(available, safety, True)
    if quantity > online:
        raise InsufficientStock(
            online,
            quantity,
            note=f"an online order may not take the {safety} units of safety stock",
            availableOnline=online,
            safetyStock=safety,
        )


def _owned_reservation(conn: sqlite3.Connection, engine: Engine, rid: str) -> sqlite3.Row:
    row = queries.reservation_row(conn, rid)
    if row["store_id"] != engine.store_id:
        raise Conflict(f"reservation {rid!r} belongs to store {row['store_id']!r}")
    return row


def _status_now(conn: sqlite3.Connection, engine: Engine, row: sqlite3.Row) -> str:
    """The reservation's status; a PENDING one past its expiry is written
    EXPIRED first (it can no longer be confirmed nor cancelled)."""
    status: str = row["status"]
    if status == ReservationStatus.PENDING and row["expires_at_ms"] <= engine.wall_ms():
        _reservation_event(conn, engine, dict(row), ReservationStatus.EXPIRED)
        return ReservationStatus.EXPIRED
    return status


def confirm(
    conn: sqlite3.Connection,
    engine: Engine,
    rid: str,
    order_id: str | None,
    actor: str,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    check_in_time(engine, deadline, "nothing was changed")
    row = _owned_reservation(conn, engine, rid)
    status = _status_now(conn, engine, row)
    if status == ReservationStatus.CONFIRMED:
        if order_id and row["order_id"] and order_id != row["order_id"]:
            raise Conflict(f"reservation {rid!r} was confirmed for order {row['order_id']!r}")
        return queries.get_reservation(conn, rid, engine.wall_ms())
    if status != ReservationStatus.PENDING:
        raise Conflict(
            f"reservation {rid!r} is {status}; it can no longer be confirmed", status=str(status)
        )
    sell = {
        "sku": row["sku"],
        "storeId": row["store_id"],
        "kind": str(MovementKind.SELL),
        "quantity": -row["quantity"],
        "reason": f"order {order_id}" if order_id else "sale",
        "actor": actor,
    }
    _reservation_event(
        conn, engine, dict(row), ReservationStatus.CONFIRMED, order_id, sell, actor=actor
    )
    return queries.get_reservation(conn, rid, engine.wall_ms())


def cancel(
    conn: sqlite3.Connection,
    engine: Engine,
    rid: str,
    actor: str,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    check_in_time(engine, deadline, "nothing was changed")
    row = _owned_reservation(conn, engine, rid)
    status = _status_now(conn, engine, row)
    if status == ReservationStatus.CANCELLED:
        return queries.get_reservation(conn, rid, engine.wall_ms())
    if status != ReservationStatus.PENDING:
        raise Conflict(
            f"reservation {rid!r} is {status}; it can no longer be cancelled", status=str(status)
        )
    _reservation_event(conn, engine, dict(row), ReservationStatus.CANCELLED, actor=actor)
    return queries.get_reservation(conn, rid, engine.wall_ms())
