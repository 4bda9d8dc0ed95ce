"""What ``inv-hq status``, ``verify`` and ``rebuild`` do, apart from their
flags and output (``agent.hq.main``): each opens what it needs, does its one
thing, and closes it. Failures a person can act on are ``HqError``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from agent.clocks import wall_now_ms
from agent.hq import lock as lock_mod
from agent.hq import pg, reads, status, verify
from agent.hq.config import HqConfig
from agent.hq.sink import ReadModel
from agent.metrics import Metrics
from agent.sync.link import NatsLink

EXIT_OTHER, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 5


class HqError(Exception):
    def __init__(self, message: str, code: int = EXIT_OTHER) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@contextlib.contextmanager
def _postgres(cfg: HqConfig) -> Any:
    """A connection to the read model's database, or HqError."""
    try:
        conn = pg.connect(pg.check_dsn(cfg.dsn))
    except pg.PgError as exc:
        raise HqError(exc.message, EXIT_USAGE if exc.usage else EXIT_UNREACHABLE) from exc
    try:
        yield conn
    except psycopg.OperationalError as exc:
        raise HqError(f"PostgreSQL failed: {exc}", EXIT_UNREACHABLE) from exc
    finally:
        conn.close()


def _existing_model(conn: psycopg.Connection[Any], cfg: HqConfig) -> ReadModel:
    """The read model, as it is (not migrated: a look changes nothing)."""
    if not reads.has_read_model(conn, cfg.schema):
        raise HqError(
            f"there is no HQ read model in schema {cfg.schema!r} at {pg.redact(cfg.dsn or '')}; "
            "start one with: inv-hq run"
        )
    from agent.hq.projector import Projector

    try:
        return Projector(conn, cfg.schema)
    except RuntimeError as exc:  # a read model of another version: run migrates it
        raise HqError(str(exc)) from exc


@contextlib.asynccontextmanager
async def nats_link(cfg: HqConfig, timeout: float, name: str) -> AsyncIterator[NatsLink | None]:
    """A connection for one command, if NATS answers within ``timeout``."""
    if not cfg.nats.servers:
        yield None
        return
    link = NatsLink(
        cfg.nats, f"hq-{cfg.nats.network}", Metrics(), asyncio.Event(), client_name=name
    )
    stop = asyncio.Event()
    connecting = asyncio.create_task(link.run(stop))
    await asyncio.wait({connecting}, timeout=timeout)
    stop.set()
    try:
        yield link if link.connected else None
    finally:
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connecting
        await link.close()


# ---------------------------------------------------------------- status
async def status_report(cfg: HqConfig, nats_timeout: float = 3.0) -> dict[str, Any]:
    with _postgres(cfg) as conn:
        model = _existing_model(conn, cfg)
        key = lock_mod.lock_key(cfg.schema, cfg.nats.network)
        part = status.PgPart(
            checkpoint=model.checkpoint(),
            watermarks=model.watermarks(),
            last_event_ms=reads.last_event_ms(conn, cfg.schema),
            events_last_minute=reads.events_last_minute(conn, cfg.schema),
            projector=lock_mod.holder(conn, key),
        )
    async with nats_link(cfg, nats_timeout, "inv-hq status") as link:
        nats_part = None
        if link is not None:
            nats_part = await status.read_nats(
                link.js, cfg.nats.stream, cfg.durable, cfg.nats.network, sorted(part.watermarks)
            )
    return status.report(
        part, nats_part, schema=cfg.schema, network=cfg.nats.network, now_ms=wall_now_ms()
    )


# ---------------------------------------------------------------- verify
async def verify_rows(cfg: HqConfig, timeout: float) -> list[verify.Row]:
    with _postgres(cfg) as conn:
        model = _existing_model(conn, cfg)

        async def read_hq() -> verify.HqSide:
            marks = await asyncio.to_thread(model.watermarks)
            digests = await asyncio.to_thread(model.digests)
            return verify.HqSide(digests, {o: applied for o, (applied, _) in marks.items()})

        async with nats_link(cfg, min(timeout, 5.0), "inv-hq verify") as link:
            nc = link.nc if link is not None else None
            ask = verify.asker(nc, cfg.nats.network, cfg.nats.forward_timeout)
            return await verify.verify(read_hq, ask, timeout=timeout)


# --------------------------------------------------------------- rebuild
async def rebuild(cfg: HqConfig) -> int:
    """Replay the read model from its recorded events, holding the projector
    lock throughout (refused while a projector runs): events replayed."""
    dsn = pg.check_dsn(cfg.dsn)
    lock = lock_mod.ProjectorLock(dsn, cfg.schema, cfg.nats.network)
    try:
        await lock.take_now()
    except lock_mod.LockBusy as exc:
        with _postgres(cfg) as conn:
            who = lock_mod.holder(conn, lock.key)
        where = f" (pid {who['pid']}, {who['application'] or '?'})" if who else ""
        raise HqError(f"{exc}{where}") from exc
    except psycopg.OperationalError as exc:
        raise HqError(
            f"PostgreSQL not reachable at {pg.redact(dsn)}: {exc}", EXIT_UNREACHABLE
        ) from exc
    try:
        with _postgres(cfg) as conn:
            from agent.hq.runner import open_read_model

            model: Any = await asyncio.to_thread(open_read_model, conn, cfg.schema)
            return int(await asyncio.to_thread(model.rebuild))
    finally:
        await lock.close()
