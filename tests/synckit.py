"""Shared pieces of the replication tests: nats-server fixtures, agents wired
to NATS, convergence checks by state digest, and direct JetStream access
with nats-py. Everything polls with ``wait_for``; nothing sleeps blindly.

The last section is for the in-process unit tests (``tests/unit/test_sync_*``):
a real ledger, replica and service per store, and small fakes for the NATS
objects (a message, the core connection) where a real server is not the point."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent import hlc
from tests.helpers import Agent, wait_for
from tests.natsfix import NatsServer

NET = "default"
STREAM = "INVENTORY"
FAST = {"INV_NATS_HEARTBEAT_INTERVAL": "0.5"}


def ev_subject(store: str) -> str:
    return f"inv.{NET}.ev.{store}"


# ------------------------------------------------------------------ servers
@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """One JetStream nats-server on a free port; killed and removed at teardown."""
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.cleanup()


# ------------------------------------------------------------------- agents
AgentFactory = Callable[..., Agent]


@pytest.fixture
def peer(make_agent: Any) -> AgentFactory:
    """``peer("store-002", server)``: a real agent given every ``--nats`` URL
    (a NatsServer, a URL string, or a list of either), with fast heartbeats.
    Only the store that seeds passes ``demo=True``."""

    def factory(
        store_id: str,
        servers: Any,
        *,
        demo: bool = False,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> Agent:
        items = servers if isinstance(servers, list) else [servers]
        args: list[str] = []
        for s in items:
            args += ["--nats", s if isinstance(s, str) else s.url]
        return make_agent(  # type: ignore[no-any-return]
            store_id, demo=demo, args=args, env={**FAST, **(env or {})}, start=start
        )

    return factory


def status(agent: Agent) -> dict[str, Any]:
    r = agent.client().get("/api/v1/sync/status")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def digests(agent: Agent) -> dict[str, str]:
    return status(agent)["digests"]  # type: ignore[no-any-return]


def wait_ready(*agents: Agent, timeout: float = 20.0) -> None:
    """Connected, stream and durable consumer set up."""
    for a in agents:
        wait_for(
            lambda a=a: (s := status(a))["connected"] and s["ready"],
            timeout,
            what=f"{a.store_id} to connect to NATS",
        )


def converged(agents: tuple[Agent, ...], stores: tuple[str, ...] = ()) -> bool:
    states = [status(a) for a in agents]
    first = states[0]["digests"]
    return (
        all(s["outboxBacklog"] == 0 for s in states)
        and all(s["digests"] == first for s in states)
        and all(store in first for store in stores)
    )


def wait_converged(
    *agents: Agent, stores: tuple[str, ...] = (), timeout: float = 20.0
) -> dict[str, str]:
    """Every agent has published its outbox and all report identical digests
    (naming at least ``stores``). Returns the common digests."""

    def check() -> bool:
        return converged(agents, stores)

    try:
        wait_for(check, timeout, interval=0.05, what="digests to converge")
    except TimeoutError:
        report = {a.store_id: status(a) for a in agents}
        for s in report.values():
            s.pop("quarantine", None)
        raise AssertionError(f"no convergence:\n{json.dumps(report, indent=1)}") from None
    return digests(agents[0])


# ------------------------------------------------------------------ the API
def stock_write(
    agent: Agent, sku: str, operation: str, quantity: int, store: str, reason: str = "test"
) -> dict[str, Any]:
    r = agent.client().post(
        f"/api/v1/products/{sku}/stock",
        json={"storeId": store, "operation": operation, "quantity": quantity, "reason": reason},
    )
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


def on_hand(agent: Agent, sku: str, store: str) -> int | None:
    """Quantity on hand of (sku, store) at this agent; None if it has no row
    (or does not know the product)."""
    r = agent.client().get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    rows = r.json()["stores"]
    return rows[0]["quantity"] if rows else None


def product(agent: Agent, sku: str) -> httpx.Response:
    return agent.client().get(f"/api/v1/products/{sku}")


def conflicts(agent: Agent) -> list[dict[str, Any]]:
    r = agent.client().get("/api/v1/conflicts", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def ledger(agent: Agent, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the agent's SQLite ledger directly (the file is the truth)."""
    conn = sqlite3.connect(agent.data_dir / "ledger.db", timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def own_event_count(agent: Agent) -> int:
    rows = ledger(agent, "SELECT count(*), max(seq) FROM events WHERE origin = ?", agent.store_id)
    count, top = rows[0]
    assert count == top, f"{agent.store_id}: seqs are not gap-free ({count} events, max {top})"
    return int(count)


# --------------------------------------------------------------- JetStream
def with_js(servers: Any, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``fn(js)`` on a fresh nats-py connection; return its result."""
    import nats

    items = servers if isinstance(servers, list) else [servers]
    urls = [s if isinstance(s, str) else s.url for s in items]

    async def main() -> Any:
        nc = await nats.connect(servers=urls, connect_timeout=2, max_reconnect_attempts=3)
        try:
            return await fn(nc.jetstream(timeout=5))
        finally:
            await nc.close()

    return asyncio.run(main())


def subject_count(servers: Any, store: str) -> int:
    """How many messages the stream holds on ``store``'s event subject."""

    async def count(js: Any) -> int:
        info = await js.stream_info(STREAM, subjects_filter=ev_subject(store))
        return int((info.state.subjects or {}).get(ev_subject(store), 0))

    return int(with_js(servers, count))


def set_stream_max_age(servers: Any, seconds: float) -> None:
    """Change how long the stream keeps an event (0: for ever), as an
    operator would; agents started later with another age change it back."""

    async def update(js: Any) -> None:
        info = await js.stream_info(STREAM)
        config = info.config
        config.max_age = seconds
        if seconds:
            config.duplicate_window = min(config.duplicate_window or seconds, seconds)
        await js.update_stream(config)

    with_js(servers, update)


def stream_events(servers: Any, store: str) -> list[dict[str, Any]]:
    """Every event the stream holds on ``store``'s subject, in stream order,
    read through a fresh ephemeral consumer."""
    from nats.js import api

    expected = subject_count(servers, store)

    async def read(js: Any) -> list[dict[str, Any]]:
        sub = await js.pull_subscribe(
            ev_subject(store),
            stream=STREAM,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.ALL,
                ack_policy=api.AckPolicy.NONE,
                inactive_threshold=30.0,
            ),
        )
        out: list[dict[str, Any]] = []
        while len(out) < expected:
            msgs = await sub.fetch(min(500, expected - len(out)), timeout=5)
            out += [json.loads(m.data) for m in msgs]
        await sub.unsubscribe()
        return out

    return list(with_js(servers, read))


def forged_count(origin: str, seq: int, quantity: int = 999_999) -> dict[str, Any]:
    """A well-formed event claiming to be ``origin``'s event ``seq``: a physical
    count of PROD-001 at ``origin``. Tests publish it where it does not belong."""
    return {
        "id": f"{origin}:{seq}",
        "origin": origin,
        "seq": seq,
        "hlc": hlc.pack(int(time.time() * 1000), 0),
        "type": "stock.movement",
        "schemaVersion": 1,
        "data": {
            "sku": "PROD-001",
            "storeId": origin,
            "kind": "count",
            "quantity": quantity,
            "reason": "forged",
            "actor": "mallory",
        },
    }


# --------------------------------------------------- in-process (unit tests)
def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class LocalStore:
    """One store's real ledger, replica and service, in this process: no
    agent, no NATS."""

    ledger: Any  # agent.ledger.local.Ledger
    replica: Any  # agent.replica.Replica
    service: Any  # agent.service.InventoryService
    outbox: asyncio.Event

    @property
    def store_id(self) -> str:
        return str(self.ledger.store_id)

    async def events(self, first: int = 1, last: int = 2**62) -> list[tuple[str, bytes]]:
        """This store's own events as a peer receives them: (subject, payload)."""
        bodies = await self.replica.own_events(first, last)
        return [(ev_subject(self.store_id), b.encode()) for b in bodies]


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[Callable[..., LocalStore]]:
    """``local_store("store-002", demo=True, forwarder=...)``: a store's ledger
    (``open_ledger`` on a file under tmp_path), its ``Replica`` and its
    ``InventoryService``; ``demo`` loads the sample data (7 events of its
    own). Every ledger is closed at teardown."""
    from agent.ledger.local import open_ledger
    from agent.replica import Replica
    from agent.service import InventoryService

    made: list[LocalStore] = []

    def factory(
        store_id: str = "store-001", *, demo: bool = True, **service_args: Any
    ) -> LocalStore:
        ledger = open_ledger(tmp_path / f"{store_id}.db", store_id)
        outbox = asyncio.Event()
        service = InventoryService(ledger, reservation_ttl=600, outbox=outbox, **service_args)
        replica = Replica(ledger, outbox=outbox, snapshot_dir=tmp_path / f"{store_id}-snapshots")
        if demo:
            service.load_demo_data()
        made.append(LocalStore(ledger, replica, service, outbox))
        return made[-1]

    yield factory
    for store in made:
        store.ledger.close()


@dataclass
class FakeMsg:
    """A NATS message as the sync modules read it: subject, data, headers,
    reply; ``ack``/``respond`` recorded, or failing with ``error``."""

    subject: str
    data: bytes
    headers: dict[str, str] | None = None
    reply: str = ""
    error: Exception | None = None
    on_ack: Callable[[], Awaitable[Any]] | None = None
    acks: list[Any] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    stream_seq: int = 0  # its seq in the stream (``metadata.sequence.stream``)

    @property
    def metadata(self) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(sequence=SimpleNamespace(stream=self.stream_seq))

    async def ack(self) -> None:
        if self.error is not None:
            raise self.error
        self.acks.append(await self.on_ack() if self.on_ack else True)

    async def respond(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.responses.append(data)


Handler = Callable[[str, bytes, float], Awaitable[bytes]]


class FakeNC:
    """The part of nats-py's core connection the sync modules use:
    ``request`` (answered by ``handler``, or raising ``error``), ``publish``
    (recorded, or raising ``error``) and ``connected_url``."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        error: Exception | None = None,
        url: str = "nats://127.0.0.1:4222",
        timeouts: bool = False,
    ) -> None:
        """``timeouts``: as a real request, the asker stops waiting after its
        timeout (``nats.errors.TimeoutError``) while the handler, delivered,
        runs on (its task is in ``late``; await it for the owner's reply)."""
        self._handler = handler
        self._error = error
        self._timeouts = timeouts
        self.connected_url = urllib.parse.urlparse(url)
        self.requests: list[tuple[str, dict[str, Any], float]] = []
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.late: list[asyncio.Task[bytes]] = []

    async def request(self, subject: str, payload: bytes, timeout: float) -> FakeMsg:
        self.requests.append((subject, json.loads(payload), timeout))
        if self._error is not None:
            raise self._error
        assert self._handler is not None, "this connection answers no request"
        if not self._timeouts:
            return FakeMsg(subject, await self._handler(subject, payload, timeout))
        import nats.errors

        task = asyncio.create_task(self._handler(subject, payload, timeout))
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            self.late.append(task)
            raise nats.errors.TimeoutError
        return FakeMsg(subject, task.result())

    async def publish(self, subject: str, payload: bytes) -> None:
        if self._error is not None:
            raise self._error
        self.published.append((subject, json.loads(payload)))


def served_by(store: LocalStore) -> Handler:
    """A request handler that is ``store``'s agent: its real ``rpc.handle``."""
    from agent.sync import rpc

    async def handle(subject: str, payload: bytes, timeout: float) -> bytes:
        return await rpc.handle(store.service, store.replica, subject.rsplit(".", 1)[-1], payload)

    return handle


def fake_link(store_id: str, nc: FakeNC | None = None, *, connected: bool = True) -> Any:
    """A real ``NatsLink`` (never run) on a fake connection."""
    from agent.config import NatsConfig
    from agent.metrics import Metrics
    from agent.sync.link import NatsLink

    link = NatsLink(
        NatsConfig(servers=["nats://127.0.0.1:4222"]), store_id, Metrics(), asyncio.Event()
    )
    link.nc = nc
    link.connected = connected
    return link


def failures(metrics: Any, operation: str) -> float:
    """``inv_sync_failures_total{operation=...}`` (0 if never counted)."""
    value = metrics.registry.get_sample_value("inv_sync_failures_total", {"operation": operation})
    return float(value or 0.0)
