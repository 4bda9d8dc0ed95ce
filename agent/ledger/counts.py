"""What the metrics read from the ledger at scrape time: a few grouped counts."""

from __future__ import annotations

import sqlite3
from typing import Any


def ledger_counts(conn: sqlite3.Connection) -> dict[str, Any]:
    """What the metrics report about the ledger itself, read at scrape time."""
    return {
        "reservations": dict(
            conn.execute("SELECT status, count(*) FROM reservations GROUP BY status").fetchall()
        ),
        "movements": dict(
            conn.execute("SELECT kind, count(*) FROM movements GROUP BY kind").fetchall()
        ),
        "conflicts": conn.execute("SELECT count(*) FROM conflicts").fetchone()[0],
        "transfers": dict(
            conn.execute("SELECT status, count(*) FROM transfers GROUP BY status").fetchall()
        ),
        # through the partial index of lines still in transit
        "inTransit": conn.execute(
            "SELECT coalesce(sum(pending), 0) FROM transfer_lines WHERE pending > 0"
        ).fetchone()[0],
        "alerts": dict(conn.execute("SELECT kind, count(*) FROM alerts GROUP BY kind").fetchall()),
        "quarantined": conn.execute("SELECT count(*) FROM quarantine").fetchone()[0],
    }
