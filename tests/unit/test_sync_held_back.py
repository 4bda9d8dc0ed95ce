"""Unit tests of the replicator's held-back events: an event stamped too far
ahead of our clock is quarantined, and applied once our clock has caught up
with it (else the replicas would never converge); one claiming our own origin
never is. In process: a real ledger, a clock the test moves."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from agent import hlc
from agent.clocks import Clocks
from agent.config import NatsConfig
from agent.metrics import Metrics
from agent.sync.presence import PeerTable
from agent.sync.replicator import Replicator
from tests import synckit
from tests.synckit import FakeMsg, LocalStore, fake_link

pytestmark = pytest.mark.anyio
local_store = synckit.local_store
START = hlc.now_ms()  # after the demo data the store starts with
AHEAD = 10 * 60_000  # further ahead than max_clock_skew (5 min)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def replicator(here: LocalStore, now: list[int]) -> Replicator:
    clocks = Clocks(wall_ms=lambda: now[0], monotonic=lambda: now[0] / 1000)
    config = NatsConfig(servers=["nats://127.0.0.1:4222"])
    peers = PeerTable(here.service.store_id, 1.0, clocks=clocks)
    link = fake_link(here.service.store_id)
    return Replicator(config, link, peers, here.replica, here.service, Metrics(), clocks=clocks)


def event(origin: str, seq: int, at_ms: int) -> bytes:
    body = synckit.forged_count(origin, seq, quantity=7)
    body["hlc"] = hlc.pack(at_ms, 0)
    return json.dumps(body).encode()


async def stock_of(here: LocalStore, store: str) -> int | None:
    view = await here.service.availability("PROD-001", store)
    return next((s["quantity"] for s in view["stores"] if s["storeId"] == store), None)


async def test_an_event_from_a_clock_ahead_waits_and_is_applied_once_ours_catches_up(
    local_store: Callable[..., LocalStore],
) -> None:
    here = local_store("store-001")
    now = [START]
    r = replicator(here, now)
    msg = FakeMsg(synckit.ev_subject("store-002"), event("store-002", 1, START + AHEAD))
    await r.consumer.handle([msg])  # type: ignore[list-item]
    assert [q["reason"] for q in await here.replica.quarantine_list(10)] == ["clock_skew"]
    assert await r.release_held_back() == 0  # still too far ahead: stays
    now[0] = START + AHEAD - 60_000  # our clock is now within the allowed skew
    assert await r.release_held_back() == 1
    assert await here.replica.quarantine_count() == 0
    assert await stock_of(here, "store-002") == 7
    # applying it moved our HLC past it: a write from now on is ordered after
    assert here.ledger.clock.last > hlc.pack(START + AHEAD, 0)


async def test_a_held_back_event_claiming_our_own_origin_is_never_applied(
    local_store: Callable[..., LocalStore],
) -> None:
    here = local_store("store-001")
    now = [START]
    r = replicator(here, now)
    forged = synckit.forged_count("store-001", 999)
    forged["hlc"] = hlc.pack(START + AHEAD, 0)
    held = {
        "eventId": forged["id"],
        "subject": synckit.ev_subject("store-001"),
        "reason": "clock_skew",
        "body": json.dumps(forged),
    }
    await here.replica.apply([], [held])
    now[0] = START + AHEAD
    assert await r.release_held_back() == 0
    assert await here.replica.quarantine_count() == 1


async def test_an_agent_before_batches_holds_an_import_back_and_applies_it_once_upgraded(
    local_store: Callable[..., LocalStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrades in either order: an agent of schema 3 keeps a peer's
    stock.batch (schema 4) as schema_too_new, and applies it after its
    upgrade; a plain stock.movement of the older agent it applies as ever."""
    from agent.sync import validate

    here = local_store("store-001")
    # the forged events are stamped with the wall clock: so is this agent's
    # clock (START, taken at import, may be minutes old in a long suite run)
    now = [hlc.now_ms()]
    r = replicator(here, now)
    one = synckit.forged_count("store-002", 1, quantity=7)
    two = {
        **synckit.forged_count("store-002", 2),
        "type": "stock.batch",
        "schemaVersion": 4,
        "data": {"movements": [{**one["data"], "storeId": "store-003", "quantity": 4}]},
    }
    monkeypatch.setattr(validate, "SCHEMA_VERSION", 3)  # the release before batches
    subject = synckit.ev_subject("store-002")
    await r.consumer.handle([FakeMsg(subject, json.dumps(e).encode()) for e in (one, two)])  # type: ignore[list-item]
    assert [q["reason"] for q in await here.replica.quarantine_list(10)] == ["schema_too_new"]
    assert await stock_of(here, "store-002") == 7
    assert await here.replica.quarantine_count() == 1  # nothing of the batch applied
    monkeypatch.undo()  # upgraded
    assert await r.release_held_back() == 1
    assert await here.replica.quarantine_count() == 0
    assert await stock_of(here, "store-003") == 4
