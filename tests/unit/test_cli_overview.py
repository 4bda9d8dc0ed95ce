"""``inv`` alone: one screen with the store, the agent's health, replication
and the commands a clerk types most; in process against a fake agent."""

from __future__ import annotations

from typing import Any

from tests.cli_support import FakeAgent, run

HEALTHY = {
    "status": "healthy",
    "storeId": "store-007",
    "version": "0.1.0",
    "mode": "replicated",
    "checks": {"ledger": {"ok": True}, "nats": {"ok": True}},
}


def sync(connected: bool = True, **more: Any) -> dict[str, Any]:
    peers = [
        {"storeId": "store-001", "state": "up"},
        {"storeId": "store-002", "state": "down"},
    ]
    return {"storeId": "store-007", "mode": "replicated", "connected": connected,
            "outboxBacklog": 3, "peers": peers, **more}  # fmt: skip


def commands_of(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("  inv ")]


def test_the_screen_names_the_store_its_health_its_sync_and_five_commands() -> None:
    fake = FakeAgent().on("GET", "/health", HEALTHY).on("GET", "/api/v1/sync/status", sync())
    r = run(fake, env={"COLUMNS": "80"})
    lines = r.stdout.splitlines()
    assert lines[0] == "Store:  store-007"
    assert lines[1] == "Agent:  healthy, v0.1.0, replicated"
    assert lines[2] == "Sync:   connected; 1 of 2 other stores up; 3 events to send"
    assert commands_of(r.stdout) == ["sell", "stock", "reserve", "confirm", "receive"]
    assert max(len(line) for line in lines) <= 80
    assert [s.path for s in fake.sent] == ["/health", "/api/v1/sync/status"]


def test_offline_and_unhealthy_are_said_plainly_and_exit_1() -> None:
    sick = {**HEALTHY, "status": "unhealthy", "checks": {"ledger": {"ok": True},
            "nats": {"ok": False}}}  # fmt: skip
    fake = (
        FakeAgent()
        .on("GET", "/health", sick, status=503)
        .on("GET", "/api/v1/sync/status", sync(connected=False))
    )
    r = run(fake, code=1, report=True)
    assert "Agent:  UNHEALTHY (nats)" in r.stdout
    assert "Sync:   OFFLINE (sales go on; they sync later)" in r.stdout
    assert len(commands_of(r.stdout)) == 5


def test_no_agent_still_shows_the_commands_and_exits_5() -> None:
    r = run(None, code=5, report=True)
    assert "no agent is running at /nonexistent/fake-agent.sock" in r.stdout
    assert len(commands_of(r.stdout)) == 5


def test_a_standalone_agent_says_it_syncs_with_nobody() -> None:
    standalone = {**HEALTHY, "mode": "standalone"}
    fake = (
        FakeAgent()
        .on("GET", "/health", standalone)
        .on("GET", "/api/v1/sync/status", {"storeId": "store-007", "mode": "standalone"})
    )
    r = run(fake)
    assert "Sync:   standalone (no NATS configured): this store only" in r.stdout
