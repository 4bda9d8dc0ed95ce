"""One active projector per read model and network: a PostgreSQL session
advisory lock, held on a connection of its own for the life of the process.

PostgreSQL releases a session lock when its session ends, whatever ends it
(the process killed, the machine gone, the connection cut), so a waiting
projector takes over without anyone cleaning up. The holder watches its lock
connection: once that is lost, the lock may already be someone else's, and
projecting stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from typing import Any

import psycopg
import structlog

log = structlog.get_logger("agent.hq")

WAIT_LOG_EVERY = 60.0  # seconds between "waiting" log lines
WATCH_EVERY = 1.0  # seconds between checks of the lock connection
WATCH_TIMEOUT = 5.0  # a check that takes longer than this: the connection is lost
# libpq options of the lock connection: keepalives notice a dead peer in seconds
OPTIONS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}


def lock_key(schema: str, network: str) -> int:
    """A signed 64-bit key (pg_advisory_lock's bigint) for this read model on
    this network: the same wherever it is computed."""
    digest = hashlib.sha256(f"inv-hq:{schema}:{network}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _parts(key: int) -> tuple[int, int]:
    """How pg_locks shows a bigint advisory key: (classid, objid), objsubid 1."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


_HOLDER = (
    "SELECT l.pid, a.application_name, a.client_addr::text, a.backend_start "
    "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.classid = %s::bigint::oid "
    "AND l.objid = %s::bigint::oid AND l.objsubid = 1 AND l.granted"
)


def holder(conn: psycopg.Connection[Any], key: int) -> dict[str, Any] | None:
    """Who holds the lock now (any connection may ask): pid, application,
    client address, since when; None if nobody."""
    row = conn.execute(_HOLDER, _parts(key)).fetchone()
    if row is None:
        return None
    pid, app, addr, since = row
    return {"pid": pid, "application": app, "client": addr, "since": since}


class LockBusy(Exception):
    """Another session holds the lock."""


class LockLost(Exception):
    """This process no longer holds the lock: it must not commit."""


_HELD_BY = (
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::bigint::oid "
    "AND objid = %s::bigint::oid AND objsubid = 1 AND granted AND pid = %s"
)


def fence(conn: psycopg.Connection[Any], key: int, pid: int) -> None:
    """LockLost unless the session ``pid`` still holds the lock: checked on
    the data connection just before each commit, so a projector whose lock
    session died commits nothing more, however late its watch notices."""
    if conn.execute(_HELD_BY, (*_parts(key), pid)).fetchone() is None:
        raise LockLost("the projector lock is no longer ours")


class ProjectorLock:
    def __init__(self, dsn: str, schema: str, network: str, *, poll: float = 2.0) -> None:
        self._dsn = dsn
        self.key = lock_key(schema, network)
        self._poll = poll
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.held = False
        self.reached = False  # PostgreSQL answered at least once

    @property
    def pid(self) -> int:
        """The lock session's backend pid (what ``fence`` checks)."""
        assert self._conn is not None, "the lock is not taken"
        return int(self._conn.info.backend_pid)

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, application_name="inv-hq lock", **OPTIONS
            )
            self.reached = True
        return self._conn

    async def try_take(self) -> bool:
        conn = await self._connection()
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cur.fetchone()
        self.held = bool(row and row[0])
        return self.held

    async def take(self, stopping: asyncio.Event) -> bool:
        """Wait for the lock (polling), or for ``stopping``: was it taken?"""
        said = 0.0
        while not stopping.is_set():
            if await self.try_take():
                log.info("projector lock taken", key=self.key)
                return True
            if time.monotonic() - said >= WAIT_LOG_EVERY:
                log.info("another projector is active; waiting", key=self.key)
                said = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._poll)
        return False

    async def take_now(self) -> None:
        """The lock at once, or LockBusy (``inv-hq rebuild``)."""
        if not await self.try_take():
            await self.close()
            raise LockBusy("a projector is running on this read model; stop it first")

    async def watch(self) -> None:
        """Return as soon as the lock connection is lost (the lock with it)."""
        conn = await self._connection()
        while True:
            await asyncio.sleep(WATCH_EVERY)
            try:
                await asyncio.wait_for(conn.execute("SELECT 1"), WATCH_TIMEOUT)
            except (psycopg.Error, TimeoutError, OSError) as exc:
                self.held = False
                log.error("projector lock lost; stopping", error=str(exc) or type(exc).__name__)
                return

    async def close(self) -> None:
        """Release the lock (closing its session does)."""
        conn, self._conn = self._conn, None
        self.held = False
        if conn is not None and not conn.closed:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                log.warning("lock connection close failed", exc_info=True)
