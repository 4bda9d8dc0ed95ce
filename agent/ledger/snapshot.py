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
from agent.ledger.replication import forget_stream_positions
from agent.ledger.schema import MIGRATIONS, STATE_SINCE

STATE_TABLES = (
    "products",
    "stock",
    "movements",
    "reservations",
    "conflicts",
    "stores",
    "stock_settings",
    "transfers",
    "transfer_lines",
    "transfer_receipts",
    "alerts",
)


def write_snapshot(ledger: Path, target: Path) -> None:
    """A consistent copy of the ledger file (online; readers and the writer go on)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    conn = connect(ledger)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


class SnapshotUnfit(ValueError):
    """This snapshot would not do: it lacks what we need, or it is behind this
    ledger on some origin (restoring it would take back events we applied)."""


class OwnEventsDiffer(ValueError):
    """The snapshot's record of one of our seqs is not our event with that seq:
    another node uses our store id, or this ledger was restored from an old
    copy and written to since. Publishing would reuse ids for other events."""


def check_fit(conn: sqlite3.Connection, me: str, need: dict[str, int]) -> None:
    """Refuse a snapshot that lacks an origin's events up to ``need[origin]``,
    or whose applied watermark of any other origin is behind ours."""
    theirs = dict(conn.execute("SELECT origin, applied_seq FROM snap.origins"))
    for origin, seq in need.items():
        if theirs.get(origin, 0) < seq:
            raise SnapshotUnfit(f"it has {origin} up to seq {theirs.get(origin, 0)}, not {seq}")
    for origin, seq in conn.execute("SELECT origin, applied_seq FROM main.origins"):
        if origin != me and theirs.get(origin, 0) < seq:
            raise SnapshotUnfit(f"it has {origin} up to seq {theirs.get(origin, 0)}; we have {seq}")


def _copy_state(conn: sqlite3.Connection, table: str) -> None:
    """Copy a state table from the snapshot: the columns both schemas have (a
    peer of an older schema lacks the newer ones: they take their defaults),
    nothing if the peer's schema has no such table yet."""
    theirs = [r[1] for r in conn.execute(f"PRAGMA snap.table_info({table})")]
    ours = {r[1] for r in conn.execute(f"PRAGMA main.table_info({table})")}
    cols = ", ".join(c for c in theirs if c in ours)
    if cols:
        conn.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM snap.{table}")


def restore(
    conn: sqlite3.Connection, engine: Engine, need: dict[str, int] | None = None
) -> dict[str, Any]:
    """Replace the replicated state with the snapshot's (attached as ``snap``
    by ``LedgerStore.write(..., attach=path)``) and re-apply our own events on
    top. Runs in the writer's transaction: all or nothing.

    ``need``: per origin, the seq the snapshot must have applied (see
    ``check_fit``). Events of ours that the peer applied and this ledger lacks
    (they aged out of the stream after this ledger was restored from an older
    copy) are recorded by seq and stamp, without a body: their effects are in
    the peer's state, and our seq goes on above them."""
    me = engine.store_id
    version = conn.execute("PRAGMA snap.user_version").fetchone()[0]
    if not STATE_SINCE <= version <= len(MIGRATIONS):
        raise ValueError(
            f"snapshot schema {version} is not one of ours ({STATE_SINCE}..{len(MIGRATIONS)})"
        )
    check_fit(conn, me, need or {})
    in_snapshot = dict(
        conn.execute("SELECT seq, hlc FROM snap.events WHERE origin = ?", (me,)).fetchall()
    )
    own = conn.execute(
        "SELECT seq, hlc, body FROM main.events WHERE origin = ? ORDER BY seq", (me,)
    ).fetchall()
    for seq, stamp, _ in own:
        if in_snapshot.get(seq, stamp) != stamp:
            raise OwnEventsDiffer(f"the peer's event {me}:{seq} is not this ledger's")
    for table in STATE_TABLES:
        conn.execute(f"DELETE FROM main.{table}")
        _copy_state(conn, table)
    conn.execute("DELETE FROM main.events WHERE origin != ?", (me,))
    conn.execute(
        "INSERT INTO main.events (origin, seq, hlc, type, body, published) "
        "SELECT origin, seq, hlc, type, NULL, 1 FROM snap.events WHERE origin != ?",
        (me,),
    )
    lost_own = _take_lost_own(conn, me, {r[0] for r in own})
    conn.execute("DELETE FROM main.origins WHERE origin != ?", (me,))
    conn.execute("INSERT INTO main.origins SELECT * FROM snap.origins WHERE origin != ?", (me,))
    reapplied = 0
    for seq, _, body in own:
        if seq in in_snapshot or body is None:
            continue  # the snapshot's state already includes it
        engine.apply_effects(conn, json.loads(body), local=True, raise_alerts=False)
        reapplied += 1
    # in this transaction, not later: a crash before the consumer rewinds
    # must not leave it resuming past events this snapshot lacks
    forget_stream_positions(conn)
    max_hlc = conn.execute("SELECT coalesce(max(hlc), 0) FROM main.events").fetchone()[0]
    origins = [
        r[0] for r in conn.execute("SELECT origin FROM snap.origins WHERE origin != ?", (me,))
    ]
    return {
        "reappliedOwnEvents": reapplied,
        "recoveredOwnEvents": lost_own,
        "origins": origins,
        "maxHlc": max_hlc,
    }


def _take_lost_own(conn: sqlite3.Connection, me: str, have: set[int]) -> int:
    """Record the peer's copies of our events that this ledger lacks, then
    bring our own watermark over them: seq, stamp and contiguous applied."""
    lost = [
        r
        for r in conn.execute(
            "SELECT seq, hlc, type FROM snap.events WHERE origin = ? ORDER BY seq", (me,)
        )
        if r[0] not in have
    ]
    conn.executemany(
        "INSERT INTO main.events (origin, seq, hlc, type, body, published) VALUES (?,?,?,?,NULL,1)",
        [(me, seq, stamp, type_) for seq, stamp, type_ in lost],
    )
    if not lost:
        return 0
    conn.execute(
        "INSERT OR IGNORE INTO main.origins (origin, applied_seq, max_seq, last_hlc, "
        "last_event_at_ms) VALUES (?, 0, 0, 0, 0)",
        (me,),
    )
    top_seq, top_hlc = conn.execute(
        "SELECT max(seq), max(hlc) FROM main.events WHERE origin = ?", (me,)
    ).fetchone()
    applied = conn.execute(
        "SELECT applied_seq FROM main.origins WHERE origin = ?", (me,)
    ).fetchone()[0]
    while conn.execute(
        "SELECT 1 FROM main.events WHERE origin = ? AND seq = ?", (me, applied + 1)
    ).fetchone():
        applied += 1
    conn.execute(
        "UPDATE main.origins SET applied_seq = ?, max_seq = max(max_seq, ?), "
        "last_hlc = max(last_hlc, ?) WHERE origin = ?",
        (applied, top_seq, top_hlc, me),
    )
    return len(lost)
