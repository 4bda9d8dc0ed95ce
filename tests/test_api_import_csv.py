"""A stock import sent as the CSV file itself (``Content-Type: text/csv``,
POST /api/v1/imports/stock): the same rows, checks, answer and import id as
the JSON body; a bad line is a 422 naming it; a body over the limit a 413.
In-process (``tests.inproc``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agent.config import LimitsConfig
from tests.inproc import InProcAgent

STOCK = "/api/v1/imports/stock"
CSV = {"Content-Type": "text/csv; charset=utf-8"}
pytestmark = pytest.mark.anyio


@pytest.fixture
def api(api_agent: InProcAgent) -> httpx.AsyncClient:
    return api_agent.local


async def post_csv(api: httpx.AsyncClient, text: str, **params: str) -> httpx.Response:
    return await api.post(STOCK, content=text.encode(), headers=CSV, params=params)


async def on_hand(api: httpx.AsyncClient, sku: str) -> dict[str, int]:
    r = await api.get(f"/api/v1/products/{sku}/availability")
    assert r.status_code == 200, r.text
    return {s["storeId"]: s["quantity"] for s in r.json()["stores"]}


async def test_a_csv_body_is_the_same_import_as_its_json_rows(api: httpx.AsyncClient) -> None:
    text = (
        "\ufeffsku,store,qty,mode,reason\n"
        "PROD-001,store-001,25,set,annual count\n"
        "\n"  # line 3: blank, skipped
        'PROD-002,store-001, 5 ,ADD,"two\nlines"\n'  # lines 4-5
        "PROD-003,,7,,\n"  # line 6: this store, a count
    )
    dry = await post_csv(api, text, dryRun="true")
    assert dry.status_code == 200, dry.text
    assert (dry.json()["dryRun"], dry.json()["applied"]) == (True, 0)
    assert await on_hand(api, "PROD-001") == {"store-001": 10, "store-002": 5}

    r = await post_csv(api, text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["rows"], body["applied"], body["dryRun"]) == (3, 3, False)
    assert [(c["line"], c["sku"], c["mode"], c["from"], c["to"]) for c in body["changes"]] == [
        (2, "PROD-001", "set", 10, 25),
        (4, "PROD-002", "add", 50, 55),
        (6, "PROD-003", "set", 20, 7),
    ]
    assert (await on_hand(api, "PROD-002"))["store-001"] == 55
    history = (await api.get("/api/v1/products/PROD-002/history")).json()["data"]
    assert history[0]["reason"] == "two\nlines"

    # the same rows as JSON are the same file: already imported
    rows: list[dict[str, Any]] = [
        {"line": 2, "sku": "PROD-001", "storeId": "store-001", "quantity": 25,
         "reason": "annual count"},
        {"line": 4, "sku": "PROD-002", "storeId": "store-001", "quantity": 5, "mode": "add",
         "reason": "two\nlines"},
        {"line": 6, "sku": "PROD-003", "quantity": 7},
    ]  # fmt: skip
    again = await api.post(STOCK, json={"rows": rows})
    assert again.status_code == 200, again.text
    assert (again.json()["importId"], again.json()["alreadyImported"]) == (body["importId"], True)
    forced = await post_csv(api, text, force="true")
    assert forced.json()["applied"] == 1  # only the add changes anything the second time


async def test_a_bad_line_in_a_csv_body_is_422_naming_it_and_nothing_applied(
    api: httpx.AsyncClient,
) -> None:
    before = await on_hand(api, "PROD-001")
    text = "sku,storeId,quantity\nPROD-001,store-001,77\nPROD-002,store-001,ten\nPROD-003,x y,1\n"
    r = await post_csv(api, text)
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["line 3: quantity", "line 4: storeId"]
    assert r.json()["error"].startswith("line 3: quantity: "), r.json()
    assert await on_hand(api, "PROD-001") == before

    r = await post_csv(api, "sku,quantity\nPROD-001,1\nNOPE-1,2\n")  # the ledger's own checks
    assert r.status_code == 422, r.text
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(3, "sku")]
    assert "nothing was imported" in r.json()["error"]
    assert await on_hand(api, "PROD-001") == before


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"sku,quantity,colour\nPROD-001,1,red\n", "line 1: colour: unknown column (expected: sku"),
        (b"sku,store,storeId\nPROD-001,a,b\n", "line 1: storeId: given twice"),
        (b"sku,quantity\nPROD-001,1,2\n", "line 2: row: more values than header columns"),
        (b"sku,quantity\nCAF\xc9-1,1\n", "body: is not UTF-8 text"),
        (b"", "body: the CSV is empty"),
    ],
)
async def test_an_unreadable_csv_body_is_422_saying_why(
    api: httpx.AsyncClient, raw: bytes, error: str
) -> None:
    r = await api.post(STOCK, content=raw, headers=CSV)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(error), r.json()
    assert r.json()["error"].endswith("; nothing was imported")


async def test_a_json_body_with_dry_run_in_the_query_is_a_dry_run(api: httpx.AsyncClient) -> None:
    rows = [{"line": 2, "sku": "PROD-001", "storeId": "store-001", "quantity": 3}]
    r = await api.post(STOCK, json={"rows": rows}, params={"dryRun": "true"})
    assert r.status_code == 200, r.text
    assert (r.json()["dryRun"], r.json()["applied"]) == (True, 0)
    assert (await on_hand(api, "PROD-001"))["store-001"] == 10


async def test_a_csv_body_over_the_limit_is_413_naming_the_limit(make_inproc: Any) -> None:
    agent = await make_inproc(limits=LimitsConfig(max_body_bytes=1000))
    text = "sku,storeId,quantity\n" + "PROD-001,store-001,5\n" * 60  # 1,281 bytes
    r = await post_csv(agent.local, text)
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "request body larger than 1000 bytes (limits.max_body_bytes)"
    assert (await on_hand(agent.local, "PROD-001"))["store-001"] == 10


def test_the_agent_reads_a_file_with_the_clis_column_names() -> None:
    """The CLI and the agent are separate packages (the CLI must not load the
    agent's stack to start), so each holds the file format's column aliases:
    they must be the same, or a file would mean one thing sent by ``inv
    import`` and another posted as text/csv."""
    from agent.api import import_csv
    from inventory_cli import importfile

    assert import_csv.ALIASES == importfile.ALIASES
    assert set(import_csv.COLUMNS) == set(importfile.STOCK_COLUMNS)
    assert set(import_csv.REORDER_COLUMNS) == set(importfile.REORDER_COLUMNS)
