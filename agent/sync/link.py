"""The NATS connection of one agent: made in the background, kept forever.

``connect`` can block for minutes (nats.py #645), so ``run`` connects in the
replicator's task and the agent serves requests whether or not NATS is there.
Everything else in ``agent.sync`` reaches NATS through this object: whether
it is connected, the core connection (``nc``) and the JetStream context
(``js``), both None until the first connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import nats
import structlog

from agent.config import NatsConfig, redact_url
from agent.metrics import Metrics

log = structlog.get_logger("agent.sync")


class NatsLink:
    def __init__(
        self,
        config: NatsConfig,
        store_id: str,
        metrics: Metrics,
        on_reconnect: asyncio.Event,
        *,
        client_name: str | None = None,
    ) -> None:
        """``on_reconnect`` is set on every reconnection (the outbox has
        waited: the publisher should look at it at once). ``client_name``:
        how the server lists this connection (default ``inv-agent <store>``)."""
        self.config = config
        self.store_id = store_id
        self.client_name = client_name or f"inv-agent {store_id}"
        self._metrics = metrics
        self._on_reconnect_event = on_reconnect
        self.nc: Any = None
        self.js: Any = None
        self.connected = False
        self.last_error: str | None = None
        self._last_error_log = 0.0

    def server(self) -> str | None:
        """The server we are connected to, with any secret in its URL hidden."""
        url = self.nc.connected_url if self.nc is not None else None
        return redact_url(f"{url.scheme}://{url.netloc}") if url else None

    async def run(self, stopping: asyncio.Event) -> None:
        """Connect, retrying with backoff until connected or ``stopping``."""
        delay = 0.2
        while not stopping.is_set():
            try:
                self.nc = await nats.connect(**self._options())
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"connect: {exc or exc.__class__.__name__}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        else:
            return
        self._set_connected(True)
        log.info("nats connected", server=self.server())
        self.js = self.nc.jetstream(timeout=5, domain=self.config.domain)

    async def close(self) -> None:
        if self.nc is None:
            return
        try:
            await asyncio.wait_for(self.nc.drain(), 5)
        except Exception:
            log.warning("nats drain failed at shutdown", exc_info=True)
        try:
            await self.nc.close()
        except Exception:
            log.warning("nats close failed at shutdown", exc_info=True)

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        self._metrics.nats_connected.set(1 if up else 0)

    def _options(self) -> dict[str, Any]:
        n = self.config
        opts: dict[str, Any] = {
            "servers": n.servers,
            "name": self.client_name,
            "connect_timeout": 2,
            "reconnect_time_wait": n.reconnect_wait,
            "max_reconnect_attempts": -1,
            "ping_interval": n.ping_interval,
            "max_outstanding_pings": n.max_outstanding_pings,
            "allow_reconnect": True,
            "inbox_prefix": n.inbox_prefix or f"_INBOX.{self.store_id}",
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnect,
            "reconnected_cb": self._on_reconnect,
            "closed_cb": self._on_disconnect,
        }
        if n.user:
            opts["user"], opts["password"] = n.user, n.password or ""
        if n.token:
            opts["token"] = n.token
        if n.creds:
            opts["user_credentials"] = n.creds
        if n.nkey_seed:
            opts["nkeys_seed"] = n.nkey_seed
        if n.tls_ca or n.tls_cert:
            ctx = ssl.create_default_context(cafile=n.tls_ca)
            if n.tls_cert:
                ctx.load_cert_chain(n.tls_cert, n.tls_key)
            opts["tls"] = ctx
        return opts

    async def _on_error(self, exc: Exception) -> None:
        error = str(exc) or exc.__class__.__name__
        # while NATS is away every reconnect attempt fails: log changes, not repeats
        if error != self.last_error or time.monotonic() - self._last_error_log > 60:
            log.warning("nats error", error=error)
            self._last_error_log = time.monotonic()
        self.last_error = error

    async def _on_disconnect(self) -> None:
        if self.connected:
            log.warning("nats disconnected")
        self._set_connected(False)

    async def _on_reconnect(self) -> None:
        self._set_connected(True)
        log.info("nats reconnected", server=self.server())
        self._on_reconnect_event.set()
