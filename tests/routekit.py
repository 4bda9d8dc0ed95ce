"""A small chain of stores in process, for the routing tests.

The owners are ``synckit.LocalStore``s (a real ledger, replica and service
each); the router is a real agent app (``tests.inproc``, store ``web``, no
stock of its own) whose forwarder is the real ``NatsForwarder`` on a fake
connection: a switchboard that hands each request to its owner's real
``rpc.handle``, or fails it the way NATS would (a store cut off: no
responders; a lost reply: the owner applied it, the asker times out).
``sync`` replicates every ledger's events to every other (full mesh), as the
stream would; directory entries and safety stock are written with the
directory's own commands and replicated the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nats.errors

from agent.config import NatsConfig
from agent.replica import Replica
from agent.sync import rpc
from agent.sync.forwarding import NatsForwarder
from tests import inproc
from tests.synckit import FakeNC, LocalStore, fake_link

FORWARD_TIMEOUT = 0.2


@dataclass
class Chain:
    owners: dict[str, LocalStore]
    router: inproc.InProcAgent
    replica: Replica  # the router's ledger, as replication sees it
    nc: FakeNC
    cut: set[str] = field(default_factory=set)  # their agent is gone: no responders
    lost_reply: set[str] = field(default_factory=set)  # applied; the reply comes too late
    lost_request: set[str] = field(default_factory=set)  # never delivered; the asker waits
    asked: list[tuple[str, str]] = field(default_factory=list)  # (store, op) as delivered

    @property
    def client(self) -> Any:
        return self.router.local

    async def handle(self, subject: str, payload: bytes, timeout: float) -> bytes:
        store, op = subject.split(".")[3:5]
        if store in self.cut or store not in self.owners:
            raise nats.errors.NoRespondersError
        if store in self.lost_request:
            await asyncio.sleep(timeout * 3)
            raise nats.errors.TimeoutError
        self.asked.append((store, op))
        owner = self.owners[store]
        reply = await rpc.handle(owner.service, owner.replica, op, payload)
        if store in self.lost_reply:
            await asyncio.sleep(timeout * 3)
        return reply

    async def sync(self) -> None:
        """Every ledger gets every other's events (idempotent)."""
        replicas = {s: o.replica for s, o in self.owners.items()}
        replicas["web"] = self.replica
        for src, source in replicas.items():
            events = [json.loads(b) for b in await source.own_events(1, 2**62)]
            for dst, target in replicas.items():
                if dst != src and events:
                    await target.apply(events, [])

    def owner_row(self, store: str, rid: str) -> dict[str, Any] | None:
        """A reservation as its owner's ledger has it (None: never made there)."""
        conn = self.owners[store].ledger.store
        row = conn.read_sync(
            lambda c: c.execute("SELECT * FROM reservations WHERE id = ?", (rid,)).fetchone()
        )
        return dict(row) if row else None

    async def set_directory(self, store: str, **fields: Any) -> None:
        """Describe ``store`` (``inv store set``, at the first owner) and
        replicate it everywhere."""
        first = next(iter(self.owners.values()))
        await first.service.set_store(store, fields)
        await self.sync()

    async def set_safety(self, sku: str, store: str, units: int | None) -> None:
        """``inv stock safety`` at the first owner, replicated everywhere."""
        first = next(iter(self.owners.values()))
        await first.service.set_safety_stock(sku, store, units)
        await self.sync()


@asynccontextmanager
async def chain(
    tmp_path: Path,
    local_store: Callable[..., LocalStore],
    stores: tuple[str, ...] = ("store-001", "store-002", "store-003"),
    stock: dict[str, int] | None = None,
    **config: Any,
) -> AsyncIterator[Chain]:
    """Owners ``stores`` (the first loads the demo catalogue), each holding
    ``stock[store]`` units of PROD-001 (default 10), and the router ``web``,
    all replicated."""
    owners = {s: local_store(s, demo=i == 0) for i, s in enumerate(stores)}
    first = owners[stores[0]]
    from agent.inputs import StockChange

    for s in stores:
        units = (stock or {}).get(s, 10)
        await first.service.update_stock(StockChange("PROD-001", s, "set", units, reason="t"))
    nc = FakeNC(timeouts=True)
    cfg = inproc.config(tmp_path / "web", "web", demo=False, **config)
    cfg = replace(cfg, nats=NatsConfig(forward_timeout=FORWARD_TIMEOUT))
    forwarder = NatsForwarder(fake_link("web", nc), "default", FORWARD_TIMEOUT)
    async with inproc.running(cfg, forwarder) as router:
        ledger = router.agent.service.ledger
        replica = Replica(ledger, outbox=asyncio.Event(), snapshot_dir=tmp_path / "snap")
        c = Chain(owners, router, replica, nc)
        nc._handler = c.handle
        await c.sync()
        yield c
