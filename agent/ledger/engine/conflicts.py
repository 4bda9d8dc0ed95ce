"""The conflicts log: every write that lost something a user might miss."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.ledger.engine.envelope import dumps


def record(
    conn: sqlite3.Connection,
    kind: str,
    sku: str | None,
    store: str | None,
    winner: str | None,
    loser: str,
    hlc: int,
    detail: dict[str, Any],
    detected_at_ms: int,
) -> None:
    """Log one conflict. Its id is ``kind:loser:winner:field``: the field is
    empty for stock conflicts and the winner is ``None`` (the word) for a
    ``negative_available`` one. Applying the same events again makes the same
    id, so a conflict is recorded once."""
    conn.execute(
        "INSERT OR IGNORE INTO conflicts (id, kind, sku, store_id, winner, loser, detail, "
        "hlc, detected_at_ms) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            f"{kind}:{loser}:{winner}:{detail.get('field', '')}",
            kind,
            sku,
            store,
            winner,
            loser,
            dumps(detail),
            hlc,
            detected_at_ms,
        ),
    )
