"""B4: a write acknowledged at one agent → readable at a peer, beside the
floor of NATS one-way delivery (publish → subscriber) on the same server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats

from benchmarks.common import UdsHttp, summary


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


async def write_to_visible(sock_a: str, sock_b: str, sku: str, samples: int) -> list[float]:
    a = await UdsHttp(sock_a).connect()
    b = await UdsHttp(sock_b).connect()
    path_b = f"/api/v1/products/{sku}/availability?storeId=store-001"
    out = []
    for i in range(samples):
        status, body = await a.request(
            "POST", f"/api/v1/products/{sku}/stock", {"operation": "set", "quantity": 1000 + i}
        )
        acked = time.perf_counter()
        assert status == 202, body
        target = 1000 + i
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


def run(nats_url: str, sock_a: str, sock_b: str, samples: int = 300) -> dict[str, Any]:
    floor = summary(asyncio.run(nats_one_way(nats_url, samples)))
    figure = summary(asyncio.run(write_to_visible(sock_a, sock_b, "PROD-002", samples)))
    return {"figure": figure, "floor": floor}
