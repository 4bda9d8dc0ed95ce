"""Observability: Prometheus metrics (HTTP, ledger and replication series
that move with activity), the health report and ``inv agent status``, and
structured logs with request ids.

A standalone agent's metrics, health, request ids and access-log events are
checked in-process (``tests.inproc``; structlog captured). Real processes are
kept for replication (a nats-server and peers), ``inv agent status`` against
an unhealthy agent, and the log lines a process writes on stderr (JSON or
console)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import synckit
from tests.helpers import Agent, free_port, run_cli, wait_for
from tests.inproc import InProcAgent, captured_logs
from tests.natsfix import NatsServer
from tests.synckit import (
    AgentFactory,
    on_hand,
    status,
    stock_write,
    wait_converged,
    with_js,
)

nats_server = synckit.nats_server
peer = synckit.peer

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"  # PROD-001
pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(r: httpx.Response) -> Samples:
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape(agent: Agent) -> Samples:
    return parse(agent.client().get("/metrics"))


async def ascrape(api: httpx.AsyncClient) -> Samples:
    return parse(await api.get("/metrics"))


async def write_stock(
    api: httpx.AsyncClient, sku: str, operation: str, quantity: int, store: str
) -> None:
    r = await api.post(
        f"/api/v1/products/{sku}/stock",
        json={"storeId": store, "operation": operation, "quantity": quantity, "reason": "test"},
    )
    assert r.status_code == 202, r.text


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 if the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


# ---------------------------------------------------------------- metrics
async def test_metrics_count_requests_and_ledger_activity(api_agent: InProcAgent) -> None:
    api = api_agent.local
    before = await ascrape(api)
    for name in ("inv_outbox_backlog", "inv_conflicts", "inv_nats_connected"):
        assert series(before, name) == [{}], name
    stock_route = "/api/v1/products/{ref}/stock"
    assert value(before, "inv_http_requests_total", method="POST", route=stock_route) == 0

    await write_stock(api, "PROD-001", "add", 5, "store-001")
    await write_stock(api, "PROD-001", "add", 1, "store-001")
    await write_stock(api, "PROD-002", "set", 40, "store-001")
    assert (await api.get("/api/v1/products/NOPE")).status_code == 404
    r = await api.post("/api/v1/reservations", json={"productId": SEED_ID, "quantity": 2})
    assert r.status_code == 202, r.text
    r = await api.post("/api/v1/reservations", json={"productId": SEED_ID, "quantity": 1000})
    assert r.status_code == 409, r.text
    after = await ascrape(api)

    requests = "inv_http_requests_total"
    assert value(after, requests, method="POST", route=stock_route, status="202") == 3
    assert value(after, requests, method="GET", route="/api/v1/products/{ref}", status="404") == 1
    assert value(after, requests, method="POST", route="/api/v1/reservations", status="409") == 1
    # route templates, never raw paths (bounded cardinality)
    assert not [s for s in series(after, requests) if "PROD-001" in s["route"]]
    duration = "inv_http_request_duration_seconds_count"
    assert value(after, duration, method="POST", route=stock_route) == 3
    assert value(after, "inv_http_request_duration_seconds_sum", method="POST", route=stock_route)
    assert any(n == "inv_http_request_duration_seconds_bucket" for n, _ in after)

    outcomes = "inv_reservation_requests_total"
    assert (
        value(after, outcomes, outcome="created") == value(before, outcomes, outcome="created") + 1
    )
    assert value(after, outcomes, outcome="rejected") == 1
    movements = "inv_stock_movements"
    assert value(after, movements, kind="receive") == value(before, movements, kind="receive") + 2
    assert value(after, movements, kind="count") == value(before, movements, kind="count") + 1
    assert value(after, "inv_reservations", status="PENDING") == 1
    # standalone: every event waits in the outbox; no NATS
    assert value(after, "inv_outbox_backlog") == value(before, "inv_outbox_backlog") + 4
    assert value(after, "inv_nats_connected") == 0
    assert value(after, "inv_conflicts") == 0


def test_replication_metrics_move_with_activity(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    wait_converged(a, b, stores=("store-001",))
    a0, b0 = scrape(a), scrape(b)
    for m in (a0, b0):
        assert value(m, "inv_nats_connected") == 1
        assert value(m, "inv_outbox_backlog") == 0
    assert value(a0, "inv_events_published_total") >= 7  # the seed: 3 products, 4 stock rows
    applied0 = value(b0, "inv_events_applied_total", origin="store-001")
    assert applied0 >= 7
    lag = value(b0, "inv_replication_lag_seconds", peer="store-001")
    assert 0 <= lag < 60
    # every applied event is in the delay histogram, all of them under a minute
    delays = value(b0, "inv_replication_delay_seconds_count")
    assert delays >= applied0
    assert value(b0, "inv_replication_delay_seconds_bucket", le="60.0") == delays

    # a reservation of store-001's stock made at store-002 is forwarded to its owner
    r = b.client().post(
        "/api/v1/reservations",
        json={
            "reservationId": "obs-1",
            "productId": SEED_ID,
            "storeId": "store-001",
            "quantity": 5,
        },
    )
    assert r.status_code == 202, r.text
    wait_converged(a, b)
    # store-002 counts store-001's shelf at 2 while 5 are reserved there:
    # at the owner that drives available below zero, which is a logged conflict
    stock_write(b, "PROD-001", "set", 2, "store-001")
    wait_converged(a, b)
    # and a malformed event lands in the stream: everyone quarantines it
    with_js(nats_server, lambda js: js.publish("inv.default.ev.store-009", b"{not json"))

    def moved() -> bool:
        a1 = scrape(a)
        return value(a1, "inv_conflicts") >= 1 and all(
            value(scrape(x), "inv_events_quarantined_total", reason="malformed") >= 1
            for x in (a, b)
        )

    wait_for(moved, what="conflict and quarantine metrics to move")
    a1, b1 = scrape(a), scrape(b)
    assert value(a1, "inv_conflicts") == 1
    assert value(a1, "inv_quarantined_events") == 1
    assert value(a1, "inv_events_published_total") > value(a0, "inv_events_published_total")
    assert value(a1, "inv_events_applied_total", origin="store-002") >= 1
    assert value(b1, "inv_events_applied_total", origin="store-001") > applied0
    assert value(b1, "inv_events_published_total") >= 1
    assert value(b1, "inv_reservation_requests_total", outcome="forwarded") == 1
    assert value(a1, "inv_reservation_requests_total", outcome="created") == 1
    assert 0 <= value(a1, "inv_replication_lag_seconds", peer="store-002") < 60
    assert value(a1, "inv_outbox_backlog") == value(b1, "inv_outbox_backlog") == 0

    # NATS goes away: the gauge says so, /health turns 503
    nats_server.kill()
    wait_for(lambda: value(scrape(a), "inv_nats_connected") == 0, what="the disconnect")
    r = a.client().get("/health")
    assert r.status_code == 503
    assert r.json()["checks"]["nats"]["ok"] is False


# ----------------------------------------------------------------- health
async def test_health_of_a_standalone_agent(api_agent: InProcAgent) -> None:
    """(``inv agent status`` on a healthy agent: test_cli_basic.)"""
    r = await api_agent.tcp().get("/health")  # over TCP; no token needed
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "healthy"
    assert h["storeId"] == "store-001"
    assert h["mode"] == "standalone"
    assert set(h["checks"]) == {"ledger", "expiry", "routingCleanup", "outbox", "alerts"}
    assert all(c["ok"] is True for c in h["checks"].values())
    assert h["checks"]["routingCleanup"] == {"ok": True, "pending": 0, "settled": 0}
    # no webhook configured, no NATS: nothing to deliver alerts to
    assert h["checks"]["alerts"] == {"ok": True, "targets": 0, "pending": 0, "givenUp": 0}
    assert h["alertDeliveries"] == []
    assert h["checks"]["outbox"]["backlog"] == 7  # the seed's events, never published


def test_health_is_503_naming_nats_when_it_is_unreachable(
    make_agent: Any, nats_server: NatsServer
) -> None:
    ok = make_agent("store-001", args=["--nats", nats_server.url])
    wait_for(
        lambda: ok.client().get("/health").status_code == 200, what="the connected agent healthy"
    )
    h = ok.client().get("/health").json()
    assert set(h["checks"]) == {"ledger", "expiry", "routingCleanup", "outbox", "nats", "alerts"}
    assert h["checks"]["nats"]["connected"] is True
    assert [d["target"] for d in h["alertDeliveries"]] == ["nats"]  # the bus
    assert h["mode"] == "replicated"

    down = make_agent("store-002", args=["--nats", f"nats://127.0.0.1:{free_port()}"])
    api = down.client()
    r = api.get("/health")
    assert r.status_code == 503
    h = r.json()
    assert h["status"] == "unhealthy"
    assert h["checks"]["nats"]["ok"] is False
    assert h["checks"]["nats"]["connected"] is False
    assert all(h["checks"][c]["ok"] for c in ("ledger", "expiry", "outbox"))
    wait_for(
        lambda: api.get("/health").json()["checks"]["nats"].get("error"),
        what="the connect error in /health",
    )
    # the agent still works
    stock_write(down, "PROD-001", "add", 1, "store-002")
    assert api.get("/api/v1/products/PROD-001").status_code == 200

    out = run_cli(down, "agent", "status")
    assert out.returncode != 0
    assert "nats" in out.stdout.lower()
    assert "unhealthy" in (out.stdout + out.stderr).lower()
    out = run_cli(down, "agent", "status", "--json")
    assert out.returncode != 0
    body = json.loads(out.stdout)
    assert body["checks"]["nats"]["ok"] is False
    assert body["status"] == "unhealthy"


# ------------------------------------------------------------------- logs
def log_lines(agent: Agent) -> list[str]:
    return [line for line in agent.log_path.read_text().splitlines() if line.strip()]


async def test_requests_get_ids_and_one_access_event_each(api_agent: InProcAgent) -> None:
    api = api_agent.local
    with captured_logs() as events:
        r = await api.get("/api/v1/products/PROD-001", headers={"X-Request-Id": "trace-abc-123"})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "trace-abc-123"
        r = await api.get("/api/v1/products/NOPE")
        generated = r.headers["x-request-id"]
        assert generated and generated != "trace-abc-123"
        # an unusable id (too long) is replaced, not echoed
        r = await api.get("/api/v1/products", headers={"X-Request-Id": "x" * 200})
        too_long = r.headers["x-request-id"]
        assert too_long != "x" * 200
        r = await api_agent.tcp().get("/api/v1/products", headers={"X-Request-Id": "tcp-req-7"})
        assert r.status_code == 401
        assert r.headers["x-request-id"] == "tcp-req-7"

    requests = [x for x in events if x["event"] == "request"]
    assert len(requests) == 4
    assert all({"method", "path", "status", "ms", "via", "log_level"} <= set(x) for x in requests)
    by_id = {x["request_id"]: x for x in requests}
    assert set(by_id) == {"trace-abc-123", generated, too_long, "tcp-req-7"}  # one each
    assert by_id["trace-abc-123"]["path"] == "/api/v1/products/PROD-001"
    assert (by_id["trace-abc-123"]["status"], by_id["trace-abc-123"]["via"]) == (200, "socket")
    assert by_id[generated]["status"] == 404
    assert (by_id["tcp-req-7"]["status"], by_id["tcp-req-7"]["via"]) == (401, "tcp")


def test_json_logs_carry_request_ids(make_agent: Any) -> None:
    """A real process: its stderr is JSON lines, the access lines with the
    request's id and the door it came in by."""
    agent = make_agent("store-001", tcp=True)
    api = agent.client()
    r = api.get("/api/v1/products/PROD-001", headers={"X-Request-Id": "trace-abc-123"})
    assert r.status_code == 200
    r = api.get("/api/v1/products/NOPE")
    generated = r.headers["x-request-id"]
    with httpx.Client(base_url=agent.url, timeout=30) as http:
        r = http.get("/api/v1/products", headers={"X-Request-Id": "tcp-req-7"})
        assert r.status_code == 401

    def logged() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in log_lines(agent)]  # every line is JSON
        reqs = [x for x in lines if x.get("event") == "request"]
        return reqs if any(x.get("request_id") == "tcp-req-7" for x in reqs) else []

    requests = wait_for(logged, what="the access log lines")
    assert all(x["request_id"] for x in requests)
    assert all({"method", "path", "status", "level", "timestamp"} <= set(x) for x in requests)
    by_id = {x["request_id"]: x for x in requests}
    assert by_id["trace-abc-123"]["path"] == "/api/v1/products/PROD-001"
    assert (by_id["trace-abc-123"]["status"], by_id["trace-abc-123"]["via"]) == (200, "socket")
    assert by_id[generated]["status"] == 404
    assert (by_id["tcp-req-7"]["status"], by_id["tcp-req-7"]["via"]) == (401, "tcp")
    assert len(by_id) == len(requests)  # ids are unique per request


def test_console_log_format_is_not_json(make_agent: Any) -> None:
    agent = make_agent("store-001", args=["--log-format", "console"])
    r = agent.client().get("/api/v1/products", headers={"X-Request-Id": "console-req-1"})
    assert r.status_code == 200

    def logged() -> list[str]:
        return [line for line in log_lines(agent) if "console-req-1" in line]

    [line] = wait_for(logged, what="the request's log line")
    assert "request" in line and "request_id=console-req-1" in line
    lines = log_lines(agent)
    assert any("agent starting" in line for line in lines)
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            continue
        raise AssertionError(f"a JSON line in console format: {line}")


async def test_request_metrics_and_logs_agree_under_load(api_agent: InProcAgent) -> None:
    """Every request is counted once and logged once with its own id."""
    api = api_agent.local
    n = 50
    ids = [f"load-{i}" for i in range(n)]
    start = time.monotonic()
    with captured_logs() as events:
        for rid in ids:
            r = await api.get("/api/v1/products", headers={"X-Request-Id": rid})
            assert r.status_code == 200
    assert time.monotonic() - start < 30
    m = await ascrape(api)
    count = value(
        m, "inv_http_requests_total", method="GET", route="/api/v1/products", status="200"
    )
    assert count == n
    logged = [x["request_id"] for x in events if x["event"] == "request"]
    assert sorted(logged) == sorted(ids)
    r = await api.get("/api/v1/sync/status")
    assert r.status_code == 200, r.text
    assert r.json()["mode"] == "standalone"


def _restore_backup(agent: Agent) -> None:
    """docs/OPERATIONS.md's restore: an online ``VACUUM INTO`` copy taken
    earlier replaces the ledger while the agent is stopped."""
    agent.stop()
    for suffix in ("", "-wal", "-shm"):
        (agent.data_dir / f"ledger.db{suffix}").unlink(missing_ok=True)
    (agent.home / "backup.db").rename(agent.data_dir / "ledger.db")


def _take_backup(agent: Agent) -> None:
    import sqlite3

    conn = sqlite3.connect(agent.data_dir / "ledger.db")
    try:
        conn.execute("VACUUM INTO ?", (str(agent.home / "backup.db"),))  # online
    finally:
        conn.close()


def test_a_ledger_restored_from_an_old_backup_takes_its_events_back(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    """Events the store published after the backup was taken come back from
    the stream: nothing acknowledged is lost, and publishing goes on."""
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    wait_converged(a, b, stores=("store-001",))
    _take_backup(a)
    stock_write(a, "PROD-001", "add", 2, "store-001")
    stock_write(b, "PROD-002", "set", 9, "store-002")
    wait_converged(a, b, stores=("store-002",))
    in_stream = synckit.subject_count(nats_server, "store-001")
    assert in_stream == 8  # the seed's 7 events and the write after the backup

    _restore_backup(a)
    a.start()
    wait_for(
        lambda: on_hand(a, "PROD-001", "store-001") == 12,
        what="the write made after the backup to come back from the stream",
    )
    wait_for(lambda: on_hand(a, "PROD-002", "store-002") == 9, what="store-002's later write")
    assert a.client().get("/health").status_code == 200
    assert status(a)["publishBlocked"] is None
    # the next write continues the sequence and reaches the other store
    stock_write(a, "PROD-001", "add", 1, "store-001")
    wait_for(lambda: on_hand(b, "PROD-001", "store-001") == 13, what="the next write at b")
    assert synckit.subject_count(nats_server, "store-001") == in_stream + 1
    wait_converged(a, b, stores=("store-001", "store-002"))


def test_a_restored_ledger_written_to_before_reconnecting_is_blocked(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    """Written to after the restore but before it saw the stream: its new
    events reuse ids the stream already holds. It must not publish them, and
    says why."""
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    wait_converged(a, b, stores=("store-001",))
    _take_backup(a)
    stock_write(a, "PROD-001", "add", 2, "store-001")
    wait_converged(a, b, stores=("store-001",))
    in_stream = synckit.subject_count(nats_server, "store-001")

    _restore_backup(a)
    nats_server.stop()
    a.start()
    stock_write(a, "PROD-001", "add", 5, "store-001")  # offline: same seq as the lost +2
    nats_server.start()

    wait_for(
        lambda: status(a)["publishBlocked"],
        30,
        what="the restored agent to report the identity conflict",
    )
    h = a.client().get("/health").json()
    assert h["checks"]["nats"]["connected"] is True
    assert "differ from this ledger" in h["checks"]["nats"]["error"]
    assert status(a)["publishBlocked"]
    assert synckit.subject_count(nats_server, "store-001") == in_stream
    assert on_hand(b, "PROD-001", "store-001") == 12  # b never sees the clashing write
    out = run_cli(a, "agent", "status")
    assert out.returncode == 1
    assert "differ from this ledger" in " ".join(out.stdout.split())
