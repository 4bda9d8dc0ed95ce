"""Stock updates (add / subtract / set), versions, compare-and-set, idempotency
keys and input validation, in-process (``tests.inproc``: the real app through
httpx's ASGI transport; ``api`` is the socket's view, ``tcp`` a clerk's)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.inproc import InProcAgent, movements, stock

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"  # PROD-001
STOCK = "/api/v1/products/PROD-001/stock"
pytestmark = pytest.mark.anyio


async def update(client: httpx.AsyncClient, key: str | None = None, **body: Any) -> httpx.Response:
    body.setdefault("storeId", "store-001")
    headers = {"X-Idempotency-Key": key} if key else {}
    return await client.post(STOCK, json=body, headers=headers)


@pytest.fixture
def api(api_agent: InProcAgent) -> httpx.AsyncClient:
    """The API as the Unix socket sees it: local admin."""
    return api_agent.local


@pytest.fixture
def tcp(api_agent: InProcAgent) -> httpx.AsyncClient:
    """Over TCP, as clerk maria."""
    return api_agent.tcp(api_agent.token("maria", "clerk"))


# -------------------------------------------------------------- operations
async def test_add_subtract_set_each_bump_the_version(
    api: httpx.AsyncClient, tcp: httpx.AsyncClient
) -> None:
    start = await stock(api)
    assert start["quantity"] == 10
    v0 = start["version"]
    n0 = len(await movements(api))

    r = await update(api, operation="add", quantity=5, reason="delivery")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["message"] == "Stock updated"
    assert body["operation"] == "add"
    assert (body["productId"], body["sku"], body["storeId"]) == (SEED_ID, "PROD-001", "store-001")
    assert (body["quantity"], body["available"], body["version"]) == (15, 15, v0 + 1)
    add_id = body["movementId"]
    assert add_id.startswith("store-001:")

    r = await update(tcp, operation="subtract", quantity=3, reason="damaged")  # by the TCP clerk
    assert r.status_code == 202, r.text
    assert (r.json()["quantity"], r.json()["version"]) == (12, v0 + 2)

    r = await update(api, operation="set", quantity=40, reason="cycle count")
    assert r.status_code == 202, r.text
    assert (r.json()["quantity"], r.json()["version"]) == (40, v0 + 3)
    assert r.json()["movementId"] != add_id

    row = await stock(api)
    assert (row["quantity"], row["reserved"], row["available"], row["version"]) == (
        40,
        0,
        40,
        v0 + 3,
    )
    history = await movements(api)
    assert len(history) == n0 + 3
    newest = [(m["kind"], m["quantity"], m["reason"], m["actor"]) for m in history[:3]]
    assert newest == [
        ("count", 40, "cycle count", "local"),
        ("adjust", -3, "damaged", "maria"),
        ("receive", 5, "delivery", "local"),
    ]
    assert history[2]["movementId"] == add_id

    # a store without a row yet starts at version 0; storeId defaults to this store
    r = await api.post(STOCK, json={"operation": "add", "quantity": 4})
    assert r.status_code == 202, r.text
    assert r.json()["storeId"] == "store-001"
    r = await update(api, storeId="store-003", operation="add", quantity=4)
    assert r.status_code == 202, r.text
    assert (r.json()["quantity"], r.json()["version"]) == (4, 1)
    assert (await stock(api))["quantity"] == 44


async def test_set_to_zero_is_allowed_but_add_zero_is_not(api: httpx.AsyncClient) -> None:
    r = await update(api, operation="set", quantity=0)
    assert r.status_code == 202, r.text
    assert (await stock(api))["quantity"] == 0
    for op in ("add", "subtract"):
        r = await update(api, operation=op, quantity=0)
        assert r.status_code == 422, r.text
        assert r.json()["error"].startswith("quantity:")


async def test_expected_version_is_a_compare_and_set(api: httpx.AsyncClient) -> None:
    v = (await stock(api))["version"]
    r = await update(api, operation="set", quantity=20, expectedVersion=v)
    assert r.status_code == 202, r.text
    assert r.json()["version"] == v + 1
    n = len(await movements(api))

    # a writer still holding the old version loses, and learns the current one
    r = await update(api, operation="set", quantity=99, expectedVersion=v)
    assert r.status_code == 409, r.text
    assert r.json()["currentVersion"] == v + 1
    assert "version mismatch" in r.json()["error"]
    row = await stock(api)
    assert (row["quantity"], row["version"]) == (20, v + 1)
    assert len(await movements(api)) == n

    # a reservation changes the version too, so a stale subtract is refused
    res = await api.post("/api/v1/reservations", json={"productId": "PROD-001", "quantity": 1})
    assert res.status_code == 202, res.text
    r = await update(api, operation="subtract", quantity=1, expectedVersion=v + 1)
    assert r.status_code == 409, r.text
    assert r.json()["currentVersion"] == v + 2
    assert len(await movements(api)) == n

    r = await update(api, operation="add", quantity=1, expectedVersion=v + 2)
    assert r.status_code == 202, r.text
    assert (r.json()["quantity"], r.json()["version"]) == (21, v + 3)

    # a store with no stock row is at version 0
    r = await update(api, storeId="store-009", operation="set", quantity=3, expectedVersion=1)
    assert r.status_code == 409, r.text
    assert r.json()["currentVersion"] == 0
    r = await update(api, storeId="store-009", operation="set", quantity=3, expectedVersion=0)
    assert r.status_code == 202, r.text


async def test_subtracting_more_than_available_is_refused(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/reservations", json={"productId": SEED_ID, "quantity": 2})
    assert r.status_code == 202, r.text
    before = await stock(api)
    n = len(await movements(api))

    r = await update(api, operation="subtract", quantity=9)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "insufficient stock: available=8, requested=9"
    assert (r.json()["available"], r.json()["requested"]) == (8, 9)
    after = await stock(api)
    assert {**after, "asOf": None} == {**before, "asOf": None}
    assert len(await movements(api)) == n

    r = await update(api, operation="subtract", quantity=8)
    assert r.status_code == 202, r.text
    row = await stock(api)
    assert (row["quantity"], row["reserved"], row["available"]) == (2, 2, 0)
    r = await update(api, operation="subtract", quantity=1)
    assert r.status_code == 409
    assert r.json()["error"] == "insufficient stock: available=0, requested=1"


# -------------------------------------------------------------- idempotency
async def test_idempotency_key_retry_returns_the_first_result(api: httpx.AsyncClient) -> None:
    n = len(await movements(api))
    first = await update(api, key="delivery-2026-001", operation="add", quantity=3, reason="po 1")
    assert first.status_code == 202, first.text
    assert first.json()["quantity"] == 13

    for _ in range(3):
        retry = await update(
            api, key="delivery-2026-001", operation="add", quantity=3, reason="po 1"
        )
        assert retry.status_code == 202, retry.text
        assert retry.json()["movementId"] == first.json()["movementId"]
        assert retry.json()["quantity"] == 13
        assert retry.json()["version"] == first.json()["version"]
        assert retry.json()["replayed"] is True
    assert len(await movements(api)) == n + 1
    assert (await stock(api))["quantity"] == 13

    # the same key with a different body is refused, not applied and not ignored
    for change in ({"quantity": 4}, {"operation": "set"}, {"reason": "po 2"}):
        body = {"operation": "add", "quantity": 3, "reason": "po 1", **change}
        r = await update(api, key="delivery-2026-001", **body)
        assert r.status_code == 409, (change, r.text)
        assert "delivery-2026-001" in r.json()["error"]
    r = await api.post(
        "/api/v1/products/PROD-002/stock",
        json={"storeId": "store-001", "operation": "add", "quantity": 3, "reason": "po 1"},
        headers={"X-Idempotency-Key": "delivery-2026-001"},
    )
    assert r.status_code == 409, r.text
    assert (await stock(api))["quantity"] == 13
    assert (await stock(api, "PROD-002"))["quantity"] == 50
    assert len(await movements(api)) == n + 1

    # a retried compare-and-set gets its first answer, not a version mismatch
    v = (await stock(api))["version"]
    cas = await update(api, key="count-7", operation="set", quantity=30, expectedVersion=v)
    assert cas.status_code == 202, cas.text
    again = await update(api, key="count-7", operation="set", quantity=30, expectedVersion=v)
    assert again.status_code == 202, again.text
    assert again.json()["movementId"] == cas.json()["movementId"]
    assert len(await movements(api)) == n + 2

    # a key is at most 128 characters
    r = await update(api, key="k" * 129, operation="add", quantity=1)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("X-Idempotency-Key:")
    assert len(await movements(api)) == n + 2


async def test_concurrent_retries_with_one_key_apply_once(api: httpx.AsyncClient) -> None:
    n = len(await movements(api))
    body = {"storeId": "store-001", "operation": "add", "quantity": 2}

    responses = await asyncio.gather(
        *(api.post(STOCK, json=body, headers={"X-Idempotency-Key": "same"}) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["movementId"] for r in responses}) == 1
    assert len(await movements(api)) == n + 1
    assert (await stock(api))["quantity"] == 12


# --------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"operation": "add", "quantity": -1}, "quantity"),
        ({"operation": "add", "quantity": "abc"}, "quantity"),
        ({"operation": "add", "quantity": "3"}, "quantity"),
        ({"operation": "add", "quantity": 1.5}, "quantity"),
        ({"operation": "add", "quantity": True}, "quantity"),
        ({"operation": "add", "quantity": None}, "quantity"),
        ({"operation": "add", "quantity": 1_000_000_001}, "quantity"),
        ({"operation": "add"}, "quantity"),
        ({"operation": "multiply", "quantity": 1}, "operation"),
        ({"quantity": 1}, "operation"),
        ({"operation": "add", "quantity": 1, "colour": "red"}, "colour"),
        ({"operation": "add", "quantity": 1, "storeId": ""}, "storeId"),
        ({"operation": "add", "quantity": 1, "storeId": "../etc"}, "storeId"),
        ({"operation": "add", "quantity": 1, "reason": "x" * 201}, "reason"),
        ({"operation": "set", "quantity": 1, "expectedVersion": -1}, "expectedVersion"),
        ({"operation": "set", "quantity": 1, "expectedVersion": "1"}, "expectedVersion"),
    ],
)
async def test_invalid_stock_bodies_are_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    before = await stock(api)
    r = await api.post(STOCK, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"].startswith(f"{field}:"), r.json()
    assert r.json()["errors"][0]["field"] == field
    after = await stock(api)
    assert (after["quantity"], after["version"]) == (before["quantity"], before["version"])


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b'{"operation": "add", "quantity": ', 400, "request body is not valid JSON"),
        (b"not json at all", 400, "request body is not valid JSON"),
        (b'[{"operation": "add", "quantity": 1}]', 422, "body:"),
        (b'"add 1"', 422, "body:"),
        (b"", 422, "body:"),
    ],
)
async def test_malformed_stock_requests(
    api: httpx.AsyncClient, content: bytes, status: int, error: str
) -> None:
    version = (await stock(api))["version"]
    r = await api.post(STOCK, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"].startswith(error), r.json()
    assert (await stock(api))["version"] == version


# ---------------------------------------------------------------- catalogue
async def test_product_create_update_and_their_validation(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1/products",
        json={"sku": "CAB-USB-C", "name": "USB-C cable", "price": 9.5, "category": "cables"},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["sku"], created["price"], created["active"]) == ("CAB-USB-C", 9.5, True)
    assert created["id"]  # derived from the SKU
    assert (await api.get(f"/api/v1/products/{created['id']}")).json()["sku"] == "CAB-USB-C"

    # creating the same product again is idempotent; a different one under that SKU is not
    again = await api.post(
        "/api/v1/products",
        json={"sku": "CAB-USB-C", "name": "USB-C cable", "price": 9.5, "category": "cables"},
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] == created["id"]
    clash = await api.post("/api/v1/products", json={"sku": "CAB-USB-C", "name": "Other"})
    assert clash.status_code == 409, clash.text
    clash = await api.post("/api/v1/products", json={"sku": "NEW-1", "name": "n", "id": SEED_ID})
    assert clash.status_code == 409, clash.text

    r = await api.patch("/api/v1/products/CAB-USB-C", json={"price": 7.25, "active": False})
    assert r.status_code == 200, r.text
    assert (r.json()["price"], r.json()["active"], r.json()["name"]) == (7.25, False, "USB-C cable")
    assert (await api.patch("/api/v1/products/NOPE", json={"price": 1})).status_code == 404

    for body, field in [
        ({"sku": "has space", "name": "x"}, "sku"),
        ({"sku": "OK-1", "name": ""}, "name"),
        ({"sku": "OK-1"}, "name"),
        ({"sku": "OK-1", "name": "x", "price": -1}, "price"),
        ({"sku": "OK-1", "name": "x", "price": "cheap"}, "price"),
        ({"sku": "OK-1", "name": "x", "stock": 5}, "stock"),
    ]:
        r = await api.post("/api/v1/products", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"].startswith(f"{field}:"), r.json()
    r = await api.patch("/api/v1/products/CAB-USB-C", json={"sku": "RENAMED"})
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("sku:")
    skus = [p["sku"] for p in (await api.get("/api/v1/products")).json()["data"]]
    assert skus == ["CAB-USB-C", "PROD-001", "PROD-002", "PROD-003"]
