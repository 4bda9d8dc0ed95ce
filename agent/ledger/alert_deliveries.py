"""This agent's own record of what it has handed to each alert target (a
webhook, or the bus): local bookkeeping, never replicated.

Per target, a cursor on this store's alerts (their event seq): every alert
up to it has been delivered (a 2xx, committed here before the cursor moved)
or given up on. The alert after it is the one being tried: ``tries`` and
``next_at_ms`` are its, so a restart carries on with its backoff. A crash
between a delivery and its commit leaves the cursor where it was: the same
alert (the same event id) is sent again, never lost."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from agent.ledger.low_stock import ALERT_SELECT, alert_view


def last_seq(conn: sqlite3.Connection, store: str) -> int:
    """The seq of this store's newest alert (0: none yet)."""
    row = conn.execute("SELECT max(seq) FROM alerts WHERE store_id = ?", (store,)).fetchone()
    return int(row[0] or 0)


def open_targets(conn: sqlite3.Connection, store: str, targets: Sequence[str], now: int) -> None:
    """Start a record for each target seen for the first time, at the current
    end: a new webhook gets the alerts raised from now on, not the history."""
    end = last_seq(conn, store)
    conn.executemany(
        "INSERT OR IGNORE INTO alert_deliveries (target, cursor, updated_at_ms) VALUES (?,?,?)",
        [(t, end, now) for t in targets],
    )


def _kinds(kinds: Sequence[str]) -> str:
    return ",".join("?" * len(kinds))


def next_alert(
    conn: sqlite3.Connection, store: str, target: str, kinds: Sequence[str]
) -> tuple[sqlite3.Row, dict[str, Any] | None, int]:
    """A target's record, the first alert after its cursor of the kinds it
    wants (None: none yet, as its view), and this store's last alert seq."""
    record = conn.execute("SELECT * FROM alert_deliveries WHERE target = ?", (target,)).fetchone()
    row = conn.execute(
        f"{ALERT_SELECT} WHERE a.store_id = ? AND a.seq > ? AND a.kind IN ({_kinds(kinds)}) "
        "ORDER BY a.seq LIMIT 1",
        (store, record["cursor"], *kinds),
    ).fetchone()
    alert = (
        None if row is None else {**alert_view(row), "seq": row["seq"], "ms": row["raised_at_ms"]}
    )
    return record, alert, last_seq(conn, store)


def skip_to(conn: sqlite3.Connection, target: str, seq: int, now: int) -> None:
    """Move past alerts of kinds the target does not want, up to ``seq``."""
    conn.execute(
        "UPDATE alert_deliveries SET cursor = ?, updated_at_ms = ? WHERE target = ? AND cursor < ?",
        (seq, now, target, seq),
    )


def delivered(
    conn: sqlite3.Connection, target: str, seq: int, now: int, status: int | None
) -> None:
    """Alert ``seq`` got through: the cursor moves on to it."""
    conn.execute(
        "UPDATE alert_deliveries SET cursor = ?, tries = 0, next_at_ms = NULL, last_status = ?, "
        "last_error = NULL, delivered = delivered + 1, delivered_at_ms = ?, tried_at_ms = ?, "
        "updated_at_ms = ? WHERE target = ? AND cursor < ?",
        (seq, status, now, now, now, target, seq),
    )


def given_up(conn: sqlite3.Connection, target: str, seq: int, now: int, error: str) -> None:
    """Alert ``seq`` was tried for as long as alerts are (``alerts.max_age``):
    the cursor moves on past it, and the reason stays as the last error."""
    conn.execute(
        "UPDATE alert_deliveries SET cursor = ?, tries = 0, next_at_ms = NULL, last_error = ?, "
        "given_up = given_up + 1, updated_at_ms = ? WHERE target = ? AND cursor < ?",
        (seq, error, now, target, seq),
    )


def failed(
    conn: sqlite3.Connection,
    target: str,
    seq: int,
    now: int,
    next_at: int,
    status: int | None,
    error: str,
) -> None:
    """A try at alert ``seq`` failed: the next one is due at ``next_at``."""
    conn.execute(
        "UPDATE alert_deliveries SET tries = tries + 1, next_at_ms = ?, last_status = ?, "
        "last_error = ?, tried_at_ms = ?, updated_at_ms = ? WHERE target = ? AND cursor < ?",
        (next_at, status, error, now, now, target, seq),
    )


def states(
    conn: sqlite3.Connection, store: str, targets: dict[str, Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """Each target's record, with ``pending``: the alerts after its cursor
    it wants (``targets``: {target: kinds})."""
    out: dict[str, dict[str, Any]] = {}
    for target, kinds in targets.items():
        r = conn.execute("SELECT * FROM alert_deliveries WHERE target = ?", (target,)).fetchone()
        if r is None:
            continue
        pending = conn.execute(
            f"SELECT count(*) FROM alerts WHERE store_id = ? AND seq > ? "
            f"AND kind IN ({_kinds(kinds)})",
            (store, r["cursor"], *kinds),
        ).fetchone()[0]
        out[target] = {**dict(r), "pending": int(pending)}
    return out
