"""One simulated store: the agent's real service, replica and replication
pieces on a simulated disk, clock and link.

What runs is the agent's own code: ``InventoryService`` (every command, and
forwarding through the real ``NatsForwarder``), ``Replica``, the
``Replicator``'s ``apply`` and request handler (``rpc.handle``), the
``StreamConsumer``'s batch handling and validation, ``GapRepair``,
``PeerTable`` and ``Heartbeats``, the ``Router`` of routed reservations and
one pass at a time of its ``CleanupWorker``. The publisher's loop is the one piece
re-stated here (it awaits asyncio's ``gather``): it reads the real outbox and
marks what the hub acknowledged as published, as ``Publisher`` does.

A crash drops the process (every object here) and keeps the ``Disk``; a
restart builds everything again from the disk, as ``inv-agent`` does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.clocks import Clocks
from agent.config import NatsConfig
from agent.hlc import HybridLogicalClock
from agent.ledger import local
from agent.ledger.engine import Engine
from agent.ledger.local import Ledger
from agent.metrics import Metrics
from agent.replica import Replica, StreamPosition
from agent.routing.cleanup import CleanupWorker
from agent.routing.router import Router
from agent.service import InventoryService
from agent.sync import subjects
from agent.sync.consumer import resume_at
from agent.sync.forwarding import NatsForwarder
from agent.sync.presence import PeerTable
from agent.sync.replicator import Replicator
from tests.sim.ledger import Disk, SimLedgerStore
from tests.sim.loop import SimFuture, World
from tests.sim.network import Hub, SimLink

NETWORK = "sim"
EPOCH_MS = 1_790_000_000_000  # the simulated clocks start in 2026
PUBLISH_BATCH = 200
PUBLISH_TIMEOUT_MS = 2_000
FETCH_BATCH = 100


@dataclass
class Clock:
    """A store's wall clock: the world's time, an offset, a drift, and jumps."""

    world: World
    offset_ms: int = 0
    drift_ppm: int = 0

    def wall_ms(self) -> int:
        return EPOCH_MS + self.world.now + self.offset_ms + self.world.now * self.drift_ppm // 10**6

    def monotonic(self) -> float:
        return self.world.now / 1000


class Node:
    def __init__(
        self,
        world: World,
        hub: Hub,
        store_id: str,
        disk: Disk,
        clock: Clock,
        forward_timeout: float,
        busy_rate: float = 0.0,
        on_commit: Callable[[Node], None] | None = None,
    ) -> None:
        """``busy_rate``: how often a write waits behind a long one (0.1–3 s);
        ``on_commit``: called as each of this store's writes commits."""
        self.busy_rate = busy_rate
        self._on_commit = on_commit
        self._cleaning = False  # a cleanup pass is under way (the agent runs one at a time)
        self.late: list[str] = []  # forwarded commands applied after their asker gave up
        self.world, self.hub, self.store_id = world, hub, store_id
        self.disk, self.clock = disk, clock
        self.config = NatsConfig(
            servers=["nats://hub"], network=NETWORK, forward_timeout=forward_timeout
        )
        self.ids = itertools.count(1)
        self.incarnation = 0
        self.alive = False
        self.issued_hlcs: list[int] = []  # every stamp this store's events carried, in order
        self.start()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.incarnation += 1
        clocks = Clocks(wall_ms=self.clock.wall_ms, monotonic=self.clock.monotonic)
        store = SimLedgerStore(
            self.disk,
            self._busy if self.busy_rate else None,
            (lambda: self._on_commit(self)) if self._on_commit else None,
        )
        store_id = store.write_sync(local.bind_identity, self.store_id)
        hlc = HybridLogicalClock(last=store.read_sync(local.last_hlc), clock=self.clock.wall_ms)
        engine = Engine(
            store_id,
            hlc,
            wall_ms=self.clock.wall_ms,
            new_id=self._new_id,
            monotonic=self.clock.monotonic,
        )
        self.ledger = Ledger(store, store_id, hlc, engine)  # type: ignore[arg-type]
        self.link = SimLink(self.hub, self.store_id, NETWORK)
        self.peers = PeerTable(store_id, self.config.heartbeat_interval, clocks=clocks)
        outbox = asyncio.Event()
        forwarder = NatsForwarder(
            self.link,  # type: ignore[arg-type]
            NETWORK,
            self.config.forward_timeout,
            clocks=clocks,
        )
        self.service = InventoryService(
            self.ledger,
            reservation_ttl=60,
            outbox=outbox,
            forwarder=forwarder,
            freshness=self.peers.freshness,
        )
        budget_ms = int(self.config.forward_timeout * 1000)
        self.router = Router(self.service, budget_ms=budget_ms)
        self.cleanup = CleanupWorker(self.service, budget_ms=budget_ms)
        self._cleaning = False
        self.replica = Replica(self.ledger, outbox=outbox, snapshot_dir=Path("/nonexistent"))
        self.replicator = Replicator(
            self.config,
            self.link,  # type: ignore[arg-type]
            self.peers,
            self.replica,
            self.service,
            Metrics(),
            clocks=clocks,
        )
        self.alive = True
        self.hub.responders[self.store_id] = self._serve
        self.hub.listeners[self.store_id] = self.peers.heard
        # the agent makes its consumer afresh at start (at its checkpoint)
        self.hub.restart_consumer(self.store_id)
        self._consuming = False  # a batch (or the consumer's making) in hand: one at a time
        self.world.spawn(self._load_applied(), self._failed("start"))

    async def _load_applied(self) -> None:
        self.peers.applied = await self.replica.origins()

    def crash(self) -> None:
        """The process is gone: everything but the disk."""
        self.alive = False
        self.ledger.store.close()
        self.hub.responders.pop(self.store_id, None)
        self.hub.listeners.pop(self.store_id, None)
        self.world.note("crash", self.store_id)

    def power_loss(self) -> None:
        self.crash()
        self.disk.power_loss()
        self.world.note("power loss", self.store_id)

    async def _busy(self) -> None:
        if self.world.rng.random() < self.busy_rate:
            wait = SimFuture()
            self.world.at(self.world.rng.randint(100, 3000), lambda: wait.set_result(None))
            await wait

    def _new_id(self) -> str:
        return f"{self.store_id}-r{self.world.seed}-{self.incarnation}-{next(self.ids)}"

    def live(self, incarnation: int) -> bool:
        return self.alive and self.incarnation == incarnation

    # -------------------------------------------------------------- serving
    def _serve(self, op: str, data: bytes, reply: Any) -> None:
        """A request for this store, answered by the real handler; ``reply``
        sends the answer back (if this process still lives to send it)."""
        me = self.incarnation
        arrived = self.world.now

        async def answer() -> None:
            body = await self.replicator_request(op, data)
            self._judge_in_time(op, data, body, arrived)
            if self.live(me):
                reply(body)

        self.world.spawn(answer(), self._failed(f"rpc {op}"))

    def _judge_in_time(self, op: str, data: bytes, reply: bytes, arrived: int) -> None:
        """A forwarded command applied after its budget had run out: its asker
        had stopped waiting, so it holds stock nobody was told about."""
        if op not in ("reserve", "confirm", "cancel") and not op.startswith("transfer_"):
            return
        budget = json.loads(data).get("budgetMs")
        status = json.loads(reply).get("status", 500)
        if isinstance(budget, int) and status < 300 and self.world.now - arrived > budget:
            self.late.append(f"{op} applied {self.world.now - arrived} ms after it arrived")

    async def replicator_request(self, op: str, data: bytes) -> bytes:
        from agent.sync import rpc

        return await rpc.handle(self.service, self.replica, op, data, clocks=self.replicator.clocks)

    # ------------------------------------------------------ background work
    def tick_publish(self) -> None:
        """One pass of the outbox publisher."""
        if not self.alive or not self.link.connected:
            return
        me = self.incarnation
        batch = self.replica.unpublished(PUBLISH_BATCH)
        if not batch:
            return
        subject = subjects.events(NETWORK, self.store_id)
        acked: list[int] = []
        waiting = len(batch)

        def settled(seq: int, fut: SimFuture) -> None:
            nonlocal waiting
            waiting -= 1
            if fut.done() and fut._error is None:
                acked.append(seq)
            if waiting == 0 and acked and self.live(me):
                self.world.spawn(
                    self.replica.mark_published(sorted(acked)), self._failed("publish")
                )

        for seq, body in batch:
            fut = self.hub.publish(self.store_id, subject, body.encode(), f"{self.store_id}:{seq}")
            timer = SimFuture()
            fut._callbacks.append(lambda t=timer: t.set_result(None))
            self.world.at(PUBLISH_TIMEOUT_MS, lambda t=timer: t.set_result(None))
            timer._callbacks.append(lambda s=seq, f=fut: settled(s, f))

    def tick_consume(self) -> None:
        """One batch at a time, as ``StreamConsumer.run``."""
        if not self.alive or self._consuming:
            return
        if self.hub.connected(self.store_id) and self.hub.lost_place(self.store_id):
            self._consume(self._make_consumer())
            return
        msgs = self.hub.fetch(self.store_id, FETCH_BATCH)
        consumer = self.replicator.consumer
        consumer.idle = msgs is None
        if msgs:
            self._consume(consumer.handle(msgs))

    def _consume(self, work: Any) -> None:
        self._consuming = True
        me, failed = self.incarnation, self._failed("consume")

        def done(value: Any, error: BaseException | None) -> None:
            if self.live(me):
                self._consuming = False
            failed(value, error)

        self.world.spawn(work, done)

    async def _make_consumer(self) -> None:
        """``StreamConsumer.setup``'s decision, on the hub's state: resume at
        the ledger's checkpoint unless the stream is not the one it was taken
        on (the hub lost messages and numbered new ones over them)."""
        stream = self.config.stream
        position = await self.replica.stream_position(stream)
        start = 0
        if position is not None:
            kept = self.hub.message_at(position.seq)
            start = resume_at(
                position,
                created=position.created,
                last_seq=self.hub.last_seq,
                id_at_seq=kept.msg_id if kept else None,
            )
            if start != position.seq:
                await self.replica.set_stream_position(StreamPosition(stream, position.created, 0))
        self.hub.create_consumer(self.store_id, start)

    def tick_heartbeat(self) -> None:
        if self.alive and self.link.connected:
            self.world.spawn(self.replicator.heartbeats.beat(), self._failed("heartbeat"))

    def tick_repair(self) -> None:
        if self.alive and self.link.connected and self.replicator.consumer.idle:
            self.world.spawn(self.replicator.repair.check(), self._failed("repair"))

    def tick_release(self) -> None:
        if self.alive:
            self.world.spawn(self.replicator.release_held_back(), self._failed("release"))

    def tick_expire(self) -> None:
        if self.alive:
            self.world.spawn(self.service.expire_due(), self._failed("expire"))

    def tick_cleanup(self) -> None:
        """One pass of the routing cleanup task (never two at once, as in the agent)."""
        if not self.alive or self._cleaning:
            return
        self._cleaning = True
        me = self.incarnation
        failed = self._failed("cleanup")

        def done(value: Any, error: BaseException | None) -> None:
            if self.incarnation == me:
                self._cleaning = False
            failed(value, error)

        self.world.spawn(self.cleanup.run_once(), done)

    def _failed(self, what: str) -> Any:
        """How a background task of this process ended: an error is a failure
        of the run, unless the process it belonged to has crashed since (its
        tasks die with it; here they find the old ledger closed)."""
        me = self.incarnation

        def done(value: Any, error: BaseException | None) -> None:
            if error is not None and self.live(me):
                self.world.errors.append(f"{self.store_id} {what}: {error!r}")

        return done

    # ---------------------------------------------------------- inspection
    def read(self, fn: Any, *args: Any) -> Any:
        return fn(self.disk.conn, *args)

    def events_of_mine(self) -> list[tuple[int, int, str]]:
        rows = self.disk.conn.execute(
            "SELECT seq, hlc, body FROM events WHERE origin = ? ORDER BY seq", (self.store_id,)
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]


def event_key(body: str) -> str:
    """What identifies an event's content (its id names it; this is what it says)."""
    e = json.loads(body)
    return json.dumps([e["hlc"], e["type"], e["data"]], sort_keys=True)
