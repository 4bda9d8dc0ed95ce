"""The composition root: builds one agent whole, in dependency order.

    config ──> ledger ──> service ──> router, cleanup ──> app (API)
                  │   │      ^
                  │   │      │ forwarder, freshness
                  │   v      │
                  │ replica ──> sync (link, peer table, replicator, alert bus)
                  v                                                   │ publish
               alert deliveries (webhooks, the bus) <─────────────────┘

Every object is given what it needs when it is made; nothing is attached to
anything afterwards. Standalone (no NATS servers configured) there is no
``sync`` part: the service's forwarder says every other store is out of reach.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from agent import __version__, auth
from agent.accounts import Accounts, Passwords, Throttle, ThrottlePolicy, UserStore
from agent.alerts import Bus, DeliveryWorker, Publish, Target, Webhook
from agent.alerts.targets import http_client
from agent.api.app import create_app
from agent.config import AgentConfig, AlertsConfig, AuthConfig, LimitsConfig
from agent.domain import AlertKind, MovementKind, TransferStatus
from agent.expiry import ExpiryWorker
from agent.hlc import now_ms
from agent.ledger.local import Ledger, open_ledger
from agent.metrics import Metrics
from agent.replica import Replica
from agent.routing.cleanup import CleanupWorker
from agent.routing.router import Router
from agent.service import Forwarder, InventoryService

if TYPE_CHECKING:
    from agent.sync.replicator import Replicator


class Runtime:
    """One agent's parts, and what the API asks of them beyond the service
    (health, sync status, metrics); the API's ``Backend``."""

    def __init__(
        self,
        config: AgentConfig,
        service: InventoryService,
        metrics: Metrics,
        jwt_secret: str,
        expiry: ExpiryWorker,
        router: Router,
        cleanup: CleanupWorker,
        replicator: Replicator | None,
        alerts: DeliveryWorker,
        accounts: Accounts,
    ) -> None:
        self.config = config
        self.service = service
        self.metrics = metrics
        self.jwt_secret = jwt_secret
        self.expiry = expiry
        self.router = router
        self.cleanup = cleanup
        self.replicator = replicator
        self.alerts = alerts
        self.accounts = accounts
        self.started = time.time()

    @property
    def limits(self) -> LimitsConfig:
        return self.config.limits

    async def start(self) -> None:
        await self.expiry.start()
        await self.cleanup.start()
        if self.replicator is not None:
            await self.replicator.start()
        await self.alerts.start()

    async def stop(self) -> None:
        await self.alerts.stop()
        if self.replicator is not None:
            await self.replicator.stop()
        await self.cleanup.stop()
        await self.expiry.stop()
        self.accounts.close()

    async def health(self) -> dict[str, Any]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            ledger = await self.service.ledger_check()
            checks["ledger"] = {"ok": ledger["writable"], **ledger}
        except Exception as exc:
            checks["ledger"] = {"ok": False, "error": str(exc)}
        checks["expiry"] = {"ok": self.expiry.alive, "expired": self.expiry.expired_total}
        pending = await self.cleanup.pending()
        self.metrics.routing_cleanups_pending.set(pending)
        checks["routingCleanup"] = {
            "ok": self.cleanup.alive,
            "pending": pending,
            "settled": self.cleanup.settled_total,
        }
        backlog = await self.service.outbox_backlog()
        self.metrics.outbox_backlog.set(backlog)
        if self.replicator is None:
            # standalone: nothing drains the outbox until NATS is configured;
            # a long backlog is expected then, not a fault
            checks["outbox"] = {"ok": True, "backlog": backlog, "note": "standalone"}
        else:
            checks["outbox"] = {"ok": backlog < self.limits.outbox_alert, "backlog": backlog}
            checks["nats"] = self.replicator.health()
        deliveries = await self.alert_deliveries()
        checks["alerts"] = {
            "ok": self.alerts.alive,
            "targets": len(deliveries),
            "pending": sum(d["pending"] for d in deliveries),
            "givenUp": sum(d["givenUp"] for d in deliveries),
        }
        healthy = all(c["ok"] for c in checks.values())
        return {
            "status": "healthy" if healthy else "unhealthy",
            "storeId": self.service.store_id,
            "version": __version__,
            "uptimeSeconds": round(time.time() - self.started, 1),
            "mode": "replicated" if self.replicator is not None else "standalone",
            "checks": checks,
            "alertDeliveries": deliveries,
        }

    async def alert_deliveries(self) -> list[dict[str, Any]]:
        """Each alert target's delivery state (and its pending gauge)."""
        states = await self.alerts.states()
        for d in states:
            self.metrics.alert_deliveries_pending.labels(d["target"]).set(d["pending"])
        return states

    async def sync_status(self) -> dict[str, Any]:
        if self.replicator is not None:
            return await self.replicator.status()
        return {
            "storeId": self.service.store_id,
            "mode": "standalone",
            "connected": False,
            "server": None,
            "outboxBacklog": await self.service.outbox_backlog(),
            "peers": [],
            "quarantined": 0,
            "digests": await self.service.digests(),
        }

    async def render_metrics(self) -> tuple[bytes, str]:
        m = self.metrics
        m.outbox_backlog.set(await self.service.outbox_backlog())
        counts = await self.service.ledger_counts()
        for status in ("PENDING", "CONFIRMED", "CANCELLED", "EXPIRED"):
            m.reservations_by_status.labels(status).set(counts["reservations"].get(status, 0))
        for kind in MovementKind:
            m.movements.labels(str(kind)).set(counts["movements"].get(kind, 0))
        for status in TransferStatus:
            m.transfers.labels(str(status)).set(counts["transfers"].get(status, 0))
        m.units_in_transit.set(counts["inTransit"])
        for alert in AlertKind:
            m.alerts.labels(str(alert)).set(counts["alerts"].get(alert, 0))
        m.routing_cleanups_pending.set(await self.cleanup.pending())
        await self.alert_deliveries()
        m.conflicts.set(counts["conflicts"])
        m.quarantined.set(counts["quarantined"])
        return m.render()


class Agent:
    """A built agent: its parts and the app that serves them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.app: FastAPI = create_app(runtime)

    @property
    def service(self) -> InventoryService:
        return self.runtime.service


def build(
    cfg: AgentConfig, *, forwarder: Forwarder | None = None, passwords: Passwords | None = None
) -> Agent:
    """The agent for ``cfg``. ``forwarder``: how an agent without NATS reaches
    other stores (tests drive a fake network through it; else NATS's, or
    ``Standalone``). ``passwords``: other argon2 parameters (tests)."""
    offset = cfg.clock_offset_ms

    def skewed_ms() -> int:  # drills and tests: this agent's clock ahead or behind
        return now_ms() + offset

    ledger = open_ledger(cfg.ledger_path, cfg.store_id, hlc_clock=skewed_ms if offset else now_ms)
    metrics = Metrics()
    outbox = asyncio.Event()  # set on every write; the publisher waits on it
    alerts = asyncio.Event()  # set on every write too; the alert deliverer waits on it
    bus: Publish | None = None

    def count(outcome: str) -> None:
        metrics.reservations.labels(outcome).inc()

    if not cfg.nats.servers:
        service = InventoryService(
            ledger,
            reservation_ttl=cfg.reservation_ttl,
            outbox=outbox,
            forwarder=forwarder,
            on_reservation=count,
            alerts=alerts,
        )
        replicator = None
    else:
        # imported only here: a standalone agent never loads nats-py
        from agent.sync.bus import AlertBus
        from agent.sync.forwarding import NatsForwarder
        from agent.sync.link import NatsLink
        from agent.sync.presence import PeerTable
        from agent.sync.replicator import Replicator

        link = NatsLink(cfg.nats, ledger.store_id, metrics, on_reconnect=outbox)
        peers = PeerTable(ledger.store_id, cfg.nats.heartbeat_interval)
        service = InventoryService(
            ledger,
            reservation_ttl=cfg.reservation_ttl,
            outbox=outbox,
            forwarder=NatsForwarder(link, cfg.nats.network, cfg.nats.forward_timeout),
            freshness=peers.freshness,
            on_reservation=count,
            alerts=alerts,
        )
        replica = Replica(ledger, outbox=outbox, snapshot_dir=cfg.data_dir / "snapshots")
        replicator = Replicator(cfg.nats, link, peers, replica, service, metrics)
        bus = AlertBus(link, cfg.nats.network, ledger.store_id)
    if cfg.demo_data:
        service.load_demo_data()
    # one ask of a routed reservation takes at most the forwarder's timeout
    budget_ms = int(cfg.nats.forward_timeout * 1000)
    cleanups = asyncio.Event()  # set when a routing leaves a cleanup
    runtime = Runtime(
        cfg,
        service,
        metrics,
        secret := auth.load_secret(cfg.data_dir, cfg.auth.jwt_secret),
        ExpiryWorker(service, cfg.expiry_interval),
        Router(
            service,
            budget_ms=budget_ms,
            cleanups=cleanups,
            on_routing=lambda outcome: metrics.routings.labels(outcome).inc(),
        ),
        CleanupWorker(
            service,
            budget_ms=budget_ms,
            wake=cleanups,
            on_cleanup=lambda outcome: metrics.routing_cleanups.labels(outcome).inc(),
        ),
        replicator,
        deliveries(ledger, cfg.alerts, bus, alerts, metrics),
        accounts(cfg, secret, passwords or Passwords()),
    )
    return Agent(runtime)


def accounts(cfg: AgentConfig, secret: str, passwords: Passwords) -> Accounts:
    """The store's accounts (users.db), logins throttled as ``cfg.auth`` says."""
    a: AuthConfig = cfg.auth
    policy = ThrottlePolicy(
        window=a.login_window,
        slow_after=a.login_slow_after,
        max_per_user=a.login_max_failures,
        max_per_address=a.login_max_failures_per_address,
    )
    return Accounts(
        UserStore(cfg.users_path), secret, passwords, Throttle(policy), int(a.login_ttl)
    )


def deliveries(
    ledger: Ledger,
    config: AlertsConfig,
    bus: Publish | None,
    wake: asyncio.Event,
    metrics: Metrics,
) -> DeliveryWorker:
    """The alert deliverer: every configured webhook (one HTTP client for
    all), and the bus when there is NATS."""
    targets: list[Target] = []
    client = None
    if config.webhooks:
        client = http_client()
        targets += [Webhook(hook, client) for hook in config.webhooks]
    if bus is not None:
        targets.append(Bus(bus))
    return DeliveryWorker(
        ledger,
        targets,
        max_age=config.max_age,
        wake=wake,
        on_outcome=lambda target, outcome: metrics.alert_deliveries.labels(target, outcome).inc(),
        client=client,
    )
