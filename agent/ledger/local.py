"""Opening this store's ledger, and the small lookups the service makes by key.

``open_ledger`` binds the ledger file to its store id (a ledger belongs to one
store for life), starts the HLC above every stamp the ledger holds (so a
restart never reuses one) and builds the engine that stamps this store's
events. The result is built whole and handed to the service.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import ConfigError
from agent.domain import STORE_RE
from agent.hlc import HybridLogicalClock, now_ms
from agent.ledger.engine import Engine, new_uuid
from agent.ledger.store import LedgerStore


@dataclass(frozen=True)
class Ledger:
    """One store's open ledger: the file, whose it is, its clock and its engine."""

    store: LedgerStore
    store_id: str
    clock: HybridLogicalClock
    engine: Engine

    def close(self) -> None:
        self.store.close()


def open_ledger(
    path: Path,
    wanted: str | None,
    *,
    hlc_clock: Callable[[], int] = now_ms,
    wall_ms: Callable[[], int] = now_ms,
    new_id: Callable[[], str] = new_uuid,
    monotonic: Callable[[], float] = time.monotonic,
) -> Ledger:
    """Open (or create) the ledger at ``path`` for store ``wanted`` (None: a
    ledger that already knows its store).

    The sources of time and ids are the caller's (a simulator passes its own):
    ``hlc_clock`` is the wall clock the HLC stamps events from (an agent runs
    it ahead or behind in skew drills), ``wall_ms`` the time the ledger writes
    and judges expiry by, ``new_id`` what makes reservation ids, ``monotonic``
    what a forwarded command's deadline runs on."""
    store = LedgerStore(path)
    try:
        store_id = store.write_sync(bind_identity, wanted)
    except BaseException:
        store.close()
        raise
    clock = HybridLogicalClock(last=store.read_sync(last_hlc), clock=hlc_clock)
    engine = Engine(store_id, clock, wall_ms=wall_ms, new_id=new_id, monotonic=monotonic)
    return Ledger(store, store_id, clock, engine)


def bind_identity(conn: sqlite3.Connection, wanted: str | None) -> str:
    """The ledger's store id: recorded on first use, checked on every later one."""
    if wanted and not STORE_RE.match(wanted):
        raise ConfigError(
            f"store_id: {wanted!r} is not valid: letters, digits, '-' and '_' only "
            "(it is part of NATS subject names), at most 64"
        )
    row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
    if row is None:
        if not wanted:
            raise ConfigError(
                "store_id is not set: start with --store-id ID (or INV_STORE_ID, or "
                "store_id: in the config file)"
            )
        conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?)", (wanted,))
        return wanted
    if wanted and wanted != row[0]:
        raise ConfigError(
            f"this ledger belongs to store {row[0]!r}, not {wanted!r}; "
            "use another --data-dir for another store"
        )
    return str(row[0])


def last_hlc(conn: sqlite3.Connection) -> int:
    """The newest stamp the ledger holds, of any origin."""
    return int(conn.execute("SELECT coalesce(max(hlc), 0) FROM events").fetchone()[0])


def reservation_owner(conn: sqlite3.Connection, rid: str) -> str | None:
    """The store whose stock reservation ``rid`` holds, if this replica knows it."""
    row = conn.execute("SELECT store_id FROM reservations WHERE id = ?", (rid,)).fetchone()
    return str(row[0]) if row else None


def store_known(conn: sqlite3.Connection, store: str) -> bool:
    """Whether this replica has ever heard of ``store``: a stock row there, an
    event from it, a reservation of its stock, or its directory entry (an
    admin described it: it exists, if its agent is not up yet). Each probe is
    an index lookup but the reservations', reached only for a store that is
    none of the others."""
    probes = (
        "SELECT 1 FROM stock WHERE store_id = ? LIMIT 1",
        "SELECT 1 FROM events WHERE origin = ? LIMIT 1",
        "SELECT 1 FROM stores WHERE store_id = ?",
        "SELECT 1 FROM reservations WHERE store_id = ? LIMIT 1",
    )
    return any(conn.execute(sql, (store,)).fetchone() is not None for sql in probes)


def next_expiry_ms(conn: sqlite3.Connection, store_id: str) -> int | None:
    """When the next of this store's pending reservations falls due."""
    value = conn.execute(
        "SELECT min(expires_at_ms) FROM reservations WHERE status = 'PENDING' AND store_id = ?",
        (store_id,),
    ).fetchone()[0]
    return int(value) if value is not None else None


def ledger_check(conn: sqlite3.Connection) -> dict[str, Any]:
    """A read that touches the file, and the schema version it is at."""
    conn.execute("SELECT count(*) FROM meta").fetchone()
    return {"schemaVersion": conn.execute("PRAGMA user_version").fetchone()[0]}


def product_exists(conn: sqlite3.Connection, sku: str) -> bool:
    return conn.execute("SELECT 1 FROM products WHERE sku = ?", (sku,)).fetchone() is not None
