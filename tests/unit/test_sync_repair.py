"""Unit tests of agent/sync/repair.py: when a hole in a peer's seqs is asked
for (only once it has lasted GAP_PATIENCE, or UNKNOWN_PATIENCE for a peer
never applied), what is asked, and what a failed ask leaves behind. In
process: two real ledgers, the fake request answered by the origin's real
``rpc.handle``; time is moved by backdating ``gap_since``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent import hlc
from agent.sync import validate
from agent.sync.presence import PeerTable
from agent.sync.repair import GAP_PATIENCE, UNKNOWN_PATIENCE, GapRepair
from tests import synckit
from tests.synckit import FakeNC, LocalStore, fake_link, served_by

pytestmark = pytest.mark.anyio
local_store = synckit.local_store
PEER_HB = "inv.default.hb.store-002"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Setup:
    def __init__(self, here: LocalStore, origin: LocalStore, nc: FakeNC, idle: bool = True) -> None:
        self.here, self.origin, self.nc = here, origin, nc
        self.idle = idle
        self.link = fake_link(here.store_id, nc)
        self.peers = PeerTable(here.store_id, 1.0)
        self.repair = GapRepair(
            self.link,
            here.replica,
            self.peers,
            self.apply,
            network="default",
            timeout=2.0,
            max_skew_ms=300_000,
            consumer_idle=lambda: self.idle,
        )

    async def apply(self, events: Any, rejected: Any) -> dict[str, int]:
        applied = await self.here.replica.apply(events, rejected)
        self.peers.applied = await self.here.replica.origins()
        return applied.counts

    async def deliver(self, *seqs: int) -> None:
        """Some of the origin's events arrive through the stream."""
        items = [item for s in seqs for item in await self.origin.events(s, s)]
        events = [json.loads(p) for _, p in items]
        await self.apply(events, [])

    def announce(self, seq: int) -> None:
        self.peers.heard(PEER_HB, json.dumps({"storeId": "store-002", "seq": seq}).encode())

    def backdate(self, seconds: float) -> None:
        peer = self.peers.peers["store-002"]
        assert peer.gap_since is not None
        peer.gap_since -= seconds

    async def applied(self) -> int:
        return int((await self.here.replica.origins())["store-002"]["appliedSeq"])


@pytest.fixture
def setup(local_store: Callable[..., LocalStore]) -> Setup:
    here, origin = local_store("store-001", demo=False), local_store("store-002")  # 7 events
    return Setup(here, origin, FakeNC(served_by(origin)))


async def test_a_hole_is_asked_for_only_once_it_has_lasted_the_patience(setup: Setup) -> None:
    await setup.deliver(1, 2, 5, 6)
    setup.announce(7)  # its heartbeat: it has 7
    await setup.repair.check()
    assert setup.nc.requests == []  # just seen: events in flight close most holes
    await setup.repair.check()
    assert setup.nc.requests == []
    setup.backdate(GAP_PATIENCE * 0.5)
    await setup.repair.check()
    assert setup.nc.requests == []

    setup.backdate(GAP_PATIENCE * 0.5)
    with capture_logs() as logs:
        await setup.repair.check()
    # from the first missing seq to the last known one, asked of the origin itself
    [(subject, asked, timeout)] = setup.nc.requests
    assert (subject, asked, timeout) == (
        "inv.default.rpc.store-002.events",
        {"from": 3, "to": 7},
        2.0,
    )
    assert await setup.applied() == 7
    assert await setup.here.replica.digests() == await setup.origin.replica.digests()
    assert setup.peers.peers["store-002"].gap_since is None
    [done] = [e for e in logs if e["event"] == "gap repaired"]
    assert (done["origin"], done["first"], done["last"], done["applied"]) == ("store-002", 3, 7, 3)
    await setup.repair.check()
    assert len(setup.nc.requests) == 1  # nothing more to ask


async def test_a_hole_that_closes_by_itself_is_never_asked_for(setup: Setup) -> None:
    await setup.deliver(1, 3)
    await setup.repair.check()
    assert setup.peers.peers["store-002"].gap_since is not None
    await setup.deliver(2)  # the stream delivered it after all
    await setup.repair.check()
    assert setup.peers.peers["store-002"].gap_since is None
    assert setup.nc.requests == []


async def test_a_peer_never_applied_is_asked_after_the_longer_patience_and_only_when_idle(
    setup: Setup,
) -> None:
    setup.announce(7)  # heard, but nothing of it has arrived
    await setup.repair.check()
    setup.backdate(GAP_PATIENCE)
    await setup.repair.check()
    assert setup.nc.requests == []  # the longer patience for a peer we know nothing of
    setup.idle = False  # the stream is still delivering: likely on its way
    setup.backdate(UNKNOWN_PATIENCE)
    await setup.repair.check()
    assert setup.nc.requests == []
    setup.idle = True
    await setup.repair.check()
    assert [asked for _, asked, _ in setup.nc.requests] == [{"from": 1, "to": 7}]
    assert await setup.applied() == 7


async def test_a_failed_ask_is_retried_at_a_later_check(
    local_store: Callable[..., LocalStore],
) -> None:
    here, origin = local_store("store-001", demo=False), local_store("store-002")
    s = Setup(here, origin, FakeNC(error=TimeoutError("no answer")))
    await s.deliver(1, 2)
    s.announce(5)
    await s.repair.check()
    s.backdate(GAP_PATIENCE)
    with capture_logs() as logs:
        await s.repair.check()  # not raised
        await s.repair.check()  # and asked again straight away: the hole is old
    assert [asked for _, asked, _ in s.nc.requests] == [{"from": 3, "to": 5}] * 2
    assert s.link.last_error == "gap repair from store-002: no answer"
    assert [e["event"] for e in logs] == ["gap repair failed; will retry"] * 2
    assert await s.applied() == 2


async def test_what_the_origin_sends_is_checked_before_it_is_applied(
    local_store: Callable[..., LocalStore],
) -> None:
    """A reply carrying another store's event under the origin's name is
    quarantined (it arrived as the origin's), not applied."""
    here, origin = local_store("store-001", demo=False), local_store("store-002")

    async def lying(subject: str, payload: bytes, timeout: float) -> bytes:
        forged = synckit.forged_count("store-003", 3)
        return json.dumps({"status": 200, "body": {"events": [forged]}}).encode()

    s = Setup(here, origin, FakeNC(lying))
    await s.deliver(1, 2)
    s.announce(3)
    await s.repair.check()
    s.backdate(GAP_PATIENCE)
    await s.repair.check()
    assert await s.applied() == 2
    [q] = await here.replica.quarantine_list(10)
    assert (q["eventId"], q["reason"]) == ("store-003:3", "origin_mismatch")


async def test_our_own_origin_is_never_repaired_from_a_peer(
    local_store: Callable[..., LocalStore],
) -> None:
    here = local_store("store-001")  # our own events 1..7
    s = Setup(here, here, FakeNC(error=AssertionError("must not ask")))
    s.peers.applied = {"store-001": {"appliedSeq": 0, "maxSeq": 99, "lastHlc": 0}}
    await s.repair.check()
    s.peers.peer("store-001").gap_since = time.monotonic() - 10 * UNKNOWN_PATIENCE
    await s.repair.check()
    assert s.nc.requests == []


async def test_events_quarantined_from_their_origins_subject_are_not_asked_for_again(
    local_store: Callable[..., LocalStore],
) -> None:
    """A peer whose clock runs ahead: its events are held in quarantine; a
    repair must not fetch them again by another way (they would be refused
    the same, every second)."""
    here, origin = local_store("store-001", demo=False), local_store("store-002")
    s = Setup(here, origin, FakeNC(served_by(origin)))
    await s.deliver(1, 2)
    ahead = synckit.forged_count("store-002", 3)
    ahead["hlc"] = hlc.pack(synckit.now_ms() + 600_000, 0)
    events, rejected = validate.sort(
        [(synckit.ev_subject("store-002"), json.dumps(ahead).encode())], synckit.now_ms(), 300_000
    )
    await s.apply(events, rejected)
    s.announce(3)
    await s.repair.check()
    s.backdate(10 * UNKNOWN_PATIENCE)
    await s.repair.check()
    assert s.nc.requests == []
    assert await here.replica.quarantine_count() == 1
    s.announce(4)  # a later one is missing for real: only that one is asked for
    await s.repair.check()
    assert [asked for _, asked, _ in s.nc.requests] == [{"from": 4, "to": 4}]
