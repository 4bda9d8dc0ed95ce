"""Unit tests of HQ's gap repair (agent/hq/repair.py): the origin is a real
store's ledger and service behind its real ``rpc.handle``; the read model is
in memory (tests/hqkit.py); time is a clock of the test's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import nats.errors
import pytest

from agent.clocks import Clocks
from agent.hq.repair import Repair
from agent.hq.sink import Sink
from agent.sync.presence import PeerTable
from tests import synckit
from tests.hqkit import MemoryModel
from tests.synckit import FakeNC, LocalStore, fake_link, served_by

pytestmark = pytest.mark.anyio
local_store = synckit.local_store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def clocks(self) -> Clocks:
        return Clocks(monotonic=lambda: self.now)


async def model_with(store: LocalStore, seqs: list[int]) -> MemoryModel:
    """A read model holding these seqs of ``store``'s own events."""
    model = MemoryModel()
    bodies = await store.replica.own_events(1, 1000)
    model.apply([e for b in bodies if (e := json.loads(b))["seq"] in seqs])
    return model


def repair_of(model: MemoryModel, nc: FakeNC, clock: Clock, peers: PeerTable | None = None) -> Any:
    return Repair(
        fake_link("hq", nc),
        Sink(model),
        peers or PeerTable("", 0.5),
        network="default",
        timeout=1.0,
        max_skew_ms=300_000,
        idle=lambda: True,
        clocks=clock.clocks(),
    )


async def test_a_hole_that_lasts_is_fetched_from_its_origin(
    local_store: Callable[..., LocalStore],
) -> None:
    origin = local_store("store-001")  # demo data: events 1-7
    model = await model_with(origin, [1, 2, 5])
    nc, clock = FakeNC(served_by(origin)), Clock()
    repair = repair_of(model, nc, clock)
    await repair.check()
    assert nc.requests == []  # in flight, maybe: not asked yet
    clock.now += 1.5
    await repair.check()
    [(subject, body, _)] = nc.requests
    assert (subject, body) == ("inv.default.rpc.store-001.events", {"from": 3, "to": 4})
    assert model.watermarks() == {"store-001": (5, 5)} and repair.repaired == 2


async def test_seqs_past_the_highest_come_from_the_heartbeats(
    local_store: Callable[..., LocalStore],
) -> None:
    origin = local_store("store-001")
    model = await model_with(origin, [1, 2])
    peers = PeerTable("", 0.5)
    peers.heard("inv.default.hb.store-001", json.dumps({"storeId": "store-001", "seq": 7}).encode())
    nc, clock = FakeNC(served_by(origin)), Clock()
    repair = repair_of(model, nc, clock, peers)
    assert await repair.wanted() == {"store-001": [3, 4, 5, 6, 7]}
    await repair.check()
    clock.now += 1.5
    await repair.check()
    assert model.watermarks() == {"store-001": (7, 7)}
    assert await repair.wanted() == {}


async def test_an_origin_that_does_not_answer_is_asked_again_later_and_later(
    local_store: Callable[..., LocalStore],
) -> None:
    origin = local_store("store-001")
    model = await model_with(origin, [1, 4])
    nc, clock = FakeNC(error=nats.errors.TimeoutError()), Clock()
    repair = repair_of(model, nc, clock)
    await repair.check()
    clock.now += 1.5
    asked = []
    for _ in range(12):  # 6 s, a check every half second
        await repair.check()
        asked.append(len(nc.requests))
        clock.now += 0.5
    # asked at once, then after 1 s, then 2 s, then 4 s
    assert asked == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]
    assert model.watermarks() == {"store-001": (1, 4)}
