"""The cleanups a routing leaves (rows of ``routing_attempts`` with a
``cleanup`` state): which are due, each try's result, and the watch for an
attempt judged never granted that turns up after all. The router's local
bookkeeping, like ``ledger.routings``: no events."""

from __future__ import annotations

import sqlite3
from typing import Any

# a cleanup's states: ``pending`` until the owner answers, then one of the rest
CLEANUP_DONE = ("cancelled", "never-granted", "expired", "confirmed")


def due_cleanups(conn: sqlite3.Connection, now: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT request_id, position, store_id, reservation_id, asked_at_ms, cleanup_tries "
        "FROM routing_attempts WHERE cleanup = 'pending' AND cleanup_next_ms <= ? "
        "ORDER BY cleanup_next_ms LIMIT ?",
        (now, limit),
    ).fetchall()
    return [
        {
            "requestId": r[0],
            "position": r[1],
            "storeId": r[2],
            "reservationId": r[3],
            "askedAtMs": r[4] or 0,
            "tries": r[5],
        }
        for r in rows
    ]


def next_cleanup_ms(conn: sqlite3.Connection) -> int | None:
    value = conn.execute(
        "SELECT min(cleanup_next_ms) FROM routing_attempts WHERE cleanup = 'pending'"
    ).fetchone()[0]
    return int(value) if value is not None else None


def pending_cleanups(conn: sqlite3.Connection) -> int:
    return int(
        conn.execute("SELECT count(*) FROM routing_attempts WHERE cleanup = 'pending'").fetchone()[
            0
        ]
    )


def settle_cleanup(
    conn: sqlite3.Connection,
    request_id: str,
    position: int,
    state: str,
    error: str | None,
    now: int,
    next_ms: int | None = None,
) -> None:
    """One try of a cleanup: settled (``state`` in CLEANUP_DONE), or still
    ``pending`` and tried again at ``next_ms``."""
    conn.execute(
        "UPDATE routing_attempts SET cleanup = ?, cleanup_tries = cleanup_tries + 1, "
        "cleanup_error = ?, cleanup_next_ms = ?, cleanup_at_ms = ? "
        "WHERE request_id = ? AND position = ?",
        (
            state,
            error,
            next_ms,
            None if state == "pending" else now,
            request_id,
            position,
        ),
    )


def rearm_late_grants(conn: sqlite3.Connection, since_ms: int, now: int) -> int:
    """An attempt judged never granted whose reservation this replica now
    shows PENDING (its request reached the owner later than any deadline
    allowed for: e.g. held in a client's buffer through a reconnect) is
    cleaned up again. Only recent verdicts are watched (``since_ms``)."""
    cur = conn.execute(
        "UPDATE routing_attempts SET cleanup = 'pending', cleanup_next_ms = ? "
        "WHERE cleanup = 'never-granted' AND cleanup_at_ms >= ? AND reservation_id IN "
        "(SELECT id FROM reservations WHERE status = 'PENDING')",
        (now, since_ms),
    )
    return cur.rowcount


def late_grants(conn: sqlite3.Connection, since_ms: int) -> int:
    """How many ``rearm_late_grants`` would re-arm (a read, to skip the write)."""
    return int(
        conn.execute(
            "SELECT count(*) FROM routing_attempts a JOIN reservations r "
            "ON r.id = a.reservation_id WHERE a.cleanup = 'never-granted' "
            "AND a.cleanup_at_ms >= ? AND r.status = 'PENDING'",
            (since_ms,),
        ).fetchone()[0]
    )
