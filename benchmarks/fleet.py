"""B10: a chain on one machine: N agents (20) on one nats-server, each
selling at its own store at a steady rate (5 writes/s, open loop: each sale
starts when due) for a while (2 minutes), as deployed (default settings,
JSON access logs).

- Write → readable, from the agents' own histogram of every applied peer
  event (``inv_replication_delay_seconds``, origin's stamp → committed
  here; one machine, so one clock), scraped before and after the load:
  per peer, pooled, and bounds on "at all peers" (``benchmarks.delays``).
- The same by probe, sparse, as a cross-check: every ``sample_every``-th
  write (rotating over the origins) is followed, from its 202, by polling
  the availability of that (sku, store) at each of the other agents until
  its quantity shows there, per write the slowest peer. The gap between two
  polls is 2 ms or a tenth of the time waited so far, whichever is longer
  (the resolution: each figure is up to that much late), so a slow peer
  costs a few dozen reads, not hundreds: polled every 2 ms, the probe was
  half the fleet's load.
- Converged: every agent's state digests (``GET /api/v1/sync/status``) equal,
  timed from the last write's 202.
- Cost: each agent's CPU (utime + stime of /proc/PID/stat) from the first
  write until converged, divided by the peer events it applied in that time
  (its ``applied`` count). That CPU also holds serving its own writes (5/s
  against ~95 applied), its heartbeats and timers (its idle CPU, measured
  before the load) and the probe's reads (counted per agent, each at the cost
  of a read measured on the idle fleet): the figure is given whole, less
  idle, and less idle and probe. RSS per agent at the end."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from benchmarks import delays
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
POLL_GAP = 0.002  # the shortest gap between two polls of one peer
GAP_SHARE = 0.1  # ... or this share of the time waited so far, if longer
PROBE_TIMEOUT = 10.0
IDLE_WINDOW = 10.0  # seconds of the idle fleet's CPU measured before the load
READ_COST_READS = 400  # reads at one idle agent to price one probe read


def store(i: int) -> str:
    return f"store-{i + 1:03d}"


@dataclass
class Tally:
    """What the load and its probes saw."""

    per_peer: list[float] = field(default_factory=list)  # ms, one per (sample, peer)
    all_peers: list[float] = field(default_factory=list)  # ms, the slowest peer per sample
    acks: list[float] = field(default_factory=list)  # ms, each write's POST → 202
    late: list[float] = field(default_factory=list)  # ms, each write sent behind its schedule
    reads: list[int] = field(default_factory=list)  # the probe's reads, per agent
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
            tally.reads[peer] += 1
            now = time.perf_counter()
            if status == 200 and json.loads(body)["stores"][0]["quantity"] <= target:
                return (now - acked) * 1000
            if now > deadline:
                tally.timeouts += 1
                return PROBE_TIMEOUT * 1000
            await asyncio.sleep(max(POLL_GAP, GAP_SHARE * (now - acked)))
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
    tally, pools, writers = Tally(reads=[0] * len(sockets)), Pools(sockets), Pools(sockets)
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


def _scrape(fleet: list[Agent]) -> list[delays.Histogram]:
    """Each agent's delay histogram as it stands."""
    return [delays.parse(a.client().get("/metrics").text) for a in fleet]


def _read_cost(agent: Agent, pid: int, idle: float) -> float:
    """CPU seconds one probe read costs an agent: ``READ_COST_READS`` reads,
    one at a time, at an agent of the idle fleet, less its idle CPU."""
    path = f"/api/v1/products/{sku(0)}/availability?storeId={agent.store_id}"

    async def reads() -> float:
        conn = await UdsHttp(str(agent.socket)).connect()
        for _ in range(READ_COST_READS // 4):  # warm: the first reads of a route cost more
            await conn.request("GET", path)
        start, cpu = time.perf_counter(), cpu_seconds(pid)
        for _ in range(READ_COST_READS):
            await conn.request("GET", path)
        used = cpu_seconds(pid) - cpu - idle * (time.perf_counter() - start)
        await conn.close()
        return max(0.0, used) / READ_COST_READS

    return run_async(reads())  # type: ignore[no-any-return]


def _delay_figures(
    before: list[delays.Histogram], after: list[delays.Histogram], writes: int
) -> dict[str, Any]:
    """ms: per peer (p50/p99 of each agent's histogram, summarised over the
    agents), pooled over every (write, peer) pair, and the bounds on "at
    all peers" (``benchmarks.delays``)."""
    hists = [a.minus(b) for a, b in zip(after, before, strict=True)]
    pool = delays.pooled(hists)

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 2)

    out: dict[str, Any] = {
        "events": pool.total,
        "pooled": {"n": pool.total, "p50": ms(pool.quantile(0.5)), "p99": ms(pool.quantile(0.99))},
        "perPeerP50": summary([ms(h.quantile(0.5)) for h in hists]),
        "perPeerP99": summary([ms(h.quantile(0.99)) for h in hists]),
    }
    for q, key in ((0.5, "allPeersP50"), (0.99, "allPeersP99")):
        bounds = delays.all_peers(hists, writes, q)
        out[key] = {"above": ms(bounds.above), "atMost": ms(bounds.at_most)}
    # the goal, decided without interpolation: 50 ms is an edge
    out["writesOver50msAtSomePeer"] = {
        "atLeast": max(h.above(0.05) for h in hists),
        "atMost": min(writes, sum(h.above(0.05) for h in hists)),
        "of": writes,
    }
    return out


def run(
    f: Fleet, agents: int = 20, seconds: float = 120.0, rate: float = 5.0, sample_every: int = 100
) -> dict[str, Any]:
    server = f.nats()
    t0 = time.perf_counter()
    fleet = _start(f, agents, server.url)
    started = time.perf_counter() - t0
    _prepare(fleet)
    pids = [a.proc.pid for a in fleet if a.proc is not None]
    idle = _idle_cpu(pids, IDLE_WINDOW)
    read_cost = _read_cost(fleet[0], pids[0], idle[0])
    hist0 = _scrape(fleet)
    applied0 = [api(a, "GET", "/api/v1/sync/status")["applied"] for a in fleet]
    cpu0 = [cpu_seconds(pid) for pid in pids]
    gen0, load0 = time.process_time(), time.perf_counter()
    tally, last_ack = run_async(_load([str(a.socket) for a in fleet], seconds, rate, sample_every))
    generator = (time.process_time() - gen0) / (time.perf_counter() - load0)
    wait_for(lambda: converged(fleet, agents), 120, interval=0.05, what="convergence")
    converged_after = time.perf_counter() - last_ack
    cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    window = time.perf_counter() - load0
    load_average = os.getloadavg()
    applied = [
        api(a, "GET", "/api/v1/sync/status")["applied"] - a0
        for a, a0 in zip(fleet, applied0, strict=True)
    ]
    hist1 = _scrape(fleet)
    rss = [rss_kb(pid) for pid in pids]
    hwm = [rss_kb(pid, "VmHWM") for pid in pids]
    if tally.errors:
        raise RuntimeError(f"{len(tally.errors)} writes failed; first: {tally.errors[0]}")
    less_idle = [c - i * window for c, i in zip(cpu, idle, strict=True)]
    less_probe = [c - n * read_cost for c, n in zip(less_idle, tally.reads, strict=True)]

    def per_event(used: list[float]) -> dict[str, float]:
        return summary([max(0.0, c) / e * 1e6 for c, e in zip(used, applied, strict=True) if e])

    return {
        "agents": agents,
        "seconds": seconds,
        "ratePerAgent": rate,
        "writes": len(tally.acks),
        "histogram": _delay_figures(hist0, hist1, len(tally.acks)),
        "samples": len(tally.all_peers),
        "figure": summary(tally.all_peers),  # the probe: readable at all peers
        "perPeer": summary(tally.per_peer),
        "timeouts": tally.timeouts,
        "probeReads": sum(tally.reads),
        "probeReadsPerAgentPerSecond": round(sum(tally.reads) / agents / window, 1),
        "readCostUs": round(read_cost * 1e6, 1),
        "writeAck": summary(tally.acks),
        "scheduleLateness": summary(tally.late),
        "convergedAfterSeconds": round(converged_after, 3),
        "startupSeconds": round(started, 1),
        "appliedPerAgent": summary([float(e) for e in applied]),
        "cpuPerAppliedEventUs": per_event(cpu),
        "cpuPerAppliedEventLessIdleUs": per_event(less_idle),
        "cpuPerAppliedEventLessIdleAndProbeUs": per_event(less_probe),
        "idleCpuPerAgent": summary(idle),  # CPU seconds per second, before the load
        "cpuSecondsPerAgent": summary(cpu),
        "windowSeconds": round(window, 1),
        "loadAverage": [round(x, 2) for x in load_average],
        "generatorCpu": round(generator, 3),
        "rssMbPerAgent": summary([kb / 1024 for kb in rss]),
        "peakRssMbPerAgent": summary([kb / 1024 for kb in hwm]),
    }


def main() -> None:
    """A smaller or shorter fleet, for iterating (B10 itself runs from
    ``benchmarks.run``)."""
    import argparse

    from benchmarks.common import fleet as make_fleet

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--sample-every", type=int, default=100)
    args = ap.parse_args()
    with make_fleet() as fl:
        result = run(
            fl, args.agents, seconds=args.seconds, rate=args.rate, sample_every=args.sample_every
        )
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
