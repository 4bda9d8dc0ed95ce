"""B2: reservation throughput over the Unix socket (16 clients, each reserving
one unit then confirming it), beside the same agent's GET /health rate driven
by the same load generator. B7: bursts of 100 concurrent reservations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    Agent,
    UdsHttp,
    api,
    drive,
    health_work,
    median,
    run_async,
    summary,
)

SKU = "BENCH-RES"


def prepare(agent: Agent, stock: int = 10_000_000) -> None:
    api(agent, "POST", "/api/v1/products", {"sku": SKU, "name": "Reservation bench"})
    api(agent, "POST", f"/api/v1/products/{SKU}/stock", {"operation": "set", "quantity": stock})


def reserve_confirm(tag: str) -> Any:
    async def work(conn: UdsHttp, i: int, n: int) -> int:
        rid = f"{tag}-{i}-{n}"
        status, body = await conn.request(
            "POST", "/api/v1/reservations", {"reservationId": rid, "productId": SKU, "quantity": 1}
        )
        if status != 202:
            raise RuntimeError(f"reserve answered {status}: {body[:200]!r}")
        status, body = await conn.request("POST", f"/api/v1/reservations/{rid}/confirm", {})
        if status != 200:
            raise RuntimeError(f"confirm answered {status}: {body[:200]!r}")
        return 2

    return work


def throughput(
    agent: Agent,
    clients: int = 16,
    seconds: float = 3.0,
    rounds: int = 5,
    settle: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Rounds of /health and of reserve + confirm, the median of each.

    With ``settle`` (on NATS: wait for the outbox to drain, since /health
    counts it) the rounds alternate, health then reservations, so a change in
    the machine's speed during the run hits both alike. Without it (a
    standalone agent, whose outbox nothing drains and whose /health therefore
    slows with every write) the /health rounds all come first, before any write."""
    sock = str(agent.socket)
    health, reserve = [], []
    run_async(drive(sock, clients, 1.0, health_work))  # warm up
    if settle is None:
        for _ in range(rounds):
            health.append(run_async(drive(sock, clients, seconds, health_work)))
    run_async(drive(sock, clients, 1.0, reserve_confirm("warm")))
    for r in range(rounds):
        if settle is not None:
            settle()
            health.append(run_async(drive(sock, clients, seconds, health_work)))
            settle()
        reserve.append(run_async(drive(sock, clients, seconds, reserve_confirm(f"b2r{r}"))))
    return {
        "figure": median([x["rate"] for x in reserve]),
        "floor": median([x["rate"] for x in health]),
        "errors": sum(x["errors"] for x in reserve + health),
        "firstError": next((x["firstError"] for x in reserve + health if x["firstError"]), None),
        "generatorCpuHealth": median([x["generatorCpu"] for x in health]),
        "generatorCpuReserve": median([x["generatorCpu"] for x in reserve]),
        "runs": {"health": health, "reserve": reserve},
    }


async def _burst(sock: str, size: int, tag: str) -> tuple[list[float], list[str]]:
    conns = [await UdsHttp(sock).connect() for _ in range(size)]
    latencies: list[float] = []
    errors: list[str] = []

    async def one(i: int) -> None:
        start = time.perf_counter()
        try:
            status, body = await conns[i].request(
                "POST",
                "/api/v1/reservations",
                {"reservationId": f"{tag}-{i}", "productId": SKU, "quantity": 1},
            )
            if status != 202:
                errors.append(f"HTTP {status}: {body[:200]!r}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies.append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(one(i) for i in range(size)))
    for c in conns:
        await c.close()
    return latencies, errors


def burst(agent: Agent, size: int = 100, rounds: int = 5) -> dict[str, Any]:
    sock = str(agent.socket)
    latencies: list[float] = []
    errors: list[str] = []
    run_async(_burst(sock, size, "b7warm"))
    for r in range(rounds):
        lat, err = run_async(_burst(sock, size, f"b7r{r}"))
        latencies += lat
        errors += err
        time.sleep(0.2)
    return {
        "latency": summary(latencies),
        "size": size,
        "rounds": rounds,
        "requests": size * rounds,
        "answered": len(latencies),
        "errors": len(errors),
        "firstError": errors[0] if errors else None,
    }
