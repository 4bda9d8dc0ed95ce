"""Unit tests of agent/sync/consumer.py: one fetched batch handled. Our own
echoes skipped unparsed, forgeries quarantined, peers' events applied, and
the batch acknowledged (its last message) only once the apply has
committed; a failed ack is counted and logged, never raised. In process: real
ledgers, fake messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent import hlc
from agent.config import NatsConfig
from agent.metrics import Metrics
from agent.sync.consumer import StreamConsumer, consumer_config
from agent.sync.presence import PeerTable
from agent.sync.replicator import Replicator
from tests import synckit
from tests.synckit import FakeMsg, LocalStore, failures, fake_link

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
        self.order: list[str] = []

    async def __call__(
        self, events: list[dict[str, Any]], rejected: list[dict[str, Any]]
    ) -> dict[str, int]:
        self.calls.append((events, rejected))
        result = (await self.store.replica.apply(events, rejected)).counts
        self.order.append("applied")
        return result


def consumer(store: LocalStore, apply: Any, metrics: Metrics | None = None) -> StreamConsumer:
    return StreamConsumer(
        fake_link(store.store_id),
        metrics or Metrics(),
        apply,
        stream="INVENTORY",
        durable="agent-store-001",
        network="default",
        follow=[],
        max_skew_ms=300_000,
        own_store=store.store_id,
    )


def msgs(items: list[tuple[str, bytes]], msg_id: bool = True) -> list[FakeMsg]:
    """Stream messages for (subject, payload), with the publisher's Msg-Id."""
    out = []
    for subject, payload in items:
        event = json.loads(payload)
        headers = {"Nats-Msg-Id": event["id"]} if msg_id else None
        out.append(FakeMsg(subject, payload, headers=headers))
    return out


async def applied_seq(store: LocalStore, origin: str) -> int:
    return int((await store.replica.origins()).get(origin, {}).get("appliedSeq", 0))


# ------------------------------------------------------------------- apply
async def test_a_peers_events_are_applied_and_the_batch_acked_by_its_last_message(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    batch = msgs(await peer.events())
    assert len(batch) == 7
    apply = Recorder(here)
    c = consumer(here, apply)

    async def seen_at_ack() -> int:  # what the ledger holds when the ack goes out
        apply.order.append("ack")
        return await applied_seq(here, "store-002")

    batch[-1].on_ack = seen_at_ack
    await c.handle(batch)  # type: ignore[arg-type]

    [(events, rejected)] = apply.calls
    assert [e["id"] for e in events] == [f"store-002:{n}" for n in range(1, 8)]
    assert rejected == []
    assert apply.order == ["applied", "ack"]
    assert batch[-1].acks == [7]  # acked after all 7 were committed
    assert all(m.acks == [] for m in batch[:-1])  # AckPolicy.ALL: one ack per batch
    assert await here.replica.digests() == await peer.replica.digests()


async def test_a_batch_whose_apply_fails_is_not_acked(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    batch = msgs(await peer.events())

    async def failing(events: Any, rejected: Any) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        await consumer(here, failing).handle(batch)  # type: ignore[arg-type]
    assert all(m.acks == [] for m in batch)  # redelivered after ack_wait


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
    assert apply.calls == [([], [])]
    assert echoes[-1].acks == [True]  # still acknowledged
    assert await here.replica.quarantine_count() == 0
    assert not [e for e in logs if e["event"] == "event quarantined"]


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
    assert apply.calls == [([], [])]
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
    assert good[-1].acks == [True] and bad.acks == []


# --------------------------------------------------------------------- ack
async def test_a_failed_ack_is_counted_and_logged_not_raised(
    local_store: Callable[..., LocalStore],
) -> None:
    here, peer = local_store("store-001", demo=False), local_store("store-002")
    batch = msgs(await peer.events())
    batch[-1].error = ConnectionResetError("link dropped")
    metrics = Metrics()
    with capture_logs() as logs:
        await consumer(here, Recorder(here), metrics).handle(batch)  # type: ignore[arg-type]
    assert failures(metrics, "ack") == 1
    assert failures(metrics, "heartbeat") == failures(metrics, "respond") == 0
    [entry] = [e for e in logs if e["event"].startswith("ack failed")]
    assert entry["log_level"] == "warning"
    assert entry["exc_info"] is True and entry["error"] == "link dropped"
    # the batch itself was applied: a redelivery will change nothing
    assert await applied_seq(here, "store-002") == 7


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
    # the same batch again (a redelivery): nothing more applied
    await r.consumer.handle(msgs(await peer.events()))  # type: ignore[arg-type]
    assert r.applied_total == 7


def test_the_consumer_acks_once_per_batch_and_follows_what_it_is_told() -> None:
    from nats.js import api

    every = consumer_config("agent-store-001", "default", [])
    assert every.ack_policy == api.AckPolicy.ALL
    assert every.filter_subject == "inv.default.ev.>"
    some = consumer_config("agent-store-001", "default", ["store-002", "store-003"])
    assert some.filter_subjects == ["inv.default.ev.store-002", "inv.default.ev.store-003"]
