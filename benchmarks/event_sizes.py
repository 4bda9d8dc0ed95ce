"""The size of the events an agent publishes, measured on the real write path:
an in-process agent (demo data) records a sale, a reservation and its
confirmation, and the bodies its outbox would publish are read back from its
ledger; before that, 100 stock receipts show what a movement adds to the
ledger file. What goes on the wire adds the subject and the ``Nats-Msg-Id``
header; what the stream keeps per message is measured by ``consumers``."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from tests import inproc

STORE = "store-001"
# stock movements recorded to see what one adds to the ledger (its event, its
# movement row, the stock row and index entries), in whole pages
GROWTH_MOVEMENTS = 100


async def _record(home: Path, growth: int) -> dict[str, Any]:
    cfg = inproc.config(home, STORE)
    with inproc.captured_logs():  # the agent's request logs: not this benchmark's output
        async with inproc.running(cfg) as agent:
            before = _used_bytes(cfg.ledger_path)
            for _ in range(growth):
                r = await agent.local.post(
                    "/api/v1/products/PROD-002/stock",
                    json={"operation": "add", "quantity": 1, "reason": "delivery 4411"},
                )
                assert r.status_code == 202, r.text
            grown = _used_bytes(cfg.ledger_path) - before
            await _writes(agent.local)
    per_movement = round(grown / growth) if growth else None
    return {**_read(cfg.ledger_path), "ledgerBytesPerMovement": per_movement}


def _used_bytes(ledger: Path) -> int:
    """Pages in use (WAL included: a reader sees the committed frames)."""
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


async def _writes(c: Any) -> None:
    """A sale at the counter, a reservation, its confirmation."""
    r = await c.post(
        "/api/v1/products/PROD-001/stock",
        json={"operation": "sell", "quantity": 1, "reason": "till 3"},
    )
    assert r.status_code == 202, r.text
    r = await c.post(
        "/api/v1/reservations",
        json={"productId": "PROD-001", "quantity": 2, "customerId": "cust-789"},
    )
    assert r.status_code == 202, r.text
    rid = r.json()["reservationId"]
    r = await c.post(f"/api/v1/reservations/{rid}/confirm", json={"orderId": "ord-5521"})
    assert r.status_code in (200, 202), r.text


def _read(ledger: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT seq, type, body FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 3",
            (STORE,),
        ).fetchall()
    finally:
        conn.close()
    # newest first: the confirmation, the reservation, the sale
    confirmed, created, sale = rows
    assert sale[1] == "stock.movement" and created[1] == confirmed[1] == "reservation.changed"
    header = len(f"Nats-Msg-Id: {STORE}:{sale[0]}\r\n")
    return {
        "stockMovement": len(sale[2].encode()),
        "reservationCreated": len(created[2].encode()),
        "reservationConfirmed": len(confirmed[2].encode()),
        "msgIdHeaderBytes": header,
        "subject": f"inv.default.ev.{STORE}",
        "sampleStockMovement": sale[2],
    }


def measure(growth: int = GROWTH_MOVEMENTS) -> dict[str, Any]:
    """Bytes of each event body as published (UTF-8 JSON), a sample body, and
    what a movement adds to the ledger (measured over ``growth`` movements;
    0: not measured)."""
    with tempfile.TemporaryDirectory(prefix="inv-evsize-") as tmp:
        return asyncio.run(_record(Path(tmp), growth))


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=2))
