"""The replicator: starts and stops this agent's part in the network.

It owns the background tasks and puts the pieces together: the connection
(``link``), the stream and this store's identity in it (``identity``), the
outbox publisher, the stream consumer, heartbeats and the peer table
(``presence``), gap repair, catching up from a peer's snapshot (``catchup``,
``bootstrap``), and the request handler that
serves forwarded commands (``rpc``). Everything runs on the agent's event
loop; every write lands in SQLite first and waits in the outbox until it is
published, whether or not NATS is there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import nats.js.errors
import structlog
from nats.js import api

from agent import hlc
from agent.clocks import SYSTEM, Clocks
from agent.config import NatsConfig
from agent.metrics import Metrics
from agent.replica import Replica, StreamPosition
from agent.service import InventoryService
from agent.sync import bootstrap, identity, rpc, status, subjects, validate
from agent.sync.catchup import CatchUp
from agent.sync.consumer import StreamConsumer
from agent.sync.link import NatsLink
from agent.sync.presence import Heartbeats, PeerTable
from agent.sync.publisher import Publisher
from agent.sync.repair import GapRepair

log = structlog.get_logger("agent.sync")

# stream messages older than this are not deduplicated by Msg-Id
DUPLICATE_WINDOW = 120.0
# how often held-back events are tried again (seconds)
HELD_BACK_RETRY = 10.0


class Replicator:
    def __init__(
        self,
        config: NatsConfig,
        link: NatsLink,
        peers: PeerTable,
        replica: Replica,
        service: InventoryService,
        metrics: Metrics,
        *,
        clocks: Clocks = SYSTEM,
    ) -> None:
        """``service`` serves the commands other stores forward to this one."""
        self.clocks = clocks
        self.config = config
        self.link = link
        self.peers = peers
        self.replica = replica
        self.metrics = metrics
        self._service = service
        self._me = replica.store_id
        self._net = config.network
        skew = int(config.max_clock_skew * 1000)
        self._skew = skew
        self.publisher = Publisher(link, replica, metrics, self._net, lambda: self.publish_blocked)
        self.consumer = StreamConsumer(
            link,
            metrics,
            self.apply,
            replica,
            stream=config.stream,
            name=subjects.consumer_name(self._me),
            network=self._net,
            follow=[s for s in config.follow if s != self._me],
            max_skew_ms=skew,
            own_store=self._me,
            clocks=clocks,
        )
        self.heartbeats = Heartbeats(
            link, replica, metrics, self._net, config.heartbeat_interval, clocks=clocks
        )
        self.catchup = CatchUp(
            link,
            replica,
            peers,
            self.consumer,
            stream=config.stream,
            network=self._net,
            timeout=config.forward_timeout,
            clocks=clocks,
        )
        self.repair = GapRepair(
            link,
            replica,
            peers,
            self.apply,
            network=self._net,
            timeout=config.forward_timeout,
            max_skew_ms=skew,
            consumer_idle=lambda: self.consumer.idle,
            clocks=clocks,
            unreachable=self.catchup.origin_unreachable,
        )
        self.ready = False  # stream and consumer set up
        self.applied_total = 0
        self._identity: identity.Identity = identity.Identity()
        self._missed = False  # the stream dropped events before our consumer applied them
        self._tasks: list[asyncio.Task[Any]] = []
        self._requests: set[asyncio.Task[None]] = set()  # requests being served
        self._subs: list[Any] = []
        self._stopping = asyncio.Event()

    @property
    def publish_blocked(self) -> str | None:
        """Why our events must not be published (now), or None."""
        return self._identity.blocked or self.catchup.blocked

    @property
    def bootstrapped(self) -> dict[str, Any] | None:
        """The last snapshot restored (its peer and what it brought)."""
        return self.catchup.restored

    # --------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.peers.applied = await self.replica.origins()
        self._tasks.append(asyncio.create_task(self._run(), name="replicator"))

    async def stop(self) -> None:
        self._stopping.set()
        for task in (*self._tasks, *self._requests):
            task.cancel()
        for task in (*self._tasks, *self._requests):
            await _finish(task)
        await self.consumer.close()
        await self.link.close()

    def _spawn(self, loop: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._tasks.append(asyncio.create_task(self._guard(loop, name), name=name))

    async def _guard(self, loop: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        """A background loop that logs its errors and starts again; never dies silently."""
        while not self._stopping.is_set():
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.link.last_error = f"{name}: {exc}"
                self.metrics.sync_failures.labels(name).inc()
                log.exception("replication task failed; restarting", task=name)
                await asyncio.sleep(1.0)

    async def _run(self) -> None:
        await self.link.run(self._stopping)
        if self._stopping.is_set():
            return
        await self._setup()
        nc = self.link.nc
        self._subs.append(
            await nc.subscribe(subjects.rpc(self._net, self._me), cb=self._on_request)
        )
        self._subs.append(await nc.subscribe(subjects.heartbeat(self._net), cb=self._on_heartbeat))
        await self.catchup.start(self._identity.own_needed, self._missed)
        self.ready = True
        await self.release_held_back()
        self._spawn(self.publisher.run, "publisher")
        self._spawn(self.consumer.run, "consumer")
        self._spawn(self.heartbeats.run, "heartbeat")
        self._spawn(self.repair.run, "gap-repair")
        self._spawn(self._release_loop, "held-back")
        self._spawn(self.catchup.run, "catch-up")

    async def _setup(self) -> None:
        """The stream, this store's identity in it, and our consumer: retried until done."""
        while not self._stopping.is_set():
            try:
                await self._ensure_stream()
                self._identity = await identity.check(
                    self.link,
                    self.replica,
                    stream=self.config.stream,
                    network=self._net,
                    max_skew_ms=self._skew,
                    clocks=self.clocks,
                )
                await self.consumer.setup()
                self._missed = await self.consumer.missed()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.link.last_error = f"setup: {exc or exc.__class__.__name__}"
                log.warning("stream setup failed; retrying", error=self.link.last_error)
                await asyncio.sleep(1.0)

    async def _ensure_stream(self) -> None:
        """Create the stream, or bring an existing one to our subjects and
        ``stream_max_age`` (0: events are kept for ever)."""
        js, name, subject = self.link.js, self.config.stream, subjects.all_events(self._net)
        max_age = self.config.stream_max_age
        config = api.StreamConfig(
            name=name,
            subjects=[subject],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            num_replicas=self.config.stream_replicas,
            max_age=max_age,
            # the server refuses a dedup window longer than max_age
            duplicate_window=min(DUPLICATE_WINDOW, max_age) if max_age else DUPLICATE_WINDOW,
        )
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            log.info("stream created", stream=name, max_age=max_age)
            return
        have = info.config.subjects or []
        if subject not in have or (info.config.max_age or 0) != max_age:
            config.subjects = have if subject in have else [*have, subject]
            await js.update_stream(config)
            log.info("stream updated", stream=name, max_age=max_age)

    # ------------------------------------------------------------- applying
    async def apply(
        self,
        events: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
        position: StreamPosition | None = None,
    ) -> dict[str, int]:
        """Apply peers' events (and quarantine the rejected) in one transaction,
        with the stream checkpoint ``position`` of a batch read from the
        stream, then bring the peer table and the metrics up to date."""
        if not events and not rejected and position is None:
            # nothing to write (the consumer sends a batch of only our own
            # events with its position now and then, not every time)
            return {"applied": 0, "duplicates": 0, "quarantined": 0}
        applied = await self.replica.apply(events, rejected, position)
        result = applied.counts
        now = self.clocks.wall_ms()
        observe = self.metrics.replication_delay.observe
        last: dict[str, float] = {}  # per origin, its last event's delay (ms)
        count: dict[str, int] = {}
        for e in events:
            origin = e["origin"]
            last[origin] = delay = max(0.0, now - hlc.wall_ms(e["hlc"]))
            observe(delay / 1000)
            count[origin] = count.get(origin, 0) + 1
        # labelled metrics once per origin and batch: looking a label up costs
        # more than the update (a tenth of the event loop's catch-up time)
        for origin, delay in last.items():
            self.peers.peer(origin).last_delay_ms = delay
            self.metrics.events_applied.labels(origin).inc(count[origin])
            self.metrics.replication_lag.labels(origin).set(delay / 1000)
        for q in rejected:
            self.metrics.events_quarantined.labels(q["reason"]).inc()
        self.applied_total += result["applied"]
        self.peers.applied.update(applied.origins)
        return result

    async def release_held_back(self) -> int:
        """Apply the held-back events that pass the checks now (a newer
        schema we have learnt since, a stamp our clock has caught up with);
        how many were applied."""
        ready, ids = [], []
        now = self.clocks.wall_ms()
        for qid, body in await self.replica.held_back():
            try:
                origin = str(json.loads(body).get("origin"))
            except (ValueError, AttributeError):
                continue  # kept cut at 64 KiB, or not an object: stays listed
            if origin == self._me:
                continue  # never ours to apply: this store is its only writer
            checked = validate.check(
                subjects.events(self._net, origin), body.encode(), now, self._skew
            )
            if not isinstance(checked, validate.Rejected):
                ready.append(checked)
                ids.append(qid)
        if ready:
            await self.apply(ready, [])
            await self.replica.release(ids)
            log.info("held-back events applied", count=len(ready))
        return len(ready)

    async def _release_loop(self) -> None:
        while True:
            await asyncio.sleep(HELD_BACK_RETRY)
            await self.release_held_back()

    # -------------------------------------------------------------- requests
    async def _on_request(self, msg: Any) -> None:
        """Serve each request in a task of its own. nats-py awaits a
        subscription's callback before it hands over the next message: served
        inline, one request waiting on a busy writer (behind a long import)
        held back every request after it, and their deadlines started only
        when their turn came, long after their askers had given up."""
        task = asyncio.create_task(self.answer(msg), name="rpc-request")
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def answer(self, msg: Any) -> None:
        """Serve one request and send its reply (if anyone waits for it)."""
        op = msg.subject.rsplit(".", 1)[-1]
        if op == "snapshot":
            reply = await bootstrap.serve(self.link, self.replica, self._net)
        else:
            reply = await rpc.handle(self._service, self.replica, op, msg.data, clocks=self.clocks)
        if not msg.reply:
            return
        try:
            await msg.respond(reply)
        except Exception as exc:
            # the asker will time out and tell its user the outcome is unknown
            self.metrics.sync_failures.labels("respond").inc()
            log.warning("reply not sent", op=op, error=str(exc), exc_info=True)

    async def _on_heartbeat(self, msg: Any) -> None:
        self.peers.heard(msg.subject, msg.data)

    # ---------------------------------------------------------------- status
    def health(self) -> dict[str, Any]:
        return status.health(self.link, self.publish_blocked)

    async def status(self) -> dict[str, Any]:
        return await status.report(self)


async def _finish(task: asyncio.Task[Any]) -> None:
    """Wait for a cancelled task to end. A cancellation can be lost inside a
    library: Python 3.11's asyncio.wait_for drops it when the inner call ends
    at the same moment, and nats-py's connect() then retries a dead server
    forever. Ask again until the task ends (bounded: never hang the shutdown)."""
    for _ in range(20):
        if task.done():
            break
        await asyncio.wait({task}, timeout=0.25)
        task.cancel()
    if not task.done():
        log.error("replication task did not stop", task=task.get_name())
        return
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("replication task ended with an error", task=task.get_name())
