"""B5: catch-up of 100,000 missed events. A store that has gone away left
100,000 per-row events in the stream (receipts and sales, product edits,
reservations made and confirmed or cancelled: B9's workload, as agents write
them, published straight to a real nats-server); a fresh agent B then joins
and applies them all. Figure: events applied per second, from B's process
start until B's applied watermark for that store reaches its last seq.
Floor: a bare nats-py pull consumer reading the same messages (fetch 500,
ack each).

Imports no longer make per-row events (they travel as ``stock.batch``), so
the events are published here rather than made through an agent's API: that
keeps the figure a rate of per-row events, comparable with round 1's.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import nats

from agent.sync import subjects
from benchmarks.common import Fleet, api, median
from benchmarks.hq_ingest import publish, workload
from tests.helpers import wait_for

STREAM = "INVENTORY"
NETWORK = "default"


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
    await js.delete_consumer(STREAM, "bench-raw")  # the next run reads from the start again
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


def catch_up(fleet: Fleet, events: int = 100_000, runs: int = 3) -> dict[str, Any]:
    """Runs alternate (floor, figure, ...), each figure with a fresh agent;
    medians."""
    server = fleet.nats()
    build_start = time.perf_counter()
    items = list(workload(stores=1, per_store=events))
    origin = items[0][1].split(":")[0]
    asyncio.run(publish(server.url, items))
    build_seconds = time.perf_counter() - build_start
    subject = subjects.events(NETWORK, origin)
    floors, seconds, ready = [], [], []
    for i in range(runs):
        floors.append(asyncio.run(raw_consume(server.url, subject, events)))
        total, ready_at = _one_catch_up(fleet, server.url, f"store-b{i}", origin, events)
        seconds.append(total)
        ready.append(ready_at)
    return {
        "events": events,
        "runs": runs,
        "buildSeconds": round(build_seconds, 2),
        "seconds": [round(x, 3) for x in seconds],
        "readyAfter": [round(x, 3) for x in ready],
        "floorSeconds": [round(x, 3) for x in floors],
        "figure": events / median(seconds),
        "figureAfterReady": events / median([t - r for t, r in zip(seconds, ready, strict=True)]),
        "floor": events / median(floors),
    }


def _one_catch_up(
    fleet: Fleet, url: str, name: str, origin: str, events: int
) -> tuple[float, float]:
    """A fresh agent joins and applies ``origin``'s events: (seconds from its
    process start, seconds until it was ready)."""
    b = fleet.agent(name, nats_url=url, start=False)
    ledger = b.data_dir / "ledger.db"
    start = time.perf_counter()
    b.start(wait=False)
    b.wait_ready(60)
    ready_at = time.perf_counter() - start
    wait_for(
        lambda: applied_seq(ledger, origin) >= events,
        600,
        interval=0.05,
        what=f"{name} to apply the away store's events",
    )
    seconds = time.perf_counter() - start
    status = api(b, "GET", "/api/v1/sync/status")
    peer = next(p for p in status["peers"] if p["storeId"] == origin)
    assert peer["appliedSeq"] == events, peer
    # every event applied, none quarantined: the figure is a rate of real work
    assert status["quarantined"] == 0, status["quarantined"]
    b.stop()
    return seconds, ready_at
