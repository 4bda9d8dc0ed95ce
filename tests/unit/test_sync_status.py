"""Unit tests of agent/sync/status.py: what /health and ``inv sync status``
say about replication. In process: a real replicator (never started) on real
ledgers and a fake connection."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agent.clocks import Clocks
from agent.config import NatsConfig
from agent.metrics import Metrics
from agent.sync import status
from agent.sync.presence import PeerTable
from agent.sync.replicator import Replicator
from tests import synckit
from tests.synckit import FakeMsg, FakeNC, LocalStore, fake_link

pytestmark = pytest.mark.anyio
local_store = synckit.local_store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ------------------------------------------------------------------ health
def test_health_is_ok_when_connected_and_publishing() -> None:
    link = fake_link("store-001", FakeNC(url="nats://store-001:s3cret@127.0.0.1:4222"))
    assert status.health(link, None) == {
        "ok": True,
        "connected": True,
        "server": "nats://store-001:***@127.0.0.1:4222",  # the password never shown
    }


def test_health_says_why_publishing_is_blocked_even_when_connected() -> None:
    link = fake_link("store-001", FakeNC())
    link.last_error = "fetch: timeout"
    assert status.health(link, "identity clash at seq 4") == {
        "ok": False,
        "connected": True,
        "server": "nats://127.0.0.1:4222",
        "error": "identity clash at seq 4",
    }


def test_health_gives_the_last_error_while_disconnected() -> None:
    link = fake_link("store-001", None, connected=False)
    assert status.health(link, None) == {"ok": False, "connected": False, "server": None}
    link.last_error = "connect: nats: no servers available for connection"
    assert status.health(link, None) == {
        "ok": False,
        "connected": False,
        "server": None,
        "error": "connect: nats: no servers available for connection",
    }


# ------------------------------------------------------------------ report
async def test_the_report_lists_each_peer_with_how_far_behind_it_is(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001"), local_store("store-002")
    config = NatsConfig(servers=["nats://127.0.0.1:4222"], heartbeat_interval=1.0)
    now = synckit.now_ms()
    clocks = Clocks(wall_ms=lambda: now)
    peers = PeerTable("store-001", 1.0, clocks=clocks)
    r = Replicator(
        config,
        fake_link("store-001", FakeNC()),
        peers,
        here.replica,
        here.service,
        Metrics(),
        clocks=clocks,
    )
    await r.consumer.handle(  # store-002's events 1..5 of 7, and a forgery
        [FakeMsg(s, p) for s, p in await peer.events(1, 5)]
        + [FakeMsg(synckit.ev_subject("store-002"), b"{}")]  # type: ignore[arg-type]
    )
    peers.heard("inv.default.hb.store-002", json.dumps({"storeId": "store-002", "seq": 7}).encode())
    peers.heard("inv.default.hb.store-003", json.dumps({"storeId": "store-003", "seq": 2}).encode())
    peers.peers["store-003"].last_heartbeat_ms = now - 3001  # stale: down
    r.ready = True

    report = await status.report(r)
    assert set(report) == {
        "storeId", "mode", "network", "stream", "connected", "server", "ready",
        "outboxBacklog", "published", "applied", "publishBlocked", "bootstrappedFrom",
        "lastError", "peers", "quarantined", "quarantine", "digests",
    }  # fmt: skip
    assert {k: report[k] for k in ("storeId", "mode", "network", "stream", "connected")} == {
        "storeId": "store-001",
        "mode": "replicated",
        "network": "default",
        "stream": "INVENTORY",
        "connected": True,
    }
    assert (report["ready"], report["applied"], report["published"]) == (True, 5, 0)
    assert report["outboxBacklog"] == 7  # our demo data, never published
    assert (report["quarantined"], report["quarantine"][0]["reason"]) == (1, "malformed")
    assert report["digests"] == await here.replica.digests()

    two, three = report["peers"]  # sorted by store; ourselves not listed
    assert (two["storeId"], two["state"], two["appliedSeq"], two["knownSeq"], two["behind"]) == (
        "store-002",
        "up",
        5,
        7,
        2,
    )
    assert two["lastEventAt"] and two["lastHeartbeatAt"] and two["lagSeconds"] is not None
    assert (three["storeId"], three["state"], three["appliedSeq"], three["behind"]) == (
        "store-003",
        "down",
        0,
        2,
    )
    assert (three["lastEventAt"], three["lagSeconds"]) == (None, None)


async def test_a_peer_known_only_from_its_events_was_never_seen(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    config = NatsConfig(servers=["nats://127.0.0.1:4222"])
    link = fake_link("store-001", None, connected=False)
    link.last_error = "connect: refused"
    r = Replicator(config, link, PeerTable("store-001", 1.0), here.replica, here.service, Metrics())
    await here.replica.apply([json.loads(p) for _, p in await peer.events()], [])
    report = await status.report(r)
    [row] = report["peers"]
    assert (row["storeId"], row["state"], row["appliedSeq"], row["knownSeq"]) == (
        "store-002",
        "never seen",
        7,
        7,
    )
    assert row["lastHeartbeatAt"] is None
    assert (report["connected"], report["server"], report["lastError"]) == (
        False,
        None,
        "connect: refused",
    )
