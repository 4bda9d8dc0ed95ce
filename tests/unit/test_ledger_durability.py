"""What a power cut can and cannot take back (docs/OPERATIONS.md, "Power
loss"): every write connection fsyncs the WAL at each COMMIT, and a ledger
reopened after writes numbers and stamps its next event above every one it
holds, so no id or stamp that may have left the machine is used twice."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from agent.ledger.local import Ledger, open_ledger
from agent.ledger.store import connect
from agent.service import InventoryService

FROZEN_MS = 1_790_000_000_000  # a wall clock that never moves: only the ledger can order stamps


def newest_own(conn: sqlite3.Connection, store: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT max(seq), max(hlc) FROM events WHERE origin = ?", (store,)
    ).fetchone()
    return int(row[0]), int(row[1])


def test_write_connections_fsync_the_wal_at_every_commit(tmp_path: Path) -> None:
    conn = connect(tmp_path / "ledger.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()


def test_a_reopened_ledger_continues_seq_and_hlc_above_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    def open_service(store: str | None) -> tuple[Ledger, InventoryService]:
        ledger = open_ledger(path, store, hlc_clock=lambda: FROZEN_MS)
        return ledger, InventoryService(ledger, reservation_ttl=600, outbox=asyncio.Event())

    ledger, service = open_service("store-001")
    assert service.load_demo_data() > 0
    seq_before, hlc_before = ledger.store.read_sync(newest_own, "store-001")
    ledger.close()

    # the same frozen wall clock: a clock that restarted from it (not from
    # the ledger) would stamp the next event with a stamp already used
    ledger, service = open_service(None)
    try:
        asyncio.run(service.create_product({"sku": "AFTER-RESTART", "name": "after"}))
        seq_after, hlc_after = ledger.store.read_sync(newest_own, "store-001")
    finally:
        ledger.close()
    assert seq_after == seq_before + 1
    assert hlc_after > hlc_before


def test_only_writes_that_can_be_redone_commit_without_an_fsync(tmp_path: Path) -> None:
    """Marking events published is the one write that may go without an fsync
    of its own (lost, the events are published again and deduplicated); every
    other write, and any group it shares, is FULL."""
    from agent.ledger.store import LedgerStore

    store = LedgerStore(tmp_path / "ledger.db")

    def mode(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    async def run() -> tuple[int, int, int]:
        return (
            await store.write(mode),
            await store.write_lazy(mode),
            await store.write(mode),  # restored after the lazy one
        )

    try:
        assert asyncio.run(run()) == (2, 1, 2)
    finally:
        store.close()
