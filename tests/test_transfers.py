"""Transfers between real agents over a real nats-server: each step asked at
a third store is forwarded to the store whose side it is, partial receipts
and an over-receipt; a destination cut off from the network receives a
transfer whose cancel it has not seen and one whose shipment it has not
heard of, and after the link heals every store agrees: the receipt beat the
cancel (listed as a conflict, the origin's stock corrected), the early
receipt reconciled. The rules themselves are tested in process
(tests/unit/test_transfer_merge.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import synckit
from tests.helpers import Agent, wait_for
from tests.natsfix import NatsServer
from tests.netproxy import TcpProxy
from tests.synckit import AgentFactory, conflicts, on_hand, wait_converged

nats_server = synckit.nats_server
peer = synckit.peer
A, B, C = "store-001", "store-002", "store-003"
SKU = "PROD-001"  # the demo data: 10 at store-001, 5 at store-002


@pytest.fixture
def proxy(nats_server: NatsServer) -> Iterator[TcpProxy]:
    link = TcpProxy(nats_server.port)
    try:
        yield link
    finally:
        link.close()


def post(agent: Agent, path: str, body: dict[str, Any] | None = None) -> Any:
    return agent.client().post(f"/api/v1/transfers{path}", json=body or {})


def transfer_at(agent: Agent, tid: str) -> dict[str, Any] | None:
    r = agent.client().get(f"/api/v1/transfers/{tid}")
    return r.json() if r.status_code == 200 else None


def line(view: dict[str, Any]) -> dict[str, Any]:
    [only] = view["lines"]
    return only  # type: ignore[no-any-return]


def test_each_step_is_forwarded_to_its_side_and_receipts_add_up(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer(A, nats_server, demo=True)
    b = peer(B, nats_server)
    c = peer(C, nats_server)
    wait_converged(a, b, c, stores=(A, B))
    order = {
        "transferId": "t-1",
        "fromStoreId": A,
        "toStoreId": B,
        "lines": [{"productId": SKU, "quantity": 4}],
        "ship": True,
    }
    r = post(c, "", order)  # asked at store-003: created and shipped by store-001
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["fromStoreId"]) == ("SHIPPED", A)
    assert post(c, "", order).status_code == 200  # a retry: the same transfer
    assert on_hand(a, SKU, A) == 6
    wait_for(lambda: transfer_at(b, "t-1"), what="the transfer to reach store-002")
    stores = {
        s["storeId"]: s
        for s in b.client().get(f"/api/v1/products/{SKU}/availability").json()["stores"]
    }
    assert (stores[A]["inTransit"], stores[B]["incoming"], stores[B]["available"]) == (4, 4, 5)

    part = {"receiptId": "r-1", "lines": [{"productId": SKU, "received": 1, "damaged": 1}]}
    r = post(c, "/t-1/receive", part)  # asked at store-003: received by store-002
    assert r.status_code == 201, r.text
    assert (r.json()["status"], line(r.json())["pending"]) == ("PARTIALLY_RECEIVED", 2)
    again = post(c, "/t-1/receive", part)  # the same receipt again: counted once
    assert (again.status_code, line(again.json())["received"]) == (200, 1)
    r = post(b, "/t-1/receive", {"receiptId": "r-2", "lines": [{"sku": SKU, "received": 3}]})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "RECEIVED"
    assert r.json()["discrepancies"] == [{"sku": SKU, "kind": "over_received", "quantity": 1}]
    wait_for(
        lambda: (transfer_at(a, "t-1") or {}).get("status") == "RECEIVED",
        what="the receipts to reach store-001",
    )
    r = post(c, "/t-1/cancel")  # forwarded to the origin, which refuses: nothing pending
    assert r.status_code == 409 and "received in full" in r.json()["error"], r.text

    wait_converged(a, b, c, stores=(A, B))
    assert (on_hand(c, SKU, A), on_hand(c, SKU, B)) == (6, 9)  # 5 + 1 + 3; 1 damaged
    view = transfer_at(a, "t-1")
    assert view is not None and view["status"] == "RECEIVED"
    assert [x["receiptId"] for x in view["receipts"]] == ["r-1", "r-2"]
    incoming = b.client().get("/api/v1/transfers", params={"direction": "incoming"}).json()
    assert [t["transferId"] for t in incoming["data"]] == ["t-1"]


def test_a_cut_off_destination_receives_and_every_store_agrees_after_healing(
    nats_server: NatsServer, proxy: TcpProxy, peer: AgentFactory
) -> None:
    a = peer(A, nats_server, demo=True)
    b = peer(B, proxy.url)
    wait_converged(a, b, stores=(A, B))
    shipped = {"toStoreId": B, "lines": [{"productId": SKU, "quantity": 5}], "ship": True}
    assert post(a, "", {**shipped, "transferId": "t-2"}).status_code == 201
    wait_for(lambda: transfer_at(b, "t-2"), what="the shipment to reach store-002")

    proxy.cut()
    wait_for(lambda: not synckit.status(b)["connected"], 20, what="store-002 to notice the cut")
    # the origin cancels, not knowing the truck has arrived; and ships another
    # transfer the destination will not hear of before its truck arrives
    r = post(a, "/t-2/cancel")
    assert (r.status_code, r.json()["status"], on_hand(a, SKU, A)) == (200, "CANCELLED", 10)
    assert (
        post(
            a, "", {**shipped, "transferId": "t-3", "lines": [{"productId": SKU, "quantity": 2}]}
        ).status_code
        == 201
    )
    # at the destination, offline: both trucks are received
    r = post(b, "/t-2/receive", {"lines": [{"productId": SKU, "received": 3}]})
    assert (r.status_code, r.json()["status"]) == (201, "PARTIALLY_RECEIVED")
    slip = {"fromStoreId": A, "lines": [{"productId": SKU, "received": 2}]}
    r = post(b, "/t-3/receive", slip)
    assert (r.status_code, r.json()["status"]) == (201, "RECEIVED"), r.text
    assert r.json()["discrepancies"] == [
        {"sku": SKU, "kind": "received_before_shipped", "quantity": 2}
    ]
    # a step for the origin's side cannot be taken while it is out of reach
    r = post(b, "/t-3/cancel")
    assert r.status_code == 503 and "nothing was changed" in r.json()["error"], r.text

    proxy.heal()
    wait_converged(a, b, stores=(A, B), timeout=30)
    for agent in (a, b):
        t2, t3 = transfer_at(agent, "t-2"), transfer_at(agent, "t-3")
        assert t2 is not None and t3 is not None
        assert (t2["status"], line(t2)["cancelled"], line(t2)["received"]) == ("CANCELLED", 2, 3)
        assert (t3["status"], t3["discrepancies"]) == ("RECEIVED", [])
        # 10 - 5 shipped + 2 of the cancel's 5 that had not arrived - 2 shipped again
        assert (on_hand(agent, SKU, A), on_hand(agent, SKU, B)) == (5, 10)
        [conflict] = [x for x in conflicts(agent) if x["kind"] == "cancel_vs_receipt"]
        assert (conflict["detail"]["claimed"], conflict["detail"]["cancelled"]) == (5, 2)
