"""The few reads of the read model that ``inv-hq status`` needs beyond the
projector's own methods, on its contract tables (docs/HQ.md)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


def has_read_model(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name = 'origins'",
        (schema,),
    ).fetchone()
    return row is not None


def last_event_ms(conn: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    """Per origin: the wall time (ms) of its last event applied at HQ."""
    query = sql.SQL(
        "SELECT origin, (extract(epoch FROM last_event_at) * 1000)::bigint "
        "FROM {}.origins WHERE last_event_at IS NOT NULL"
    ).format(sql.Identifier(schema))
    return {origin: int(ms) for origin, ms in conn.execute(query)}


def events_last_minute(conn: psycopg.Connection[Any], schema: str) -> int:
    """Events recorded at HQ in the last minute (by when they were recorded)."""
    query = sql.SQL(
        "SELECT count(*) FROM {}.events WHERE received_at > now() - interval '1 minute'"
    ).format(sql.Identifier(schema))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
