"""A new agent joins after the stream lost history and the origin is gone:
it bootstraps from a live peer's snapshot and keeps its own offline writes."""

from __future__ import annotations

from typing import Any

from tests import synckit
from tests.helpers import free_port, wait_for
from tests.natsfix import NatsServer
from tests.synckit import status, wait_converged, with_js

# the shared fixture of tests/synckit.py
nats_server = synckit.nats_server
FAST = {"INV_NATS_HEARTBEAT_INTERVAL": "0.3", "INV_NATS_PING_INTERVAL": "1"}


async def purge(js: Any) -> None:
    await js.purge_stream(synckit.STREAM)


def test_fresh_agent_bootstraps_from_a_peer_snapshot(
    make_agent: Any, nats_server: NatsServer
) -> None:
    a = make_agent("store-001", args=["--nats", nats_server.url], env=FAST)
    b = make_agent("store-002", demo=False, args=["--nats", nats_server.url], env=FAST)
    wait_converged(a, b, stores=("store-001",))
    # store-001 goes away for good; the stream forgets everything so far
    a.stop()
    with_js(nats_server, purge)
    r = b.client().post(
        "/api/v1/products/PROD-002/stock",
        json={"storeId": "store-002", "operation": "set", "quantity": 7},
    )
    assert r.status_code == 202
    wait_for(lambda: status(b)["outboxBacklog"] == 0, 10, what="b to publish")

    # store-003 worked offline first (NATS unreachable), then joins
    c = make_agent(
        "store-003", demo=False, args=["--nats", f"nats://127.0.0.1:{free_port()}"], env=FAST
    )
    r = c.client().post("/api/v1/products", json={"sku": "LOCAL-1", "name": "made offline"})
    assert r.status_code == 201
    c.stop()
    c.extra_args = ["--nats", nats_server.url]
    c.start()

    wait_for(lambda: status(c)["digests"] == status(b)["digests"], 30, what="c to converge with b")
    st = status(c)
    assert st["bootstrappedFrom"]["peer"] == "store-002"
    assert st["bootstrappedFrom"]["reappliedOwnEvents"] == 1
    # the seed data came from the snapshot (its origin, store-001, is gone)
    avail = c.client().get("/api/v1/products/PROD-001/availability").json()
    assert {s["storeId"]: s["quantity"] for s in avail["stores"]} == {
        "store-001": 10,
        "store-002": 5,
    }
    # c's own offline write survived the restore and reached b
    wait_for(
        lambda: b.client().get("/api/v1/products/LOCAL-1").status_code == 200,
        15,
        what="c's offline write at b",
    )
    assert status(c)["outboxBacklog"] == 0
