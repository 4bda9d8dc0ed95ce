"""Ledger snapshots: how a new (or long-absent) agent catches up when the
stream no longer holds every event.

A peer writes a consistent copy of its ledger (``VACUUM INTO``); the new agent
takes that copy's replicated state, then re-applies its own events on top, so
whatever it wrote before the restore (published or still in the outbox) is
kept and still published. Applying is order-independent, so the result is the
state of the union of both event sets. Only the state tables are copied: the
products' search index follows by its triggers, so a snapshot of a peer whose
schema has the same state tables (from ``schema.STATE_SINCE`` on) will do.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from agent.ledger.connection import connect
from agent.ledger.engine import Engine
from agent.ledger.schema import MIGRATIONS, STATE_SINCE

STATE_TABLES = ("products", "stock", "movements", "reservations", "conflicts")


def write_snapshot(ledger: Path, target: Path) -> None:
    """A consistent copy of the ledger file (online; readers and the writer go on)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    conn = connect(ledger)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


def restore(conn: sqlite3.Connection, engine: Engine) -> dict[str, Any]:
    """Replace the replicated state with the snapshot's (attached as ``snap``
    by ``LedgerStore.write(..., attach=path)``) and re-apply our own events on
    top. Runs in the writer's transaction: all or nothing."""
    me = engine.store_id
    version = conn.execute("PRAGMA snap.user_version").fetchone()[0]
    if not STATE_SINCE <= version <= len(MIGRATIONS):
        raise ValueError(
            f"snapshot schema {version} is not one of ours ({STATE_SINCE}..{len(MIGRATIONS)})"
        )
    in_snapshot = {
        r[0] for r in conn.execute("SELECT seq FROM snap.events WHERE origin = ?", (me,))
    }
    own = conn.execute(
        "SELECT seq, body FROM main.events WHERE origin = ? ORDER BY seq", (me,)
    ).fetchall()
    for table in STATE_TABLES:
        conn.execute(f"DELETE FROM main.{table}")
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM snap.{table}")
    conn.execute("DELETE FROM main.events WHERE origin != ?", (me,))
    conn.execute(
        "INSERT INTO main.events (origin, seq, hlc, type, body, published) "
        "SELECT origin, seq, hlc, type, NULL, 1 FROM snap.events WHERE origin != ?",
        (me,),
    )
    conn.execute("DELETE FROM main.origins WHERE origin != ?", (me,))
    conn.execute("INSERT INTO main.origins SELECT * FROM snap.origins WHERE origin != ?", (me,))
    reapplied = 0
    for seq, body in own:
        if seq in in_snapshot or body is None:
            continue  # the snapshot's state already includes it
        engine.apply_effects(conn, json.loads(body), local=True)
        reapplied += 1
    max_hlc = conn.execute("SELECT coalesce(max(hlc), 0) FROM main.events").fetchone()[0]
    origins = [
        r[0] for r in conn.execute("SELECT origin FROM snap.origins WHERE origin != ?", (me,))
    ]
    return {"reappliedOwnEvents": reapplied, "origins": origins, "maxHlc": max_hlc}
