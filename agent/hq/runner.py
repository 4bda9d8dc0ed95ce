"""``inv-hq run``: the projector process, put together.

A session: take the lock (waiting while another projector holds it), open
the read model (migrated to this version), connect to NATS (retrying while
it is away), set up the consumer from the checkpoint, then run the pump, gap
repair and the lock's watch until one of them ends. A lost lock, a lost
PostgreSQL or a failed task ends the session; the process starts another
(waiting for the lock again) until it is told to stop. PostgreSQL that
cannot be reached when the process starts is an error, not a wait: a wrong
host is said at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import psycopg
import structlog

from agent.hq import lock as lock_mod
from agent.hq import pg
from agent.hq import source as source_mod
from agent.hq.config import HqConfig
from agent.hq.inbox import Inbox
from agent.hq.pump import AfterCommit, Pump
from agent.hq.repair import Repair
from agent.hq.sink import BatchOutcome, ReadModel, Sink
from agent.hq.source import Source, Start
from agent.metrics import Metrics
from agent.sync import subjects
from agent.sync.link import NatsLink
from agent.sync.presence import PeerTable

log = structlog.get_logger("agent.hq")

# (connection, schema) -> the read model, migrated
OpenModel = Callable[[psycopg.Connection[Any], str], ReadModel]
NATS_LOG_EVERY = 10.0  # seconds between "not reachable" lines
RETRY_SESSION = 2.0  # seconds before a new session after a failed one
# How long a thread may keep the GIL while another waits for it (Python's
# default: 5 ms). The projector's thread wakes many times a batch for a
# moment (PostgreSQL answered); with the event loop checking the next batch
# meanwhile, each wake waited up to 5 ms, and PostgreSQL with it: B9 ingest
# measured about 15 % faster at 1 ms.
SWITCH_INTERVAL = 0.001
# test-only (tests/test_hq_process.py): a file path; after the first COMMIT
# that applied events the process writes the checkpoint there and stops
# before the ack, to be killed in the window between the two
PAUSE_ENV = "INV_HQ_TEST_PAUSE_AFTER_COMMIT"


def open_read_model(conn: psycopg.Connection[Any], schema: str) -> ReadModel:
    from agent.hq.projector import Projector
    from agent.hq.schema import migrate

    migrate(conn, schema)
    return Projector(conn, schema)


async def _no_hook(outcome: BatchOutcome, checkpoint: int) -> None:
    return None


def pause_hook(env: dict[str, str]) -> AfterCommit:
    """The test-only pause between COMMIT and ack (``PAUSE_ENV``), if asked for."""
    path = env.get(PAUSE_ENV)
    if not path:
        return _no_hook

    async def pause(outcome: BatchOutcome, checkpoint: int) -> None:
        if outcome.applied:
            Path(path).write_text(f"{checkpoint}\n")
            log.warning("paused after COMMIT, before the ack (test hook)", checkpoint=checkpoint)
            await asyncio.Event().wait()

    return pause


class Runner:
    def __init__(
        self,
        cfg: HqConfig,
        *,
        open_model: OpenModel = open_read_model,
        after_commit: AfterCommit | None = None,
    ) -> None:
        assert cfg.dsn, "checked by the caller"
        self.cfg = cfg
        self._dsn = cfg.dsn
        self._open_model = open_model
        self._after_commit = after_commit or pause_hook(dict(os.environ))
        self.pump: Pump | None = None  # of the current session
        self.repair: Repair | None = None
        self.start: Start | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Sessions until ``stopping``. PgError if PostgreSQL can't be reached
        at first (a wrong host or password is said at once, not retried)."""
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL))
        try:
            await self._sessions(stopping)
        finally:
            sys.setswitchinterval(switch)

    async def _sessions(self, stopping: asyncio.Event) -> None:
        first = True
        while not stopping.is_set():
            lock = lock_mod.ProjectorLock(
                self._dsn, self.cfg.schema, self.cfg.nats.network, poll=self.cfg.lock_poll
            )
            try:
                if not await lock.take(stopping):
                    return
                await self.session(lock, stopping)
            except (source_mod.ConsumerGone, source_mod.DeliveryGap) as exc:
                log.warning("the consumer must be made again; starting again", error=str(exc))
            except (psycopg.OperationalError, pg.PgError, lock_mod.LockLost) as exc:
                if first and not lock.reached:
                    raise pg.PgError(
                        f"PostgreSQL not reachable at {pg.redact(self._dsn)}: {exc}"
                    ) from exc
                log.warning("projecting stopped; starting again", error=str(exc))
            except Exception:
                log.exception("projecting failed; starting again")
            finally:
                first = False
                await lock.close()
            await _sleep_unless(stopping, RETRY_SESSION)

    async def session(self, lock: lock_mod.ProjectorLock, stopping: asyncio.Event) -> None:
        """Project while holding ``lock``; return when it is lost or on ``stopping``."""
        cfg = self.cfg
        conn = await asyncio.to_thread(pg.connect, self._dsn)
        key, pid = lock.key, lock.pid
        poster: psycopg.Connection[Any] | None = None
        sink: Sink | None = None
        link = NatsLink(
            cfg.nats,
            f"hq-{cfg.nats.network}",
            Metrics(),
            asyncio.Event(),
            client_name=f"inv-hq {cfg.nats.network}/{cfg.schema}",
        )
        source = Source(
            link,
            stream=cfg.nats.stream,
            network=cfg.nats.network,
            durable=cfg.durable,
            batch=cfg.fetch_batch,
        )
        tasks: list[asyncio.Task[Any]] = []
        try:
            model = await asyncio.to_thread(self._open_model, conn, cfg.schema)
            poster = await asyncio.to_thread(pg.connect, self._dsn, "inv-hq inbox")
            inbox = Inbox(poster, cfg.schema)
            await asyncio.to_thread(inbox.clear)  # the lock is held: nobody else posts
            sink = Sink(model, fence=lambda: lock_mod.fence(conn, key, pid), inbox=inbox)
            watch = asyncio.create_task(lock.watch(), name="hq-lock-watch")
            tasks.append(watch)
            if not await self._connect(link, stopping, watch):
                return
            self.start = await self._setup(source, sink, stopping, watch)
            if self.start is None:
                return
            await self._project(link, source, sink, stopping, tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await source.close()
            await link.close()
            if sink is not None:
                await asyncio.to_thread(sink.close)
            if poster is not None:
                await asyncio.to_thread(poster.close)
            await asyncio.to_thread(conn.close)

    async def _connect(self, link: NatsLink, stopping: asyncio.Event, watch: Any) -> bool:
        """Connect to NATS, saying so while it is away: connected?"""
        connecting = asyncio.create_task(link.run(stopping), name="hq-nats-connect")
        try:
            while not link.connected:
                if stopping.is_set() or watch.done():
                    return False
                await asyncio.wait(
                    {connecting, watch}, timeout=NATS_LOG_EVERY, return_when=asyncio.FIRST_COMPLETED
                )
                if not link.connected and not stopping.is_set() and not watch.done():
                    log.warning("nats not reachable; retrying", error=link.last_error)
            return True
        finally:
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connecting

    async def _setup(
        self, source: Source, sink: Sink, stopping: asyncio.Event, watch: Any
    ) -> Start | None:
        """The consumer, from the checkpoint; retried (the stream may not exist yet)."""
        said = False
        while not stopping.is_set() and not watch.done():
            try:
                return await source.setup(await sink.checkpoint())
            except (psycopg.Error, lock_mod.LockLost):
                raise
            except Exception as exc:
                if not said:
                    log.warning(
                        "the events stream is not usable yet; retrying",
                        stream=self.cfg.nats.stream,
                        error=str(exc) or type(exc).__name__,
                    )
                    said = True
                await _sleep_unless(stopping, 1.0)
        return None

    async def _project(
        self,
        link: NatsLink,
        source: Source,
        sink: Sink,
        stopping: asyncio.Event,
        tasks: list[asyncio.Task[Any]],
    ) -> None:
        cfg = self.cfg
        assert self.start is not None
        skew = int(cfg.nats.max_clock_skew * 1000)
        pump = Pump(
            source,
            sink,
            network=cfg.nats.network,
            max_skew_ms=skew,
            after_commit=self._after_commit,
        )
        peers = PeerTable("", cfg.nats.heartbeat_interval)

        async def heard(msg: Any) -> None:
            peers.heard(msg.subject, msg.data)

        sub = await link.nc.subscribe(subjects.heartbeat(cfg.nats.network), cb=heard)
        repair = Repair(
            link,
            sink,
            peers,
            network=cfg.nats.network,
            timeout=cfg.nats.forward_timeout,
            max_skew_ms=skew,
            idle=lambda: pump.idle,
        )
        self.pump, self.repair = pump, repair
        log.info("projecting", schema=cfg.schema, network=cfg.nats.network, consumer=source.durable)
        loops: list[Coroutine[Any, Any, Any]] = [pump.run(), repair.run(), stopping.wait()]
        tasks += [asyncio.create_task(c) for c in loops]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            try:
                await sub.unsubscribe()
            except Exception:
                # the session ends anyway; its subscription dies with the connection
                log.warning("heartbeat subscription not closed", exc_info=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
