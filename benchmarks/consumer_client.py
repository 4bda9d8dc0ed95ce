"""One process holding N stores' consumers of the agents' stream, in one of
the designs ``consumers`` compares (run by it: ``python -m
benchmarks.consumer_client DESIGN URL[,URL...] N REPLICAS``). Each store
has its own NATS connection (store i to URL i mod the number of URLs), as
each agent has. On ``bench.ctl.<design>`` it answers how long creating the
consumers took and how many messages each store has received; ``go`` starts
the creation (so that designs are created one at a time), ``stop`` ends it.

- ``durable``: the agent before the checkpointed consumer: a durable pull
  consumer per store (``durable_config``), fetch 500 with a 1 s expiry, one
  ack per batch (AckPolicy.ALL).
- ``ordered``: nats-py's ordered push consumer (ephemeral, AckNone, memory
  storage, flow control, idle heartbeats) started at the store's checkpoint.
- ``acknone``: what the agent runs now: an ephemeral AckNone pull consumer
  (memory storage, one replica, removed by the server 30 s after its client
  went away) started at the checkpoint (``agent.sync.consumer.consumer_config``),
  fetched like the durable; recreated from the checkpoint if the server lost it.

The checkpoint is the last stream sequence the store has applied, kept by the
client (here in memory; the agent keeps it in its ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from agent.sync import subjects
from agent.sync.consumer import FETCH_BATCH, consumer_config

STREAM = "INVENTORY"
NETWORK = "default"
CONTROL = "bench.ctl"
DESIGNS = ("durable", "ordered", "acknone")


@dataclass
class Store:
    name: str
    nc: Any
    received: int = 0
    checkpoint: int = 0  # the last stream seq received (the agent: applied)
    psub: Any = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def got(self, msgs: list[Any]) -> None:
        self.received += len(msgs)
        self.checkpoint = msgs[-1].metadata.sequence.stream


def stream_config(replicas: int = 1) -> api.StreamConfig:
    """The agents' stream (``Replicator._ensure_stream``)."""
    return api.StreamConfig(
        name=STREAM,
        subjects=[subjects.all_events(NETWORK)],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        num_replicas=replicas,
        duplicate_window=120.0,
    )


def durable_config(durable: str) -> api.ConsumerConfig:
    """The durable consumer agents made before the checkpointed one."""
    return api.ConsumerConfig(
        durable_name=durable,
        name=durable,
        ack_policy=api.AckPolicy.ALL,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_wait=30.0,
        max_ack_pending=20000,
        max_deliver=-1,
        filter_subject=subjects.all_events(NETWORK),
    )


async def _fetch_loop(store: Store, ack: bool, recreate: Any) -> None:
    """The agent's loop (``StreamConsumer.run``): fetch, count, ack the last."""
    while True:
        try:
            msgs = await asyncio.wait_for(store.psub.fetch(FETCH_BATCH, timeout=1.0), 5.0)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        except nats.js.errors.NotFoundError:
            await recreate(store)  # only an ephemeral consumer goes away
            continue
        except nats.errors.Error:
            await asyncio.sleep(0.5)
            continue
        if not msgs:
            continue
        store.got(msgs)
        if ack:
            await msgs[-1].ack()


async def _durable(store: Store) -> None:
    js = store.nc.jetstream()
    durable = subjects.consumer_name(store.name)
    await js.add_consumer(STREAM, durable_config(durable))
    store.psub = await js.pull_subscribe_bind(durable=durable, stream=STREAM)
    store.tasks.append(asyncio.create_task(_fetch_loop(store, True, _durable)))


async def _acknone(store: Store) -> None:
    js = store.nc.jetstream()
    name = subjects.consumer_name(store.name)
    if store.psub is not None:  # made again: its start cannot be moved
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(STREAM, name)
    info = await js.add_consumer(STREAM, consumer_config(name, NETWORK, [], store.checkpoint))
    if store.psub is not None:
        with contextlib.suppress(Exception):
            await store.psub.unsubscribe()
    store.psub = await js.pull_subscribe_bind(consumer=info.name, stream=STREAM)
    if not store.tasks:
        store.tasks.append(asyncio.create_task(_fetch_loop(store, False, _acknone)))


async def _ordered(store: Store) -> None:
    js = store.nc.jetstream()

    async def on_msg(msg: Any) -> None:
        store.got([msg])

    store.psub = await js.subscribe(
        subjects.all_events(NETWORK),
        stream=STREAM,
        ordered_consumer=True,
        cb=on_msg,
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
        config=api.ConsumerConfig(opt_start_seq=store.checkpoint + 1),
    )


async def _add_stream(js: Any, replicas: int) -> None:
    """Create the stream; a cluster that has just started may not have a
    JetStream leader yet (503 "temporarily unavailable"): try again."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await js.add_stream(stream_config(replicas))
            return
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


MAKERS = {"durable": _durable, "ordered": _ordered, "acknone": _acknone}


async def main(design: str, urls: list[str], n: int, replicas: int) -> None:
    """Connect every store, wait for ``go``, create the consumers (timed),
    then consume until ``stop``."""
    conns = [
        await nats.connect(urls[i % len(urls)], ping_interval=2, max_outstanding_pings=2)
        for i in range(n)
    ]
    stores = [Store(f"store-{i:03d}", nc) for i, nc in enumerate(conns, 1)]
    go, stop = asyncio.Event(), asyncio.Event()
    created: float | None = None

    async def on_control(msg: Any) -> None:
        counts = [s.received for s in stores]
        await msg.respond(json.dumps({"created": created, "received": counts}).encode())
        if msg.data == b"go":
            go.set()
        elif msg.data == b"stop":
            stop.set()

    await conns[0].subscribe(f"{CONTROL}.{design}", cb=on_control)
    await go.wait()
    await _add_stream(conns[0].jetstream(), replicas)
    make = MAKERS[design]
    start = time.perf_counter()
    for store in stores:
        await make(store)
    created = time.perf_counter() - start
    await stop.wait()
    # fetches cut short by the shutdown: nothing to report about them
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    tasks = [t for s in stores for t in s.tasks]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for nc in conns:
        with contextlib.suppress(Exception):
            await nc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4])))
