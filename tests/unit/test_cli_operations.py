"""``inv`` itself in process: help, global options (--agent/--token and their
environment variables), ``agent status``, ``sync status``, ``conflicts``,
and how each error becomes an exit code."""

from __future__ import annotations

import pytest

from inventory_cli import errors
from inventory_cli.main import EXIT_CODES_HELP, exit_code
from inventory_cli.transport import ConnectFailed
from tests.cli_support import (
    FakeAgent,
    availability_obj,
    error_of,
    run,
    run_json,
    stock_obj,
    table_rows,
)

HEALTH = {
    "status": "healthy",
    "storeId": "store-001",
    "mode": "standalone",
    "version": "0.1.0",
    "uptimeSeconds": 12,
    "checks": {
        "ledger": {"ok": True, "latencyMs": 0.2},
        "expiry": {"ok": True},
        "outbox": {"ok": True, "backlog": 3},
    },
}


def test_help_lists_every_exit_code_and_command() -> None:
    r = run(None, "--help")
    text = " ".join(r.stdout.split())
    assert " ".join(EXIT_CODES_HELP.split()) in text
    for command in ("product", "stock", "reserve", "confirm", "cancel", "import", "sync"):
        assert command in r.stdout


@pytest.mark.parametrize("args", [["stock"], ["product"]])
def test_a_group_without_a_command_is_help_on_stderr_and_exit_2(args: list[str]) -> None:
    # ``inv`` alone is the one-screen overview: tests/unit/test_cli_overview.py
    r = run(None, *args, code=2)
    assert "Usage: " in r.stderr and "Commands:" in r.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.CliError("x"), 1),
        (errors.AuthError("x"), 1),
        (errors.UsageError("x"), 2),
        (errors.InvalidError("x"), 2),
        (errors.NotFoundError("x"), 3),
        (errors.ConflictError("x"), 4),
        (errors.AgentUnreachableError("x"), 5),
        (errors.UnavailableError("x"), 5),
    ],
)
def test_exit_codes(error: errors.CliError, code: int) -> None:
    assert exit_code(error) == code


def test_token_and_agent_from_flags_or_environment() -> None:
    fake = FakeAgent().on("GET", "/api/v1/products/PROD-001/availability", availability_obj())
    run(fake, "stock", "show", "PROD-001")
    assert "Authorization" not in fake.last.headers
    run(fake, "stock", "show", "PROD-001", env={"INV_TOKEN": "from-env"})
    assert fake.last.headers["Authorization"] == "Bearer from-env"
    run(fake, "--token", "from-flag", "stock", "show", "PROD-001", env={"INV_TOKEN": "env"})
    assert fake.last.headers["Authorization"] == "Bearer from-flag"


def test_401_says_to_set_inv_token_and_is_exit_1() -> None:
    fake = FakeAgent().on(
        "GET", "/api/v1/products/PROD-001/availability", {"error": "missing token"}, status=401
    )
    r = run(fake, "stock", "show", "PROD-001", code=1)
    assert error_of(r) == "Error: missing token (inv login, or set INV_TOKEN)"


def test_an_unreachable_agent_is_exit_5_naming_where_and_how_to_start_it() -> None:
    fake = FakeAgent(fail=[ConnectFailed("refused")])
    r = run(fake, "--agent", "/nowhere/s", "product", "list", code=5)
    assert r.stderr.count("\n") == 1
    assert error_of(r) == (
        "Error: no agent is running at /nowhere/s: start it with: inv-agent --store-id STORE "
        "(or make run), or point INV_AGENT / --agent at it"
    )


def test_agent_status() -> None:
    fake = FakeAgent().on("GET", "/health", HEALTH)
    r = run(fake, "agent", "status")
    assert r.stdout.startswith("Agent store-001 (standalone, v0.1.0): healthy, up 12 s")
    rows = table_rows(r.stdout)
    assert rows["outbox"] == ["outbox", "yes", "backlog=3"]
    assert run_json(fake, "agent", "status") == HEALTH


def test_an_unhealthy_agent_prints_its_report_and_exits_1() -> None:
    sick = {**HEALTH, "status": "unhealthy", "checks": {"ledger": {"ok": False, "error": "x"}}}
    fake = FakeAgent().on("GET", "/health", sick, status=503)
    r = run(fake, "agent", "status", "--json", code=1, report=True)
    assert '"status": "unhealthy"' in r.stdout and r.stderr == ""
    r = run(fake, "agent", "status", code=1, report=True)
    assert "healthy" not in r.stdout.replace("unhealthy", "")
    assert table_rows(r.stdout)["ledger"] == ["ledger", "NO", "error=x"]
    fake = FakeAgent().on("GET", "/health", {"error": "store 'x' unreachable"}, status=503)
    run(fake, "agent", "status", code=5)  # a 503 that is not a health report


def test_sync_status() -> None:
    status = {
        "storeId": "store-001",
        "mode": "replicated",
        "connected": True,
        "server": "nats://127.0.0.1:4222",
        "outboxBacklog": 0,
        "quarantined": 0,
        "peers": [
            {"storeId": "store-002", "lastEventAt": None, "appliedSeq": 7,
             "lastHeartbeatAt": None, "lagSeconds": 0.5, "state": "live"},
        ],
        "digests": {"catalog": "abc", "store-001": "def"},
    }  # fmt: skip
    fake = FakeAgent().on("GET", "/api/v1/sync/status", status)
    r = run(fake, "sync", "status")
    assert r.stdout.startswith(
        "Store store-001: replicated, connected to nats://127.0.0.1:4222; outbox backlog 0"
    )
    rows = table_rows(r.stdout)
    assert rows["store-002"][2] == "7" and rows["catalog"] == ["catalog", "abc"]
    assert run_json(fake, "sync", "status") == status
    blocked = {**status, "connected": False, "publishBlocked": "stream missing", "peers": []}
    fake = FakeAgent().on("GET", "/api/v1/sync/status", blocked)
    assert "NOT PUBLISHING: stream missing" in run(fake, "sync", "status").stdout


def test_conflicts() -> None:
    item = {
        "detectedAt": "2024-01-01T10:00:00Z",
        "kind": "product_field",
        "sku": "PROD-001",
        "storeId": "store-002",
        "winner": "store-002",
        "loser": "store-001",
        "detail": {"field": "price", "kept": 84.99, "lost": 79.99},
    }
    fake = FakeAgent().on("GET", "/api/v1/conflicts", {"data": [item]})
    r = run(fake, "conflicts")
    assert r.stdout.startswith("Conflicts")
    assert table_rows(r.stdout)["2024-01-01 10:00:00"][6] == "price: kept 84.99, lost 79.99"
    assert run_json(fake, "conflicts", "--since", "1h", "--limit", "5") == [item]
    assert fake.last.query == {"since": "1h", "limit": "5"}
    fake = FakeAgent().on("GET", "/api/v1/conflicts", {"data": []})
    assert run_json(fake, "conflicts") == []


def test_a_stock_show_reaches_the_fake_not_the_socket() -> None:
    """The seam itself: with a transport given, nothing else is tried."""
    fake = FakeAgent().on(
        "GET", "/api/v1/products/PROD-001/availability", availability_obj(stock_obj())
    )
    run(fake, "--agent", "/definitely/not/here", "stock", "show", "PROD-001")
    assert len(fake.sent) == 1


def test_a_401_that_names_inv_login_already_is_not_told_it_twice() -> None:
    said = "missing bearer token (log in with: inv login; or make one with: inv-agent token)"
    fake = FakeAgent().on(
        "GET", "/api/v1/products/PROD-001/availability", {"error": said}, status=401
    )
    r = run(fake, "stock", "show", "PROD-001", code=1)
    assert error_of(r) == f"Error: {said}; or set INV_TOKEN"
