"""Unit tests of agent/sync/consumer.py: one fetched batch handled. Our own
echoes skipped unparsed, forgeries quarantined, peers' events applied with
the batch's stream position in the same transaction (the checkpoint a
consumer is made again at); where to resume, and the consumer's definition.
In process: real ledgers, fake messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent import hlc
from agent.config import NatsConfig
from agent.ledger.replication import StreamPosition
from agent.metrics import Metrics
from agent.sync import consumer as consumer_mod
from agent.sync.consumer import StreamConsumer, consumer_config, resume_at
from agent.sync.presence import PeerTable
from agent.sync.replicator import Replicator
from tests import synckit
from tests.synckit import FakeMsg, LocalStore, fake_link

pytestmark = pytest.mark.anyio
local_store = synckit.local_store
OURS = synckit.ev_subject("store-001")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """The consumer's ``apply`` callback: the replica's real apply, with
    what it was given and in what order things happened."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.calls: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
        self.positions: list[StreamPosition | None] = []

    async def __call__(
        self,
        events: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
        position: StreamPosition | None,
    ) -> dict[str, int]:
        self.calls.append((events, rejected))
        self.positions.append(position)
        return (await self.store.replica.apply(events, rejected, position)).counts


def consumer(store: LocalStore, apply: Any, metrics: Metrics | None = None) -> StreamConsumer:
    return StreamConsumer(
        fake_link(store.store_id),
        metrics or Metrics(),
        apply,
        store.replica,
        stream="INVENTORY",
        name="agent-store-001",
        network="default",
        follow=[],
        max_skew_ms=300_000,
        own_store=store.store_id,
    )


def msgs(items: list[tuple[str, bytes]], msg_id: bool = True, first: int = 1) -> list[FakeMsg]:
    """Stream messages for (subject, payload), with the publisher's Msg-Id,
    at stream seqs from ``first`` on."""
    out = []
    for n, (subject, payload) in enumerate(items, start=first):
        event = json.loads(payload)
        headers = {"Nats-Msg-Id": event["id"]} if msg_id else None
        out.append(FakeMsg(subject, payload, headers=headers, stream_seq=n))
    return out


async def checkpoint(store: LocalStore) -> StreamPosition | None:
    return await store.replica.stream_position("INVENTORY")


async def applied_seq(store: LocalStore, origin: str) -> int:
    return int((await store.replica.origins()).get(origin, {}).get("appliedSeq", 0))


# ------------------------------------------------------------------- apply
async def test_a_peers_events_are_applied_with_the_batchs_position_in_one_transaction(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    batch = msgs(await peer.events(), first=41)
    assert len(batch) == 7
    apply = Recorder(here)
    await consumer(here, apply).handle(batch)  # type: ignore[arg-type]

    [(events, rejected)] = apply.calls
    assert [e["id"] for e in events] == [f"store-002:{n}" for n in range(1, 8)]
    assert rejected == []
    # the checkpoint is the batch's last message, committed with the events
    assert await checkpoint(here) == StreamPosition("INVENTORY", "", 47, "store-002:7")
    assert await applied_seq(here, "store-002") == 7
    assert await here.replica.digests() == await peer.replica.digests()


async def test_a_batch_whose_apply_fails_leaves_the_checkpoint_where_it_was(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    first = msgs(await peer.events(1, 3))
    c = consumer(here, Recorder(here))
    await c.handle(first)  # type: ignore[arg-type]
    assert not c.lost_place

    async def failing(events: Any, rejected: Any, position: Any) -> None:
        raise OSError("disk full")

    broken = consumer(here, failing)
    with pytest.raises(OSError, match="disk full"):
        await broken.handle(msgs(await peer.events(4, 7), first=4))  # type: ignore[arg-type]
    # nothing is redelivered to an AckNone consumer: the next run makes it
    # again at the checkpoint, which still says 3
    assert broken.lost_place
    position = await checkpoint(here)
    assert position is not None and position.seq == 3


# ---------------------------------------------------------- own and forged
async def test_our_own_events_coming_back_are_skipped_unparsed(
    local_store: Callable[..., LocalStore],
) -> None:
    here = local_store("store-001")
    echoes = msgs(await here.events())
    # what our publisher sent is not even parsed: not JSON would be quarantined otherwise
    echoes.append(FakeMsg(OURS, b"\x00 not json", headers={"Nats-Msg-Id": "store-001:8"}))
    apply = Recorder(here)
    with capture_logs() as logs:
        await consumer(here, apply).handle(echoes)  # type: ignore[arg-type]
    # no transaction for them: the next batch of peers' events carries the
    # checkpoint past them
    assert apply.calls == []
    assert await checkpoint(here) is None
    assert await here.replica.quarantine_count() == 0
    assert not [e for e in logs if e["event"] == "event quarantined"]


async def test_a_store_hearing_only_itself_moves_its_checkpoint_now_and_then(
    local_store: Callable[..., LocalStore],
) -> None:
    here = local_store("store-001")
    echo = msgs(await here.events(1, 1))
    apply = Recorder(here)
    c = consumer(here, apply)
    far = consumer_mod.OWN_ONLY_SEQS
    await c.handle([FakeMsg(echo[0].subject, echo[0].data, echo[0].headers, stream_seq=far - 1)])
    assert apply.calls == []
    await c.handle([FakeMsg(echo[0].subject, echo[0].data, echo[0].headers, stream_seq=far)])
    assert apply.calls == [([], [])]
    position = await checkpoint(here)
    assert position is not None and position.seq == far


async def test_a_forged_event_on_our_subject_is_quarantined_not_applied(
    local_store: Callable[..., LocalStore],
) -> None:
    here = local_store("store-001")
    before = await here.replica.digests()
    # someone else's event on our subject, with a Msg-Id that is not ours
    forged = synckit.forged_count("store-002", 1)
    batch = [
        FakeMsg(OURS, json.dumps(forged).encode(), headers={"Nats-Msg-Id": "store-002:1"}),
        FakeMsg(OURS, b"{broken", headers=None),  # no Msg-Id at all: checked, malformed
    ]
    apply = Recorder(here)
    with capture_logs() as logs:
        await consumer(here, apply).handle(batch)  # type: ignore[arg-type]
    [(events, rejected)] = apply.calls
    assert events == []
    assert [(q["eventId"], q["reason"], q["subject"]) for q in rejected] == [
        ("store-002:1", "origin_mismatch", OURS),
        (None, "malformed", OURS),
    ]
    assert await here.replica.quarantine_count() == 2
    assert await here.replica.digests() == before
    assert [e["reason"] for e in logs if e["event"] == "event quarantined"] == [
        "origin_mismatch",
        "malformed",
    ]


async def test_an_event_claiming_our_origin_is_never_applied_here(
    local_store: Callable[..., LocalStore],
) -> None:
    """On our own subject but without our Msg-Id: it passes the checks (it
    is well formed and on its origin's subject) but we are the only writer
    of our events, so it is dropped before the apply."""
    here = local_store("store-001")
    before = await here.replica.digests()
    forged = synckit.forged_count("store-001", 99)
    apply = Recorder(here)
    batch = [FakeMsg(OURS, json.dumps(forged).encode(), headers={"Nats-Msg-Id": "x:99"})]
    await consumer(here, apply).handle(batch)  # type: ignore[arg-type]
    assert apply.calls == []
    assert await here.replica.digests() == before


async def test_a_mixed_batch_applies_the_good_and_quarantines_the_bad_together(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    good = msgs(await peer.events(1, 3))
    skewed = synckit.forged_count("store-002", 4)
    skewed["hlc"] = hlc.pack(synckit.now_ms() + 600_000, 0)  # ten minutes ahead
    bad = FakeMsg(synckit.ev_subject("store-002"), json.dumps(skewed).encode())
    apply = Recorder(here)
    await consumer(here, apply).handle([good[0], bad, *good[1:]])  # type: ignore[list-item]
    [(events, rejected)] = apply.calls
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert [(q["eventId"], q["reason"]) for q in rejected] == [("store-002:4", "clock_skew")]
    assert await applied_seq(here, "store-002") == 3


# ------------------------------------------------------ through the replicator
async def test_the_replicators_consumer_applies_into_the_peer_table_and_metrics(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    metrics = Metrics()
    peers = PeerTable("store-001", 1.0)
    config = NatsConfig(servers=["nats://127.0.0.1:4222"])
    r = Replicator(config, fake_link("store-001"), peers, here.replica, here.service, metrics)
    await r.consumer.handle(msgs(await peer.events()))  # type: ignore[arg-type]
    assert r.applied_total == 7
    assert peers.applied["store-002"]["appliedSeq"] == 7
    # the batch's origins come back from its own transaction, as a full read has them
    assert peers.applied == await here.replica.origins()
    assert peers.peers["store-002"].last_delay_ms is not None
    sample = metrics.registry.get_sample_value
    assert sample("inv_events_applied_total", {"origin": "store-002"}) == 7
    position = await checkpoint(here)
    assert position is not None and position.seq == 7
    # the same batch again (read again from an older checkpoint): nothing more applied
    await r.consumer.handle(msgs(await peer.events()))  # type: ignore[arg-type]
    assert r.applied_total == 7


def test_the_consumer_keeps_nothing_on_the_server_and_starts_past_the_checkpoint() -> None:
    from nats.js import api

    every = consumer_config("agent-store-001", "default", [])
    assert every.ack_policy == api.AckPolicy.NONE
    assert every.durable_name is None and every.name == "agent-store-001"
    assert every.mem_storage is True and every.num_replicas == 1
    assert every.inactive_threshold == consumer_mod.INACTIVE_THRESHOLD
    assert every.deliver_policy == api.DeliverPolicy.ALL
    assert every.filter_subject == "inv.default.ev.>"
    some = consumer_config("agent-store-001", "default", ["store-002", "store-003"], 41)
    assert some.filter_subjects == ["inv.default.ev.store-002", "inv.default.ev.store-003"]
    assert some.deliver_policy == api.DeliverPolicy.BY_START_SEQUENCE
    assert some.opt_start_seq == 42


def test_a_checkpoint_is_resumed_from_only_on_the_stream_it_was_taken_on() -> None:
    at = StreamPosition("INVENTORY", "2026-12-01T00:00:00", 40, "store-002:7")

    def resume(created: str = at.created, last: int = 90, id_at: str | None = "store-002:7") -> int:
        return resume_at(at, created=created, last_seq=last, id_at_seq=id_at)

    assert resume() == 40
    assert resume(id_at=None) == 40  # aged out: nothing to compare
    assert resume(created="2026-12-02T00:00:00") == 0  # the stream was made again
    assert resume(last=39) == 0  # a hub that lost its newest messages
    assert resume(id_at="store-003:1") == 0  # ... and numbered new ones over them


async def test_the_checkpoint_moves_forward_only_unless_set_and_a_snapshot_forgets_it(
    local_store: Callable[..., LocalStore],
) -> None:
    from agent.ledger import replication

    here = local_store("store-001")
    store = here.replica
    await store.set_stream_position(StreamPosition("INVENTORY", "c1", 40, "a:1"))
    await store.apply([], [], StreamPosition("INVENTORY", "c1", 30, "a:0"))
    assert await checkpoint(here) == StreamPosition("INVENTORY", "c1", 40, "a:1")
    # another stream's creation time: taken as it is
    await store.apply([], [], StreamPosition("INVENTORY", "c2", 5, "b:1"))
    assert await checkpoint(here) == StreamPosition("INVENTORY", "c2", 5, "b:1")
    await store.set_stream_position(StreamPosition("INVENTORY", "c2", 0))
    assert (await checkpoint(here)) == StreamPosition("INVENTORY", "c2", 0)
    await here.service.ledger.store.write(replication.forget_stream_positions)
    assert await checkpoint(here) is None


async def test_a_batch_from_the_stream_commits_without_an_fsync_unless_it_raised_alerts(
    local_store: Callable[..., LocalStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lost in a power cut, a batch read from the stream is read again (its
    checkpoint goes back with it); alerts it raised are events of ours, to be
    published: that batch is undone and applied again with an fsync."""
    from agent.ledger import replication

    here, peer = local_store("store-001"), local_store("store-002", demo=False)
    modes: list[int] = []  # PRAGMA synchronous as each batch was applied
    original = replication.apply_batch

    def recording(conn: Any, *args: Any) -> Any:
        modes.append(int(conn.execute("PRAGMA synchronous").fetchone()[0]))
        return original(conn, *args)

    monkeypatch.setattr(replication, "apply_batch", recording)
    await consumer(peer, Recorder(peer)).handle(msgs(await here.events()))  # type: ignore[arg-type]
    assert modes == [1]  # NORMAL: no alert raised
    await peer.service.set_reorder("PROD-001", "store-001", {"reorderPoint": 20})
    modes.clear()
    before = (await here.service.list_alerts(None, None, None, 10))["data"]
    batch = msgs(await peer.events(), first=8)
    await consumer(here, Recorder(here)).handle(batch)  # type: ignore[arg-type]
    assert modes == [1, 2]  # tried without an fsync, undone, applied with one
    after = (await here.service.list_alerts(None, None, None, 10))["data"]
    assert len(after) == len(before) + 1  # raised once, by the durable apply
    position = await checkpoint(here)
    assert position is not None and position.seq == 8 + len(batch) - 1
    # gap repair's events (no position) are applied with an fsync as before
    modes.clear()
    await here.replica.apply([], [])
    assert modes == [2]


class OldDurable:
    """``consumer_info`` of the durable an older agent left, read to ``floor``."""

    def __init__(self, floor: int) -> None:
        from types import SimpleNamespace

        self.info = SimpleNamespace(
            config=SimpleNamespace(durable_name="agent-store-001"),
            ack_floor=SimpleNamespace(stream_seq=floor),
        )

    async def consumer_info(self, stream: str, name: str) -> Any:
        return self.info


async def test_an_older_agents_durable_gives_its_ack_floor_only_to_a_ledger_that_read_before(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer, fresh = (
        local_store("store-001"),
        local_store("store-002"),
        local_store("store-003"),
    )
    await consumer(here, Recorder(here)).handle(msgs(await peer.events()))  # type: ignore[arg-type]
    from agent.ledger import replication

    await here.ledger.store.write(replication.forget_stream_positions)  # as an older agent left it
    for store, expected in ((here, 40), (fresh, 0)):
        c = consumer(store, Recorder(store))
        c._link.js = OldDurable(40)  # type: ignore[attr-defined]
        # a ledger that applied peers' events resumes where the durable was;
        # one that holds none (made anew under an old store id) reads it all
        assert (await c._upgrade()).seq == expected  # type: ignore[attr-defined]
        position = await checkpoint(store)
        assert position is not None and position.seq == expected
