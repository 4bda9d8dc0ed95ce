"""In-memory ledgers for tests of the merge rules: one per store, its own
events carried to the others by hand (no process, no NATS)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from agent import hlc as hlc_mod
from agent.ledger.engine import Engine
from agent.ledger.schema import migrate
from agent.ledger.store import connect

T = TypeVar("T")


def tx(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """``fn(conn, *args)`` in one write transaction, as the writer thread runs it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        out = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return out


class Node:
    """One store's ledger and engine; ``events()`` are its own, as published."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.conn = connect(":memory:")
        migrate(self.conn)
        self.engine = Engine(store, hlc_mod.HybridLogicalClock())

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """A ledger command of this store's (``fn(conn, engine, *args)``)."""
        return tx(self.conn, fn, self.engine, *args)

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT body FROM events WHERE origin = ? AND seq > ? ORDER BY seq",
            (self.store, since),
        )
        return [json.loads(r[0]) for r in rows]

    def take(self, events: list[dict[str, Any]]) -> None:
        """Apply a peer's events in this order (copies, as off the wire)."""
        for e in events:
            self.engine.clock.observe(e["hlc"])
            tx(self.conn, self.engine.apply_remote, json.loads(json.dumps(e)))
