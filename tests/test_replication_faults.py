"""Replication under faults, with real agents and real nats-servers: a
partition and its heal (with concurrent writes that conflict), a crash between
commit and publish, events missing from the stream, and a server of a
three-node JetStream cluster dying under writes.

Convergence is judged by the state digests of ``GET /api/v1/sync/status``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent import hlc
from tests import synckit
from tests.helpers import Agent, free_port, run_cli, wait_for
from tests.natsfix import NatsServer, cluster
from tests.synckit import (
    STREAM,
    AgentFactory,
    conflicts,
    digests,
    ev_subject,
    ledger,
    on_hand,
    own_event_count,
    product,
    status,
    stock_write,
    stream_events,
    subject_count,
    wait_converged,
    wait_ready,
    with_js,
)

# the shared fixtures of tests/synckit.py
nats_server = synckit.nats_server
peer = synckit.peer


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def after_this_ms() -> None:
    """Let the wall clock move past the current millisecond, so the next write
    is ordered after everything written so far, on any agent of this host."""
    t = now_ms()
    wait_for(lambda: now_ms() > t, 1, interval=0.0005, what="the next millisecond")


def patch_product(agent: Agent, sku: str, **changes: Any) -> None:
    r = agent.client().patch(f"/api/v1/products/{sku}", json=changes)
    assert r.status_code == 200, r.text


def unpublished(agent: Agent) -> int:
    """Events in the agent's outbox, read from its SQLite file."""
    [(n,)] = ledger(
        agent, "SELECT count(*) FROM events WHERE origin = ? AND published = 0", agent.store_id
    )
    return int(n)


# ----------------------------------------------------------- partition, heal
def test_partition_then_heal_converges_and_lists_the_conflicts(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    wait_converged(a, b, stores=("store-001", "store-002"))

    nats_server.stop()
    wait_for(lambda: not status(a)["connected"] and not status(b)["connected"])

    # both sides keep taking writes, each on its own ledger
    delta_a = stock_write(a, "PROD-001", "add", 5, "store-001", "delivery at A")
    after_this_ms()
    stock_write(b, "PROD-001", "add", 3, "store-001", "found at B")
    after_this_ms()
    count_b = stock_write(b, "PROD-001", "set", 100, "store-001", "count at B")
    assert count_b["quantity"] == 100
    after_this_ms()
    stock_write(a, "PROD-001", "add", 7, "store-001", "late delivery at A")
    patch_product(a, "PROD-002", price=31.0, name="Mouse (A)")
    after_this_ms()
    patch_product(b, "PROD-002", price=32.0, name="Mouse (B)")
    stock_write(a, "PROD-003", "add", 4, "store-001")
    stock_write(b, "PROD-002", "set", 9, "store-002")
    r = b.client().post("/api/v1/products", json={"sku": "PART-1", "name": "made apart"})
    assert r.status_code == 201, r.text

    # each write is in its own SQLite file, waiting in the outbox; the other
    # side knows nothing of it
    assert unpublished(a) == 4 and unpublished(b) == 5
    assert status(a)["outboxBacklog"] == 4
    assert on_hand(a, "PROD-001", "store-001") == 22
    assert on_hand(b, "PROD-001", "store-001") == 100
    assert product(a, "PART-1").status_code == 404
    assert digests(a) != digests(b)

    nats_server.start()  # same port, same JetStream store dir
    common = wait_converged(a, b, timeout=30)
    assert all(status(x)["connected"] for x in (a, b))
    # their consumers lived in the server's memory: each agent made its own
    # again at its ledger's checkpoint (told "no responders" by the server)
    for x in (a, b):
        wait_for(
            lambda x=x: "no such consumer" in x.log_path.read_text(),  # type: ignore[misc]
            what=f"{x.store_id} to make its consumer again",
        )
    # the merge rules: the latest count (B's) plus the deltas ordered after it;
    # per-field last-write-wins on the product (B edited last)
    for x in (a, b):
        assert on_hand(x, "PROD-001", "store-001") == 107
        assert on_hand(x, "PROD-003", "store-001") == 24
        assert on_hand(x, "PROD-002", "store-002") == 9
        p = product(x, "PROD-002").json()
        assert (p["name"], p["price"]) == ("Mouse (B)", 32.0)
        assert product(x, "PART-1").status_code == 200

    # nothing was dropped silently: both replicas list the losing writes
    for x in (a, b):
        found = conflicts(x)
        fields = {c["detail"].get("field") for c in found if c["kind"] == "product_field"}
        assert fields == {"name", "price"}, found
        assert all(c["sku"] == "PROD-002" for c in found if c["kind"] == "product_field")
        [sup] = [c for c in found if c["kind"] == "superseded_delta"]
        assert (sup["loser"], sup["winner"]) == (delta_a["movementId"], count_b["movementId"])
        assert (sup["sku"], sup["storeId"]) == ("PROD-001", "store-001")
    assert {c["id"] for c in conflicts(a)} == {c["id"] for c in conflicts(b)}

    res = run_cli(a, "conflicts", "--json")
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)
    assert {c["kind"] for c in listed} == {"product_field", "superseded_delta"}
    assert {c["id"] for c in listed} == {c["id"] for c in conflicts(a)}
    res = run_cli(b, "conflicts")
    assert res.returncode == 0 and "product_field" in res.stdout, res.stderr

    # a replica that joins later reaches the same state from the stream, and
    # tells the same writes apart as concurrent (by their basis, not by when
    # they arrived)
    c = peer("store-003", nats_server)
    assert wait_converged(a, b, c) == common
    assert {x["id"] for x in conflicts(c)} == {x["id"] for x in conflicts(a)}


# ------------------------------------------------------------------ crashes
@pytest.fixture
def later_server() -> Iterator[Callable[..., NatsServer]]:
    """``later_server(port=...)``: a nats-server object not started yet;
    whatever is made here is killed and removed at teardown."""
    made: list[NatsServer] = []

    def factory(**kwargs: Any) -> NatsServer:
        made.append(NatsServer(**kwargs))
        return made[-1]

    try:
        yield factory
    finally:
        for server in made:
            server.cleanup()


def test_a_crash_between_commit_and_publish_loses_and_duplicates_nothing(
    later_server: Callable[..., NatsServer], peer: AgentFactory
) -> None:
    server = later_server(port=free_port())  # nothing listens there yet
    a = peer("store-001", server.url, demo=True)
    rows = [
        {"line": i + 1, "sku": "PROD-001", "storeId": "store-001", "quantity": 1, "mode": "add"}
        for i in range(3000)
    ]
    r = a.client().post("/api/v1/imports/stock", json={"rows": rows})
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == 3000
    total = own_event_count(a)  # the seed's 7 + 3000
    assert total == 3007
    assert unpublished(a) == total
    assert status(a)["connected"] is False

    a.kill()  # committed in SQLite, never published
    server.start()
    b = peer("store-002", server)

    a.start()
    # crash again while the outbox drains: some events published, maybe
    # not yet marked so in the ledger
    wait_for(lambda: unpublished(a) < total, 30, interval=0.002, what="the drain to start")
    a.kill()
    left = unpublished(a)
    assert 0 < left < total, "the drain finished before the second crash"
    in_stream = subject_count(server, "store-001")
    assert total - left <= in_stream <= total

    a.start()
    wait_converged(a, b, stores=("store-001",), timeout=30)
    assert on_hand(b, "PROD-001", "store-001") == on_hand(a, "PROD-001", "store-001") == 3010

    # the stream holds each of A's events exactly once
    assert subject_count(server, "store-001") == total
    seqs = [e["seq"] for e in stream_events(server, "store-001")]
    assert seqs == list(range(1, total + 1))

    async def last(js: Any) -> int:
        msg = await js.get_last_msg(STREAM, ev_subject("store-001"))
        return int(json.loads(msg.data)["seq"])

    assert with_js(server, last) == total
    s = status(a)
    assert s["publishBlocked"] is None and s["outboxBacklog"] == 0
    [pb] = status(b)["peers"]
    assert (pb["storeId"], pb["appliedSeq"], pb["behind"]) == ("store-001", total, 0)


# --------------------------------------------------------------- gap repair
def delete_from_stream(server: NatsServer, store: str, seqs: set[int]) -> int:
    """Delete ``store``'s events with these seqs from the stream; returns how
    many were deleted."""

    async def go(js: Any) -> int:
        info = await js.stream_info(STREAM)
        deleted = 0
        for n in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(STREAM, n)
            event = json.loads(msg.data)
            if msg.subject == ev_subject(store) and event.get("seq") in seqs:
                assert await js.delete_msg(STREAM, n)
                deleted += 1
        return deleted

    return int(with_js(server, go))


def test_events_missing_from_the_stream_are_fetched_from_their_origin(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    for i in range(20):
        stock_write(a, "PROD-002", "add", 1, "store-001", f"delivery {i}")
    total = own_event_count(a)
    wait_for(lambda: status(a)["outboxBacklog"] == 0, what="A to publish")
    assert subject_count(nats_server, "store-001") == total

    # the stream loses some of A's events (aged out, lost in a crash...)
    assert delete_from_stream(nats_server, "store-001", set(range(5, 13))) == 8
    assert subject_count(nats_server, "store-001") == total - 8

    b = peer("store-002", nats_server)  # fresh ledger
    wait_converged(a, b, stores=("store-001",))
    assert on_hand(b, "PROD-002", "store-001") == 70
    st = status(b)
    assert st["bootstrappedFrom"] is None  # repaired by request/reply, not a snapshot
    [pa] = st["peers"]
    assert (pa["appliedSeq"], pa["behind"]) == (total, 0)
    assert "gap repaired" in b.log_path.read_text()
    assert ledger(b, "SELECT count(*) FROM events WHERE origin = 'store-001'") == [(total,)]

    # the stream forgets everything; a newcomer still catches up
    async def purge(js: Any) -> None:
        await js.purge_stream(STREAM)

    with_js(nats_server, purge)
    stock_write(a, "PROD-002", "add", 1, "store-001", "after the purge")
    c = peer("store-003", nats_server)
    wait_converged(a, b, c, stores=("store-001",), timeout=30)
    assert on_hand(c, "PROD-002", "store-001") == 71


def test_a_forged_event_cannot_block_the_repair_of_the_genuine_one(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    wait_converged(a, b)
    nxt = own_event_count(a) + 1
    forged = {
        "id": f"store-001:{nxt}",
        "origin": "store-001",
        "seq": nxt,
        "hlc": hlc.pack(now_ms(), 0),
        "type": "stock.movement",
        "schemaVersion": 1,
        "data": {"sku": "PROD-001", "storeId": "store-001", "kind": "count", "quantity": 0},
    }

    async def publish(js: Any) -> None:
        await js.publish(ev_subject("store-002"), json.dumps(forged).encode())

    with_js(nats_server, publish)
    stock_write(a, "PROD-001", "add", 1, "store-001")  # the genuine store-001:<nxt>
    wait_converged(a, b)
    assert delete_from_stream(nats_server, "store-001", {nxt}) == 1

    # c sees the forgery (quarantined) but not the genuine event: it must
    # still fetch the genuine one from store-001
    c = peer("store-003", nats_server)
    wait_for(lambda: status(c)["quarantined"] == 1, what="c to quarantine the forgery")
    wait_converged(a, b, c)
    assert on_hand(c, "PROD-001", "store-001") == 11


# ------------------------------------------------------------------ cluster
@pytest.fixture
def nats_cluster() -> Iterator[list[NatsServer]]:
    servers = cluster(3)
    try:
        for s in servers:
            s.start()
        yield servers
    finally:
        for s in servers:
            s.cleanup()


def test_a_cluster_node_dying_under_writes_loses_no_event(
    nats_cluster: list[NatsServer], peer: AgentFactory
) -> None:
    env = {"INV_NATS_STREAM_REPLICAS": "3", "INV_NATS_PING_INTERVAL": "1"}
    a = peer("store-001", nats_cluster, demo=True, env=env)
    b = peer("store-002", list(reversed(nats_cluster)), env=env)
    wait_ready(a, b, timeout=40)  # the stream waits for a meta leader

    async def replicas(js: Any) -> int:
        return int((await js.stream_info(STREAM)).config.num_replicas)

    assert with_js(nats_cluster, replicas) == 3
    wait_converged(a, b, stores=("store-001",))

    victim = next(s for s in nats_cluster if s.url == status(a)["server"])
    writes = 150
    for i in range(writes):
        if i == 40:
            victim.kill()
        stock_write(a, "PROD-001", "add", 1, "store-001", f"sale-day delivery {i}")

    wait_converged(a, b, stores=("store-001",), timeout=45)
    assert on_hand(a, "PROD-001", "store-001") == on_hand(b, "PROD-001", "store-001") == 160
    for x in (a, b):
        s = status(x)
        assert s["connected"] is True and s["server"] != victim.url, s
    alive = [s for s in nats_cluster if s is not victim]
    total = own_event_count(a)
    assert subject_count(alive, "store-001") == total
