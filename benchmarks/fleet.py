"""B10: a chain on one machine: N agents (20) on one nats-server, each
selling at its own store at a steady rate (5 writes/s, open loop: each sale
starts when due) for a while (2 minutes), as deployed (default settings,
JSON access logs).

- Write → readable at every peer: B4's method, sampled. Every ``sample_every``-th
  write (rotating over the origins) is followed, from its 202, by polling the
  availability of that (sku, store) at each of the other agents until its
  quantity shows there (one poller per peer, 2 ms between polls: the
  resolution). Per peer and for all peers (the slowest of them), p50/p99.
- Converged: every agent's state digests (``GET /api/v1/sync/status``) equal,
  timed from the last write's 202.
- Cost: each agent's CPU (utime + stime of /proc/PID/stat) from the first
  write until converged, divided by the peer events it applied in that time
  (its ``applied`` count). That CPU also holds serving its own writes, its
  heartbeats, and the probes' reads (reported beside it), so it is an upper
  bound. RSS per agent at the end."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from benchmarks.common import (
    Fleet,
    UdsHttp,
    api,
    cpu_seconds,
    rss_kb,
    run_async,
    summary,
    wait_ready_on_nats,
)
from benchmarks.imports import load_products, sku
from tests.helpers import Agent, wait_for

PRODUCTS = 20
OPENING = 1_000_000  # each store's count of each product: sales never run out
POLL_GAP = 0.002  # between two polls of one peer
PROBE_TIMEOUT = 10.0
IDLE_WINDOW = 5.0  # seconds of the idle fleet's CPU measured before the load


def store(i: int) -> str:
    return f"store-{i + 1:03d}"


@dataclass
class Tally:
    """What the load and its probes saw."""

    per_peer: list[float] = field(default_factory=list)  # ms, one per (sample, peer)
    all_peers: list[float] = field(default_factory=list)  # ms, the slowest peer per sample
    acks: list[float] = field(default_factory=list)  # ms, each write's POST → 202
    late: list[float] = field(default_factory=list)  # ms, each write sent behind its schedule
    probes: int = 0  # reads made by the probes
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)


class Pools:
    """Keep-alive connections to each agent's socket, reused across probes;
    one idle for longer than the server keeps it (uvicorn: 5 s) is dropped."""

    MAX_IDLE = 3.0

    def __init__(self, sockets: list[str]) -> None:
        self.sockets = sockets
        self.free: list[list[tuple[float, UdsHttp]]] = [[] for _ in sockets]

    async def take(self, i: int) -> UdsHttp:
        while self.free[i]:
            since, conn = self.free[i].pop()
            if time.perf_counter() - since < self.MAX_IDLE:
                return conn
            await conn.close()
        return await UdsHttp(self.sockets[i]).connect()

    def give(self, i: int, conn: UdsHttp) -> None:
        self.free[i].append((time.perf_counter(), conn))

    async def close(self) -> None:
        for _, conn in itertools.chain.from_iterable(self.free):
            await conn.close()


async def _visible_at(
    pools: Pools, peer: int, path: str, target: int, acked: float, tally: Tally
) -> float:
    """ms from ``acked`` until the peer shows a quantity at or below ``target``."""
    conn = await pools.take(peer)
    try:
        deadline = acked + PROBE_TIMEOUT
        while True:
            status, body = await conn.request("GET", path)
            tally.probes += 1
            now = time.perf_counter()
            if status == 200 and json.loads(body)["stores"][0]["quantity"] <= target:
                return (now - acked) * 1000
            if now > deadline:
                tally.timeouts += 1
                return PROBE_TIMEOUT * 1000
            await asyncio.sleep(POLL_GAP)
    finally:
        pools.give(peer, conn)


async def _probe(
    pools: Pools, origin: int, item: str, target: int, acked: float, tally: Tally
) -> None:
    path = f"/api/v1/products/{item}/availability?storeId={store(origin)}"
    peers = [j for j in range(len(pools.sockets)) if j != origin]
    seen = await asyncio.gather(*(_visible_at(pools, j, path, target, acked, tally) for j in peers))
    tally.per_peer += seen
    tally.all_peers.append(max(seen))


async def _load(
    sockets: list[str], seconds: float, rate: float, sample_every: int
) -> tuple[Tally, float]:
    """Every origin sells on its own schedule; returns the tally and the
    perf_counter time of the last 202."""
    tally, pools, writers = Tally(), Pools(sockets), Pools(sockets)
    probes: list[asyncio.Task[None]] = []
    counter = itertools.count()
    last_ack = 0.0
    n = len(sockets)
    start = time.perf_counter() + 0.5
    writes = int(seconds * rate)

    async def sell(i: int, k: int, due: float) -> None:
        nonlocal last_ack
        sent = time.perf_counter()
        tally.late.append((sent - due) * 1000)
        item = sku(k % PRODUCTS)
        conn = await writers.take(i)
        status, body = await conn.request(
            "POST", f"/api/v1/products/{item}/stock", {"operation": "sell", "quantity": 1}
        )
        writers.give(i, conn)
        acked = time.perf_counter()
        if status != 202:
            tally.errors.append(f"{store(i)} sell: HTTP {status} {body[:200]!r}")
            return
        tally.acks.append((acked - sent) * 1000)
        last_ack = max(last_ack, acked)
        if next(counter) % sample_every == 0:
            target = json.loads(body)["quantity"]
            probes.append(asyncio.create_task(_probe(pools, i, item, target, acked, tally)))

    async def origin(i: int) -> None:
        # open loop: a sale starts when it is due, whether or not the one
        # before was answered (the counter's customers do not wait for each
        # other); a slow answer shows as acks, not as a lower rate
        offset = i / (n * rate)  # spread the origins over one period
        sales = []
        for k in range(writes):
            due = start + offset + k / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            sales.append(asyncio.create_task(sell(i, k, due)))
        await asyncio.gather(*sales)

    await asyncio.gather(*(origin(i) for i in range(n)))
    await asyncio.gather(*probes)
    await pools.close()
    await writers.close()
    return tally, last_ack


def _start(f: Fleet, count: int, nats_url: str) -> list[Agent]:
    """Start them all at once (each waits for the others' start-up, not in
    turn), then wait until every one is ready on NATS."""
    agents = [f.agent(store(i), nats_url=nats_url, start=False) for i in range(count)]
    for agent in agents:
        agent.start(wait=False)
    for agent in agents:
        agent.wait_ready(timeout=120)
        wait_ready_on_nats(agent, 120)
    return agents


def _idle_cpu(pids: list[int], seconds: float) -> list[float]:
    """Each agent's CPU seconds per second with nothing to do (heartbeats,
    timers, its consumer's idle pulls): the share of the cost per event that
    is not the events'."""
    before = [cpu_seconds(pid) for pid in pids]
    time.sleep(seconds)
    return [(cpu_seconds(pid) - b) / seconds for pid, b in zip(pids, before, strict=True)]


def _digests(agent: Agent) -> dict[str, str]:
    return api(agent, "GET", "/api/v1/sync/status")["digests"]  # type: ignore[no-any-return]


def converged(agents: list[Agent], stores: int) -> bool:
    """Every agent shows the same digests, and they cover every store."""
    first = _digests(agents[0])
    return len(first) > stores and all(_digests(a) == first for a in agents[1:])


def _prepare(agents: list[Agent]) -> None:
    """The catalogue at the first agent, then each store's opening count at
    its own agent, and everything everywhere before the clock starts."""
    load_products(agents[0], PRODUCTS)
    last = sku(PRODUCTS - 1)
    for agent in agents:
        wait_for(partial(api, agent, "GET", f"/api/v1/products/{last}"), 60, what="the catalogue")
    rows = [{"line": i + 2, "sku": sku(i), "quantity": OPENING} for i in range(PRODUCTS)]
    for agent in agents:
        api(agent, "POST", "/api/v1/imports/stock", {"rows": rows})
    wait_for(lambda: converged(agents, len(agents)), 120, interval=0.5, what="the opening state")


def run(
    f: Fleet, agents: int = 20, seconds: float = 120.0, rate: float = 5.0, sample_every: int = 50
) -> dict[str, Any]:
    server = f.nats()
    t0 = time.perf_counter()
    fleet = _start(f, agents, server.url)
    started = time.perf_counter() - t0
    _prepare(fleet)
    pids = [a.proc.pid for a in fleet if a.proc is not None]
    idle = _idle_cpu(pids, IDLE_WINDOW)
    applied0 = [api(a, "GET", "/api/v1/sync/status")["applied"] for a in fleet]
    cpu0 = [cpu_seconds(pid) for pid in pids]
    gen0, load0 = time.process_time(), time.perf_counter()
    tally, last_ack = run_async(_load([str(a.socket) for a in fleet], seconds, rate, sample_every))
    generator = (time.process_time() - gen0) / (time.perf_counter() - load0)
    wait_for(lambda: converged(fleet, agents), 120, interval=0.05, what="convergence")
    converged_after = time.perf_counter() - last_ack
    cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    applied = [
        api(a, "GET", "/api/v1/sync/status")["applied"] - a0
        for a, a0 in zip(fleet, applied0, strict=True)
    ]
    rss = [rss_kb(pid) for pid in pids]
    hwm = [rss_kb(pid, "VmHWM") for pid in pids]
    if tally.errors:
        raise RuntimeError(f"{len(tally.errors)} writes failed; first: {tally.errors[0]}")
    window = time.perf_counter() - load0
    per_event_us = [c / e * 1e6 for c, e in zip(cpu, applied, strict=True) if e]
    busy_us = [
        max(0.0, c - i * window) / e * 1e6 for c, i, e in zip(cpu, idle, applied, strict=True) if e
    ]
    return {
        "agents": agents,
        "seconds": seconds,
        "ratePerAgent": rate,
        "writes": len(tally.acks),
        "samples": len(tally.all_peers),
        "figure": summary(tally.all_peers),  # readable at all peers
        "perPeer": summary(tally.per_peer),
        "timeouts": tally.timeouts,
        "probeReads": tally.probes,
        "writeAck": summary(tally.acks),
        "scheduleLateness": summary(tally.late),
        "convergedAfterSeconds": round(converged_after, 3),
        "startupSeconds": round(started, 1),
        "appliedPerAgent": summary([float(e) for e in applied]),
        "cpuPerAppliedEventUs": summary(per_event_us),
        "cpuPerAppliedEventLessIdleUs": summary(busy_us),
        "idleCpuPerAgent": summary(idle),  # CPU seconds per second, before the load
        "cpuSecondsPerAgent": summary(cpu),
        "windowSeconds": round(window, 1),
        "generatorCpu": round(generator, 3),
        "rssMbPerAgent": summary([kb / 1024 for kb in rss]),
        "peakRssMbPerAgent": summary([kb / 1024 for kb in hwm]),
    }


if __name__ == "__main__":
    import sys

    from benchmarks.common import fleet as make_fleet

    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    with make_fleet() as fl:
        print(json.dumps(run(fl, seconds=secs), indent=2))
