"""Unit tests of agent/sync/presence.py: the peer table (heartbeats heard,
who is live, how fresh each store's numbers are) and the heartbeat sender.
In process: a real ledger, a fake NATS connection, a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent import hlc
from agent.clocks import Clocks
from agent.metrics import Metrics
from agent.sync.presence import Heartbeats, PeerTable
from tests import synckit
from tests.synckit import FakeNC, LocalStore, failures, fake_link

pytestmark = pytest.mark.anyio
local_store = synckit.local_store
T0 = 1_800_000_000_000  # ms


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> list[int]:
    """A wall clock fixed at T0 (``on(clock)`` hands it to presence); set
    ``clock[0]`` to move it."""
    return [T0]


def on(now: list[int]) -> Clocks:
    return Clocks(wall_ms=lambda: now[0])


def hb(store: str) -> str:
    return f"inv.default.hb.{store}"


def beat(store: str, seq: int = 0) -> bytes:
    return json.dumps({"storeId": store, "seq": seq, "at": T0}).encode()


# ------------------------------------------------------------------ heard
def test_a_peers_heartbeat_records_when_it_was_heard_and_its_seq(clock: list[int]) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(hb("store-002"), beat("store-002", 5))
    peer = table.peers["store-002"]
    assert (peer.last_heartbeat_ms, peer.known_seq) == (T0, 5)


def test_our_own_heartbeat_is_ignored(clock: list[int]) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(hb("store-001"), beat("store-001", 9))
    assert table.peers == {}


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"store-002"',
        b"null",
        b'{"seq": 3}',
        b'{"storeId": "store-002", "seq": "three"}',
        b'{"storeId": "store-002", "seq": null}',
        b'{"storeId": "store-002", "seq": [3]}',
        b'{"storeId": "store-002", "seq": NaN}',
        b'{"storeId": "store-002", "seq": Infinity}',
        b'{"storeId": "store-002", "seq": 1e400}',
        b'{"storeId": "store-002", "seq": 1000000000000000000000000000000}',
        b'{"storeId": "store-002", "seq": -1}',
        b'{"storeId": "store-002", "seq": 3.5}',
        b'{"storeId": "store-002", "seq": "3"}',
        b'{"storeId": "store-002", "seq": true}',
    ],
)
def test_a_malformed_heartbeat_is_ignored_without_raising(clock: list[int], data: bytes) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(hb("store-002"), data)
    assert table.peers == {}


@pytest.mark.parametrize(
    "subject", [hb("store-003"), "inv.default.hb", "inv.default.hb.store-002.x", "store-002"]
)
def test_a_heartbeat_on_a_subject_that_is_not_its_stores_is_ignored(
    clock: list[int], subject: str
) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(subject, beat("store-002", 4))
    assert table.peers == {}


def test_the_known_seq_only_grows_but_every_beat_counts_as_heard(clock: list[int]) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(hb("store-002"), beat("store-002", 7))
    clock[0] = T0 + 500
    table.heard(hb("store-002"), beat("store-002", 3))  # late, or a restored peer
    peer = table.peers["store-002"]
    assert (peer.known_seq, peer.last_heartbeat_ms) == (7, T0 + 500)
    table.heard(hb("store-002"), json.dumps({"storeId": "store-002"}).encode())  # no seq
    assert peer.known_seq == 7
    table.heard(hb("store-002"), beat("store-002", 8))
    assert peer.known_seq == 8


# ------------------------------------------------------------------- live
def test_live_lists_peers_heard_within_three_intervals_most_recent_first(
    clock: list[int],
) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))  # stale after 3000 ms
    table.heard(hb("store-002"), beat("store-002"))
    clock[0] = T0 + 1000
    table.heard(hb("store-003"), beat("store-003"))
    assert table.live() == ["store-003", "store-002"]
    clock[0] = T0 + 3000  # store-002 exactly 3 intervals ago: still live
    assert table.live() == ["store-003", "store-002"]
    clock[0] = T0 + 3001
    assert table.live() == ["store-003"]
    clock[0] = T0 + 4001
    assert table.live() == []
    table.heard(hb("store-002"), beat("store-002"))  # back
    assert table.live() == ["store-002"]


def test_a_peer_only_known_from_its_events_is_not_live(clock: list[int]) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.peer("store-002")  # created by gap repair or the applier, never heard
    assert table.live() == []


# -------------------------------------------------------------- freshness
def test_freshness_is_the_last_heartbeat_when_all_it_announced_is_applied(
    clock: list[int],
) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(hb("store-002"), beat("store-002", 5))
    table.applied = {
        "store-002": {"appliedSeq": 5, "maxSeq": 5, "lastHlc": hlc.pack(T0 - 60_000, 0)}
    }
    assert table.freshness() == {"store-002": T0}


def test_freshness_falls_back_to_the_last_applied_event_while_behind(clock: list[int]) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(hb("store-002"), beat("store-002", 9))
    table.applied = {
        "store-002": {"appliedSeq": 5, "maxSeq": 6, "lastHlc": hlc.pack(T0 - 60_000, 4)}
    }
    assert table.freshness() == {"store-002": T0 - 60_000}


def test_freshness_says_nothing_of_a_peer_heard_but_never_applied(clock: list[int]) -> None:
    table = PeerTable("store-001", heartbeat_interval=1.0, clocks=on(clock))
    table.heard(hb("store-002"), beat("store-002", 2))
    table.heard(hb("store-003"), beat("store-003", 0))  # nothing to apply: fresh
    assert table.freshness() == {"store-003": T0}


# -------------------------------------------------------------- heartbeats
async def test_a_heartbeat_announces_the_newest_published_seq(
    local_store: Callable[..., LocalStore],
) -> None:
    store = local_store("store-001")
    nc = FakeNC()
    hbs = Heartbeats(fake_link("store-001", nc), store.replica, Metrics(), "default", 1.0)
    await hbs.beat()
    await store.replica.mark_published([1, 2, 3])
    await hbs.beat()
    assert [(s, b["storeId"], b["seq"]) for s, b in nc.published] == [
        (hb("store-001"), "store-001", 0),
        (hb("store-001"), "store-001", 3),
    ]


async def test_a_heartbeat_that_cannot_be_sent_is_counted_and_logged_not_raised(
    local_store: Callable[..., LocalStore],
) -> None:
    store = local_store("store-001")
    metrics = Metrics()
    nc = FakeNC(error=ConnectionResetError("link dropped"))
    hbs = Heartbeats(fake_link("store-001", nc), store.replica, metrics, "default", 1.0)
    with capture_logs() as logs:
        await hbs.beat()
        await hbs.beat()
    assert failures(metrics, "heartbeat") == 2
    assert failures(metrics, "ack") == 0
    sent: list[dict[str, Any]] = [e for e in logs if e["event"] == "heartbeat not sent"]
    assert len(sent) == 2
    assert sent[0]["log_level"] == "warning" and sent[0]["exc_info"] is True
    assert sent[0]["error"] == "link dropped"
