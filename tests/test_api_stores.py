"""The store directory (GET /api/v1/stores, GET|PATCH /api/v1/stores/{storeId}),
per-SKU safety stock (PUT /api/v1/products/{ref}/safety-stock) and the
online figures of availability, in-process (``tests.inproc``: the real app
through httpx's ASGI transport; ``api`` is the socket's view: local admin)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.inproc import InProcAgent

pytestmark = pytest.mark.anyio
SAFETY = "/api/v1/products/PROD-001/safety-stock"
AVAILABILITY = "/api/v1/products/PROD-001/availability"


@pytest.fixture
def api(api_agent: InProcAgent) -> httpx.AsyncClient:
    return api_agent.local


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    r = await response
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


# ---------------------------------------------------------------- stores
async def test_every_known_store_is_listed_with_its_effective_fields(
    api: httpx.AsyncClient,
) -> None:
    """The demo data has stock at store-002: known from its rows only."""
    listed = (await ok(api.get("/api/v1/stores")))["data"]
    assert [s["storeId"] for s in listed] == ["store-001", "store-002"]
    assert listed[1] == {
        "storeId": "store-002",
        "listed": False,
        "name": None,
        "address": None,
        "lat": None,
        "lon": None,
        "priority": 100,
        "online": True,
        "safetyStock": 0,
        "defaults": ["priority", "online", "safetyStock"],
        "updatedAt": None,
    }


async def test_patch_describes_a_new_store_and_changes_only_the_fields_given(
    api: httpx.AsyncClient,
) -> None:
    body = {"name": "Madrid Centro", "lat": 40.42, "lon": -3.7, "priority": 1}
    created = await ok(api.patch("/api/v1/stores/store-007", json=body))
    assert created["listed"] is True
    assert (created["name"], created["lat"], created["priority"], created["online"]) == (
        "Madrid Centro",
        40.42,
        1,
        True,
    )
    assert created["defaults"] == ["online", "safetyStock"]
    changed = await ok(
        api.patch(
            "/api/v1/stores/store-007",
            json={"online": False, "safetyStock": 2, "address": "Gran Vía 1"},
        )
    )
    assert (changed["name"], changed["online"], changed["safetyStock"]) == (
        "Madrid Centro",
        False,
        2,
    )
    assert changed["address"] == "Gran Vía 1"
    # null unsets a field: the default applies again
    cleared = await ok(api.patch("/api/v1/stores/store-007", json={"online": None}))
    assert (cleared["online"], cleared["defaults"]) == (True, ["online"])
    assert await ok(api.get("/api/v1/stores/store-007")) == cleared
    ids = [s["storeId"] for s in (await ok(api.get("/api/v1/stores")))["data"]]
    assert ids == ["store-001", "store-002", "store-007"]


async def test_an_unknown_store_is_404(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/stores/store-404")
    assert r.status_code == 404
    assert "inv store set store-404" in r.json()["error"]
    r = await api.patch("/api/v1/stores/store-404", json={})  # describes nothing
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"lat": 90.01}, "lat"),
        ({"lon": -181}, "lon"),
        ({"priority": 0}, "priority"),
        ({"priority": "1"}, "priority"),
        ({"priority": 2.5}, "priority"),
        ({"online": "yes"}, "online"),
        ({"safetyStock": -1}, "safetyStock"),
        ({"name": ""}, "name"),
        ({"address": "x" * 201}, "address"),
    ],
)
async def test_a_bad_store_field_is_422_naming_it_and_changes_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await api.patch("/api/v1/stores/store-001", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(f"{field}: ")
    assert (await ok(api.get("/api/v1/stores/store-001")))["listed"] is False


@pytest.mark.parametrize("store", ["any", "a.b"])
async def test_a_store_id_that_cannot_be_a_store_is_422(api: httpx.AsyncClient, store: str) -> None:
    r = await api.patch(f"/api/v1/stores/{store}", json={"name": "x"})
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("storeId: ")


async def test_only_an_admin_writes_the_directory(api_agent: InProcAgent) -> None:
    for role in ("viewer", "clerk"):
        tcp = api_agent.tcp(api_agent.token("ana", role))
        assert (await tcp.get("/api/v1/stores")).status_code == 200
        assert (await tcp.get("/api/v1/stores/store-001")).status_code == 200
        r = await tcp.patch("/api/v1/stores/store-001", json={"name": "x"})
        assert r.status_code == 403, r.text
        assert "needs 'admin'" in r.json()["error"]
        r = await tcp.put(SAFETY, json={"safetyStock": 1})
        assert r.status_code == 403, r.text
    admin = api_agent.tcp(api_agent.token("root", "admin"))
    assert (await admin.patch("/api/v1/stores/store-001", json={"name": "x"})).status_code == 200


# ---------------------------------------------------------- safety stock
async def test_safety_stock_shapes_what_online_orders_may_take(api: httpx.AsyncClient) -> None:
    """PROD-001: 10 at store-001, 5 at store-002 (the demo data)."""
    before = await ok(api.get(AVAILABILITY))
    assert [(s["safetyStock"], s["availableOnline"]) for s in before["stores"]] == [(0, 10), (0, 5)]
    assert (before["totalAvailable"], before["totalAvailableOnline"]) == (15, 15)

    own = await ok(api.put(SAFETY, json={"safetyStock": 4}))  # this store by default
    assert own == {
        "productId": before["productId"],
        "sku": "PROD-001",
        "storeId": "store-001",
        "safetyStock": 4,
        "skuSetting": 4,
        "storeDefault": 0,
    }
    await ok(api.patch("/api/v1/stores/store-002", json={"safetyStock": 9}))  # above its 5
    after = await ok(api.get(AVAILABILITY))
    assert [(s["safetyStock"], s["availableOnline"]) for s in after["stores"]] == [(4, 6), (9, 0)]
    assert (after["totalAvailable"], after["totalAvailableOnline"]) == (15, 6)

    await ok(api.patch("/api/v1/stores/store-001", json={"online": False}))
    one = await ok(api.get(AVAILABILITY, params={"storeId": "store-001"}))
    assert [(s["safetyStock"], s["availableOnline"]) for s in one["stores"]] == [(4, 0)]

    cleared = await ok(api.put(SAFETY, json={"storeId": "store-002", "safetyStock": None}))
    assert (cleared["safetyStock"], cleared["skuSetting"]) == (9, None)  # the store's default


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 422, "safetyStock: Field required"),
        ({"safetyStock": -1}, 422, "safetyStock: "),
        ({"safetyStock": "3"}, 422, "safetyStock: "),
        ({"safetyStock": 1, "storeId": "any"}, 422, "storeId: 'any' is not a store"),
        ({"safetyStock": 1, "storeId": "store-404"}, 404, "store 'store-404' is not known"),
        ({"safetyStock": 1, "extra": 1}, 422, "extra: "),
    ],
)
async def test_bad_safety_stock_requests(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, text: str
) -> None:
    r = await api.put(SAFETY, json=body)
    assert r.status_code == status, r.text
    assert text in r.json()["error"]
    stores = (await ok(api.get(AVAILABILITY)))["stores"]
    assert {s["safetyStock"] for s in stores} == {0}


async def test_safety_stock_of_an_unknown_product_is_404(api: httpx.AsyncClient) -> None:
    r = await api.put("/api/v1/products/NOPE/safety-stock", json={"safetyStock": 1})
    assert r.status_code == 404
    assert "product 'NOPE' not found" in r.json()["error"]


async def test_a_described_store_is_a_known_owner_for_reservations(api: httpx.AsyncClient) -> None:
    """Before: 404, a store nobody heard of. Described, it exists: this
    standalone agent just cannot ask it (409), as for any other store's stock."""
    body = {"productId": "PROD-001", "quantity": 1, "storeId": "store-007"}
    assert (await api.post("/api/v1/reservations", json=body)).status_code == 404
    await ok(api.patch("/api/v1/stores/store-007", json={"name": "Soon open"}))
    r = await api.post("/api/v1/reservations", json=body)
    assert r.status_code == 409, r.text
    assert r.json()["owner"] == "store-007"
