"""The seed's reservation flows: over the Unix socket (local admin) and over
TCP with a bearer token.

The rules run in-process (``tests.inproc``: the real app through httpx's ASGI
transport, the socket's and TCP's view of it); a real ``inv-agent`` process is
kept for what needs one: the seed's curl examples against a served TCP port,
and a clean shutdown on SIGTERM/SIGINT that keeps the data."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest

from agent.config import NatsConfig
from tests import inproc
from tests.helpers import Agent, free_port, movements, stock
from tests.inproc import InProcAgent, wait_until

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"  # PROD-001
pytestmark = pytest.mark.anyio  # the async (in-process) tests run on the event loop


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def tcp_client(agent: Agent, role: str = "admin") -> httpx.Client:
    return httpx.Client(
        base_url=agent.url,
        headers={"Authorization": f"Bearer {agent.token('tester', role)}"},
        timeout=30,
    )


@pytest.fixture(params=["socket", "tcp"])
def api(request: pytest.FixtureRequest, api_agent: InProcAgent) -> httpx.AsyncClient:
    """The same API as the Unix socket sees it (no token) and over TCP (admin token)."""
    if request.param == "socket":
        return api_agent.local
    return api_agent.tcp(api_agent.token("tester", "admin"))


# ------------------------------------------------- seed examples (real process)
def test_seed_curl_examples_over_tcp(agent: Agent) -> None:
    token = agent.token("user-001", "clerk")
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=agent.url, timeout=30) as http:
        # curl http://localhost:8080/health  (no token needed)
        r = http.get("/health")
        assert r.status_code == 200
        assert r.json()["status"] == "healthy"
        assert r.json()["storeId"] == "store-001"

        # curl http://localhost:8080/api/v1/products -H "Authorization: Bearer ..."
        r = http.get("/api/v1/products", headers=auth)
        assert r.status_code == 200, r.text
        products = {p["sku"]: p for p in r.json()["data"]}
        assert set(products) == {"PROD-001", "PROD-002", "PROD-003"}
        assert products["PROD-001"]["id"] == SEED_ID
        assert products["PROD-001"]["name"] == "Laptop HP Pavilion 15"
        assert products["PROD-001"]["price"] == 599.99
        assert r.json()["pagination"]["total"] == 3

        # curl -X POST .../api/v1/reservations -d '{"productId": ..., "quantity": 2, ...}'
        r = http.post(
            "/api/v1/reservations",
            headers=auth,
            json={"productId": SEED_ID, "storeId": "store-001", "quantity": 2},
        )
        assert r.status_code == 202, r.text
        res = r.json()
        assert res["status"] == "PENDING"
        assert res["productId"] == SEED_ID
        assert res["sku"] == "PROD-001"
        assert res["storeId"] == "store-001"
        assert res["quantity"] == 2
        assert res["reservationId"]
        # the default TTL is 600 s
        assert ts(res["expiresAt"]) - ts(res["createdAt"]) == pytest.approx(600, abs=0.01)
        assert 590 <= res["remainingSeconds"] <= 600

        # curl .../api/v1/products/550e8400-.../availability
        r = http.get(f"/api/v1/products/{SEED_ID}/availability", headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["productId"] == SEED_ID
        stores = {s["storeId"]: s for s in body["stores"]}
        assert (stores["store-001"]["quantity"], stores["store-001"]["reserved"]) == (10, 2)
        assert stores["store-001"]["available"] == 8
        assert stores["store-002"]["available"] == 5
        assert body["totalAvailable"] == 13

        # curl -X POST .../reservations -d '{...,"ttl":10}' (no -H: curl says it is a form)
        r = http.post(
            "/api/v1/reservations",
            headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
            content=b'{"productId":"550e8400-e29b-41d4-a716-446655440000",'
            b'"storeId":"store-001","customerId":"cust-001","quantity":1,"ttl":10}',
        )
        assert r.status_code == 202, r.text
        assert (r.json()["customerId"], r.json()["quantity"]) == ("cust-001", 1)
        assert ts(r.json()["expiresAt"]) - ts(r.json()["createdAt"]) == pytest.approx(10, abs=0.01)
        r = http.get(f"/api/v1/reservations/{r.json()['reservationId']}", headers=auth)
        assert (r.status_code, r.json()["status"]) == (200, "PENDING")

        # curl http://localhost:8080/metrics
        r = http.get("/metrics")
        assert r.status_code == 200
        assert "inv_http_requests_total" in r.text


# ------------------------------------------------------------- reservations
async def test_reserve_then_confirm_records_a_sell(api: httpx.AsyncClient) -> None:
    before = len(await inproc.movements(api))
    r = await api.post(
        "/api/v1/reservations",
        json={
            "productId": SEED_ID,
            "storeId": "store-001",
            "quantity": 2,
            "customerId": "cust-001",
        },
    )
    assert r.status_code == 202, r.text
    rid = r.json()["reservationId"]
    assert r.json()["customerId"] == "cust-001"
    row = await inproc.stock(api)
    assert (row["quantity"], row["reserved"], row["available"]) == (10, 2, 8)

    r = await api.post(f"/api/v1/reservations/{rid}/confirm", json={"orderId": "order-1"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CONFIRMED"
    assert r.json()["orderId"] == "order-1"
    assert r.json()["confirmedAt"]

    after = await inproc.movements(api)
    assert len(after) == before + 1
    sells = [m for m in after if m["kind"] == "sell"]
    assert len(sells) == 1
    assert sells[0]["reservationId"] == rid
    assert sells[0]["quantity"] == -2
    assert sells[0]["storeId"] == "store-001"
    row = await inproc.stock(api)
    assert (row["quantity"], row["reserved"], row["available"]) == (8, 0, 8)
    assert (await api.get(f"/api/v1/reservations/{rid}")).json()["status"] == "CONFIRMED"

    # a retried confirm is answered again, and sells nothing more
    r = await api.post(f"/api/v1/reservations/{rid}/confirm", json={"orderId": "order-1"})
    assert r.status_code == 200, r.text
    assert len(await inproc.movements(api)) == before + 1
    assert (await inproc.stock(api))["quantity"] == 8
    # a confirmed reservation can no longer be cancelled
    r = await api.delete(f"/api/v1/reservations/{rid}")
    assert r.status_code == 409, r.text
    assert "CONFIRMED" in r.json()["error"]


async def test_reserve_then_cancel_frees_the_stock(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1/reservations",
        json={"productId": "PROD-001", "storeId": "store-001", "quantity": 3},  # by SKU
    )
    assert r.status_code == 202, r.text
    rid = r.json()["reservationId"]
    assert r.json()["productId"] == SEED_ID
    assert (await inproc.stock(api))["reserved"] == 3

    r = await api.delete(f"/api/v1/reservations/{rid}")
    assert r.status_code == 204
    assert r.content == b""
    row = await inproc.stock(api)
    assert (row["quantity"], row["reserved"], row["available"]) == (10, 0, 10)
    assert (await api.get(f"/api/v1/reservations/{rid}")).json()["status"] == "CANCELLED"
    assert not [m for m in await inproc.movements(api) if m["kind"] == "sell"]

    # cancelling again is harmless; confirming a cancelled one is refused
    assert (await api.delete(f"/api/v1/reservations/{rid}")).status_code == 204
    assert (await inproc.stock(api))["reserved"] == 0
    r = await api.post(f"/api/v1/reservations/{rid}/confirm")
    assert r.status_code == 409, r.text
    assert "CANCELLED" in r.json()["error"]


async def test_reservation_expires_after_its_ttl(api_agent: InProcAgent) -> None:
    api = api_agent.local
    r = await api.post(
        "/api/v1/reservations",
        json={"productId": SEED_ID, "storeId": "store-001", "quantity": 4, "ttl": 2},
    )
    assert r.status_code == 202, r.text
    res = r.json()
    rid = res["reservationId"]
    assert ts(res["expiresAt"]) - ts(res["createdAt"]) == pytest.approx(2, abs=0.01)
    assert (await inproc.stock(api))["reserved"] == 4
    assert (await api.get(f"/api/v1/reservations/{rid}")).json()["status"] == "PENDING"

    async def shows_expired() -> bool:
        return (await api.get(f"/api/v1/reservations/{rid}")).json()["status"] == "EXPIRED"

    async def freed() -> bool:
        return (await inproc.stock(api))["reserved"] == 0

    await wait_until(shows_expired, timeout=6, what="the reservation to show EXPIRED")
    seen_expired = time.monotonic()
    assert time.time() >= ts(res["expiresAt"]) - 0.05  # not before its time
    # the expiry task frees the stock within about a second
    await wait_until(freed, timeout=2.0, what="reserved to drop to 0")
    assert time.monotonic() - seen_expired < 2.0
    row = await inproc.stock(api)
    assert (row["quantity"], row["available"]) == (10, 10)
    view = (await api.get(f"/api/v1/reservations/{rid}")).json()
    assert (view["status"], view["remainingSeconds"]) == ("EXPIRED", 0)
    listed = (await api.get("/api/v1/reservations", params={"status": "EXPIRED"})).json()["data"]
    assert [x["reservationId"] for x in listed] == [rid]
    assert (await api.get("/health")).json()["checks"]["expiry"]["expired"] >= 1

    r = await api.post(f"/api/v1/reservations/{rid}/confirm")
    assert r.status_code == 409, r.text
    assert "EXPIRED" in r.json()["error"]
    assert not [m for m in await inproc.movements(api) if m["kind"] == "sell"]
    assert (await api.delete(f"/api/v1/reservations/{rid}")).status_code == 409
    assert (await inproc.stock(api))["quantity"] == 10


async def test_repeated_reservation_id_returns_the_existing_one(api: httpx.AsyncClient) -> None:
    body = {
        "reservationId": "order-42-line-1",
        "productId": SEED_ID,
        "storeId": "store-001",
        "quantity": 2,
        "customerId": "cust-9",
    }
    first = await api.post("/api/v1/reservations", json=body)
    assert first.status_code == 202, first.text
    assert first.json()["reservationId"] == "order-42-line-1"
    assert (await inproc.stock(api))["reserved"] == 2

    again = await api.post("/api/v1/reservations", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["reservationId"] == "order-42-line-1"
    assert again.json()["status"] == "PENDING"
    assert again.json()["createdAt"] == first.json()["createdAt"]
    assert (await inproc.stock(api))["reserved"] == 2  # nothing more reserved

    # the same id by SKU instead of product id is the same request
    by_sku = await api.post("/api/v1/reservations", json={**body, "productId": "PROD-001"})
    assert by_sku.status_code == 200, by_sku.text
    assert (await inproc.stock(api))["reserved"] == 2

    # the default TTL (600 s) given explicitly is the same request too
    assert (await api.post("/api/v1/reservations", json={**body, "ttl": 600})).status_code == 200

    for change in (
        {"quantity": 3},
        {"productId": "PROD-002"},
        {"customerId": "someone-else"},
        {"ttl": 60},
    ):
        r = await api.post("/api/v1/reservations", json={**body, **change})
        assert r.status_code == 409, (change, r.text)
        assert "order-42-line-1" in r.json()["error"]
    assert (await inproc.stock(api))["reserved"] == 2
    assert (await inproc.stock(api, "PROD-002"))["reserved"] == 0
    listed = (await api.get("/api/v1/reservations")).json()["data"]
    assert [x["reservationId"] for x in listed] == ["order-42-line-1"]


async def test_reserving_more_than_available_is_refused(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1/reservations", json={"productId": SEED_ID, "storeId": "store-001", "quantity": 9}
    )
    assert r.status_code == 202, r.text
    r = await api.post(
        "/api/v1/reservations", json={"productId": SEED_ID, "storeId": "store-001", "quantity": 2}
    )
    assert r.status_code == 409
    assert r.json()["error"] == "insufficient stock: available=1, requested=2"
    assert (await inproc.stock(api))["reserved"] == 9


async def test_unknown_product_and_reservation_are_404(api: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/products/NO-SUCH-SKU"),
        ("GET", "/api/v1/products/00000000-0000-0000-0000-000000000000"),
        ("GET", "/api/v1/products/NO-SUCH-SKU/availability"),
        ("GET", "/api/v1/products/NO-SUCH-SKU/history"),
        ("GET", "/api/v1/reservations/no-such-reservation"),
        ("POST", "/api/v1/reservations/no-such-reservation/confirm"),
        ("DELETE", "/api/v1/reservations/no-such-reservation"),
    ]:
        r = await api.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert set(r.json()) == {"error"}
        assert "not found" in r.json()["error"]

    r = await api.post(
        "/api/v1/products/NO-SUCH-SKU/stock",
        json={"storeId": "store-001", "operation": "add", "quantity": 1},
    )
    assert r.status_code == 404, r.text
    assert "NO-SUCH-SKU" in r.json()["error"]
    r = await api.post(
        "/api/v1/reservations",
        json={"productId": "NO-SUCH-SKU", "storeId": "store-001", "quantity": 1},
    )
    assert r.status_code == 404, r.text
    # a product with no stock row in the asked store
    r = await api.get("/api/v1/products/PROD-002/availability", params={"storeId": "store-077"})
    assert r.status_code == 404, r.text
    assert "store-077" in r.json()["error"]
    # a 404 changed nothing
    assert (await api.get("/api/v1/reservations")).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"productId": SEED_ID, "storeId": "store-001", "quantity": 0}, "quantity"),
        ({"productId": SEED_ID, "storeId": "store-001", "quantity": -1}, "quantity"),
        ({"productId": SEED_ID, "storeId": "store-001", "quantity": "2"}, "quantity"),
        ({"productId": SEED_ID, "storeId": "store-001", "quantity": 1, "ttl": 0}, "ttl"),
        ({"storeId": "store-001", "quantity": 1}, "productId"),
        ({"productId": SEED_ID, "storeId": "bad store!", "quantity": 1}, "storeId"),
        ({"productId": SEED_ID, "quantity": 1, "colour": "red"}, "colour"),
        ({"productId": SEED_ID, "quantity": 1, "reservationId": "has space"}, "reservationId"),
    ],
)
async def test_invalid_reservation_bodies_are_422_naming_the_field(
    api_agent: InProcAgent, body: dict[str, Any], field: str
) -> None:
    api = api_agent.local
    r = await api.post("/api/v1/reservations", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(f"{field}:"), r.json()
    assert r.json()["errors"][0]["field"] == field
    assert (await inproc.stock(api))["reserved"] == 0


async def test_invalid_json_is_400(api_agent: InProcAgent) -> None:
    api = api_agent.local
    for path in ("/api/v1/reservations", "/api/v1/products/PROD-001/stock"):
        r = await api.post(
            path, content=b'{"productId": ', headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text
        assert r.json() == {"error": "request body is not valid JSON"}
    assert (await inproc.stock(api))["reserved"] == 0


async def test_another_stores_stock_on_a_standalone_agent_is_a_conflict(
    api_agent: InProcAgent,
) -> None:
    """store-002 is known here (the demo data has its stock) but a standalone
    agent can never ask it: 409, the request can't succeed here, not a 503
    that says to try again later."""
    api = api_agent.local
    r = await api.post(
        "/api/v1/reservations", json={"productId": SEED_ID, "storeId": "store-002", "quantity": 1}
    )
    assert r.status_code == 409, r.text
    assert r.json() == {
        "error": "store 'store-002' owns that stock, and this agent runs standalone (no NATS "
        "configured): it can only reserve its own store's stock; nothing was changed",
        "owner": "store-002",
    }
    for method, path in (
        ("POST", "/api/v1/reservations/r-x/confirm"),
        ("DELETE", "/api/v1/reservations/r-x"),
    ):
        r = await api.request(method, path, params={"storeId": "store-002"})
        assert r.status_code == 409, (method, r.text)
        assert "it can only confirm or cancel reservations of its own store's stock" in r.text
    assert (await inproc.stock(api, store="store-002"))["reserved"] == 0
    assert (await api.get("/api/v1/reservations")).json()["data"] == []


async def test_a_store_this_agent_never_heard_of_is_not_found(api_agent: InProcAgent) -> None:
    """A typo in a store id is the caller's mistake: 404 naming the store."""
    api = api_agent.local
    before = (await api.get("/api/v1/sync/status")).json()["digests"]
    r = await api.post(
        "/api/v1/reservations", json={"productId": SEED_ID, "storeId": "store-999", "quantity": 1}
    )
    assert r.status_code == 404, r.text
    assert r.json() == {
        "error": "store 'store-999' is not known to this agent",
        "storeId": "store-999",
    }
    for method, path in (
        ("POST", "/api/v1/reservations/r-x/confirm"),
        ("DELETE", "/api/v1/reservations/r-x"),
    ):
        r = await api.request(method, path, params={"storeId": "store-999"})
        assert r.status_code == 404, (method, r.text)
        assert r.json()["error"] == "store 'store-999' is not known to this agent"
    assert (await api.get("/api/v1/sync/status")).json()["digests"] == before


async def test_a_known_owner_out_of_reach_now_is_still_503(make_inproc: Any) -> None:
    """On NATS but not connected (the server is down): the owner exists and
    may be reachable later, so 503, and nothing was reserved."""
    dead = f"nats://127.0.0.1:{free_port()}"
    agent = await make_inproc(nats=NatsConfig(servers=[dead], reconnect_wait=5.0))
    api = agent.local
    r = await api.post(
        "/api/v1/reservations",
        json={"reservationId": "r-n", "productId": SEED_ID, "storeId": "store-002", "quantity": 1},
    )
    assert r.status_code == 503, r.text
    assert r.json() == {
        "error": "store 'store-002' owns that stock and is unreachable: this agent is not "
        "connected to NATS; nothing was reserved",
        "owner": "store-002",
    }
    r = await api.post("/api/v1/reservations/r-n/confirm", params={"storeId": "store-002"})
    assert r.status_code == 503 and "nothing was changed" in r.json()["error"], r.text
    r = await api.post(
        "/api/v1/reservations", json={"productId": SEED_ID, "storeId": "store-999", "quantity": 1}
    )
    assert r.status_code == 404, r.text  # unknown stays unknown, connected or not
    assert (await inproc.stock(api, store="store-002"))["reserved"] == 0


async def test_listing_paging_and_query_errors(api_agent: InProcAgent) -> None:
    api = api_agent.local
    page = (await api.get("/api/v1/products", params={"limit": 2, "page": 2})).json()
    assert [p["sku"] for p in page["data"]] == ["PROD-003"]
    assert page["pagination"] == {"page": 2, "limit": 2, "total": 3}
    accessories = (await api.get("/api/v1/products", params={"category": "accessories"})).json()
    assert [p["sku"] for p in accessories["data"]] == ["PROD-002", "PROD-003"]
    found = (await api.get("/api/v1/products", params={"q": "Mouse"})).json()
    assert [p["sku"] for p in found["data"]] == ["PROD-002"]
    recent = (await api.get("/api/v1/products/PROD-001/history", params={"since": "30m"})).json()
    # the demo data's counts, in both stores
    assert sorted((m["kind"], m["storeId"]) for m in recent["data"]) == [
        ("count", "store-001"),
        ("count", "store-002"),
    ]
    future = await api.get("/api/v1/products/PROD-001/history", params={"since": "2999-01-01"})
    assert future.json()["data"] == []

    for path, params, field in [
        ("/api/v1/products", {"limit": 0}, "limit"),
        ("/api/v1/products", {"limit": 1001}, "limit"),
        ("/api/v1/products", {"page": "first"}, "page"),
        ("/api/v1/reservations", {"status": "DONE"}, "status"),
        ("/api/v1/products/PROD-001/history", {"since": "last week"}, "since"),
    ]:
        r = await api.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["error"].startswith(f"{field}:"), r.json()

    r = await api.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found"}
    r = await api.put("/api/v1/products/PROD-001")
    assert r.status_code == 405
    assert set(r.json()) == {"error"}


# -------------------------------------------------------------- concurrency
@pytest.mark.parametrize("what", ["reservation", "subtract"])
async def test_100_concurrent_requests_never_oversell(api_agent: InProcAgent, what: str) -> None:
    """100 requests in flight at once on the event loop, against 5 in stock."""
    api = api_agent.local
    r = await api.post(
        "/api/v1/products/PROD-002/stock",
        json={"storeId": "store-001", "operation": "set", "quantity": 5, "reason": "count"},
    )
    assert r.status_code == 202, r.text
    assert (await inproc.stock(api, "PROD-002"))["available"] == 5

    if what == "reservation":
        path, body = (
            "/api/v1/reservations",
            {"productId": "PROD-002", "storeId": "store-001", "quantity": 1},
        )
    else:
        path, body = (
            "/api/v1/products/PROD-002/stock",
            {"storeId": "store-001", "operation": "subtract", "quantity": 1},
        )
    responses = await asyncio.gather(*(api.post(path, json=body) for _ in range(100)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {202: 5, 409: 95}, statuses
    refusals = {r.json()["error"] for r in responses if r.status_code == 409}
    assert refusals == {"insufficient stock: available=0, requested=1"}

    row = await inproc.stock(api, "PROD-002")
    assert row["available"] == 0
    if what == "reservation":
        assert (row["quantity"], row["reserved"]) == (5, 5)
        ids = {r.json()["reservationId"] for r in responses if r.status_code == 202}
        listed = (await api.get("/api/v1/reservations", params={"sku": "PROD-002"})).json()["data"]
        assert {x["reservationId"] for x in listed} == ids
        assert len(ids) == 5
    else:
        assert (row["quantity"], row["reserved"]) == (0, 0)
        kinds = Counter(
            m["kind"] for m in await inproc.movements(api, "PROD-002", storeId="store-001")
        )
        assert kinds == {"count": 2, "adjust": 5}  # the demo count, our count, 5 subtracts


# ------------------------------------------------------------------ shutdown
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_and_restart_keeps_the_data(make_agent: Any, sig: int) -> None:
    agent = make_agent("store-001", tcp=True)
    api = agent.client()
    api.post(
        "/api/v1/products",
        json={"sku": "KEEP-1", "name": "Kept", "price": 1.5, "category": "test"},
    ).raise_for_status()
    api.post(
        "/api/v1/products/KEEP-1/stock",
        json={"storeId": "store-001", "operation": "set", "quantity": 7},
    ).raise_for_status()
    api.post(
        "/api/v1/products/PROD-001/stock",
        json={"storeId": "store-001", "operation": "subtract", "quantity": 1},
    ).raise_for_status()
    pending = api.post(
        "/api/v1/reservations",
        json={"reservationId": "keep-pending", "productId": "KEEP-1", "quantity": 2},
    )
    assert pending.status_code == 202, pending.text
    sold = api.post(
        "/api/v1/reservations",
        json={"reservationId": "keep-sold", "productId": "PROD-002", "quantity": 1},
    )
    assert sold.status_code == 202, sold.text
    assert api.post("/api/v1/reservations/keep-sold/confirm").status_code == 200
    history_before = movements(api, "PROD-001")
    products_before = api.get("/api/v1/products").json()
    assert agent.proc is not None
    pid = agent.proc.pid

    # an idle keep-alive TCP connection must not hold the shutdown up
    with tcp_client(agent) as idle:
        assert idle.get("/api/v1/products").status_code == 200
        started = time.monotonic()
        assert agent.stop(sig, timeout=30) == 0, agent.log()
        assert time.monotonic() - started < 30
    assert not agent.socket.exists()  # removed on the way out
    assert "agent stopped" in agent.log()

    agent.start()  # same data dir (and --demo-data, which only fills what is absent)
    assert agent.proc is not None and agent.proc.pid != pid
    api = agent.client()
    assert api.get("/api/v1/products").json() == products_before
    keep = stock(api, "KEEP-1")
    assert (keep["quantity"], keep["reserved"], keep["available"]) == (7, 2, 5)
    assert stock(api, "PROD-001")["quantity"] == 9
    assert stock(api, "PROD-002")["quantity"] == 49
    assert movements(api, "PROD-001") == history_before
    assert api.get("/api/v1/reservations/keep-pending").json()["status"] == "PENDING"
    assert api.get("/api/v1/reservations/keep-sold").json()["status"] == "CONFIRMED"
    # and it keeps working: a repeated reservation id is still recognised
    again = api.post(
        "/api/v1/reservations",
        json={"reservationId": "keep-pending", "productId": "KEEP-1", "quantity": 2},
    )
    assert again.status_code == 200, again.text
    assert stock(api, "KEEP-1")["reserved"] == 2
