"""The prefix filters of the list routes, in process (``tests.inproc``): what
``inv confirm ca65`` and shell completion ask the agent. ``idPrefix`` on
reservations, transfers and routings, ``skuPrefix`` on products: only keys
that start with it, in key order, combined with the other filters, refused
(422) when it cannot be a key's start. And the plan: one range of the
primary key, whatever other filter comes with it (``agent.ledger.keyrange``)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.ledger import keyrange, queries, routings, transfer_views
from agent.ledger.schema import migrate
from agent.ledger.store import connect
from tests import inproc

pytestmark = pytest.mark.anyio
RES = "/api/v1/reservations"
IDS = ("ca65956e-0001", "ca65956e-0002", "ca65a000-0003", "cb000000-0004", "ca65")


@pytest.fixture
async def api(anyio_backend: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with inproc.running(inproc.config(tmp_path)) as agent:
        yield agent.local


async def listed(api: httpx.AsyncClient, path: str, field: str, **params: Any) -> list[str]:
    r = await api.get(path, params=params)
    assert r.status_code == 200, r.text
    return [row[field] for row in r.json()["data"]]


async def test_reservations_by_id_prefix_in_id_order_with_the_other_filters(
    api: httpx.AsyncClient,
) -> None:
    for i, rid in enumerate(IDS):
        body = {"reservationId": rid, "productId": f"PROD-00{1 + i % 2}", "quantity": 1}
        assert (await api.post(RES, json=body)).status_code == 202
    assert (await api.delete(f"{RES}/ca65956e-0002")).status_code == 204

    assert await listed(api, RES, "reservationId", idPrefix="ca65") == [
        "ca65",  # the whole id first: it is the start of the others
        "ca65956e-0001",
        "ca65956e-0002",
        "ca65a000-0003",
    ]
    assert await listed(api, RES, "reservationId", idPrefix="ca659") == [
        "ca65956e-0001",
        "ca65956e-0002",
    ]
    assert await listed(api, RES, "reservationId", idPrefix="ca65", limit=2) == [
        "ca65",
        "ca65956e-0001",
    ]
    pending = await listed(api, RES, "reservationId", idPrefix="ca65", status="PENDING")
    assert pending == ["ca65", "ca65956e-0001", "ca65a000-0003"]
    by_sku = await listed(api, RES, "reservationId", idPrefix="ca65", sku="PROD-002")
    assert by_sku == ["ca65956e-0002"]
    assert await listed(api, RES, "reservationId", idPrefix="ca66") == []
    assert await listed(api, RES, "reservationId", idPrefix="cb00") == ["cb000000-0004"]


async def test_transfers_and_routings_by_id_prefix(api: httpx.AsyncClient) -> None:
    for tid in ("T-7K3M-9XQ2-P8RA", "T-7K3M-AAAA-BBBB", "T-8ZZZ-0000-0000"):
        line = {"sku": "PROD-001", "quantity": 1}
        body = {"transferId": tid, "toStoreId": "store-002", "lines": [line]}
        assert (await api.post("/api/v1/transfers", json=body)).status_code == 201
    path = "/api/v1/transfers"
    assert await listed(api, path, "transferId", idPrefix="T-7K3M") == [
        "T-7K3M-9XQ2-P8RA",
        "T-7K3M-AAAA-BBBB",
    ]
    assert await listed(api, path, "transferId", idPrefix="T-7K3M-9", status="DRAFT") == [
        "T-7K3M-9XQ2-P8RA"
    ]
    assert await listed(api, path, "transferId", idPrefix="T-7K3M", status="SHIPPED") == []
    assert await listed(api, path, "transferId", idPrefix="t-7k3m") == []  # ids are exact

    # a routed reservation (standalone: this store grants it): the routing by
    # its request id, the reservation by its own id ("REQUEST@STORE")
    body = {"reservationId": "ord-17", "productId": "PROD-001", "storeId": "any", "quantity": 1}
    assert (await api.post(RES, json=body)).status_code == 202
    assert await listed(api, "/api/v1/routings", "requestId", idPrefix="ord-") == ["ord-17"]
    assert await listed(api, "/api/v1/routings", "requestId", idPrefix="ord-2") == []
    assert await listed(api, RES, "reservationId", idPrefix="ord-17@") == ["ord-17@store-001"]


async def test_products_by_sku_prefix(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/products", params={"skuPrefix": "PROD-00", "limit": 2})
    assert r.status_code == 200, r.text
    assert [p["sku"] for p in r.json()["data"]] == ["PROD-001", "PROD-002"]
    assert r.json()["pagination"]["total"] == 3
    assert await listed(api, "/api/v1/products", "sku", skuPrefix="PROD-003") == ["PROD-003"]
    assert await listed(api, "/api/v1/products", "sku", skuPrefix="PROD-009") == []
    accessories = await listed(
        api, "/api/v1/products", "sku", skuPrefix="PROD", category="accessories"
    )
    assert accessories == ["PROD-002", "PROD-003"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (RES, {"idPrefix": "ca65/x"}, "idPrefix"),
        (RES, {"idPrefix": ""}, "idPrefix"),
        ("/api/v1/transfers", {"idPrefix": "T 7K"}, "idPrefix"),
        ("/api/v1/routings", {"idPrefix": "x" * 129}, "idPrefix"),
        ("/api/v1/products", {"skuPrefix": "-PROD"}, "skuPrefix"),
        ("/api/v1/products", {"skuPrefix": "PROD%"}, "skuPrefix"),
    ],
)
async def test_a_prefix_that_no_key_can_start_with_is_a_422_naming_it(
    api: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    r = await api.get(path, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(f"{field}:")


def test_prefix_range_holds_exactly_the_keys_that_start_with_it() -> None:
    assert keyrange.prefix_range("ca65") == ("ca65", "ca66")
    assert keyrange.prefix_range("T-7Z") == ("T-7Z", "T-7[")
    assert keyrange.prefix_range("a\U0010ffff") == ("a\U0010ffff", "b")
    assert keyrange.prefix_range("\U0010ffff") == ("\U0010ffff", None)
    assert keyrange.prefix_range("a\ud7ff") == ("a\ud7ff", "a\ue000")
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE k (id TEXT PRIMARY KEY)")
    keys = ["ca6", "ca65", "ca65/", "ca65~", "ca650", "ca66", "ca6\u00e9", "cA65", "ca65\u00ff"]
    conn.executemany("INSERT INTO k VALUES (?)", [(k,) for k in keys])
    clause, params = keyrange.range_clause("id", "ca65")
    got = [r[0] for r in conn.execute(f"SELECT id FROM k WHERE {clause} ORDER BY id", params)]
    assert got == sorted(k for k in keys if k.startswith("ca65"))


# ------------------------------------------------------------ the plans
def plans(conn: sqlite3.Connection, table: str, run: Callable[[], Any]) -> list[str]:
    """The query plan of each SELECT on ``table`` that ``run`` made."""
    sent: list[str] = []
    conn.set_trace_callback(sent.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in sent if s.lstrip().upper().startswith("SELECT") and f" {table} " in s]
    assert selects, sent
    return [" / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {s}")) for s in selects]


def test_every_prefix_query_is_one_probe_of_the_primary_key() -> None:
    conn = connect(":memory:")
    migrate(conn)
    pk = "USING INDEX sqlite_autoindex_{}_1 ({} AND {}<?)"
    cases = [
        ("reservations", "id>?", lambda: queries.list_reservations(
            conn, "PENDING", "store-001", "PROD-001", 11, id_prefix="ca65")),
        ("reservations", "id>?", lambda: queries.list_reservations(
            conn, "EXPIRED", None, None, 11, id_prefix="ca65")),
        ("transfers", "id>?", lambda: transfer_views.list_transfers(
            conn, "SHIPPED", "store-001", None, 11, id_prefix="T-7K")),
        ("transfers", "id>?", lambda: transfer_views.list_transfers(
            conn, "DRAFT", "store-001", "incoming", 11, id_prefix="T-7K")),
        ("routings", "request_id>?", lambda: routings.list_routings(
            conn, "granted", "pending", 11, id_prefix="ord")),
        ("products", "sku>?", lambda: queries.list_products(
            conn, 1, 50, "accessories", None, sku_prefix="PROD")),
    ]  # fmt: skip
    for table, low, run in cases:
        key = low.split(">")[0]
        alias = "r" if table == "routings" else table
        for plan in plans(conn, table, run):
            assert pk.format(table, low, key) in plan, plan
            assert "TEMP B-TREE" not in plan and alias in plan, plan
