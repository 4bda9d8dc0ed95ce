"""Replication between real agents over a real nats-server: propagation,
forwarding a reservation to the store that owns the stock, and the events a
replica must refuse (clock skew, forged origin).

Convergence is judged by the state digests of ``GET /api/v1/sync/status``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from typing import Any

from tests import synckit
from tests.helpers import Agent, run_cli, wait_for
from tests.natsfix import NatsServer
from tests.synckit import (
    AgentFactory,
    digests,
    ev_subject,
    ledger,
    on_hand,
    own_event_count,
    product,
    status,
    stock_write,
    wait_converged,
    wait_ready,
    with_js,
)

# the shared fixtures of tests/synckit.py
nats_server = synckit.nats_server
peer = synckit.peer

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"  # PROD-001


# ---------------------------------------------------------------- propagation
def test_a_stock_write_at_one_store_becomes_visible_at_another(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    wait_converged(a, b, stores=("store-001", "store-002"))
    assert on_hand(b, "PROD-001", "store-001") == 10  # the seed, replicated

    stock_write(a, "PROD-001", "add", 7, "store-001", "delivery")
    wait_for(lambda: on_hand(b, "PROD-001", "store-001") == 17, what="the add to reach B")

    # and the other way round, on another store's row and a new product
    r = b.client().post("/api/v1/products", json={"sku": "NEW-1", "name": "Cable", "price": 3.5})
    assert r.status_code == 201, r.text
    stock_write(b, "NEW-1", "set", 12, "store-002", "first count")
    wait_for(lambda: on_hand(a, "NEW-1", "store-002") == 12, what="B's write to reach A")
    assert product(a, "NEW-1").json()["name"] == "Cable"

    common = wait_converged(a, b)
    assert set(common) >= {"store-001", "store-002", "catalog"}
    # each replica saw the other's events once, in order, and knows them all
    sa, sb = status(a), status(b)
    [pa] = sa["peers"]
    [pb] = sb["peers"]
    assert (pa["storeId"], pa["appliedSeq"], pa["behind"]) == ("store-002", 2, 0)
    assert (pb["storeId"], pb["appliedSeq"]) == ("store-001", own_event_count(a))
    assert sa["quarantined"] == sb["quarantined"] == 0
    # movement history replicates with its origin
    r = b.client().get("/api/v1/products/PROD-001/history", params={"storeId": "store-001"})
    assert any(m.get("reason") == "delivery" for m in r.json()["data"]), r.text

    # each agent reads the stream through an ephemeral AckNone consumer (no
    # state on the server that outlives it) and has read all of it
    from nats.js import api

    async def consumers(js: Any) -> list[Any]:
        return [
            await js.consumer_info(synckit.STREAM, f"agent-{s}") for s in ("store-001", "store-002")
        ]

    def all_read() -> bool:
        return all(
            c.config.durable_name is None
            and c.config.ack_policy == api.AckPolicy.NONE
            and c.num_pending == 0
            and c.delivered.stream_seq > 0
            for c in with_js(nats_server, consumers)
        )

    wait_for(all_read, what="every agent to have read the whole stream")


# ------------------------------------------------------------------ forwarding
def reservation(agent: Agent, rid: str) -> dict[str, Any] | None:
    r = agent.client().get(f"/api/v1/reservations/{rid}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def reserved(agent: Agent, sku: str, store: str) -> int:
    r = agent.client().get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    assert r.status_code == 200, r.text
    return r.json()["stores"][0]["reserved"]  # type: ignore[no-any-return]


def test_a_reservation_of_another_stores_stock_is_forwarded_to_its_owner(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    owner = peer("store-001", nats_server, demo=True)
    here = peer("store-002", nats_server)
    wait_converged(owner, here, stores=("store-001",))
    assert reserved(owner, "PROD-001", "store-001") == 0

    # reserve through store-002's agent: the owner decides and records it
    res = run_cli(here, "reserve", "PROD-001", "2", "--store", "store-001", "--json")
    assert res.returncode == 0, res.stderr
    body = json.loads(res.stdout)
    rid = body["reservationId"]
    assert (body["status"], body["storeId"], body["quantity"]) == ("PENDING", "store-001", 2)
    at_owner = reservation(owner, rid)
    assert at_owner is not None and at_owner["status"] == "PENDING"
    assert reserved(owner, "PROD-001", "store-001") == 2
    assert on_hand(owner, "PROD-001", "store-001") == 10
    # the owner's event replicates back
    wait_for(lambda: (reservation(here, rid) or {}).get("status") == "PENDING")
    wait_for(lambda: reserved(here, "PROD-001", "store-001") == 2)

    # confirm, forwarded: CONFIRMED + the sale, atomically, at the owner
    res = run_cli(here, "confirm", rid, "--store", "store-001", "--order", "o-1", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "CONFIRMED"
    assert reservation(owner, rid)["status"] == "CONFIRMED"  # type: ignore[index]
    assert reserved(owner, "PROD-001", "store-001") == 0
    assert on_hand(owner, "PROD-001", "store-001") == 8

    # cancel, forwarded, of a reservation store-002 has not even seen yet
    rid2 = f"fwd-{uuid.uuid4().hex[:8]}"
    res = run_cli(here, "reserve", "PROD-001", "3", "--store", "store-001", "--id", rid2)
    assert res.returncode == 0, res.stderr
    assert reserved(owner, "PROD-001", "store-001") == 3
    res = run_cli(here, "cancel", rid2, "--store", "store-001", "--json")
    assert res.returncode == 0, res.stderr
    assert reservation(owner, rid2)["status"] == "CANCELLED"  # type: ignore[index]
    assert reserved(owner, "PROD-001", "store-001") == 0

    wait_converged(owner, here)
    assert on_hand(here, "PROD-001", "store-001") == 8
    assert reservation(here, rid2)["status"] == "CANCELLED"  # type: ignore[index]
    # only the owner wrote: store-002's own ledger recorded no event at all
    assert ledger(here, "SELECT count(*) FROM events WHERE origin = 'store-002'") == [(0,)]


def test_when_the_owner_is_down_nothing_is_reserved_anywhere(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    owner = peer("store-001", nats_server, demo=True)
    here = peer("store-002", nats_server)
    wait_converged(owner, here, stores=("store-001",))
    before = digests(here)
    owner.stop()

    rid = f"down-{uuid.uuid4().hex[:8]}"
    res = run_cli(here, "reserve", "PROD-001", "1", "--store", "store-001", "--id", rid)
    assert res.returncode == 5, (res.returncode, res.stdout, res.stderr)
    assert "unreachable" in res.stderr
    assert "nothing was reserved" in res.stderr
    assert "store-001" in res.stderr
    assert res.stdout == ""
    # the API says the same, as a 503
    r = here.client().post(
        "/api/v1/reservations",
        json={"reservationId": rid, "productId": "PROD-001", "storeId": "store-001", "quantity": 1},
    )
    assert r.status_code == 503, r.text
    assert "nothing was reserved" in r.json()["error"]
    assert reservation(here, rid) is None
    assert digests(here) == before

    owner.start()
    wait_ready(owner)
    wait_converged(owner, here, stores=("store-001",))
    assert reservation(owner, rid) is None
    assert reservation(here, rid) is None
    assert reserved(owner, "PROD-001", "store-001") == 0
    assert digests(owner) == digests(here) == before


# ------------------------------------------------------------------ quarantine
def quarantine(agent: Agent, reason: str) -> list[dict[str, Any]]:
    return [q for q in status(agent)["quarantine"] if q["reason"] == reason]


def test_events_from_a_clock_ten_minutes_ahead_are_quarantined_not_applied(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    ahead = peer("store-009", nats_server, env={"INV_CLOCK_OFFSET_MS": "600000"})
    wait_converged(a, ahead, stores=("store-001",))  # a's events are fine at `ahead`
    base = digests(a)

    r = ahead.client().post("/api/v1/products", json={"sku": "SKEW-1", "name": "Future"})
    assert r.status_code == 201, r.text
    stock_write(ahead, "SKEW-1", "set", 40, "store-009")
    stock_write(ahead, "PROD-001", "add", 5, "store-001")
    wait_for(lambda: status(ahead)["outboxBacklog"] == 0, what="the skewed events published")

    wait_for(lambda: status(a)["quarantined"] >= 3, what="a to quarantine the skewed events")
    s = status(a)
    skewed = [q for q in s["quarantine"] if q["reason"] == "clock_skew"]
    assert {q["eventId"] for q in skewed} == {"store-009:1", "store-009:2", "store-009:3"}
    assert all(q["subject"] == ev_subject("store-009") for q in skewed)
    # ... and not applied
    assert product(a, "SKEW-1").status_code == 404
    assert on_hand(a, "PROD-001", "store-001") == 10
    assert digests(a) == base
    assert s["applied"] == 0
    # a gap repair does not sneak them in either (heartbeats announce seq 3)
    wait_for(
        lambda: any(p["storeId"] == "store-009" and p["knownSeq"] == 3 for p in status(a)["peers"]),
        what="store-009's heartbeat",
    )
    wait_for(lambda: status(a)["quarantined"] == 3 and digests(a) == base, timeout=3)
    r = a.client().get("/metrics")
    assert 'reason="clock_skew"' in r.text
    # the skewed agent itself is fine and has its writes
    assert on_hand(ahead, "PROD-001", "store-001") == 15


def test_a_forged_event_on_another_stores_subject_is_quarantined_as_origin_mismatch(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    c = peer("store-003", nats_server)
    base = wait_converged(a, b, c, stores=("store-001",))
    next_seq = own_event_count(a) + 1

    # store-002's subject, claiming store-001's next event: a count of 999,999
    forged = synckit.forged_count("store-001", next_seq)

    async def publish(js: Any) -> None:
        await js.publish(ev_subject("store-002"), json.dumps(forged).encode())

    with_js(nats_server, publish)

    def flagged() -> list[dict[str, Any]]:
        return quarantine(c, "origin_mismatch")

    [q] = wait_for(flagged, what="store-003 to quarantine the forged event")
    assert (q["eventId"], q["subject"]) == (forged["id"], ev_subject("store-002"))
    assert "999999" in (q["body"] or "")
    assert on_hand(c, "PROD-001", "store-001") == 10
    assert digests(c) == base

    # store-001's genuine event with that id still applies everywhere
    stock_write(a, "PROD-001", "add", 1, "store-001")
    after = wait_converged(a, b, c)
    assert after != base
    assert on_hand(c, "PROD-001", "store-001") == 11
    assert all(quarantine(x, "origin_mismatch") for x in (a, b, c))


# ------------------------------------------------------------------- upgrade
def test_an_older_agents_durable_consumer_gives_its_place_and_goes(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    """Agents before the checkpointed consumer kept their place in a durable
    consumer (its ack floor) and none in the ledger. The new agent takes the
    floor as its checkpoint, deletes the durable and reads on from there with
    its ephemeral consumer: nothing missed, nothing read twice."""
    from nats.js import api

    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    before = wait_converged(a, b, stores=("store-001",))
    assert b.stop() == 0

    async def last_seq(js: Any) -> int:
        return int((await js.stream_info(synckit.STREAM)).state.last_seq)

    floor = with_js(nats_server, last_seq)

    async def as_an_old_agent_left_it(js: Any) -> None:
        with contextlib.suppress(Exception):
            await js.delete_consumer(synckit.STREAM, "agent-store-002")
        await js.add_consumer(
            synckit.STREAM,
            api.ConsumerConfig(
                durable_name="agent-store-002",
                name="agent-store-002",
                ack_policy=api.AckPolicy.ALL,
                deliver_policy=api.DeliverPolicy.ALL,
                filter_subject="inv.default.ev.>",
            ),
        )
        # it had read the whole stream
        sub = await js.pull_subscribe_bind("agent-store-002", synckit.STREAM)
        got = await sub.fetch(floor, timeout=5)
        await got[-1].ack_sync()
        await sub.unsubscribe()

    with_js(nats_server, as_an_old_agent_left_it)
    with contextlib.closing(sqlite3.connect(b.data_dir / "ledger.db")) as conn, conn:
        conn.execute("DELETE FROM meta WHERE key LIKE 'stream_position:%'")
    stock_write(a, "PROD-001", "add", 4, "store-001")  # while B is away
    b.start()
    wait_for(lambda: on_hand(b, "PROD-001", "store-001") == 14, what="B to catch up")
    log = b.log_path.read_text()
    [replaced] = [line for line in log.splitlines() if "an older agent's durable" in line]
    assert json.loads(replaced)["ack_floor"] == floor, replaced

    async def config(js: Any) -> Any:
        return (await js.consumer_info(synckit.STREAM, "agent-store-002")).config

    made = with_js(nats_server, config)
    assert made.durable_name is None and made.ack_policy == api.AckPolicy.NONE
    after = wait_converged(a, b)
    assert after != before and digests(b) == digests(a)


def test_a_consumer_lost_on_the_server_is_made_again_at_the_checkpoint(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    """An operator deletes B's consumer (a server restart drops it the same
    way: it lives in memory). B's open pull request is told so, and B makes
    it again where its ledger had read to, not from the start."""
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    wait_converged(a, b, stores=("store-001",))

    async def last_seq(js: Any) -> int:
        return int((await js.stream_info(synckit.STREAM)).state.last_seq)

    async def delete(js: Any) -> None:
        await js.delete_consumer(synckit.STREAM, "agent-store-002")

    read_to = with_js(nats_server, last_seq)
    with_js(nats_server, delete)
    wait_for(lambda: "consumer lost its place" in b.log(), what="B to see its consumer gone")
    stock_write(a, "PROD-001", "add", 4, "store-001")
    wait_for(lambda: on_hand(b, "PROD-001", "store-001") == 14, what="B to read on")
    log = b.log_path.read_text()
    [made] = [line for line in log.splitlines() if "made again at the checkpoint" in line]
    # resumed past what it had read (its own late events aside): not a replay
    assert 0 < json.loads(made)["seq"] <= read_to, made
    assert wait_converged(a, b)


def test_a_forwarded_reservation_behind_a_busy_writer_is_refused_not_made_late(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    """The owner's writer is held up past the asker's forward_timeout (as by
    a 300,000-row import; here, bounded and fast on any machine, by a write
    transaction this test holds on the owner's ledger file, which its writer
    waits for under SQLite's busy timeout): the asker says the outcome is
    unknown and names the id; the owner, reaching the reservation past its
    budget, refuses it, so no stock is held by a reservation the clerk was
    told may not exist."""
    owner = peer("store-001", nats_server, demo=True)
    here = peer("store-002", nats_server, env={"INV_NATS_FORWARD_TIMEOUT": "0.5"})
    wait_converged(owner, here, stores=("store-001",))
    blocker = sqlite3.connect(owner.data_dir / "ledger.db", timeout=5, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the owner's writer now waits for us
        res = run_cli(here, "reserve", "PROD-001", "1", "--store", "store-001", "--id", "late-1")
        # a second one while the first still waits on the writer: its budget
        # starts when it arrives, not when the first is done with
        body = {"reservationId": "late-2", "productId": "PROD-001", "storeId": "store-001"}
        api = here.client().post("/api/v1/reservations", json={**body, "quantity": 1})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert res.returncode == 5, (res.returncode, res.stdout, res.stderr)
    assert (
        "store 'store-001' did not answer within 0.5 s; the reservation may have been made "
        "as late-1: check with `inv reservation show late-1`"
    ) in res.stderr
    assert "nothing was reserved" not in res.stderr
    assert api.status_code == 503, api.text
    assert {k: api.json()[k] for k in ("owner", "reservationId", "outcome")} == {
        "owner": "store-001",
        "reservationId": "late-2",
        "outcome": "unknown",
    }
    # the owner's writer is first in, first out: once a later write has been
    # answered, the reservation has had its turn (refused: past its budget)
    stock_write(owner, "PROD-002", "add", 1, "store-001")
    assert reservation(owner, "late-1") is None
    assert reservation(owner, "late-2") is None
    assert reserved(owner, "PROD-001", "store-001") == 0
    assert "could not get to the request within the 0.5 s" in owner.log()
