"""Transfers over REST, in process (``tests.inproc``: the real app through
httpx's ASGI transport) on store-001 with the demo data: what each route
parses and answers (201 / 200, the named-field 422s, 404, 409, 403), retries,
and which store a step goes to. The rules themselves (stock, receipts,
cancels, discrepancies) are tested on ledgers in ``test_transfer_merge``;
the real forwarding over NATS end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.errors import Unavailable
from tests import inproc
from tests.inproc import FakeForwarder, InProcAgent

pytestmark = pytest.mark.anyio
TRANSFERS = "/api/v1/transfers"


@pytest.fixture
def forwarder() -> FakeForwarder:
    return FakeForwarder()


@pytest.fixture
async def store1(
    anyio_backend: str, tmp_path: Path, forwarder: FakeForwarder
) -> AsyncIterator[InProcAgent]:
    async with inproc.running(inproc.config(tmp_path / "a"), forwarder) as agent:
        yield agent


@pytest.fixture
def api(store1: InProcAgent) -> httpx.AsyncClient:
    return store1.local


def draft(tid: str = "t-1", **more: Any) -> dict[str, Any]:
    return {
        "transferId": tid,
        "toStoreId": "store-002",
        "lines": [{"sku": "PROD-001", "quantity": 3}, {"productId": "PROD-002", "quantity": 5}],
        "note": "weekly top-up",
        **more,
    }


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    r = await response
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def refused(response: Any, status: int) -> dict[str, Any]:
    r = await response
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    return body  # type: ignore[no-any-return]


async def receive_offline(api: httpx.AsyncClient, tid: str = "t-in", **body: Any) -> dict[str, Any]:
    """A transfer from store-002 this store has not heard of, received by
    its packing slip: afterwards it is known here, from store-002."""
    body = {"fromStoreId": "store-002", "lines": [{"sku": "PROD-001", "received": 2}], **body}
    return await ok(api.post(f"{TRANSFERS}/{tid}/receive", json=body), 201)


# ------------------------------------------------------------ origin side
async def test_create_is_201_then_200_for_the_same_request_and_ship_moves_it(
    api: httpx.AsyncClient, forwarder: FakeForwarder
) -> None:
    created = await ok(api.post(TRANSFERS, json=draft()), 201)
    assert (created["transferId"], created["fromStoreId"], created["toStoreId"]) == (
        "t-1",
        "store-001",
        "store-002",
    )
    assert (created["status"], created["note"], created["actor"]) == (
        "DRAFT",
        "weekly top-up",
        "local",
    )
    # a line may name its product by sku or productId (an id or a SKU)
    assert [(ln["sku"], ln["quantity"]) for ln in created["lines"]] == [
        ("PROD-001", 3),
        ("PROD-002", 5),
    ]
    assert await ok(api.post(TRANSFERS, json=draft())) == created  # a retry: 200, the same
    shipped = await ok(api.post(f"{TRANSFERS}/t-1/ship"))
    assert shipped["status"] == "SHIPPED" and shipped["totals"]["pending"] == 8
    assert await ok(api.post(f"{TRANSFERS}/t-1/ship")) == shipped  # shipping twice: the same
    assert await ok(api.get(f"{TRANSFERS}/t-1")) == shipped
    here = await inproc.stock(api, "PROD-001", "store-001")
    there = await inproc.stock(api, "PROD-001", "store-002")
    assert (here["quantity"], here["inTransit"], there["incoming"]) == (7, 3, 3)
    assert forwarder.calls == []  # all of it this store's own side


async def test_ship_true_ships_at_once_and_a_new_id_is_drawn_when_none_is_sent(
    api: httpx.AsyncClient,
) -> None:
    body = draft(ship=True)
    del body["transferId"]
    shipped = await ok(api.post(TRANSFERS, json=body), 201)
    assert shipped["status"] == "SHIPPED" and shipped["shippedAt"] is not None
    assert await ok(api.get(f"{TRANSFERS}/{shipped['transferId']}")) == shipped  # addressable


async def test_cancel_of_a_shipped_transfer_returns_what_is_pending(
    api: httpx.AsyncClient,
) -> None:
    await ok(api.post(TRANSFERS, json=draft(ship=True)), 201)
    cancelled = await ok(api.post(f"{TRANSFERS}/t-1/cancel"))
    assert cancelled["status"] == "CANCELLED" and cancelled["totals"]["cancelled"] == 8
    assert await ok(api.post(f"{TRANSFERS}/t-1/cancel")) == cancelled  # again: the same
    assert (await inproc.stock(api, "PROD-001", "store-001"))["quantity"] == 10
    body = await refused(api.post(f"{TRANSFERS}/t-1/ship"), 409)
    assert "cancelled" in body["error"]


# ------------------------------------------------------- destination side
async def test_receive_before_the_shipment_then_retries_by_receipt_id_or_key(
    api: httpx.AsyncClient,
) -> None:
    first = await receive_offline(api, receiptId="rc-1")
    assert (first["fromStoreId"], first["toStoreId"], first["originState"]) == (
        "store-002",
        "store-001",
        None,
    )
    assert [d["kind"] for d in first["discrepancies"]] == ["received_before_shipped"]
    assert [r["receiptId"] for r in first["receipts"]] == ["rc-1"]
    # the same receipt again, by its id or by the X-Idempotency-Key header: 200, counted once
    again = {"fromStoreId": "store-002", "lines": [{"sku": "PROD-001", "received": 2}]}
    key = {"X-Idempotency-Key": "rc-1"}
    for retry in (
        api.post(f"{TRANSFERS}/t-in/receive", json={**again, "receiptId": "rc-1"}),
        api.post(f"{TRANSFERS}/t-in/receive", json=again, headers=key),
        api.post(f"{TRANSFERS}/t-in/receive", json={**again, "receiptId": "rc-1"}, headers=key),
    ):
        assert await ok(retry) == first
    assert (await inproc.stock(api, "PROD-001", "store-001"))["quantity"] == 12
    # the key stands for the receipt id: a second receipt under a new one
    second = await ok(
        api.post(f"{TRANSFERS}/t-in/receive", json=again, headers={"X-Idempotency-Key": "rc-2"}),
        201,
    )
    assert [r["receiptId"] for r in second["receipts"]] == ["rc-1", "rc-2"]
    body = await refused(
        api.post(f"{TRANSFERS}/t-in/receive", json={**again, "receiptId": "rc-3"}, headers=key),
        422,
    )
    assert body["error"].startswith("receiptId: 'rc-3' differs from the X-Idempotency-Key")
    reused = {**again, "receiptId": "rc-1", "lines": [{"sku": "PROD-001", "received": 9}]}
    body = await refused(api.post(f"{TRANSFERS}/t-in/receive", json=reused), 409)
    assert "other lines" in body["error"]


async def test_damaged_units_and_lines_by_product_id(api: httpx.AsyncClient) -> None:
    lines = [{"productId": "550e8400-e29b-41d4-a716-446655440001", "received": 4, "damaged": 1}]
    view = await receive_offline(api, lines=lines)
    [line] = view["lines"]
    assert (line["sku"], line["received"], line["damaged"]) == ("PROD-002", 4, 1)


async def test_list_filters_by_status_store_and_direction(api: httpx.AsyncClient) -> None:
    await ok(api.post(TRANSFERS, json=draft("t-out")), 201)
    await receive_offline(api, "t-in")

    async def ids(**params: Any) -> list[str]:
        return [t["transferId"] for t in (await ok(api.get(TRANSFERS, params=params)))["data"]]

    assert sorted(await ids()) == ["t-in", "t-out"]
    assert await ids(direction="incoming") == ["t-in"]  # this store's, without a storeId
    assert await ids(direction="outgoing") == ["t-out"]
    assert await ids(storeId="store-002", direction="outgoing") == ["t-in"]
    assert await ids(status="DRAFT") == ["t-out"]
    assert await ids(status="RECEIVED", storeId="store-001") == ["t-in"]
    assert len(await ids(limit=1)) == 1
    listed = (await ok(api.get(TRANSFERS, params={"direction": "incoming"})))["data"][0]
    assert listed["discrepancies"] and "receipts" not in listed  # flagged; receipts in the view


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"toStoreId": None}, "toStoreId"),
        ({"toStoreId": "bad store"}, "toStoreId"),
        ({"transferId": "a@b"}, "transferId"),
        ({"transferId": "x" * 129}, "transferId"),
        ({"fromStoreId": ""}, "fromStoreId"),
        ({"lines": []}, "lines"),
        ({"lines": [{"quantity": 1}]}, "lines.0"),  # neither productId nor sku
        ({"lines": [{"sku": "PROD-001", "productId": "PROD-001", "quantity": 1}]}, "lines.0"),
        ({"lines": [{"sku": "PROD-001", "quantity": 0}]}, "lines.0.quantity"),
        ({"lines": [{"sku": "PROD-001", "quantity": "2"}]}, "lines.0.quantity"),
        ({"lines": [{"sku": "bad sku", "quantity": 2}]}, "lines.0.sku"),
        ({"note": "n" * 2001}, "note"),
        ({"ship": "yes"}, "ship"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_a_bad_create_is_a_422_naming_the_field(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**draft(), **change}.items() if v is not None}
    answer = await refused(api.post(TRANSFERS, json=body), 422)
    assert answer["error"].startswith(f"{field}: "), answer
    assert (await ok(api.get(TRANSFERS)))["data"] == []  # nothing was created


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"lines": []}, {}, "lines"),
        ({"lines": [{"sku": "PROD-001", "received": -1}]}, {}, "lines.0.received"),
        ({"lines": [{"sku": "PROD-001", "received": 1, "damaged": 1.5}]}, {}, "lines.0.damaged"),
        ({"lines": [{"received": 1}]}, {}, "lines.0"),
        ({"receiptId": "r@1"}, {}, "receiptId"),
        ({}, {"X-Idempotency-Key": "bad key"}, "X-Idempotency-Key"),
        ({"fromStoreId": "store 2"}, {}, "fromStoreId"),
    ],
)
async def test_a_bad_receipt_is_a_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], field: str
) -> None:
    answer = await refused(api.post(f"{TRANSFERS}/t-9/receive", json=body, headers=headers), 422)
    assert answer["error"].startswith(f"{field}: "), answer


async def test_unknown_transfers_products_and_stores_are_404s(api: httpx.AsyncClient) -> None:
    for r in (api.get(f"{TRANSFERS}/t-404"), api.post(f"{TRANSFERS}/t-404/ship")):
        assert (await refused(r, 404))["transferId"] == "t-404"
    assert (await refused(api.post(f"{TRANSFERS}/t-404/cancel"), 404))["transferId"] == "t-404"
    unknown = await refused(api.post(TRANSFERS, json=draft(toStoreId="store-404")), 404)
    assert unknown["storeId"] == "store-404"
    elsewhere = await refused(api.post(TRANSFERS, json=draft(fromStoreId="store-404")), 404)
    assert elsewhere["storeId"] == "store-404"
    # a path id no transfer can have: named like a field
    assert (await refused(api.get(f"{TRANSFERS}/a@b"), 422))["error"].startswith("transferId: ")


async def test_conflicts_are_409s(api: httpx.AsyncClient) -> None:
    await ok(api.post(TRANSFERS, json=draft()), 201)
    other = await refused(api.post(TRANSFERS, json=draft(note="another")), 409)
    assert "different request" in other["error"]
    too_many = draft("t-2", ship=True, lines=[{"sku": "PROD-001", "quantity": 11}])
    short = await refused(api.post(TRANSFERS, json=too_many), 409)
    assert (short["available"], short["requested"]) == (10, 11)
    to_itself = await refused(api.post(TRANSFERS, json=draft("t-3", toStoreId="store-001")), 422)
    assert to_itself["error"].startswith("toStoreId: ")


async def test_a_standalone_agent_refuses_another_stores_side_with_409(
    api_agent: InProcAgent,
) -> None:
    api = api_agent.local
    await ok(api.post(TRANSFERS, json=draft()), 201)
    body = await refused(api.post(f"{TRANSFERS}/t-1/receive"), 409)
    assert "standalone" in body["error"] and body["owner"] == "store-002"


async def test_who_may_write_is_a_clerk_of_the_side_the_step_changes(
    store1: InProcAgent,
) -> None:
    viewer = store1.tcp(store1.token("v", "viewer"))
    assert (await viewer.get(TRANSFERS)).status_code == 200
    assert (await viewer.post(TRANSFERS, json=draft())).status_code == 403
    here = store1.tcp(store1.token("ana", "clerk", stores=["store-001"]))
    created = await ok(here.post(TRANSFERS, json=draft()), 201)
    assert created["actor"] == "ana"
    elsewhere = draft("t-2", fromStoreId="store-002")
    assert (await here.post(TRANSFERS, json=elsewhere)).status_code == 403
    # t-1 goes to store-002: receiving it is store-002's, not this token's
    assert (await here.post(f"{TRANSFERS}/t-1/receive")).status_code == 403
    assert (await store1.tcp().get(TRANSFERS)).status_code == 401


# ------------------------------------------------------------- forwarding
async def test_each_step_goes_to_the_store_whose_side_it_is(
    api: httpx.AsyncClient, forwarder: FakeForwarder
) -> None:
    await ok(api.post(TRANSFERS, json=draft("t-out")), 201)  # store-001 -> store-002
    await receive_offline(api, "t-in")  # store-002 -> store-001, known from the receipt
    assert forwarder.calls == []
    forwarder.reply = (201, {"transferId": "t-out", "by": "store-002"})
    r = await api.post(f"{TRANSFERS}/t-out/receive")  # no body: everything pending
    assert (r.status_code, r.json()) == (201, forwarder.reply[1])  # the owner's answer, as given
    store, op, payload = forwarder.calls.pop()
    assert (store, op, payload["transferId"], payload["lines"]) == (
        "store-002",
        "transfer_receive",
        "t-out",
        None,
    )
    assert payload["receiptId"]  # drawn here: a forwarded retry is the same receipt
    forwarder.reply = (200, {"transferId": "t-in"})
    for step in ("ship", "cancel"):
        assert (await ok(api.post(f"{TRANSFERS}/t-in/{step}"))) == {"transferId": "t-in"}
        assert forwarder.calls.pop() == (
            "store-002",
            f"transfer_{step}",
            {"transferId": "t-in", "actor": "local@store-001"},
        )
    lines = [{"sku": "PROD-001", "received": 1, "damaged": 2}]
    await api.post(f"{TRANSFERS}/t-out/receive", json={"receiptId": "rc-7", "lines": lines})
    payload = forwarder.calls.pop()[2]
    assert (payload["receiptId"], payload["lines"]) == (
        "rc-7",
        [{"productId": "PROD-001", "received": 1, "damaged": 2}],
    )


async def test_a_create_from_another_store_is_created_there(
    api: httpx.AsyncClient, forwarder: FakeForwarder
) -> None:
    forwarder.reply = (201, {"transferId": "t-2"})
    body = draft("t-2", fromStoreId="store-002", toStoreId="store-001", ship=True)
    assert await ok(api.post(TRANSFERS, json=body), 201) == {"transferId": "t-2"}
    [(store, op, payload)] = forwarder.calls
    assert (store, op) == ("store-002", "transfer_create")
    lines = [{"productId": "PROD-001", "quantity": 3}, {"productId": "PROD-002", "quantity": 5}]
    assert payload == {
        "transferId": "t-2",
        "fromStoreId": "store-002",
        "toStoreId": "store-001",
        "lines": lines,
        "note": "weekly top-up",
        "ship": True,
        "actor": "local@store-001",
    }
    assert (await ok(api.get(TRANSFERS)))["data"] == []  # nothing of it written here


async def test_an_owner_out_of_reach_is_a_503_and_says_whether_it_may_have_happened(
    api: httpx.AsyncClient, forwarder: FakeForwarder
) -> None:
    await ok(api.post(TRANSFERS, json=draft("t-out")), 201)
    forwarder.fail = Unavailable(
        "store 'store-002' did not answer within 2 s; transfer t-out may have been received",
        owner="store-002",
        transferId="t-out",
        outcome="unknown",
    )
    body = await refused(api.post(f"{TRANSFERS}/t-out/receive"), 503)
    assert (body["owner"], body["outcome"]) == ("store-002", "unknown")


async def test_metrics_count_transfers_units_in_transit_and_their_movements(
    api: httpx.AsyncClient,
) -> None:
    await ok(api.post(TRANSFERS, json=draft(ship=True)), 201)
    await ok(api.post(TRANSFERS, json=draft("t-2")), 201)
    text = (await api.get("/metrics")).text
    for line in (
        'inv_transfers{status="SHIPPED"} 1.0',
        'inv_transfers{status="DRAFT"} 1.0',
        "inv_transfer_units_in_transit 8.0",
        'inv_stock_movements{kind="transfer_out"} 2.0',
        'inv_alerts{kind="low"} 0.0',
    ):
        assert line in text.splitlines(), line
