"""Prometheus metrics (prometheus-client) on a registry of the agent's own."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# replication: milliseconds are the promise, minutes an outage; 50 ms (the
# chain's p99 goal, B10) is an edge, and the loaded range (0.1-2 s) has
# enough edges for a quantile read off them to mean something
DELAY_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.035)
DELAY_BUCKETS += (0.05, 0.075, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30)
DELAY_BUCKETS += (60, 300)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "inv_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "inv_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        backlog, published = "Local events not yet published", "Events published"
        self.outbox_backlog = Gauge("inv_outbox_backlog", backlog, registry=r)
        self.events_published = Counter("inv_events_published_total", published, registry=r)
        self.events_applied = Counter(
            "inv_events_applied_total", "Peer events applied", ["origin"], registry=r
        )
        self.events_quarantined = Counter(
            "inv_events_quarantined_total", "Events quarantined", ["reason"], registry=r
        )
        lag = "Age of the newest event applied per peer"
        self.replication_lag = Gauge("inv_replication_lag_seconds", lag, ["peer"], registry=r)
        # one series for all peers (500 stores would be 500 label values): how
        # long a peer's write took to become readable here, its stamp to our commit
        self.replication_delay = Histogram(
            "inv_replication_delay_seconds",
            "Peer events: from the origin's timestamp to committed (readable) here",
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.sync_failures = Counter(
            "inv_sync_failures_total",
            "Replication operations that failed (ack, heartbeat, respond, publish, fetch, ...)",
            ["operation"],
            registry=r,
        )
        self.nats_connected = Gauge("inv_nats_connected", "1 when connected to NATS", registry=r)
        self.reservations = Counter(
            "inv_reservation_requests_total",
            "Reservation requests by outcome (created, existing, rejected, forwarded)",
            ["outcome"],
            registry=r,
        )
        self.routings = Counter(
            "inv_routing_total",
            "Routed reservations (storeId any) by outcome (granted, refused, unreachable, "
            "replayed)",
            ["outcome"],
            registry=r,
        )
        self.routing_cleanups = Counter(
            "inv_routing_cleanups_total",
            "Tries at cancelling an unanswered routed attempt, by outcome (cancelled, "
            "never-granted, expired, confirmed, retry)",
            ["outcome"],
            registry=r,
        )
        self.routing_cleanups_pending = Gauge(
            "inv_routing_cleanups_pending",
            "Routed attempts still to be cancelled at their owner",
            registry=r,
        )
        self.alert_deliveries, self.alert_deliveries_pending = _alert_metrics(r)
        self.reservations_by_status = Gauge(
            "inv_reservations", "Reservations in the ledger by status", ["status"], registry=r
        )
        self.movements = Gauge(
            "inv_stock_movements", "Stock movements in the ledger by kind", ["kind"], registry=r
        )
        self.transfers, self.units_in_transit, self.alerts = _moves_gauges(r)
        self.conflicts = Gauge("inv_conflicts", "Entries in the conflicts log", registry=r)
        self.quarantined = Gauge(
            "inv_quarantined_events", "Peer events held in quarantine", registry=r
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _moves_gauges(r: CollectorRegistry) -> tuple[Gauge, Gauge, Gauge]:
    """Transfers by status, the units they have in transit, alerts by kind."""
    transfers = Gauge("inv_transfers", "Transfers in the ledger by status", ["status"], registry=r)
    in_transit = Gauge(
        "inv_transfer_units_in_transit",
        "Units shipped by transfers and not yet received, damaged or cancelled",
        registry=r,
    )
    alerts = Gauge("inv_alerts", "Alerts in the ledger by kind", ["kind"], registry=r)
    return transfers, in_transit, alerts


def _alert_metrics(r: CollectorRegistry) -> tuple[Counter, Gauge]:
    """The delivery of this store's alerts: tries by outcome, and pending, per target."""
    tries = Counter(
        "inv_alert_deliveries_total",
        "Tries at delivering this store's alerts, per target, by outcome (delivered, "
        "retry, given_up, skipped)",
        ["target", "outcome"],
        registry=r,
    )
    pending = Gauge(
        "inv_alert_deliveries_pending",
        "This store's alerts not yet delivered (nor given up), per target",
        ["target"],
        registry=r,
    )
    return tries, pending
