"""Wires one agent together: service, API app, background tasks, health."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from agent import __version__, auth
from agent.api.app import create_app
from agent.api.middleware import BodyLimit, RateLimit, RequestContext
from agent.config import AgentConfig
from agent.expiry import ExpiryWorker
from agent.ledger import queries
from agent.metrics import Metrics, MetricsMiddleware
from agent.service import InventoryService


@dataclass
class Runtime:
    config: AgentConfig
    service: InventoryService
    app: FastAPI
    metrics: Metrics
    expiry: ExpiryWorker
    replicator: Any = None
    started: float = field(default_factory=time.time)

    async def health(self, service: InventoryService) -> dict[str, Any]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            ledger = await service.ledger_check()
            checks["ledger"] = {"ok": ledger["writable"], **ledger}
        except Exception as exc:
            checks["ledger"] = {"ok": False, "error": str(exc)}
        checks["expiry"] = {"ok": self.expiry.alive, "expired": self.expiry.expired_total}
        backlog = await service.outbox_backlog()
        if self.replicator is None:
            # standalone: nothing drains the outbox until NATS is configured;
            # a long backlog is expected then, not a fault
            checks["outbox"] = {"ok": True, "backlog": backlog, "note": "standalone"}
        else:
            checks["outbox"] = {"ok": backlog < self.config.limits.outbox_alert, "backlog": backlog}
        self.metrics.outbox_backlog.set(backlog)
        if self.replicator is not None:
            checks["nats"] = self.replicator.health()
        healthy = all(c["ok"] for c in checks.values())
        return {
            "status": "healthy" if healthy else "unhealthy",
            "storeId": service.store_id,
            "version": __version__,
            "uptimeSeconds": round(time.time() - self.started, 1),
            "mode": "replicated" if self.replicator is not None else "standalone",
            "checks": checks,
        }

    async def sync_status(self, service: InventoryService) -> dict[str, Any]:
        if self.replicator is not None:
            return await self.replicator.status()  # type: ignore[no-any-return]
        return {
            "storeId": service.store_id,
            "mode": "standalone",
            "connected": False,
            "server": None,
            "outboxBacklog": await service.outbox_backlog(),
            "peers": [],
            "quarantined": 0,
            "digests": await service.digests(),
        }

    async def render_metrics(self) -> tuple[bytes, str]:
        m = self.metrics
        m.outbox_backlog.set(await self.service.outbox_backlog())
        counts = await self.service.store.read(queries.ledger_counts)
        for status in ("PENDING", "CONFIRMED", "CANCELLED", "EXPIRED"):
            m.reservations_by_status.labels(status).set(counts["reservations"].get(status, 0))
        for kind in ("receive", "sell", "adjust", "count"):
            m.movements.labels(kind).set(counts["movements"].get(kind, 0))
        m.conflicts.set(counts["conflicts"])
        m.quarantined.set(counts["quarantined"])
        return self.metrics.render()


def build(cfg: AgentConfig) -> Runtime:
    service = InventoryService(cfg)
    if cfg.demo_data:
        service.load_demo_data()
    secret = auth.load_secret(cfg.data_dir, cfg.auth.jwt_secret)
    metrics = Metrics()
    expiry = ExpiryWorker(service, cfg.expiry_interval)
    hooks: list[Any] = []

    async def start_expiry() -> Any:
        await expiry.start()
        return expiry.stop

    hooks.append(start_expiry)
    replicator = None
    if cfg.nats.servers:
        from agent.sync.replicator import Replicator

        replicator = Replicator(cfg, service, metrics)

        async def start_replicator() -> Any:
            await replicator.start()
            return replicator.stop

        hooks.append(start_replicator)
    service.count_reservation = lambda outcome: metrics.reservations.labels(outcome).inc()
    app = create_app(service, secret, hooks)
    runtime = Runtime(cfg, service, app, metrics, expiry, replicator)
    app.state.health = runtime.health
    app.state.sync_status = runtime.sync_status
    app.state.metrics = runtime.render_metrics
    # added last = outermost: request id and access log wrap everything
    app.add_middleware(
        RateLimit, per_minute=cfg.limits.rate_per_minute, burst=cfg.limits.rate_burst
    )
    app.add_middleware(BodyLimit, max_bytes=cfg.limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestContext)
    return runtime
