"""Routed reservations (``storeId: "any"``) through the router agent's real
app, with its owners reached over a fake network (``tests.routekit``): which
store grants, the answers (202 / 409 / 503 / 422), retries, the cleanup of an
unanswered ask, and the owners' own safety-stock check."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.config import ConfigError
from agent.domain import attempt_id
from agent.inputs import RoutingRequest, StockChange, StockOperation
from agent.ledger import routings
from agent.routing import cleanup
from agent.routing.answers import fingerprint
from agent.sync import rpc
from tests import inproc, synckit
from tests.inproc import wait_until
from tests.routekit import Chain, chain
from tests.synckit import LocalStore

pytestmark = pytest.mark.anyio
local_store = synckit.local_store
RES = "/api/v1/reservations"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def net(tmp_path: Path, local_store: Callable[..., LocalStore]) -> AsyncIterator[Chain]:
    async with chain(tmp_path, local_store) as c:
        yield c


def routed(rid: str, quantity: int = 2, **more: Any) -> dict[str, Any]:
    return {
        "reservationId": rid,
        "productId": "PROD-001",
        "storeId": "any",
        "quantity": quantity,
        **more,
    }


def outcomes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["storeId"], a["outcome"]) for a in body["routing"]["attempts"]]


async def test_the_first_store_by_priority_grants_under_an_id_of_its_own(net: Chain) -> None:
    await net.set_directory("store-002", priority=1)
    r = await net.client.post(RES, json=routed("ord-1"))
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["storeId"], body["reservationId"], body["status"]) == (
        "store-002",
        "ord-1@store-002",
        "PENDING",
    )
    assert body["routing"]["requestId"] == "ord-1" and body["routing"]["strategy"] == "priority"
    assert outcomes(body) == [("store-002", "granted")]
    assert body["routing"]["attempts"][0]["availableOnline"] == 10
    row = net.owner_row("store-002", "ord-1@store-002")
    assert row is not None and (row["channel"], row["quantity"]) == ("online", 2)
    # the web agent holds no stock and is no candidate: it has no stock row
    assert net.asked == [("store-002", "reserve")]


async def test_a_store_short_of_stock_is_skipped_and_a_refusal_moves_on(net: Chain) -> None:
    await net.set_directory("store-003", priority=1)
    await net.set_safety("PROD-001", "store-001", 9)  # 1 left for online orders here
    # store-003 refuses: the router's replica is behind (it still shows 10 there)
    await net.owners["store-003"].service.update_stock(change("store-003", "subtract", 9))
    r = await net.client.post(RES, json=routed("ord-2"))
    assert r.status_code == 202, r.text
    assert outcomes(r.json()) == [
        ("store-003", "insufficient"),
        ("store-001", "skipped"),
        ("store-002", "granted"),
    ]
    first = r.json()["routing"]["attempts"][0]
    assert "available=1, requested=2" in first["error"]
    assert net.asked == [("store-003", "reserve"), ("store-002", "reserve")]


async def test_an_unreachable_store_moves_on_and_all_unreachable_is_503(net: Chain) -> None:
    net.cut.add("store-001")
    r = await net.client.post(RES, json=routed("ord-3"))
    assert r.status_code == 202, r.text
    assert outcomes(r.json()) == [("store-001", "unreachable"), ("store-002", "granted")]
    net.cut |= {"store-002", "store-003"}
    r = await net.client.post(RES, json=routed("ord-4"))
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"].startswith("no store could be reached to reserve 2 of PROD-001")
    assert [o for _, o in outcomes(body)] == ["unreachable"] * 3


async def test_no_store_with_enough_is_409_with_the_routing(net: Chain) -> None:
    r = await net.client.post(RES, json=routed("ord-5", quantity=11))
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"].startswith("no store can reserve 11 of PROD-001: 3 skipped")
    assert [o for _, o in outcomes(body)] == ["skipped"] * 3
    assert net.asked == []
    # recorded like any routing; a retry answers the same, asking nobody
    r = await net.client.post(RES, json=routed("ord-5", quantity=11))
    assert r.status_code == 409 and r.json()["replayed"] is True
    assert (await net.client.get("/api/v1/routings/ord-5")).json()["status"] == "refused"


async def test_a_retry_returns_the_same_reservation_and_reserves_nothing_more(
    net: Chain,
) -> None:
    first = (await net.client.post(RES, json=routed("ord-6"))).json()
    again = await net.client.post(RES, json=routed("ord-6"))
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["reservationId"], body["storeId"]) == (first["reservationId"], first["storeId"])
    assert body["message"] == "Reservation already exists"
    assert net.asked == [("store-001", "reserve")]
    await net.sync()
    row = await inproc.stock(net.router.local, store="store-001")
    assert row["reserved"] == 2
    # the same id for another request is refused, like every idempotency key
    r = await net.client.post(RES, json=routed("ord-6", quantity=3))
    assert r.status_code == 409 and "different routed request" in r.json()["error"]


async def test_the_same_id_while_it_is_being_routed_is_409_in_progress(net: Chain) -> None:
    net.lost_reply.add("store-001")  # the first request waits for store-001
    first = asyncio.create_task(net.client.post(RES, json=routed("ord-17")))
    await wait_until(lambda: _true(("store-001", "reserve") in net.asked), what="the first ask")
    r = await net.client.post(RES, json=routed("ord-17"))
    assert r.status_code == 409 and r.json()["inProgress"] is True, r.text
    assert (await first).status_code == 202


async def _true(value: bool) -> bool:
    return value


async def test_an_unanswered_ask_that_was_granted_is_cancelled_once_the_routing_ends(
    net: Chain,
) -> None:
    net.lost_reply.add("store-001")  # store-001 reserves, its answer never arrives
    r = await net.client.post(RES, json=routed("ord-7"))
    assert r.status_code == 202, r.text
    assert outcomes(r.json()) == [("store-001", "timeout"), ("store-002", "granted")]
    timeout = r.json()["routing"]["attempts"][0]
    assert timeout["cleanup"]["state"] == "pending"
    assert net.owner_row("store-001", "ord-7@store-001")["status"] == "PENDING"  # type: ignore[index]
    net.lost_reply.clear()

    async def settled() -> dict[str, Any] | None:
        rec = (await net.client.get("/api/v1/routings/ord-7")).json()
        return rec if rec["pendingCleanups"] == 0 else None

    rec = await wait_until(settled, timeout=10, what="the cleanup to settle")
    assert rec["status"] == "granted" and rec["reservationId"] == "ord-7@store-002"
    assert rec["attempts"][0]["cleanup"]["state"] == "cancelled"
    assert net.owner_row("store-001", "ord-7@store-001")["status"] == "CANCELLED"  # type: ignore[index]
    assert net.owner_row("store-002", "ord-7@store-002")["status"] == "PENDING"  # type: ignore[index]
    metrics = (await net.client.get("/metrics")).text
    assert 'inv_routing_total{outcome="granted"} 1.0' in metrics
    assert 'inv_routing_cleanups_total{outcome="cancelled"} 1.0' in metrics
    listed = (await net.client.get("/api/v1/routings", params={"cleanup": "cancelled"})).json()
    assert [x["requestId"] for x in listed["data"]] == ["ord-7"]


async def test_an_ask_that_never_arrived_is_judged_never_granted_past_its_deadline(
    net: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanup, "NEVER_GRANTED_GRACE_MS", 100)  # the wait: 2 budgets + this
    net.lost_request.add("store-001")
    r = await net.client.post(RES, json=routed("ord-8"))
    assert outcomes(r.json()) == [("store-001", "timeout"), ("store-002", "granted")]
    net.lost_request.clear()

    async def settled() -> dict[str, Any] | None:
        rec = (await net.client.get("/api/v1/routings/ord-8")).json()
        return rec if rec["pendingCleanups"] == 0 else None

    rec = await wait_until(settled, timeout=10, what="the cleanup to settle")
    assert rec["attempts"][0]["cleanup"]["state"] == "never-granted"
    assert net.owner_row("store-001", "ord-8@store-001") is None


async def test_a_routing_left_unfinished_by_a_crash_is_asked_again_in_order(net: Chain) -> None:
    """The router crashed after store-001 granted and before it wrote that
    down: the record says "asking"; the retry asks again and is told it exists."""
    ledger = net.router.agent.service.ledger
    plan = [
        routings.PlannedAttempt(s, attempt_id("ord-9", s), 10, False)
        for s in ("store-001", "store-002")
    ]
    req = RoutingRequest("PROD-001", 2, "ord-9", ttl=600)
    fp = fingerprint("PROD-001", req)
    new = routings.NewRouting("ord-9", fp, "PROD-001", 2, None, 600, "priority", None, None)
    ledger.store.write_sync(routings.begin, new, plan, 0, 1)
    status, _ = await call_reserve(net.owners["store-001"], "ord-9@store-001", 2, "online", 600)
    assert status == 202
    r = await net.client.post(RES, json=routed("ord-9"))
    assert r.status_code == 200, r.text
    assert (r.json()["reservationId"], r.json()["message"]) == (
        "ord-9@store-001",
        "Reservation already exists",
    )
    await net.sync()
    assert (await inproc.stock(net.router.local, store="store-001"))["reserved"] == 2


async def test_confirm_and_cancel_by_the_routed_id_work_before_it_has_replicated(
    net: Chain,
) -> None:
    rid = (await net.client.post(RES, json=routed("ord-10"))).json()["reservationId"]
    r = await net.client.post(f"{RES}/{rid}/confirm", json={"orderId": "o-1"})
    assert r.status_code == 200 and r.json()["status"] == "CONFIRMED", r.text
    rid = (await net.client.post(RES, json=routed("ord-11"))).json()["reservationId"]
    assert (await net.client.delete(f"{RES}/{rid}")).status_code == 204
    assert net.owner_row("store-001", rid)["status"] == "CANCELLED"  # type: ignore[index]


async def test_most_available_and_nearest(net: Chain) -> None:
    await net.owners["store-003"].service.update_stock(change("store-003", "add", 5))
    await net.sync()
    r = await net.client.post(RES, json=routed("ord-12", strategy="most-available"))
    assert outcomes(r.json())[0] == ("store-003", "granted")
    await net.set_directory("store-001", lat=48.8566, lon=2.3522)  # Paris
    await net.set_directory("store-002", lat=51.5074, lon=-0.1278)  # London
    r = await net.client.post(RES, json=routed("ord-13", strategy="nearest", near="51.5,-0.1"))
    assert outcomes(r.json())[0] == ("store-002", "granted"), r.text
    r = await net.client.post(
        RES,
        json=routed(
            "ord-14",
            strategy="nearest",
            near="store-001",
            stores=["store-003", "store-002", "store-001"],
        ),
    )
    assert [s for s, _ in outcomes(r.json())][:1] == ["store-001"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"strategy": "cheapest"}, "strategy"),
        ({"strategy": "nearest"}, "near"),  # the web agent has no coordinates
        ({"strategy": "nearest", "near": "91,0"}, "near"),
        ({"strategy": "nearest", "near": "store-002"}, "near"),  # none in the directory
        ({"near": "store-001"}, "near"),  # only with nearest
        ({"stores": ["store-009"]}, "stores"),
        ({"stores": ["store-001", "store-001"]}, "stores"),
        ({"stores": ["any"]}, "stores"),
        ({"stores": []}, "stores"),
    ],
)
async def test_a_bad_routing_field_is_422_naming_it(
    net: Chain, extra: dict[str, Any], field: str
) -> None:
    r = await net.client.post(RES, json=routed("ord-bad", **extra))
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(f"{field}"), r.text
    assert net.asked == []
    assert (await net.client.get("/api/v1/routings/ord-bad")).status_code == 404


async def test_routing_fields_without_store_any_are_422(net: Chain) -> None:
    r = await net.client.post(
        RES,
        json={
            "productId": "PROD-001",
            "quantity": 1,
            "storeId": "store-001",
            "strategy": "priority",
        },
    )
    assert r.status_code == 422 and r.json()["error"].startswith("strategy: only for a routed")


async def test_a_store_limited_token_routes_only_among_its_stores(net: Chain) -> None:
    token = net.router.token(role="clerk", stores=["store-002"])
    client = net.router.tcp(token)
    r = await client.post(RES, json=routed("ord-15"))
    assert outcomes(r.json()) == [("store-002", "granted")], r.text
    r = await client.post(RES, json=routed("ord-16", stores=["store-001"]))
    assert r.status_code == 403


async def test_the_owner_keeps_its_safety_stock_from_online_orders(net: Chain) -> None:
    """What the owner itself checks, whatever the router believed."""
    owner = net.owners["store-001"]
    await net.set_safety("PROD-001", "store-001", 8)
    status, body = await call_reserve(owner, "x-1", 3, "online")
    assert status == 409
    assert (body["availableOnline"], body["safetyStock"]) == (2, 8)
    assert "may not take the 8 units of safety stock" in body["error"]
    status, body = await call_reserve(owner, "x-2", 2, "online")
    assert status == 202
    # a store's own (in-store) reservation may take the safety stock
    status, body = await call_reserve(owner, "x-3", 7, "store")
    assert status == 202
    await net.set_directory("store-001", online=False)
    status, body = await call_reserve(owner, "x-4", 1, "online")
    assert status == 409 and "does not fulfil online orders" in body["error"]
    status, body = await call_reserve(owner, "x-5", 1, "mail")
    assert (status, body["error"]) == (422, "channel: must be 'store' or 'online'")
    # the same id with another channel is another request
    status, body = await call_reserve(owner, "x-3", 7, "online")
    assert status == 409 and "different request" in body["error"]


async def test_store_id_any_is_refused_for_an_agent(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="store_id: 'any' is reserved"):
        inproc.config(tmp_path, "any")


# ------------------------------------------------------------------ helpers
def change(store: str, op: StockOperation, qty: int) -> StockChange:
    return StockChange("PROD-001", store, op, qty, reason="t")


async def call_reserve(
    owner: LocalStore, rid: str, qty: int, channel: str, ttl: int | None = None
) -> tuple[int, Any]:
    """A reservation forwarded to ``owner`` (its real request handler)."""
    req = {"reservationId": rid, "productId": "PROD-001", "quantity": qty, "channel": channel}
    if ttl is not None:
        req["ttl"] = ttl
    payload = json.dumps(req).encode()
    reply = json.loads(await rpc.handle(owner.service, owner.replica, "reserve", payload))
    return reply["status"], reply["body"]
