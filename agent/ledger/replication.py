"""Ledger side of replication: the outbox, applying peers' events in batches,
quarantine, gap detection and serving our own events back to peers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import Any, NamedTuple

from agent.ledger.engine import Engine, dumps, now_ms

# The outbox queries name their index: left to itself the planner walks the
# primary key through every event of the origin (all of them long published)
# to find the few that are not, so each call cost O(ledger), not O(backlog).
OUTBOX = "events INDEXED BY events_outbox"


def unpublished(conn: sqlite3.Connection, origin: str, limit: int) -> list[tuple[int, str]]:
    """The outbox, oldest first: (seq, event JSON)."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            f"SELECT seq, body FROM {OUTBOX} WHERE origin = ? AND published = 0 "
            "ORDER BY seq LIMIT ?",
            (origin, limit),
        )
    ]


def mark_published(conn: sqlite3.Connection, origin: str, seqs: list[int]) -> None:
    conn.executemany(
        "UPDATE events SET published = 1 WHERE origin = ? AND seq = ?", [(origin, s) for s in seqs]
    )


def published_seq(conn: sqlite3.Connection, origin: str) -> int:
    """Our newest event that is in the stream (what heartbeats announce)."""
    row = conn.execute(  # from the newest down: stops at once unless a backlog is waiting
        "SELECT seq FROM events WHERE origin = ? AND published = 1 ORDER BY seq DESC LIMIT 1",
        (origin,),
    ).fetchone()
    return int(row[0]) if row else 0


def own_seq_hlcs(conn: sqlite3.Connection, origin: str) -> dict[int, int]:
    """seq -> hlc of every event of ours in the ledger."""
    return dict(conn.execute("SELECT seq, hlc FROM events WHERE origin = ?", (origin,)))


def recover_own(conn: sqlite3.Connection, engine: Engine, events: list[dict[str, Any]]) -> int:
    """Take back our own events from the stream (the ledger was restored
    from an older copy): recorded as ours and published, then applied. They
    raise no alerts: the alerts they raised are among them (one raised now
    would take the seq of the next event being taken back)."""
    n = 0
    for event in events:
        if engine.has_event(conn, engine.store_id, event["seq"]):
            continue
        conn.execute(
            "INSERT INTO events (origin, seq, hlc, type, body, published) VALUES (?,?,?,?,?,1)",
            (engine.store_id, event["seq"], event["hlc"], event["type"], dumps(event)),
        )
        engine._advance_origin(conn, engine.store_id, event["seq"], event["hlc"])
        engine.apply_effects(conn, event, local=True, raise_alerts=False)
        n += 1
    return n


def reserve_own(conn: sqlite3.Connection, origin: str, seq: int) -> None:
    """Make ``next_seq`` start above ``seq`` (it numbers from ``max_seq``)."""
    conn.execute(
        "INSERT INTO origins (origin, applied_seq, max_seq, last_hlc, last_event_at_ms) "
        "VALUES (?, 0, ?, 0, 0) ON CONFLICT(origin) DO UPDATE SET "
        "max_seq = max(max_seq, excluded.max_seq)",
        (origin, seq),
    )


def own_events(
    conn: sqlite3.Connection, origin: str, first: int, last: int, limit: int = 500
) -> list[str]:
    """Our own events in a seq range, for a peer repairing a gap."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT body FROM events WHERE origin = ? AND seq BETWEEN ? AND ? AND body IS NOT NULL "
            "ORDER BY seq LIMIT ?",
            (origin, first, last, limit),
        )
    ]


class StreamPosition(NamedTuple):
    """How far this ledger has read a stream: the stream seq of the last
    message of the last batch it committed, and that message's Msg-Id.
    ``created`` is the stream's creation time: a stream deleted and made
    again starts its seqs anew; a hub that lost its newest messages numbers
    new ones over them (the Msg-Id at the seq then differs)."""

    stream: str
    created: str
    seq: int
    msg_id: str = ""


POSITION_KEY = "stream_position:"  # meta keys: local state, never in a snapshot


def _position_key(stream: str) -> str:
    return POSITION_KEY + stream


def stream_position(conn: sqlite3.Connection, stream: str) -> StreamPosition | None:
    """The checkpoint kept for ``stream`` (None: this ledger never read it)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_position_key(stream),)).fetchone()
    if row is None:
        return None
    value = json.loads(row[0])
    return StreamPosition(
        stream, str(value["created"]), int(value["seq"]), str(value.get("msgId", ""))
    )


def forget_stream_positions(conn: sqlite3.Connection) -> None:
    """Read every stream from its start next time (a snapshot was restored:
    events it lacks and this ledger had applied are still in the stream)."""
    conn.execute("DELETE FROM meta WHERE substr(key, 1, ?) = ?", (len(POSITION_KEY), POSITION_KEY))


def set_stream_position(conn: sqlite3.Connection, position: StreamPosition) -> None:
    """Set the checkpoint, lower or higher (a rewind, a new stream)."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (
            _position_key(position.stream),
            json.dumps(
                {"created": position.created, "seq": position.seq, "msgId": position.msg_id}
            ),
        ),
    )


def advance_stream_position(conn: sqlite3.Connection, position: StreamPosition) -> None:
    """Move the checkpoint forward to ``position`` (never back, on the same stream)."""
    have = stream_position(conn, position.stream)
    if have is None or have.created != position.created or position.seq > have.seq:
        set_stream_position(conn, position)


def apply_batch(
    conn: sqlite3.Connection,
    engine: Engine,
    events: list[dict[str, Any]],
    quarantined: list[dict[str, Any]],
    position: StreamPosition | None = None,
) -> dict[str, int]:
    """Apply validated peer events and record quarantined ones, in one
    transaction; with ``position`` (the batch came from the stream), the
    stream checkpoint moves past the batch in the same transaction: a crash
    before the commit reads the batch again, never skips it."""
    applied = engine.apply_remote_batch(conn, events)
    duplicates = len(events) - applied
    for q in quarantined:
        quarantine(conn, q, engine.wall_ms())
    if position is not None:
        advance_stream_position(conn, position)
    return {"applied": applied, "duplicates": duplicates, "quarantined": len(quarantined)}


def quarantine(
    conn: sqlite3.Connection, q: dict[str, Any], received_at_ms: int | None = None
) -> None:
    """Keep a refused event (once per id and reason) to be listed, or applied
    later when it was refused for a newer schema."""
    event_id = q.get("eventId")
    if (
        event_id
        and conn.execute(
            "SELECT 1 FROM quarantine WHERE event_id = ? AND reason = ?", (event_id, q["reason"])
        ).fetchone()
    ):
        return
    conn.execute(
        "INSERT INTO quarantine (event_id, subject, reason, body, received_at_ms) "
        "VALUES (?,?,?,?,?)",
        (
            event_id,
            q.get("subject"),
            q["reason"],
            q.get("body"),
            now_ms() if received_at_ms is None else received_at_ms,
        ),
    )


# Refusals that time or an upgrade can lift: an event of a newer schema than
# this agent knows (applied after an upgrade), and one stamped further ahead of
# our clock than allowed (applied once our clock has caught up with it; kept
# out for good, the replicas would never converge). The rest stay refused.
RETRIED = ("schema_too_new", "clock_skew")


def held_back(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """Quarantined events that may pass the checks now: (quarantine id, JSON)."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT id, body FROM quarantine WHERE reason IN (?, ?) ORDER BY id", RETRIED
        )
    ]


def release(conn: sqlite3.Connection, ids: list[int]) -> None:
    conn.executemany("DELETE FROM quarantine WHERE id = ?", [(i,) for i in ids])


def quarantine_list(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    return [
        {
            "id": r[0],
            "eventId": r[1],
            "subject": r[2],
            "reason": r[3],
            "receivedAtMs": r[4],
            "body": r[5][:2000] if r[5] else None,
        }
        for r in conn.execute(
            "SELECT id, event_id, subject, reason, received_at_ms, body FROM quarantine "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
    ]


def quarantine_count(conn: sqlite3.Connection) -> int:
    n: int = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    return n


def origins(
    conn: sqlite3.Connection, only: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per origin (all, or those in ``only``): appliedSeq, maxSeq, lastHlc, lastEventAtMs."""
    if only is None:
        rows = conn.execute("SELECT * FROM origins").fetchall()
    else:
        rows = [
            r
            for origin in only
            for r in conn.execute("SELECT * FROM origins WHERE origin = ?", (origin,))
        ]
    return {
        r["origin"]: {
            "appliedSeq": r["applied_seq"],
            "maxSeq": r["max_seq"],
            "lastHlc": r["last_hlc"],
            "lastEventAtMs": r["last_event_at_ms"],
        }
        for r in rows
    }


def missing(conn: sqlite3.Connection, origin: str, known_max: int, limit: int = 500) -> list[int]:
    """Seqs of ``origin`` up to ``known_max`` that we have not applied and
    have not held back: what a gap repair must fetch.

    Only a quarantined copy that came on the origin's own subject counts as
    held: anyone can claim the id ``origin:seq`` on another subject, and such
    a forgery must not stop us from fetching the genuine event."""
    row = conn.execute("SELECT applied_seq FROM origins WHERE origin = ?", (origin,)).fetchone()
    start = (row[0] if row else 0) + 1
    have = {
        r[0]
        for r in conn.execute(
            "SELECT seq FROM events WHERE origin = ? AND seq BETWEEN ? AND ?",
            (origin, start, known_max),
        )
    }
    held = {
        r[0]
        for r in conn.execute(
            "SELECT event_id, subject FROM quarantine WHERE event_id LIKE ?", (f"{origin}:%",)
        )
        if (r[1] or "").endswith(f".ev.{origin}")
    }
    out = []
    for seq in range(start, known_max + 1):
        if seq not in have and f"{origin}:{seq}" not in held:
            out.append(seq)
            if len(out) >= limit:
                break
    return out
