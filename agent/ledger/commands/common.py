"""What every command shares: request fingerprints and idempotency keys."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from agent.errors import Conflict
from agent.ledger.engine import dumps

FINGERPRINT_CHUNK = 10_000


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(dumps(obj).encode()).hexdigest()


def rows_fingerprint(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    """``fingerprint([{k: r.get(k) for k in keys} for r in rows])``, the same
    digest (files imported before keep being recognised), built from the JSON
    of ``FINGERPRINT_CHUNK`` rows at a time: one C-level encode per chunk, and
    never the whole file's text in memory at once."""
    h = hashlib.sha256(b"[")
    for start in range(0, len(rows), FINGERPRINT_CHUNK):
        part = rows[start : start + FINGERPRINT_CHUNK]
        chunk = dumps([{k: r.get(k) for k in keys} for r in part])
        if start:
            h.update(b",")
        h.update(chunk[1:-1].encode())  # the rows, without the list's brackets
    h.update(b"]")
    return h.hexdigest()


def recall(conn: sqlite3.Connection, key: str, fp: str) -> Any | None:
    """The stored response for a retried request, or None the first time.
    The same key with a different body is refused, never silently applied."""
    row = conn.execute(
        "SELECT fingerprint, response FROM idempotency WHERE key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    if row[0] != fp:
        raise Conflict(
            f"idempotency key {key.partition(':')[2] or key!r} was already used with a "
            "different request; "
            "use a new key for a new change"
        )
    return json.loads(row[1])


def remember(conn: sqlite3.Connection, key: str, fp: str, response: Any, at_ms: int) -> None:
    """Store ``response`` as the answer to every retry of the request ``fp``."""
    conn.execute(
        "INSERT INTO idempotency (key, fingerprint, response, created_at_ms) VALUES (?,?,?,?)",
        (key, fp, dumps(response), at_ms),
    )
