"""B4: a write acknowledged at one agent → readable at a peer while the
origin sustains a background load of writes (1,000/s by default), beside the
floor of NATS one-way delivery (publish → subscriber) on the same server.

The background writers are paced (an open loop: each has its own schedule
and sends the next write when it is due, at once if it is late), so the
load does not slow down when the agent does; the rate they achieved is
reported beside the figure. The probe is a separate connection: a stock
``set`` of its own SKU at A, then polling B's availability until the new
quantity shows, a sample every 5 ms."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from typing import Any

import nats

from benchmarks.common import UdsHttp, summary

LOAD_SKUS = 20
# enough connections that a write's latency (a group commit's fsync) does not
# bound the rate: each writer has one request in flight at most
LOAD_WRITERS = 32


async def nats_one_way(url: str, samples: int) -> list[float]:
    pub = await nats.connect(url)
    sub_conn = await nats.connect(url)
    got: asyncio.Queue[float] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        got.put_nowait(time.perf_counter() - float(msg.data))

    await sub_conn.subscribe("bench.oneway", cb=on_msg)
    await sub_conn.flush()
    out = []
    for _ in range(samples):
        await pub.publish("bench.oneway", str(time.perf_counter()).encode())
        await pub.flush()
        out.append(await asyncio.wait_for(got.get(), 5) * 1000)
    await pub.close()
    await sub_conn.close()
    return out


def _load_sku(i: int) -> str:
    return f"BENCH-LOAD-{i:02d}"


async def prepare_load(sock_a: str, sock_b: str, timeout: float = 30) -> None:
    """The background writers' products, at A, and seen by B (a peer holds
    back stock events of a product it does not know yet)."""
    a = await UdsHttp(sock_a).connect()
    b = await UdsHttp(sock_b).connect()
    for i in range(LOAD_SKUS):
        sku = _load_sku(i)
        status, body = await a.request("POST", "/api/v1/products", {"sku": sku, "name": sku})
        assert status in (201, 200, 409), body
    deadline = time.perf_counter() + timeout
    path = f"/api/v1/products/{_load_sku(LOAD_SKUS - 1)}/availability"
    while (await b.request("GET", path))[0] != 200:
        if time.perf_counter() > deadline:
            raise TimeoutError("the load's products did not reach the peer")
        await asyncio.sleep(0.05)
    await a.close()
    await b.close()


class Load:
    """Paced writers at ``rate`` writes/s in all, until ``stop`` is set."""

    def __init__(self, sock: str, rate: float, writers: int = LOAD_WRITERS) -> None:
        self.sock = sock
        self.rate = rate
        self.writers = writers
        self.done = 0
        self.errors: list[str] = []
        self.stop = asyncio.Event()
        self.started = 0.0
        self.ended = 0.0

    async def _writer(self, w: int) -> None:
        conn = await UdsHttp(self.sock).connect()
        interval = self.writers / self.rate
        due = time.perf_counter() + w * interval / self.writers
        n = 0
        while not self.stop.is_set():
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sku = _load_sku((w + n * self.writers) % LOAD_SKUS)
            status, body = await conn.request(
                "POST", f"/api/v1/products/{sku}/stock", {"operation": "set", "quantity": n}
            )
            if status == 202:
                self.done += 1
            elif len(self.errors) < 10:
                self.errors.append(f"HTTP {status}: {body[:200]!r}")
            n += 1
            due += interval
        await conn.close()

    async def run(self) -> None:
        self.started = time.perf_counter()
        await asyncio.gather(*(self._writer(w) for w in range(self.writers)))
        self.ended = time.perf_counter()

    def achieved(self) -> float:
        return self.done / max(1e-9, self.ended - self.started)


async def probe(sock_a: str, sock_b: str, sku: str, samples: int) -> list[float]:
    a = await UdsHttp(sock_a).connect()
    b = await UdsHttp(sock_b).connect()
    path_b = f"/api/v1/products/{sku}/availability?storeId=store-001"
    out = []
    base = int(time.time()) % 100_000 * 1000
    for i in range(samples):
        target = base + i
        status, body = await a.request(
            "POST", f"/api/v1/products/{sku}/stock", {"operation": "set", "quantity": target}
        )
        acked = time.perf_counter()
        assert status == 202, body
        deadline = acked + 5
        while True:
            status, body = await b.request("GET", path_b)
            if status == 200 and json.loads(body)["stores"][0]["quantity"] == target:
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"write {i} not visible at the peer after 5 s")
        out.append((time.perf_counter() - acked) * 1000)
        await asyncio.sleep(0.005)
    await a.close()
    await b.close()
    return out


def _load_process(sock: str, rate: float, stop: Any, result: Any) -> None:
    """The background load, in a process of its own: its event loop must not
    delay the probe's (at 1,000 requests/s it is a good part of a core)."""
    from benchmarks.common import run_async

    async def main() -> None:
        load = Load(sock, rate)
        task = asyncio.create_task(load.run())
        while not stop.is_set():
            await asyncio.sleep(0.05)
        load.stop.set()
        await task
        result.put({"rate": load.achieved(), "errors": load.errors})

    run_async(main())


async def write_to_visible(
    sock_a: str, sock_b: str, sku: str, samples: int, load_rate: float
) -> dict[str, Any]:
    """The probe's samples, with the background load running (0: idle)."""
    if load_rate <= 0:
        return {"samples": await probe(sock_a, sock_b, sku, samples)}
    await prepare_load(sock_a, sock_b)
    ctx = multiprocessing.get_context("spawn")
    stop, result = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_load_process, args=(sock_a, load_rate, stop, result))
    proc.start()
    try:
        await asyncio.sleep(1.5)  # the load at its pace before the first sample
        samples_ms = await probe(sock_a, sock_b, sku, samples)
    finally:
        stop.set()
    load = await asyncio.get_running_loop().run_in_executor(None, result.get, True, 60)
    proc.join(10)
    return {"samples": samples_ms, "loadRate": load["rate"], "loadErrors": load["errors"]}


def run(
    nats_url: str, sock_a: str, sock_b: str, samples: int = 300, load_rate: float = 1000.0
) -> dict[str, Any]:
    """``figure``: the probe under the load; ``idle``: the same without it."""
    from benchmarks.common import run_async

    floor = summary(asyncio.run(nats_one_way(nats_url, samples)))
    idle = run_async(write_to_visible(sock_a, sock_b, "PROD-002", samples, 0))
    loaded = run_async(write_to_visible(sock_a, sock_b, "PROD-002", samples, load_rate))
    return {
        "figure": summary(loaded["samples"]),
        "idle": summary(idle["samples"]),
        "floor": floor,
        "loadTarget": load_rate,
        "loadAchieved": round(loaded["loadRate"], 1),
        "loadErrors": loaded["loadErrors"],
    }
