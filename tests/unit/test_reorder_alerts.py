"""Reorder points and low-stock alerts, in process (the app through httpx's
ASGI transport, as the socket sees it; two in-memory ledgers for what the
owner does with a setting written elsewhere): setting them, the crossings
(one alert per crossing, not per write; a confirm raises nothing), the
alert a setting calls for, the low-stock list with what is incoming, the
alerts log, and the stock import's columns (judged once per import, bulk
rows too)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from agent.inputs import TransferLine, TransferRequest
from agent.ledger import commands
from tests import ledgerkit
from tests.inproc import InProcAgent

pytestmark = pytest.mark.anyio
IMPORT = "/api/v1/imports/stock"


@pytest.fixture
def api(api_agent: InProcAgent) -> httpx.AsyncClient:
    return api_agent.local


async def reorder(api: httpx.AsyncClient, sku: str = "PROD-001", **body: Any) -> dict[str, Any]:
    r = await api.put(f"/api/v1/products/{sku}/reorder", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def change(api: httpx.AsyncClient, op: str, qty: int, sku: str = "PROD-001") -> str:
    r = await api.post(f"/api/v1/products/{sku}/stock", json={"operation": op, "quantity": qty})
    assert r.status_code == 202, r.text
    return r.json()["movementId"]  # type: ignore[no-any-return]


async def alerts(api: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/alerts", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def brief(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Oldest first: (kind, sku, before, after, point)."""
    return [(a["kind"], a["sku"], a["before"], a["after"], a["reorderPoint"]) for a in items][::-1]


async def events_of(agent: InProcAgent, kind: str) -> list[dict[str, Any]]:
    rows = await agent.agent.service.ledger.store.read(
        lambda conn: conn.execute(
            "SELECT body FROM events WHERE type = ? ORDER BY seq", (kind,)
        ).fetchall()
    )
    return [json.loads(r[0]) for r in rows]


# --------------------------------------------------------------- settings
async def test_reorder_settings_write_only_what_changes(
    api: httpx.AsyncClient, api_agent: InProcAgent
) -> None:
    view = await reorder(api, reorderPoint=4, maxStock=30)
    assert view == {
        "productId": view["productId"],
        "sku": "PROD-001",
        "storeId": "store-001",
        "reorderPoint": 4,
        "maxStock": 30,
        "reorderQty": None,
        "available": 10,
        "incoming": 0,
        "low": False,
        "suggested": 0,
    }
    await reorder(api, reorderPoint=4)  # nothing changes: no event
    await reorder(api, reorderPoint=6, reorderQty=12)  # maxStock left out: kept
    settings = [e["data"]["fields"] for e in await events_of(api_agent, "stock.reorder")]
    assert settings == [{"reorderPoint": 4, "maxStock": 30}, {"reorderPoint": 6, "reorderQty": 12}]
    view = await reorder(api, reorderPoint=6, maxStock=None)  # a null clears
    assert (view["reorderPoint"], view["maxStock"], view["reorderQty"]) == (6, None, 12)


async def test_bad_reorder_settings_are_refused_naming_the_field(
    api: httpx.AsyncClient, api_agent: InProcAgent
) -> None:
    url = "/api/v1/products/PROD-001/reorder"
    for body, status, text in [
        ({"reorderPoint": 10, "maxStock": 5}, 422, "maxStock: 5 is below the reorder point 10"),
        ({"reorderPoint": -1}, 422, "reorderPoint:"),
        ({"reorderPoint": 1, "reorderQty": 0}, 422, "reorderQty:"),
        ({"maxStock": 5}, 422, "reorderPoint:"),  # required (null clears it)
        ({"reorderPoint": 1, "storeId": "store-404"}, 404, "store 'store-404' is not known"),
        ({"reorderPoint": 1, "storeId": "any"}, 422, "'any' is not a store"),
    ]:
        r = await api.put(url, json=body)
        assert (r.status_code, text in r.json()["error"]) == (status, True), (body, r.text)
    r = await api.put("/api/v1/products/NOPE/reorder", json={"reorderPoint": 1})
    assert r.status_code == 404
    clerk = api_agent.tcp(api_agent.token(role="clerk"))
    r = await clerk.put(url, json={"reorderPoint": 1})
    assert r.status_code == 403
    assert await events_of(api_agent, "stock.reorder") == []


# -------------------------------------------------------------- crossings
async def test_one_alert_per_crossing_not_per_write(api: httpx.AsyncClient) -> None:
    await reorder(api, reorderPoint=5)  # 10 available: not low, nothing raised
    assert await alerts(api) == []
    await change(api, "subtract", 3)  # 7
    cause = await change(api, "subtract", 2)  # 5: at the point, low
    await change(api, "subtract", 1)  # 4: still low, no second alert
    await change(api, "subtract", 4)  # 0
    await change(api, "add", 5)  # 5: still low
    restored = await change(api, "add", 1)  # 6: above, restored
    await change(api, "add", 10)
    got = await alerts(api)
    assert brief(got) == [("low", "PROD-001", 7, 5, 5), ("restored", "PROD-001", 5, 6, 5)]
    assert [a["cause"] for a in got] == [restored, cause]
    assert got[0]["id"].startswith("store-001:") and got[0]["storeId"] == "store-001"


async def test_a_confirm_releasing_and_selling_the_same_units_raises_nothing(
    api: httpx.AsyncClient,
) -> None:
    await reorder(api, reorderPoint=5)
    r = await api.post(
        "/api/v1/reservations", json={"productId": "PROD-001", "quantity": 6, "ttl": 600}
    )
    assert r.status_code == 202, r.text
    rid = r.json()["reservationId"]
    assert brief(await alerts(api)) == [("low", "PROD-001", 10, 4, 5)]  # the hold crossed
    r = await api.post(f"/api/v1/reservations/{rid}/confirm", json={})
    assert r.status_code == 200, r.text
    assert len(await alerts(api)) == 1  # released 6, sold 6: available stays 4
    r = await api.post("/api/v1/reservations", json={"productId": "PROD-001", "quantity": 2})
    rid = r.json()["reservationId"]
    assert (await api.delete(f"/api/v1/reservations/{rid}")).status_code == 204
    assert len(await alerts(api)) == 1  # 4 -> 2 -> 4: low all along


async def test_setting_a_point_raises_the_alert_it_calls_for(api: httpx.AsyncClient) -> None:
    view = await reorder(api, reorderPoint=12, maxStock=30)
    assert (view["low"], view["suggested"]) == (True, 20)
    [low] = await alerts(api)
    assert (low["kind"], low["before"], low["after"], low["reorderPoint"]) == ("low", 10, 10, 12)
    await reorder(api, reorderPoint=12, maxStock=40)  # not the point: nothing
    await reorder(api, reorderPoint=11)  # still low: nothing
    await reorder(api, reorderPoint=None)  # no point to be below: restored
    got = await alerts(api)
    assert brief(got) == [("low", "PROD-001", 10, 10, 12), ("restored", "PROD-001", 10, 10, None)]
    assert got[0]["cause"] != got[1]["cause"]  # each names its settings event


class Node(ledgerkit.Node):
    """One store's in-memory ledger (the merge rules need no process)."""

    def alerts(self) -> list[tuple[str, str, int, int]]:
        rows = self.conn.execute("SELECT kind, store_id, before, after FROM alerts ORDER BY hlc")
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_point_set_at_another_store_raises_its_alert_where_the_stock_is() -> None:
    from agent.inputs import StockChange

    hq, shop = Node("hq"), Node("shop")
    shop.run(commands.create_product, {"sku": "S", "name": "s"})
    shop.run(commands.update_stock, StockChange("S", "shop", "set", 3))
    hq.take(shop.events())
    hq.run(commands.set_reorder, "S", "shop", {"reorderPoint": 5})
    assert hq.alerts() == []  # not its stock: the owner decides
    shop.take(hq.events())
    assert shop.alerts() == [("low", "shop", 3, 3)]  # raised on applying the setting
    hq.take(shop.events())
    assert hq.alerts() == [("low", "shop", 3, 3)]  # and replicated like any event
    shop.take(hq.events())  # a repeat changes nothing
    assert len(shop.alerts()) == 1


def test_own_events_taken_back_from_the_stream_raise_no_second_alert() -> None:
    """A ledger restored from an older copy takes its own events back from
    the stream; the alerts they raised are among them, and nothing else may
    take their seqs."""
    from agent.inputs import StockChange
    from agent.ledger import replication

    shop = Node("shop")
    shop.run(commands.create_product, {"sku": "S", "name": "s"})
    shop.run(commands.update_stock, StockChange("S", "shop", "set", 10))
    shop.run(commands.set_reorder, "S", "shop", {"reorderPoint": 5})
    shop.run(commands.update_stock, StockChange("S", "shop", "subtract", 6))  # low
    shop.run(commands.update_stock, StockChange("S", "shop", "add", 6))  # restored
    history = shop.events()
    assert [e["type"] for e in history][-4:] == [
        "stock.movement",
        "alert.raised",
        "stock.movement",
        "alert.raised",
    ]
    restored = Node("shop")  # an empty copy of the same store
    restored.run(replication.recover_own, history)
    assert restored.events() == history
    assert restored.alerts() == shop.alerts()


# ------------------------------------------------------------------- lists
async def test_low_stock_lists_what_is_at_or_below_its_point_with_what_is_incoming(
    api: httpx.AsyncClient, api_agent: InProcAgent
) -> None:
    await reorder(api, reorderPoint=10, maxStock=20)  # PROD-001 here: 10, low
    await reorder(api, "PROD-002", reorderPoint=10)  # 50: not low
    await reorder(api, "PROD-001", storeId="store-002", reorderPoint=8, maxStock=20)  # 5
    await reorder(api, "PROD-003", storeId="store-002", reorderPoint=2, reorderQty=6)  # 0
    # 3 units of PROD-001 on their way to store-002
    status, _ = await api_agent.agent.service.create_transfer(
        TransferRequest("store-002", (TransferLine("PROD-001", 3),), ship=True)
    )
    assert status == 201
    here = (await api.get("/api/v1/stock/low")).json()
    assert here["storeId"] == "store-001"
    assert [(r["sku"], r["available"], r["suggested"]) for r in here["data"]] == [
        ("PROD-001", 7, 13)  # shipped 3 away: 7 left; up to 20
    ]
    there = (await api.get("/api/v1/stock/low", params={"storeId": "store-002"})).json()
    assert [
        (r["sku"], r["name"], r["available"], r["incoming"], r["suggested"]) for r in there["data"]
    ] == [
        ("PROD-001", "Laptop HP Pavilion 15", 5, 3, 12),  # 20 - 5 - 3
        ("PROD-003", there["data"][1]["name"], 0, 0, 6),  # the fixed quantity
    ]
    every = (await api.get("/api/v1/stock/low", params={"storeId": "all"})).json()
    assert [(r["storeId"], r["sku"]) for r in every["data"]] == [
        ("store-001", "PROD-001"),
        ("store-002", "PROD-001"),
        ("store-002", "PROD-003"),
    ]
    r = await api.get("/api/v1/stock/low", params={"storeId": "store-404"})
    assert r.status_code == 404


async def test_the_alerts_log_filters_by_store_sku_and_time(api: httpx.AsyncClient) -> None:
    await reorder(api, reorderPoint=20)  # PROD-001 low
    await reorder(api, "PROD-003", reorderPoint=30)  # PROD-003 low
    await change(api, "add", 25, "PROD-003")  # restored
    assert [(a["sku"], a["kind"]) for a in await alerts(api)] == [
        ("PROD-003", "restored"),
        ("PROD-003", "low"),
        ("PROD-001", "low"),
    ]
    assert len(await alerts(api, sku="PROD-001")) == 1
    assert len(await alerts(api, storeId="store-002")) == 0
    assert len(await alerts(api, limit=2)) == 2
    assert len(await alerts(api, since="1h")) == 3
    assert await alerts(api, since="2999-01-01") == []
    assert (await api.get("/api/v1/alerts", params={"sku": "NOPE"})).status_code == 404
    assert (await api.get("/api/v1/alerts", params={"since": "soon"})).status_code == 422


# ----------------------------------------------------------------- imports
async def test_a_stock_import_sets_reorder_settings_and_raises_one_alert_per_row(
    api: httpx.AsyncClient,
) -> None:
    r = await api.post("/api/v1/products", json={"sku": "NEW-1", "name": "new"})
    assert r.status_code == 201
    await reorder(api, "NEW-1", reorderPoint=5)  # no stock here yet: 0, low
    rows = [
        # counted down to 3 and given a point of 5 in the same file: one alert
        {"line": 2, "sku": "PROD-001", "quantity": 3, "reorderPoint": 5, "maxStock": 12},
        {"line": 3, "sku": "PROD-002", "reorderQty": 10},  # a setting only
        {"line": 4, "sku": "NEW-1", "quantity": 20},  # a new stock row: the bulk path
        {"line": 5, "sku": "PROD-003", "quantity": 1, "reorderPoint": 2},
        {"line": 6, "sku": "PROD-003", "quantity": 9},  # the same row again: 20 -> 1 -> 9
    ]
    dry = await api.post(IMPORT, json={"rows": rows, "dryRun": True})
    assert dry.status_code == 200, dry.text
    assert brief(await alerts(api)) == [("low", "NEW-1", 0, 0, 5)]  # a dry run raises nothing
    r = await api.post(IMPORT, json={"rows": rows})
    assert r.status_code == 200, r.text
    assert r.json()["changes"] == dry.json()["changes"]
    assert r.json()["changes"][0]["reorderPoint"] == {"from": None, "to": 5}
    assert r.json()["changes"][1] == {
        **r.json()["changes"][1],
        "reorderQty": {"from": None, "to": 10},
    }
    assert sorted(brief(await alerts(api))[1:]) == [
        ("low", "PROD-001", 10, 3, 5),
        ("restored", "NEW-1", 0, 20, 5),
    ]  # PROD-003 was below its new point only in between: nothing
    view = await reorder(api, "PROD-002", reorderPoint=None)
    assert view["reorderQty"] == 10
    # empty = unchanged (the CLI leaves the key out), null clears
    r = await api.post(IMPORT, json={"rows": [{"line": 2, "sku": "PROD-001", "maxStock": None}]})
    assert r.status_code == 200, r.text
    assert (await reorder(api, reorderPoint=5))["maxStock"] is None


async def test_bad_reorder_columns_reject_the_whole_import(api: httpx.AsyncClient) -> None:
    good = {"line": 2, "sku": "PROD-001", "quantity": 3, "reorderPoint": 5}
    for bad, field in [
        ({"line": 3, "sku": "PROD-002", "reorderPoint": 9, "maxStock": 4}, "maxStock"),
        ({"line": 3, "sku": "PROD-002", "reorderQty": 0}, "reorderQty"),
        ({"line": 3, "sku": "PROD-002", "storeId": "store-404", "reorderPoint": 1}, "reorderPoint"),
    ]:
        r = await api.post(IMPORT, json={"rows": [good, bad]})
        assert r.status_code == 422, r.text
        [e] = r.json()["errors"]  # checked by the schema (no line of its own), or the ledger
        where = f"line {e['line']}: {e['field']}" if "line" in e else e["field"]
        assert where == f"line 3: {field}", r.text
    # against the current settings too: a max below the point already set
    await reorder(api, "PROD-002", reorderPoint=9)
    r = await api.post(IMPORT, json={"rows": [good, {"line": 3, "sku": "PROD-002", "maxStock": 4}]})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "maxStock"
    assert (await reorder(api, reorderPoint=5))["available"] == 10  # nothing applied
    assert await alerts(api) == []
