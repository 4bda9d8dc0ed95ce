"""However long a store was away, it catches up (agent/sync/catchup.py). The
stream keeps events for ``nats.stream_max_age`` seconds, here a few, and they
really age out of a real nats-server; real agents take each path:

- back before anything aged out: from the stream alone;
- its missed events aged out, their origin is live: from the origin;
- they aged out and their origin is gone: a live peer's snapshot, merged
  with the returning store's own events (published and unpublished);
- its own events aged out: it publishes its newer ones; and a ledger
  restored from an older backup whose missing events aged out recovers them
  from a peer's snapshot and numbers on above them.
"""

from __future__ import annotations

from tests import synckit
from tests.helpers import Agent, free_port, wait_for
from tests.natsfix import NatsServer
from tests.synckit import (
    AgentFactory,
    ledger,
    on_hand,
    status,
    stock_write,
    subject_count,
    wait_converged,
)

nats_server = synckit.nats_server
peer = synckit.peer

AGE = 1.5  # seconds the stream keeps an event in these tests
FAST = {"INV_NATS_STREAM_MAX_AGE": str(AGE), "INV_NATS_HEARTBEAT_INTERVAL": "0.3"}


def aged_out(server: NatsServer, store: str) -> None:
    """Wait until the stream holds no event of ``store`` any more."""
    wait_for(
        lambda: subject_count(server, store) == 0, AGE + 5, what=f"{store}'s events to age out"
    )


def logged(agent: Agent, text: str) -> bool:
    return text in agent.log_path.read_text(errors="replace")


def offline_write(agent: Agent, sku: str) -> None:
    """Restart ``agent`` with no reachable NATS, create a product, stop it."""
    servers = agent.extra_args
    agent.stop()
    agent.extra_args = ["--nats", f"nats://127.0.0.1:{free_port()}"]
    agent.start()
    r = agent.client().post("/api/v1/products", json={"sku": sku, "name": "made offline"})
    assert r.status_code == 201, r.text
    agent.stop()
    agent.extra_args = servers


def test_back_before_anything_aged_out_or_after_with_the_origin_live(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True, env=FAST)
    b = peer("store-002", nats_server, env=FAST)
    wait_converged(a, b, stores=("store-001",))

    # away briefly: the stream still has what b missed
    b.stop()
    stock_write(a, "PROD-001", "add", 1, "store-001")
    b.start()
    wait_converged(a, b)
    assert on_hand(b, "PROD-001", "store-001") == 11

    # away long: what b missed aged out, but its origin answers
    b.stop()
    stock_write(a, "PROD-001", "add", 2, "store-001")
    aged_out(nats_server, "store-001")
    b.start()
    wait_converged(a, b)
    assert on_hand(b, "PROD-001", "store-001") == 13
    assert logged(b, "gap repaired")
    assert status(b)["bootstrappedFrom"] is None  # no snapshot was needed


def test_events_aged_out_whose_origin_is_gone_come_from_a_peer_snapshot(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True, env=FAST)
    b = peer("store-002", nats_server, env=FAST)
    c = peer("store-003", nats_server, env=FAST)
    wait_converged(a, b, c, stores=("store-001",))
    stock_write(c, "PROD-002", "set", 4, "store-003")  # published before c goes away
    wait_converged(a, b, c, stores=("store-001", "store-003"))

    c.stop()
    stock_write(a, "PROD-001", "add", 5, "store-001")
    wait_for(lambda: on_hand(b, "PROD-001", "store-001") == 15, what="a's write at b")
    a.stop()  # a is gone for good; its events age out
    aged_out(nats_server, "store-001")
    offline_write(c, "LOCAL-3")  # c's own unpublished event
    c.start()

    wait_for(lambda: status(c)["bootstrappedFrom"], 20, what="c to restore a snapshot")
    wait_converged(b, c, stores=("store-001", "store-003"))
    restored = status(c)["bootstrappedFrom"]
    assert restored["peer"] == "store-002"
    assert restored["reappliedOwnEvents"] == 1  # LOCAL-3; the count was in b's snapshot
    assert on_hand(c, "PROD-001", "store-001") == 15  # a's aged-out write, by way of b
    assert on_hand(c, "PROD-002", "store-003") == 4
    assert b.client().get("/api/v1/products/LOCAL-3").status_code == 200


def test_own_events_aged_out_newer_ones_are_published(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True, env=FAST)
    b = peer("store-002", nats_server, env=FAST)
    wait_converged(a, b, stores=("store-001",))
    offline_write(a, "LOCAL-1")
    aged_out(nats_server, "store-001")
    a.start()
    wait_converged(a, b, stores=("store-001",))
    assert status(a)["publishBlocked"] is None
    assert b.client().get("/api/v1/products/LOCAL-1").status_code == 200


def test_a_restored_ledger_whose_lost_events_aged_out_recovers_them_from_a_peer(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    """The backup predates two writes that have since aged out of the stream;
    a third is still there. The agent takes the third back from the stream,
    the first two (their effects) from b's snapshot, and numbers on above."""
    env = {**FAST, "INV_NATS_STREAM_MAX_AGE": "3"}
    a = peer("store-001", nats_server, demo=True, env=env)
    b = peer("store-002", nats_server, env=env)
    wait_converged(a, b, stores=("store-001",))
    backup = a.home / "backup.db"
    synckit.ledger(a, "VACUUM INTO ?", str(backup))  # online
    stock_write(a, "PROD-001", "add", 1, "store-001")  # seq 8
    stock_write(a, "PROD-001", "add", 2, "store-001")  # seq 9
    aged_out(nats_server, "store-001")
    # from here the stream keeps what it has, however slow the restart below
    # (a 3 s age would let seq 10 age out too on a loaded machine)
    synckit.set_stream_max_age(nats_server, 0)
    a.env["INV_NATS_STREAM_MAX_AGE"] = "0"
    stock_write(a, "PROD-001", "add", 4, "store-001")  # seq 10: stays in the stream
    wait_for(lambda: on_hand(b, "PROD-001", "store-001") == 17, what="the writes at b")

    a.stop()
    for suffix in ("", "-wal", "-shm"):
        (a.data_dir / f"ledger.db{suffix}").unlink(missing_ok=True)
    backup.rename(a.data_dir / "ledger.db")
    a.start()

    wait_for(lambda: status(a)["bootstrappedFrom"], 20, what="a to restore b's snapshot")
    assert on_hand(a, "PROD-001", "store-001") == 17
    assert status(a)["publishBlocked"] is None
    stock_write(a, "PROD-001", "add", 8, "store-001")
    wait_converged(a, b, stores=("store-001",))
    assert on_hand(b, "PROD-001", "store-001") == 25
    rows = ledger(a, "SELECT seq, body IS NULL FROM events WHERE origin = 'store-001' AND seq > 7")
    # 8 and 9 known by seq and stamp only (from the snapshot), 10 from the
    # stream, 11 the new write: no seq reused
    assert rows == [(8, 1), (9, 1), (10, 0), (11, 0)]
