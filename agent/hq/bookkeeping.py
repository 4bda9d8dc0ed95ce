"""What a batch records besides the merge: per-origin watermarks, the stream
checkpoint, quarantined events; and the reads of them (watermarks, holes,
held-back events), as in ``agent/ledger/replication.py``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

# the newest seq and stamp of every origin the batch brought events of
ORIGINS = """
INSERT INTO origins AS o (origin, max_seq, last_hlc, last_event_at, received_at)
SELECT origin, max(seq), max(hlc), ms_ts(max(hlc) >> 16), ms_ts(%(now)s)
FROM hq_new GROUP BY origin
ON CONFLICT (origin) DO UPDATE
SET max_seq = greatest(o.max_seq, excluded.max_seq),
    last_hlc = greatest(o.last_hlc, excluded.last_hlc),
    last_event_at = ms_ts(greatest(o.last_hlc, excluded.last_hlc) >> 16),
    received_at = excluded.received_at
"""

# the contiguous watermark, moved over every event that is there now. The
# batch's seqs form runs (islands: seq - row_number() is constant along one);
# the run that starts right after the watermark takes it to its end, and
# from there on ``events`` (events that came early, before a hole was filled)
# until the first seq whose successor is missing: an index scan that stops
# at once when the stream comes in order. (Before a batch the watermark is
# as far as it goes, so seq applied + 1 can only be one of the batch's.)
WATERMARKS = """
WITH runs AS (
    SELECT origin, min(seq) AS first, max(seq) AS upto
    FROM (SELECT origin, seq, seq - row_number() OVER (PARTITION BY origin ORDER BY seq) AS island
          FROM hq_new) r
    GROUP BY origin, island
), reach AS (
    SELECT r.origin, r.upto FROM runs r JOIN origins o USING (origin)
    WHERE r.first = o.applied_seq + 1
)
UPDATE origins o SET applied_seq = (
    SELECT e.seq FROM events e
    WHERE e.origin = o.origin AND e.seq >= reach.upto
      -- a scalar subquery, not NOT EXISTS: an anti join would read every seq
      AND (SELECT 1 FROM events n WHERE n.origin = e.origin AND n.seq = e.seq + 1) IS NULL
    ORDER BY e.seq LIMIT 1
)
FROM reach WHERE reach.origin = o.origin
"""

CHECKPOINT = """
INSERT INTO checkpoint AS c (one, stream_seq, updated_at) VALUES (true, %(seq)s, ms_ts(%(now)s))
ON CONFLICT (one) DO UPDATE
SET stream_seq = greatest(c.stream_seq, excluded.stream_seq), updated_at = excluded.updated_at
"""

QUARANTINE = """
INSERT INTO quarantine (event_id, subject, reason, detail, body, received_at)
VALUES (%s, %s, %s, %s, %s, ms_ts(%s))
ON CONFLICT (event_id, reason) WHERE event_id IS NOT NULL DO NOTHING
"""

# refusals that time or an upgrade can lift (agent.ledger.replication.RETRIED)
RETRIED = ("schema_too_new", "clock_skew")

# seqs below an origin's newest that are neither recorded nor held in
# quarantine (one that came on the origin's own subject, or was refused here)
HOLES = """
SELECT o.origin, h.seq FROM origins o CROSS JOIN LATERAL (
    SELECT g.seq FROM generate_series(o.applied_seq + 1, o.max_seq) AS g (seq)
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.origin = o.origin AND e.seq = g.seq)
      AND NOT EXISTS (
          SELECT 1 FROM quarantine q WHERE q.event_id = o.origin || ':' || g.seq
            AND (q.subject IS NULL OR right(q.subject, length(o.origin) + 4) = '.ev.' || o.origin))
    ORDER BY g.seq LIMIT %(limit)s
) h
WHERE o.applied_seq < o.max_seq
ORDER BY o.origin, h.seq
"""


def _clean(value: Any) -> str | None:
    """Text PostgreSQL can hold: no NUL, no lone surrogate (a refused
    payload may carry either)."""
    if value is None:
        return None
    text = str(value).replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def quarantine(
    conn: psycopg.Connection[Any], records: Iterable[Mapping[str, Any]], now_ms: int
) -> None:
    rows = [
        (
            _clean(q.get("eventId")),
            _clean(q.get("subject")),
            _clean(q.get("reason")) or "malformed",
            _clean(q.get("detail")),
            _clean(q.get("body")),
            now_ms,
        )
        for q in records
    ]
    if rows:
        conn.cursor().executemany(QUARANTINE, rows)


def release(conn: psycopg.Connection[Any], ids: Iterable[int]) -> None:
    conn.execute("DELETE FROM quarantine WHERE id = ANY(%s)", (list(ids),))


def held_back(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT id, body FROM quarantine WHERE reason = ANY(%s) ORDER BY id", (list(RETRIED),)
    ).fetchall()
    return [(int(r[0]), str(r[1] or "")) for r in rows]


def watermarks(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, int]]:
    rows = conn.execute("SELECT origin, applied_seq, max_seq FROM origins").fetchall()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}


def holes(conn: psycopg.Connection[Any], limit: int) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for origin, seq in conn.execute(HOLES, {"limit": limit}).fetchall():
        out.setdefault(str(origin), []).append(int(seq))
    return out


def checkpoint(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT stream_seq FROM checkpoint").fetchone()
    return int(row[0]) if row else 0
