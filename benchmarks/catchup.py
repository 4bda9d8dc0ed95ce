"""B5: catch-up. Agent A makes 100,000 events (a product import, then stock
imports) and publishes them; a fresh agent B then joins and applies them all.
Figure: events applied per second, from B's process start until B's applied
watermark for A reaches A's last seq. Floor: a bare nats-py pull consumer
reading the same 100,000 messages (fetch 500, ack each)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import nats

from agent.sync.subjects import durable_name, events
from benchmarks.common import Fleet, api, wait_backlog_zero
from benchmarks.imports import load_products, load_stock
from tests.helpers import wait_for

STREAM = "INVENTORY"
NETWORK = "default"


async def _consumer_drained(url: str, durable: str) -> bool:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(STREAM, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await nc.close()


async def raw_consume(url: str, subject: str, expected: int) -> float:
    """Seconds for a bare pull consumer to fetch and ack ``expected`` messages."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    psub = await js.pull_subscribe(subject, durable="bench-raw", stream=STREAM)
    got = 0
    start = time.perf_counter()
    while got < expected:
        msgs = await psub.fetch(500, timeout=5)
        for msg in msgs:
            await msg.ack()
        got += len(msgs)
    elapsed = time.perf_counter() - start
    await psub.unsubscribe()
    await nc.close()
    return elapsed


def applied_seq(ledger: Any, origin: str) -> int:
    """B's applied watermark for ``origin``, read from its ledger file (a
    read-only WAL reader: polling the API's sync status would make B compute
    its state digests on every poll, which is work the catch-up then waits on)."""
    try:
        conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return 0
    try:
        row = conn.execute("SELECT applied_seq FROM origins WHERE origin = ?", (origin,)).fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def catch_up(fleet: Fleet, products: int = 1000, stores: int = 99) -> dict[str, Any]:
    server = fleet.nats()
    a = fleet.agent("store-a", nats_url=server.url)
    wait_for(lambda: api(a, "GET", "/api/v1/sync/status")["ready"], 30, what="A ready")
    build_start = time.perf_counter()
    load_products(a, products)
    load_stock(a, products, stores)
    wait_backlog_zero(a)
    build_seconds = time.perf_counter() - build_start
    # the stock imports go out as stock.batch events of up to 5,000 rows each
    expected = api(a, "GET", "/api/v1/sync/status")["published"]
    assert products < expected < products * (stores + 1), expected
    # A's own consumer reads its own events back (and skips them): let it finish
    wait_for(
        lambda: asyncio.run(_consumer_drained(server.url, durable_name("store-a"))),
        300,
        interval=0.5,
        what="A's consumer to drain",
    )
    floor_seconds = asyncio.run(raw_consume(server.url, events(NETWORK, "store-a"), expected))

    b = fleet.agent("store-b", nats_url=server.url, start=False)
    ledger = b.data_dir / "ledger.db"
    start = time.perf_counter()
    b.start(wait=False)
    b.wait_ready(60)
    ready_at = time.perf_counter() - start
    wait_for(
        lambda: applied_seq(ledger, "store-a") >= expected,
        600,
        interval=0.05,
        what="B to apply A's events",
    )
    seconds = time.perf_counter() - start
    status = api(b, "GET", "/api/v1/sync/status")
    peer = next(p for p in status["peers"] if p["storeId"] == "store-a")
    assert peer["appliedSeq"] == expected, peer
    return {
        "events": expected,
        "rows": products * (stores + 1),
        "buildSeconds": round(build_seconds, 2),
        "seconds": round(seconds, 3),
        "readyAfter": round(ready_at, 3),
        "figure": expected / seconds,
        "figureAfterReady": expected / (seconds - ready_at),
        "floor": expected / floor_seconds,
        "floorSeconds": round(floor_seconds, 3),
    }
