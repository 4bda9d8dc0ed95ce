"""The router's own record of routed reservations (schema 5): the plan, each
attempt and its outcome, the routing's outcome, and the cleanups it leaves.

This is the routing agent's bookkeeping, written straight to its tables: no
event, nothing replicated, nothing in a snapshot. What it guards is local
too: a retry of a request id at this agent answers what the first request
was answered, and an attempt whose outcome was unknown is cancelled at its
owner until the owner says it is (``agent.routing.cleanup``, on the rows
``ledger.cleanups`` reads and writes).

Times are this ledger's wall milliseconds; the views turn them into ISO."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from agent.errors import Conflict, NotFound
from agent.ledger import directory, keyrange, queries
from agent.ledger.directory import Candidate

# an attempt's outcomes; ``planned`` and ``asking`` are not final: a routing
# that ends leaves none of them behind (an ``asking`` one becomes ``timeout``)
FINAL_OUTCOMES = ("granted", "insufficient", "unreachable", "timeout", "skipped")


@dataclass(frozen=True, slots=True)
class PlannedAttempt:
    store_id: str
    reservation_id: str
    available_online: int
    skipped: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt came to. ``ended``: the store already had this
    attempt's reservation and it had ended (a routing resumed after a crash,
    asking again): it holds nothing, so its cleanup is settled as that
    (``expired`` or ``cancelled``)."""

    position: int
    outcome: str
    error: str | None = None
    ended: str | None = None


@dataclass(frozen=True, slots=True)
class NewRouting:
    request_id: str
    fingerprint: str
    sku: str
    quantity: int
    customer_id: str | None
    ttl: int
    strategy: str
    stores: tuple[str, ...] | None
    near: str | None


@dataclass(frozen=True, slots=True)
class Context:
    """What the router reads before routing, in one hop to the read pool."""

    sku: str
    product_id: str
    record: dict[str, Any] | None
    candidates: list[Candidate]


def context(conn: sqlite3.Connection, ref: str, request_id: str | None) -> Context:
    prod = queries.product_row(conn, ref)
    record = load(conn, request_id) if request_id else None
    return Context(prod["sku"], prod["id"], record, directory.candidates(conn, prod["sku"]))


# ------------------------------------------------------------------ writes
def begin(
    conn: sqlite3.Connection,
    routing: NewRouting,
    plan: list[PlannedAttempt],
    first: int | None,
    now: int,
) -> None:
    """Record the routing and its plan before any store is asked; ``first``
    is the position about to be asked (None: every candidate is skipped)."""
    if conn.execute(
        "SELECT 1 FROM routings WHERE request_id = ?", (routing.request_id,)
    ).fetchone():
        raise Conflict(f"reservation request {routing.request_id!r} is already being routed")
    conn.execute(
        "INSERT INTO routings (request_id, fingerprint, sku, quantity, customer_id, ttl, "
        "strategy, stores, near, status, created_at_ms, updated_at_ms) "
        "VALUES (?,?,?,?,?,?,?,?,?,'routing',?,?)",
        (
            routing.request_id,
            routing.fingerprint,
            routing.sku,
            routing.quantity,
            routing.customer_id,
            routing.ttl,
            routing.strategy,
            json.dumps(list(routing.stores)) if routing.stores is not None else None,
            routing.near,
            now,
            now,
        ),
    )
    conn.executemany(
        "INSERT INTO routing_attempts (request_id, position, store_id, reservation_id, "
        "available_online, outcome, asked_at_ms) VALUES (?,?,?,?,?,?,?)",
        [
            (
                routing.request_id,
                i,
                a.store_id,
                a.reservation_id,
                a.available_online,
                "skipped" if a.skipped else ("asking" if i == first else "planned"),
                now if i == first else None,
            )
            for i, a in enumerate(plan)
        ],
    )


def asking(conn: sqlite3.Connection, request_id: str, position: int, now: int) -> None:
    """An attempt is about to be asked (again, on a resumed routing)."""
    conn.execute(
        "UPDATE routing_attempts SET outcome = 'asking', error = NULL, asked_at_ms = ?, "
        "answered_at_ms = NULL WHERE request_id = ? AND position = ?",
        (now, request_id, position),
    )
    _touch(conn, request_id, now)


def answered(
    conn: sqlite3.Connection,
    request_id: str,
    answer: Answer,
    now: int,
    next_position: int | None = None,
) -> None:
    """An attempt's outcome; ``next_position`` is asked next (marked asking
    in the same transaction: one write per refusal)."""
    _record_answer(conn, request_id, answer, now)
    if next_position is not None:
        asking(conn, request_id, next_position, now)
    else:
        _touch(conn, request_id, now)


def finish(
    conn: sqlite3.Connection,
    request_id: str,
    status: str,
    *,
    now: int,
    cleanup_at: int,
    last: Answer | None = None,
    granted: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The routing's outcome, with ``last`` (position, outcome, error), the
    attempt that ended it. Every attempt whose outcome is unknown (a timeout,
    or one left ``asking`` by a crash) other than the granted one gets a
    pending cleanup, first tried at ``cleanup_at``. Candidates never asked
    (after the grant) stay ``planned``. Returns the record as it now is."""
    if last is not None:
        _record_answer(conn, request_id, last, now)
    conn.execute(
        "UPDATE routing_attempts SET outcome = 'timeout', answered_at_ms = coalesce("
        "answered_at_ms, ?) WHERE request_id = ? AND outcome = 'asking'",
        (now, request_id),
    )
    position = last.position if last is not None and granted is not None else -1
    view = granted
    conn.execute(
        "UPDATE routing_attempts SET cleanup = 'pending', cleanup_next_ms = ? "
        "WHERE request_id = ? AND outcome = 'timeout' AND position != ? AND cleanup IS NULL",
        (cleanup_at, request_id, position),
    )
    conn.execute(
        "UPDATE routings SET status = ?, store_id = ?, reservation_id = ?, granted = ?, "
        "error = ?, updated_at_ms = ? WHERE request_id = ?",
        (
            status,
            view["storeId"] if view else None,
            view["reservationId"] if view else None,
            json.dumps(view) if view else None,
            error,
            now,
            request_id,
        ),
    )
    record = load(conn, request_id)
    assert record is not None
    return record


def refused_outright(
    conn: sqlite3.Connection, routing: NewRouting, plan: list[PlannedAttempt], now: int, error: str
) -> dict[str, Any]:
    """A routing with nobody to ask (every candidate skipped, or none at
    all): recorded and finished in one transaction."""
    begin(conn, routing, plan, None, now)
    return finish(conn, routing.request_id, "refused", now=now, cleanup_at=now, error=error)


def _record_answer(conn: sqlite3.Connection, request_id: str, a: Answer, now: int) -> None:
    conn.execute(
        "UPDATE routing_attempts SET outcome = ?, error = ?, answered_at_ms = ?, "
        "cleanup = coalesce(?, cleanup), cleanup_at_ms = CASE WHEN ? IS NULL "
        "THEN cleanup_at_ms ELSE ? END WHERE request_id = ? AND position = ?",
        (a.outcome, a.error, now, a.ended, a.ended, now, request_id, a.position),
    )


def _touch(conn: sqlite3.Connection, request_id: str, now: int) -> None:
    conn.execute("UPDATE routings SET updated_at_ms = ? WHERE request_id = ?", (now, request_id))


# ------------------------------------------------------------------- reads
def load(conn: sqlite3.Connection, request_id: str) -> dict[str, Any] | None:
    """The routing and its attempts as stored (times in ms), or None."""
    row = conn.execute("SELECT * FROM routings WHERE request_id = ?", (request_id,)).fetchone()
    if row is None:
        return None
    record = dict(row)
    record["stores"] = json.loads(row["stores"]) if row["stores"] else None
    record["granted"] = json.loads(row["granted"]) if row["granted"] else None
    record["attempts"] = [
        dict(a)
        for a in conn.execute(
            "SELECT * FROM routing_attempts WHERE request_id = ? ORDER BY position",
            (request_id,),
        )
    ]
    return record


def attempt_view(a: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "storeId": a["store_id"],
        "outcome": a["outcome"],
        "availableOnline": a["available_online"],
    }
    if a["outcome"] != "skipped":
        out["reservationId"] = a["reservation_id"]
    if a["error"]:
        out["error"] = a["error"]
    if a["cleanup"]:
        out["cleanup"] = {
            "state": a["cleanup"],
            "tries": a["cleanup_tries"],
            "nextAt": queries.iso(a["cleanup_next_ms"]) if a["cleanup"] == "pending" else None,
            "settledAt": queries.iso(a["cleanup_at_ms"]),
            "lastError": a["cleanup_error"],
        }
    return out


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The ``routing`` block of a routed reservation's answer."""
    return {
        "requestId": record["request_id"],
        "strategy": record["strategy"],
        "attempts": [attempt_view(a) for a in record["attempts"] if a["outcome"] != "planned"],
    }


def view(record: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/v1/routings/{requestId}``: the whole record."""
    return {
        **summary(record),
        "sku": record["sku"],
        "quantity": record["quantity"],
        "customerId": record["customer_id"],
        "ttl": record["ttl"],
        "stores": record["stores"],
        "near": record["near"],
        "status": record["status"],
        "storeId": record["store_id"],
        "reservationId": record["reservation_id"],
        "error": record["error"],
        "pendingCleanups": sum(1 for a in record["attempts"] if a["cleanup"] == "pending"),
        "createdAt": queries.iso(record["created_at_ms"]),
        "updatedAt": queries.iso(record["updated_at_ms"]),
    }


def get(conn: sqlite3.Connection, request_id: str) -> dict[str, Any]:
    record = load(conn, request_id)
    if record is None:
        raise NotFound(
            f"no routed reservation {request_id!r} at this agent (a routing is recorded by "
            "the agent that routed it); list them with: inv reservation routings"
        )
    return view(record)


def list_routings(
    conn: sqlite3.Connection,
    status: str | None,
    cleanup: str | None,
    limit: int,
    id_prefix: str | None = None,
) -> dict[str, Any]:
    """The newest routings first; ``cleanup``: only those with an attempt in
    that cleanup state (``pending``: still being cancelled somewhere);
    ``id_prefix``: only request ids that start with it, in id order."""
    sql, params = "SELECT request_id FROM routings r WHERE 1=1", list[Any]()
    col = keyrange.column(id_prefix)
    if status:
        sql += f" AND {col('r.status')} = ?"
        params.append(status)
    if cleanup:
        sql += (
            " AND EXISTS (SELECT 1 FROM routing_attempts a WHERE a.request_id = r.request_id "
            "AND a.cleanup = ?)"
        )
        params.append(cleanup)
    order = "r.created_at_ms DESC, r.request_id"
    if id_prefix:
        clause, bounds = keyrange.range_clause("r.request_id", id_prefix)
        sql, params, order = f"{sql} AND {clause}", [*params, *bounds], "r.request_id"
    ids = [row[0] for row in conn.execute(f"{sql} ORDER BY {order} LIMIT ?", [*params, limit])]
    return {"data": [view(record) for rid in ids if (record := load(conn, rid))]}
