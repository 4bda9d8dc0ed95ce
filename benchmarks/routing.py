"""B8: a routed reservation (``storeId: "any"``) answered by a peer over a real
nats-server: a web shop's agent (store ``web``, no stock) routes each one to
store-002, which grants it. Latency one request at a time (p50, p99), and the
rate with 16 clients.

Floors, measured in the same run: the same reservation made at the owner
itself over its own socket (what the owner does, without the routing: the
ratio is the price of routing), and a bare NATS request/reply round trip
(the network's share).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from benchmarks.common import (
    Agent,
    Fleet,
    UdsHttp,
    api,
    drive,
    median,
    run_async,
    summary,
    wait_for,
    wait_ready_on_nats,
)

SKU = "BENCH-ROUTE"
_ids = itertools.count()


def prepare(f: Fleet) -> tuple[Agent, Agent, str]:
    server = f.nats()
    owner = f.agent("store-002", nats_url=server.url)
    web = f.agent("web", nats_url=server.url)
    for agent in (owner, web):
        wait_ready_on_nats(agent)
    api(owner, "POST", "/api/v1/products", {"sku": SKU, "name": "Routing bench"})
    api(owner, "POST", f"/api/v1/products/{SKU}/stock", {"operation": "set", "quantity": 10**8})
    # the web agent ranks from its replica: it must have the owner's stock row
    wait_for(
        lambda: api(web, "GET", f"/api/v1/products/{SKU}/availability")["totalAvailable"] > 0,
        30,
        what="the owner's stock to reach the web agent",
    )
    return owner, web, server.url


def _body(tag: str, routed: bool) -> dict[str, Any]:
    body = {"reservationId": f"{tag}-{next(_ids)}", "productId": SKU, "quantity": 1}
    return {**body, "storeId": "any"} if routed else body


def reserving(tag: str, routed: bool) -> Any:
    async def work(conn: UdsHttp, i: int, n: int) -> int:
        status, body = await conn.request("POST", "/api/v1/reservations", _body(tag, routed))
        if status != 202:
            raise RuntimeError(f"reserve answered {status}: {body[:300]!r}")
        return 1

    return work


async def _sequential(sock: str, n: int, tag: str, routed: bool) -> list[float]:
    conn = await UdsHttp(sock).connect()
    out = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            status, body = await conn.request("POST", "/api/v1/reservations", _body(tag, routed))
            out.append((time.perf_counter() - start) * 1000)
            if status != 202:
                raise RuntimeError(f"reserve answered {status}: {body[:300]!r}")
    finally:
        await conn.close()
    return out


async def _nats_rtt(url: str, n: int) -> list[float]:
    import nats

    nc = await nats.connect(url)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    try:
        sub = await nc.subscribe("bench.rtt", cb=echo)
        out = []
        for _ in range(n):
            start = time.perf_counter()
            await nc.request("bench.rtt", b"{}", timeout=2)
            out.append((time.perf_counter() - start) * 1000)
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def run(
    f: Fleet, n: int = 400, clients: int = 16, seconds: float = 3.0, rounds: int = 3
) -> dict[str, Any]:
    owner, web, url = prepare(f)
    web_sock, owner_sock = str(web.socket), str(owner.socket)
    run_async(_sequential(web_sock, 50, "warm", True))  # warm up both paths
    run_async(_sequential(owner_sock, 50, "warm-l", False))
    routed = run_async(_sequential(web_sock, n, "b8", True))
    local = run_async(_sequential(owner_sock, n, "b8l", False))
    rtt = run_async(_nats_rtt(url, n))
    rates, floors = [], []
    for r in range(rounds):  # alternating, so a change in the machine's speed hits both
        rates.append(run_async(drive(web_sock, clients, seconds, reserving(f"b8c{r}", True))))
        floors.append(run_async(drive(owner_sock, clients, seconds, reserving(f"b8f{r}", False))))
    cleanups = api(web, "GET", "/health")["checks"]["routingCleanup"]["pending"]
    return {
        "figure": summary(routed),
        "floor": summary(local),
        "natsRoundTrip": summary(rtt),
        "rate": median([x["rate"] for x in rates]),
        "rateFloor": median([x["rate"] for x in floors]),
        "clients": clients,
        "errors": sum(x["errors"] for x in rates + floors),
        "firstError": next((x["firstError"] for x in rates + floors if x["firstError"]), None),
        "pendingCleanups": cleanups,
        "runs": {"routed": rates, "local": floors},
    }
