"""B9: HQ ingest, end to end. 200,000 events from 20 stores (receipts and
sales, product edits, reservations made and confirmed or cancelled, as the
agents write them) are published to a real nats-server; then the projector
loop (``agent.hq.runner.Runner``: the code of ``inv-hq run``, in this
process) consumes them into a real PostgreSQL. Figure: events per second
from the runner's start until the read model's checkpoint is the stream's
last seq.

Floor, in the same run, on the same server and stream: a bare pull consumer
(the projector's own fetch, ``agent.sync.pull.Puller``, of the same batch
size; AckAll, an ack per batch) that COPYs the same events as rows (origin,
seq, hlc, type, body) into a plain table, one transaction per batch: the
least any ingest must do. For reference, the same floor with nats-py's own
``PullSubscription.fetch`` (what the agents' consumer uses) is measured too.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
from collections.abc import Iterator
from typing import Any

import nats
import psycopg
from nats.js import api

from agent import hlc
from agent.config import NatsConfig
from agent.hq.config import HqConfig
from agent.hq.runner import Runner
from agent.sync import subjects
from agent.sync.pull import Puller
from tests.helpers import short_tmpdir
from tests.natsfix import NatsServer
from tests.pgfix import start_server

STREAM, NETWORK = "INVENTORY", "default"
BASE_MS = hlc.now_ms() - 3_600_000  # an hour ago: nothing is ahead of the clock


def workload(stores: int, per_store: int, seed: int = 9) -> Iterator[tuple[str, str, bytes]]:
    """(subject, msg id, payload) of every store's events, interleaved as a
    live network publishes them."""
    rng = random.Random(seed)
    skus = [f"SKU-{n:04d}" for n in range(500)]
    names = [f"s{n:03d}" for n in range(stores)]
    pending: dict[str, list[dict[str, Any]]] = {s: [] for s in names}
    for seq in range(1, per_store + 1):
        for i, store in enumerate(names):
            stamp = hlc.pack(BASE_MS + seq * 10 + i, 0)
            data, kind = _event(rng, store, seq, stamp, skus, pending[store])
            body = {
                "id": f"{store}:{seq}",
                "origin": store,
                "seq": seq,
                "hlc": stamp,
                "type": kind,
                "schemaVersion": 1,
                "data": data,
            }
            yield subjects.events(NETWORK, store), f"{store}:{seq}", json.dumps(body).encode()


def _event(
    rng: random.Random,
    store: str,
    seq: int,
    stamp: int,
    skus: list[str],
    pending: list[dict[str, Any]],
) -> tuple[dict[str, Any], str]:
    roll = rng.random()
    sku = rng.choice(skus)
    if roll < 0.05:
        fields = {"name": f"Product {sku}", "price": round(rng.uniform(1, 500), 2)}
        return {"sku": sku, "fields": fields}, "product.upserted"
    if roll < 0.15 or (roll < 0.25 and pending):
        wall = hlc.wall_ms(stamp)
        if pending and roll >= 0.10:
            r = pending.pop(0)
            status = "CONFIRMED" if rng.random() < 0.7 else "CANCELLED"
            r = {**r, "status": status, "updatedAtMs": wall}
            data: dict[str, Any] = {"reservation": r}
            if status == "CONFIRMED":
                data["movement"] = _movement(r["sku"], store, "sell", -r["quantity"])
            return data, "reservation.changed"
        r = {
            "id": f"r-{store}-{seq}",
            "sku": sku,
            "storeId": store,
            "quantity": rng.randint(1, 3),
            "status": "PENDING",
            "expiresAtMs": wall + 600_000,
            "createdAtMs": wall,
            "updatedAtMs": wall,
            "customerId": f"c{rng.randint(1, 999)}",
            "orderId": None,
        }
        pending.append(r)
        return {"reservation": r}, "reservation.changed"
    if roll < 0.7:
        return _movement(sku, store, "receive", rng.randint(1, 20)), "stock.movement"
    return _movement(sku, store, "sell", -rng.randint(1, 3)), "stock.movement"


def _movement(sku: str, store: str, kind: str, quantity: int) -> dict[str, Any]:
    return {
        "sku": sku,
        "storeId": store,
        "kind": kind,
        "quantity": quantity,
        "reason": "bench",
        "actor": "bench",
    }


async def publish(url: str, items: list[tuple[str, str, bytes]]) -> float:
    """Make the agents' stream and publish every event to it: seconds."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30)
    await js.add_stream(
        api.StreamConfig(
            name=STREAM,
            subjects=[subjects.all_events(NETWORK)],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            duplicate_window=120.0,
        )
    )
    start = time.perf_counter()
    futures = []
    for subject, msg_id, payload in items:
        futures.append(
            await js.publish_async(subject, payload, headers={"Nats-Msg-Id": msg_id}, wait_stall=30)
        )
    await asyncio.gather(*futures)
    seconds = time.perf_counter() - start
    state = (await js.stream_info(STREAM)).state
    assert state.messages == len(items), state
    await nc.close()
    return seconds


async def _fetcher(nc: Any, js: Any, name: str, batch: int, nats_py: bool) -> Any:
    """A ``fetch()`` of the next batch of consumer ``name``."""
    if nats_py:
        psub = await js.pull_subscribe_bind(durable=name, stream=STREAM)

        async def fetch_natspy() -> list[Any]:
            return list(await psub.fetch(batch, timeout=5))

        return fetch_natspy
    puller = Puller(nc, STREAM, name, contiguous=True)
    await puller.start()

    async def fetch() -> list[Any]:
        return await puller.fetch(batch, 5.0)

    return fetch


async def floor(
    url: str, dsn: str, total: int, batch: int, *, nats_py: bool = False
) -> dict[str, float]:
    """A bare pull consumer + COPY into a plain table: seconds, split.
    ``nats_py``: fetch with nats-py's PullSubscription instead of ``Puller``."""
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=30)
    name = "bench-floor-natspy" if nats_py else "bench-floor"
    await js.add_consumer(
        STREAM,
        api.ConsumerConfig(
            durable_name=name,
            ack_policy=api.AckPolicy.ALL,
            max_ack_pending=-1,
            filter_subject=subjects.all_events(NETWORK),
        ),
    )
    fetch = await _fetcher(nc, js, name, batch, nats_py)
    table = name.replace("-", "_")
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(
        f"CREATE TABLE {table} (origin text, seq bigint, hlc bigint, type text, body jsonb, "
        "PRIMARY KEY (origin, seq))"
    )
    fetching = copying = 0.0
    got = 0
    start = time.perf_counter()
    while got < total:
        t0 = time.perf_counter()
        msgs = await fetch()
        t1 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor().copy(f"COPY {table} (origin, seq, hlc, type, body) FROM STDIN") as copy,
        ):
            for msg in msgs:
                e = json.loads(msg.data)
                copy.write_row((e["origin"], e["seq"], e["hlc"], e["type"], msg.data.decode()))
        t2 = time.perf_counter()
        await msgs[-1].ack()
        fetching += t1 - t0
        copying += t2 - t1
        got += len(msgs)
    seconds = time.perf_counter() - start
    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert count is not None and count[0] == total, count
    conn.close()
    await nc.close()
    return {"seconds": seconds, "fetchSeconds": fetching, "copySeconds": copying}


async def projector(url: str, dsn: str, last_seq: int, batch: int) -> dict[str, Any]:
    """The projector loop of ``inv-hq run`` until the checkpoint is ``last_seq``."""
    cfg = HqConfig(
        dsn=dsn,
        schema="bench_hq",
        fetch_batch=batch,
        log_level="warning",
        nats=NatsConfig(servers=[url], network=NETWORK, stream=STREAM),
    )
    runner = Runner(cfg)
    stopping = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(runner.run(stopping))
    while not (runner.pump and runner.start):
        await asyncio.sleep(0.005)
    ready = time.perf_counter() - start
    pump = runner.pump
    while pump.totals.received < last_seq and not task.done():
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - start
    stopping.set()
    await task
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT stream_seq FROM bench_hq.checkpoint").fetchone()
        events = conn.execute("SELECT count(*) FROM bench_hq.events").fetchone()
    assert row is not None and row[0] == last_seq, row
    assert events is not None and events[0] == last_seq, events
    return {
        "seconds": seconds,
        "readyAfter": ready,
        "batches": pump.totals.batches,
        "applied": pump.totals.applied,
        "duplicates": pump.totals.duplicates,
        "quarantined": pump.totals.quarantined,
        "commitSeconds": pump.totals.commit_seconds,
    }


def ingest(
    stores: int = 20, per_store: int = 10_000, batch: int = HqConfig.fetch_batch
) -> dict[str, Any]:
    from agent import logs

    logs.configure("warning", "console")
    server = NatsServer().start()
    home = short_tmpdir()
    pg, dsn = start_server(home)
    try:
        items = list(workload(stores, per_store))
        total = len(items)
        published = asyncio.run(publish(server.url, items))
        flo = asyncio.run(floor(server.url, dsn, total, batch))
        fig = asyncio.run(projector(server.url, dsn, total, batch))
        natspy = asyncio.run(floor(server.url, dsn, total, batch, nats_py=True))
    finally:
        pg.cleanup()  # type: ignore[attr-defined]
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)
    return {
        "events": total,
        "stores": stores,
        "batch": batch,
        "publishSeconds": round(published, 2),
        "figure": total / fig["seconds"],
        "floor": total / flo["seconds"],
        "projector": {k: round(v, 3) if isinstance(v, float) else v for k, v in fig.items()},
        "floorParts": {k: round(v, 3) for k, v in flo.items()},
        "floorNatsPyFetch": total / natspy["seconds"],
        "floorNatsPyFetchParts": {k: round(v, 3) for k, v in natspy.items()},
    }


if __name__ == "__main__":
    import sys

    quick = "--quick" in sys.argv
    print(json.dumps(ingest(per_store=1000 if quick else 10_000), indent=2))
