"""In-process agents: the real app, built by ``agent.runtime.build``, driven
through httpx's ASGI transport (no process, no socket, no port).

Which door a request came in by is read from its ASGI scope, as uvicorn
reports it: ``http://agent`` has no port, which is what a Unix-socket request
looks like (local admin, no token); ``http://127.0.0.1:8080`` is a TCP request
and needs a bearer JWT. The transport does not run the app's lifespan, so the
background tasks (expiry; replication when configured) are started and
stopped here, the way the lifespan does it. Tests are ``async def`` and run on
anyio's pytest plugin (asyncio backend; see ``conftest.anyio_backend``).

What needs a real process (the console script, the socket file, signals,
stderr) stays with ``tests.helpers.Agent``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog

from agent import auth
from agent.accounts import Passwords
from agent.config import AgentConfig, load
from agent.runtime import Agent, build
from agent.service import Forwarder

LOCAL_URL = "http://agent"  # no port: local admin, like the Unix socket
TCP_URL = "http://127.0.0.1:8080"  # a port: TCP, bearer JWT required


def config(
    home: Path,
    store_id: str = "store-001",
    *,
    demo: bool = True,
    config_file: Path | None = None,
    env: dict[str, str] | None = None,
    **fields: Any,
) -> AgentConfig:
    """An agent config on a fresh data dir under ``home``, loaded the way
    ``inv-agent`` loads it (``config_file``, then ``INV_*`` variables from
    ``env`` only, never this process's); ``fields`` replace AgentConfig
    fields (``limits=LimitsConfig(...)``, ``reservation_ttl=...``)."""
    if config_file is None:  # not the user's own config file, whatever is there
        config_file = home / "empty.yaml"
        home.mkdir(parents=True, exist_ok=True)
        config_file.write_text("")
    overrides = {"store_id": store_id, "data_dir": home / "data", "socket": home / "s"}
    if demo:
        overrides["demo_data"] = True
    cfg = load(config_file, overrides, env=env or {})
    return dataclasses.replace(cfg, **fields)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass
class InProcAgent:
    """A built, started agent and clients to its app."""

    agent: Agent
    config: AgentConfig
    _clients: list[httpx.AsyncClient] = dataclasses.field(default_factory=list)
    local: httpx.AsyncClient = dataclasses.field(init=False)  # the socket's view: local admin

    def __post_init__(self) -> None:
        self.local = self.client(LOCAL_URL)

    @property
    def app(self) -> Any:
        return self.agent.app

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def secret(self) -> str:
        return self.agent.runtime.jwt_secret

    def token(
        self,
        user: str = "tester",
        role: str = "admin",
        stores: list[str] | None = None,
        expires_in: int = 3600,
    ) -> str:
        """What ``inv-agent token`` prints, made with this agent's secret."""
        return auth.issue(self.secret, user, role, expires_in, stores)

    def client(self, base_url: str = LOCAL_URL, **kwargs: Any) -> httpx.AsyncClient:
        """Another client to the app (closed at teardown)."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.agent.app), base_url=base_url, **kwargs
        )
        self._clients.append(client)
        return client

    def tcp(self, token: str | None = None) -> httpx.AsyncClient:
        """A TCP client: with ``token``, every request carries it."""
        return self.client(TCP_URL, headers=bearer(token) if token else {})


@asynccontextmanager
async def running(
    cfg: AgentConfig, forwarder: Forwarder | None = None, passwords: Passwords | None = None
) -> AsyncIterator[InProcAgent]:
    """Build the agent for ``cfg``, start its background tasks, and at the end
    stop them and close the ledger (what the lifespan and ``inv-agent`` do).
    ``forwarder``: how it reaches other stores (a fake network; see
    ``tests.routekit``); ``passwords``: cheaper argon2 parameters."""
    agent = build(cfg, forwarder=forwarder, passwords=passwords)
    await agent.runtime.start()
    inproc = InProcAgent(agent, cfg)
    try:
        yield inproc
    finally:
        for client in inproc._clients:
            await client.aclose()
        await agent.runtime.stop()
        agent.service.close()


@dataclasses.dataclass
class FakeForwarder:
    """The other stores, for ``running(cfg, forwarder)``: records what is sent
    to them and answers ``reply`` (or raises ``fail``)."""

    calls: list[tuple[str, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    reply: tuple[int, Any] = (200, {"answered": "by the other store"})
    fail: Exception | None = None

    async def __call__(self, store: str, op: str, payload: dict[str, Any]) -> tuple[int, Any]:
        self.calls.append((store, op, payload))
        if self.fail is not None:
            raise self.fail
        return self.reply


# ---------------------------------------------------------------- reads
async def stock(
    client: httpx.AsyncClient, sku: str = "PROD-001", store: str = "store-001"
) -> dict[str, Any]:
    """One stock row (sku, store) from the availability endpoint."""
    r = await client.get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    assert r.status_code == 200, r.text
    [row] = r.json()["stores"]
    return row  # type: ignore[no-any-return]


async def movements(
    client: httpx.AsyncClient, sku: str = "PROD-001", **params: Any
) -> list[dict[str, Any]]:
    """A product's movement history (newest first)."""
    r = await client.get(f"/api/v1/products/{sku}/history", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


# ----------------------------------------------------------------- logs
@contextmanager
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every structlog event logged meanwhile, as a dict, with the request's
    bound context (``request_id``) merged in as the agent's own config does."""
    capture = structlog.testing.LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            capture,
        ],
        cache_logger_on_first_use=False,
    )
    try:
        yield capture.entries
    finally:
        structlog.configure(**previous)


async def wait_until(
    predicate: Callable[[], Awaitable[Any]],
    timeout: float = 15.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll an async ``predicate`` until it is truthy (``helpers.wait_for``'s
    twin for the event loop): never a blind sleep."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = await predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last error on timeout
            last_exc = exc
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc}")
