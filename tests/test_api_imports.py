"""Bulk imports (POST /api/v1/imports/stock and /imports/products): the whole
file is validated first, every bad row is reported by its line and nothing is
applied; a good file is applied in one go; the same file twice applies once;
a dry run applies nothing; 100,000 rows import. In-process (``tests.inproc``:
the real app through httpx's ASGI transport, as the socket sees it)."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from agent.domain import BATCH_ROWS
from tests.inproc import InProcAgent

STOCK = "/api/v1/imports/stock"
PRODUCTS = "/api/v1/imports/products"
pytestmark = pytest.mark.anyio


async def levels(api: httpx.AsyncClient, sku: str) -> dict[str, tuple[int, int]]:
    """{store: (quantity, reserved)} for a SKU."""
    r = await api.get(f"/api/v1/products/{sku}/availability")
    assert r.status_code == 200, r.text
    return {s["storeId"]: (s["quantity"], s["reserved"]) for s in r.json()["stores"]}


async def snapshot(api: httpx.AsyncClient) -> dict[str, Any]:
    """Everything an import could change: products, stock levels, movements."""
    products = (await api.get("/api/v1/products", params={"limit": 1000})).json()["data"]
    return {
        "products": products,
        "stock": {p["sku"]: await levels(api, p["sku"]) for p in products},
        "history": {
            p["sku"]: (await api.get(f"/api/v1/products/{p['sku']}/history")).json()["data"]
            for p in products
        },
    }


@pytest.fixture
def api(api_agent: InProcAgent) -> httpx.AsyncClient:
    """The API as the Unix socket sees it: local admin."""
    return api_agent.local


def row(line: int, sku: str, quantity: Any, **extra: Any) -> dict[str, Any]:
    return {"line": line, "sku": sku, "quantity": quantity, **extra}


# -------------------------------------------------------------------- stock
async def test_a_good_stock_file_is_applied_in_one_go(api: httpx.AsyncClient) -> None:
    rows = [
        row(2, "PROD-001", 25, storeId="store-001", reason="annual count"),
        row(3, "PROD-002", 5, storeId="store-001", mode="add"),
        row(4, "PROD-003", 7, storeId="store-002"),
        row(5, "PROD-001", 5, storeId="store-002"),  # already 5: unchanged
        row(6, "PROD-003", -2, mode="add"),  # no storeId: this agent's store
    ]
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rows"], body["applied"], body["unchanged"]) == (5, 4, 1)
    assert body["alreadyImported"] is False
    assert body["dryRun"] is False
    assert [(c["line"], c["sku"], c["storeId"], c["from"], c["to"]) for c in body["changes"]] == [
        (2, "PROD-001", "store-001", 10, 25),
        (3, "PROD-002", "store-001", 50, 55),
        (4, "PROD-003", "store-002", 0, 7),
        (6, "PROD-003", "store-001", 20, 18),
    ]
    assert await levels(api, "PROD-001") == {"store-001": (25, 0), "store-002": (5, 0)}
    assert await levels(api, "PROD-002") == {"store-001": (55, 0)}
    assert await levels(api, "PROD-003") == {"store-001": (18, 0), "store-002": (7, 0)}
    newest = (await api.get("/api/v1/products/PROD-001/history")).json()["data"][0]
    assert (newest["kind"], newest["quantity"], newest["reason"]) == ("count", 25, "annual count")
    newest = (await api.get("/api/v1/products/PROD-002/history")).json()["data"][0]
    assert (newest["kind"], newest["quantity"], newest["reason"]) == ("receive", 5, "import")


async def test_unknown_skus_reject_the_whole_file_naming_each_line(api: httpx.AsyncClient) -> None:
    before = await snapshot(api)
    rows = [
        row(2, "PROD-001", 1),
        row(3, "NOPE-1", 4),
        row(4, "PROD-002", 99, mode="add"),
        row(5, "NOPE-2", 4, storeId="store-002"),
    ]
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 422, r.text
    body = r.json()
    assert "nothing was imported" in body["error"]
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(3, "sku"), (5, "sku")]
    assert "NOPE-1" in body["errors"][0]["error"]
    assert "NOPE-2" in body["errors"][1]["error"]
    assert await snapshot(api) == before  # nothing applied, not even the good rows

    # the refused file was not recorded: fixed, it imports
    fixed = [r for r in rows if not r["sku"].startswith("NOPE")]
    r = await api.post(STOCK, json={"rows": fixed})
    assert r.status_code == 200, r.text
    assert (r.json()["applied"], r.json()["alreadyImported"]) == (2, False)
    assert (await levels(api, "PROD-001"))["store-001"] == (1, 0)
    assert (await levels(api, "PROD-002"))["store-001"] == (149, 0)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"sku": "bad sku"}, "sku"),
        ({"storeId": "bad store"}, "storeId"),
        ({"mode": "replace"}, "mode"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_invalid_stock_rows_are_422_naming_line_and_field(
    api: httpx.AsyncClient, bad: dict[str, Any], field: str
) -> None:
    before = await levels(api, "PROD-001")
    rows = [row(2, "PROD-001", 77), {**row(7, "PROD-002", 3), **bad}, row(9, "PROD-003", 1)]
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(f"line 7: {field}:"), r.json()
    assert r.json()["errors"][0]["field"] == f"line 7: {field}"
    assert await levels(api, "PROD-001") == before


async def test_rows_that_would_make_stock_negative_are_refused(api: httpx.AsyncClient) -> None:
    reserve = await api.post("/api/v1/reservations", json={"productId": "PROD-002", "quantity": 10})
    assert reserve.status_code == 202, reserve.text
    before = await snapshot(api)
    rows = [
        row(2, "PROD-001", -5),  # a count cannot be negative
        row(3, "PROD-002", -30, mode="add"),  # fine: 50 on hand, 10 reserved
        row(4, "PROD-002", -11, mode="add"),  # now only 10 available
        row(5, "PROD-003", 3),
    ]
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "quantity"), (4, "quantity")]
    assert "available=10, requested=11" in errors[1]["error"]
    assert await snapshot(api) == before

    rows[3 - 2] = row(3, "PROD-002", -30, mode="add")
    rows[4 - 2] = row(4, "PROD-002", -10, mode="add")
    rows[0] = row(2, "PROD-001", 0)
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 200, r.text
    assert (await levels(api, "PROD-002"))["store-001"] == (10, 10)
    assert (await levels(api, "PROD-001"))["store-001"] == (0, 0)


async def test_reimporting_the_same_file_applies_nothing(api: httpx.AsyncClient) -> None:
    rows = [row(2, "PROD-001", 5, mode="add"), row(3, "PROD-002", 1, mode="add")]
    first = await api.post(STOCK, json={"rows": rows})
    assert first.status_code == 200, first.text
    assert (first.json()["applied"], first.json()["alreadyImported"]) == (2, False)
    after_first = await snapshot(api)
    assert after_first["stock"]["PROD-001"]["store-001"] == (15, 0)

    again = await api.post(STOCK, json={"rows": rows})
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["alreadyImported"], body["applied"], body["unchanged"]) == (True, 0, 2)
    assert body["importId"] == first.json()["importId"]
    assert body["changes"] == []
    assert body["importedAt"]
    # the same rows on other lines (say, a blank line added) are the same file
    shifted = [{**r, "line": r["line"] + 1} for r in rows]
    assert (await api.post(STOCK, json={"rows": shifted})).json()["alreadyImported"] is True
    assert await snapshot(api) == after_first

    # force applies it once more, on purpose
    forced = await api.post(STOCK, json={"rows": rows, "force": True})
    assert forced.status_code == 200, forced.text
    assert forced.json()["applied"] == 2
    assert (await levels(api, "PROD-001"))["store-001"] == (20, 0)


async def test_a_dry_run_reports_the_changes_and_applies_nothing(api: httpx.AsyncClient) -> None:
    before = await snapshot(api)
    rows = [row(2, "PROD-001", 3), row(3, "PROD-002", 50), row(4, "PROD-003", 4, mode="add")]
    r = await api.post(STOCK, json={"rows": rows, "dryRun": True})
    assert r.status_code == 200, r.text
    dry = r.json()
    assert (dry["dryRun"], dry["applied"], dry["unchanged"]) == (True, 0, 1)
    assert [(c["line"], c["from"], c["to"]) for c in dry["changes"]] == [(2, 10, 3), (4, 20, 24)]
    assert await snapshot(api) == before
    # a dry run with a bad row reports it like the real thing
    r = await api.post(STOCK, json={"rows": [*rows, row(5, "NOPE", 1)], "dryRun": True})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["line"] == 5

    # the dry run was not recorded as an import: the real one applies
    real = await api.post(STOCK, json={"rows": rows})
    assert real.status_code == 200, real.text
    assert real.json()["alreadyImported"] is False
    assert real.json()["applied"] == 2
    assert real.json()["changes"] == dry["changes"]
    assert (await levels(api, "PROD-001"))["store-001"] == (3, 0)
    assert (await levels(api, "PROD-003"))["store-001"] == (24, 0)


# ------------------------------------------------------------- safety stock
async def safety(api: httpx.AsyncClient, sku: str) -> dict[str, int]:
    """{store: safety stock} of a SKU, as availability reports it."""
    r = await api.get(f"/api/v1/products/{sku}/availability")
    assert r.status_code == 200, r.text
    return {s["storeId"]: s["safetyStock"] for s in r.json()["stores"]}


async def test_a_stock_file_sets_safety_stock_in_the_same_import(api: httpx.AsyncClient) -> None:
    await api.patch("/api/v1/stores/store-002", json={"safetyStock": 6})  # a store default
    rows = [
        row(2, "PROD-001", 25, safetyStock=3),  # both
        {"line": 3, "sku": "PROD-002", "safetyStock": 4},  # the safety stock only
        row(4, "PROD-001", 5, storeId="store-002"),  # no safetyStock: left as it is
        {"line": 5, "sku": "PROD-003", "storeId": "store-002", "safetyStock": 1},
        {"line": 6, "sku": "PROD-003", "storeId": "store-002", "safetyStock": 2},  # last wins
    ]
    r = await api.post(STOCK, json={"rows": rows, "dryRun": True})
    assert r.status_code == 200, r.text
    dry = r.json()
    assert await safety(api, "PROD-001") == {"store-001": 0, "store-002": 6}
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["applied"], body["unchanged"]) == (4, 1)
    assert [(c["line"], c["from"], c["to"], c.get("safetyStock")) for c in body["changes"]] == [
        (2, 10, 25, {"from": None, "to": 3}),
        (3, 50, 50, {"from": None, "to": 4}),
        (5, 0, 0, {"from": None, "to": 1}),
        (6, 0, 0, {"from": 1, "to": 2}),
    ]
    assert body["changes"] == dry["changes"]
    assert await safety(api, "PROD-001") == {"store-001": 3, "store-002": 6}
    assert await safety(api, "PROD-002") == {"store-001": 4}
    r = await api.put(
        "/api/v1/products/PROD-003/safety-stock", json={"storeId": "store-002", "safetyStock": 2}
    )
    assert r.json()["skuSetting"] == 2  # one setting written, the last row's
    again = await api.post(STOCK, json={"rows": rows})
    assert again.json()["alreadyImported"] is True


async def test_a_file_without_safety_stock_keeps_the_import_id_it_always_had(
    api: httpx.AsyncClient,
) -> None:
    from agent.ledger.commands import rows_fingerprint
    from agent.ledger.commands.imports import STOCK_KEYS

    rows = [row(2, "PROD-001", 12)]
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 200, r.text
    full = [{**rows[0], "storeId": "store-001", "mode": "set", "reason": ""}]
    assert r.json()["importId"] == rows_fingerprint(full, STOCK_KEYS)


async def test_bad_safety_stock_rows_reject_the_whole_file_naming_line_and_field(
    api: httpx.AsyncClient,
) -> None:
    before = await snapshot(api)
    good = row(2, "PROD-001", 25, safetyStock=3)
    for bad, field, text in [
        (row(3, "PROD-002", 1, safetyStock=-1), "safetyStock", "greater than or equal to 0"),
        (row(3, "PROD-002", 1, safetyStock="2"), "safetyStock", "valid integer"),
        (row(3, "PROD-002", 1, safetyStock=None), "safetyStock", "valid integer"),
    ]:
        r = await api.post(STOCK, json={"rows": [good, bad]})
        assert r.status_code == 422, r.text
        assert r.json()["error"].startswith(f"line 3: {field}: "), r.text
        assert text in r.json()["error"]
    rows = [
        good,
        {"line": 3, "sku": "PROD-002", "storeId": "store-404", "safetyStock": 1},
        {"line": 4, "sku": "PROD-002", "storeId": "any", "quantity": 1},
        {"line": 5, "sku": "PROD-003"},  # neither a quantity nor a safety stock
    ]
    r = await api.post(STOCK, json={"rows": rows})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [
        (3, "safetyStock"),
        (4, "storeId"),
        (5, "quantity"),
    ]
    assert "store 'store-404' is not known" in errors[0]["error"]
    assert await snapshot(api) == before
    assert await safety(api, "PROD-001") == {"store-001": 0, "store-002": 0}


# ----------------------------------------------------------------- products
async def test_product_import_creates_updates_and_is_idempotent(api: httpx.AsyncClient) -> None:
    rows = [
        {"line": 2, "sku": "CAB-001", "name": "HDMI cable", "price": 4.5, "category": "cables"},
        {"line": 3, "sku": "CAB-002", "name": "DP cable", "active": False},
        {"line": 4, "sku": "PROD-001", "price": 549.0},
        {"line": 5, "sku": "PROD-002", "name": "Mouse Logitech M185"},  # unchanged
    ]
    dry = await api.post(PRODUCTS, json={"rows": rows, "dryRun": True})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["applied"], dry.json()["unchanged"]) == (0, 1)
    assert [(c["line"], c["action"]) for c in dry.json()["changes"]] == [
        (2, "create"),
        (3, "create"),
        (4, "update"),
    ]
    assert dry.json()["changes"][2]["fields"] == ["price"]
    assert (await api.get("/api/v1/products/CAB-001")).status_code == 404
    assert (await api.get("/api/v1/products/PROD-001")).json()["price"] == 599.99

    r = await api.post(PRODUCTS, json={"rows": rows})
    assert r.status_code == 200, r.text
    assert (r.json()["applied"], r.json()["unchanged"]) == (3, 1)
    cab = (await api.get("/api/v1/products/CAB-001")).json()
    assert (cab["name"], cab["price"], cab["category"], cab["active"]) == (
        "HDMI cable",
        4.5,
        "cables",
        True,
    )
    assert (await api.get("/api/v1/products/CAB-002")).json()["active"] is False
    prod = (await api.get("/api/v1/products/PROD-001")).json()
    assert (prod["price"], prod["name"]) == (549.0, "Laptop HP Pavilion 15")
    after = await snapshot(api)

    again = await api.post(PRODUCTS, json={"rows": rows})
    assert (again.json()["alreadyImported"], again.json()["applied"]) == (True, 0)
    assert await snapshot(api) == after


async def test_bad_product_rows_reject_the_whole_file(api: httpx.AsyncClient) -> None:
    before = await snapshot(api)
    rows = [
        {"line": 2, "sku": "NEW-1", "name": "ok"},
        {"line": 3, "sku": "NEW-2", "price": -1},
        {"line": 4, "sku": "NEW-3", "name": "x" * 201},
        {"line": 5, "sku": "has space"},
    ]
    r = await api.post(PRODUCTS, json={"rows": rows})
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["line 3: price", "line 4: name", "line 5: sku"]
    assert await snapshot(api) == before


async def test_an_empty_or_malformed_import_is_refused(api: httpx.AsyncClient) -> None:
    before = await levels(api, "PROD-001")
    for body, status, error in [
        ({}, 422, "rows:"),
        ({"rows": "PROD-001,5"}, 422, "rows:"),
        ({"rows": [{"sku": "PROD-001", "quantity": 1}]}, 422, "line"),
    ]:
        r = await api.post(STOCK, json=body)
        assert r.status_code == status, (body, r.text)
        assert error in r.json()["error"], r.json()
    r = await api.post(STOCK, content=b'{"rows": [', headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert await levels(api, "PROD-001") == before


# --------------------------------------------------------------------- scale
async def test_100k_row_stock_import(api: httpx.AsyncClient) -> None:
    n_products, n_stores = 1000, 100

    def qty(p: int, s: int) -> int:
        return (p * 7919 + s * 104729) % 1000

    products = [
        {"line": p + 2, "sku": f"SKU-{p:04d}", "name": f"Product {p}", "price": p / 4}
        for p in range(n_products)
    ]
    r = await api.post(PRODUCTS, json={"rows": products}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["applied"] == n_products

    rows = [
        {
            "line": len(products) + s * n_products + p,
            "sku": f"SKU-{p:04d}",
            "storeId": f"store-{s:03d}",
            "quantity": qty(p, s),
        }
        for s in range(1, n_stores + 1)
        for p in range(n_products)
    ]
    assert len(rows) == 100_000
    r = await api.post(STOCK, json={"rows": rows}, timeout=120)
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    zeros = sum(1 for x in rows if x["quantity"] == 0)  # 0 -> 0 is no change
    assert (body["rows"], body["applied"], body["unchanged"]) == (100_000, 100_000 - zeros, zeros)
    assert body["changesTruncated"] is True
    assert len(body["changes"]) == 1000
    assert body["events"] == -(-(100_000 - zeros) // BATCH_ROWS)  # stock.batch events, full
    # a standalone agent's outbox holds every event (nothing drains it): still healthy
    health = await api.get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["checks"]["outbox"]["backlog"] >= n_products + body["events"]

    rng = random.Random(20261128)
    for p in rng.sample(range(n_products), 3):  # every store of a few products
        # a 0 -> 0 row changes nothing, so it leaves no stock row behind
        expected = {f"store-{s:03d}": (qty(p, s), 0) for s in range(1, n_stores + 1)}
        assert await levels(api, f"SKU-{p:04d}") == {k: v for k, v in expected.items() if v[0]}
    for _ in range(25):  # and random cells
        p, s = rng.randrange(n_products), rng.randint(1, n_stores)
        r = await api.get(
            f"/api/v1/products/SKU-{p:04d}/availability", params={"storeId": f"store-{s:03d}"}
        )
        if qty(p, s):
            assert r.status_code == 200, r.text
            assert r.json()["stores"][0]["quantity"] == qty(p, s)
        else:
            assert r.status_code == 404, r.text
    # the same 100k rows again: recognised, nothing applied
    again = await api.post(STOCK, json={"rows": rows}, timeout=120)
    assert (again.json()["alreadyImported"], again.json()["applied"]) == (True, 0)
