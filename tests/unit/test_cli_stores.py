"""``inv store set|list|show``, ``inv stock safety`` and the safetyStock column
of ``inv import``, in process against a fake agent: the request each sends,
the table (at 80 columns) and --json each prints, and each error's exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import FakeAgent, error_of, run, run_json, table_rows

STORES = "/api/v1/stores"
SAFETY = "/api/v1/products/PROD-001/safety-stock"
NARROW = {"COLUMNS": "80"}


def store_obj(store: str = "store-001", **fields: Any) -> dict[str, Any]:
    return {
        "storeId": store,
        "listed": True,
        "name": "Madrid Centro",
        "address": "Gran Vía 1",
        "lat": 40.42,
        "lon": -3.7,
        "priority": 1,
        "online": True,
        "safetyStock": 2,
        "defaults": [],
        "updatedAt": "2024-01-01T10:00:00.000Z",
        **fields,
    }


UNLISTED = store_obj(
    "store-002",
    listed=False,
    name=None,
    address=None,
    lat=None,
    lon=None,
    priority=100,
    safetyStock=0,
    defaults=["priority", "online", "safetyStock"],
    updatedAt=None,
)


def narrow(stdout: str) -> None:
    assert max(len(line) for line in stdout.splitlines()) <= 80, stdout


# -------------------------------------------------------------- store set
def test_store_set_sends_only_the_fields_given() -> None:
    fake = FakeAgent().on("PATCH", f"{STORES}/store-001", store_obj())
    r = run(
        fake,
        "store",
        "set",
        "store-001",
        "--name",
        "Madrid Centro",
        "--lat",
        "40.42",
        "--lon",
        "-3.7",
        "--priority",
        "1",
        "--no-online",
        "--safety-stock",
        "2",
        env=NARROW,
    )
    assert fake.last.body == {
        "name": "Madrid Centro",
        "lat": 40.42,
        "lon": -3.7,
        "priority": 1,
        "online": False,
        "safetyStock": 2,
    }
    assert r.stdout.startswith("Store store-001")
    assert "Madrid Centro" in r.stdout
    narrow(r.stdout)
    assert run_json(fake, "store", "set", "store-001", "--online") == store_obj()
    assert fake.last.body == {"online": True}
    run(fake, "store", "set", "store-001", "--address", "Gran Vía 1")
    assert fake.last.body == {"address": "Gran Vía 1"}


def test_store_set_with_nothing_to_change_is_a_usage_error() -> None:
    fake = FakeAgent()
    r = run(fake, "store", "set", "store-001", code=2)
    assert "nothing to change" in error_of(r)
    assert fake.sent == []


@pytest.mark.parametrize(
    "args",
    [
        ["--lat", "91"],
        ["--lon", "-180.5"],
        ["--priority", "0"],
        ["--safety-stock", "-1"],
        ["--priority", "high"],
    ],
)
def test_store_set_refuses_out_of_range_values_before_sending(args: list[str]) -> None:
    fake = FakeAgent()
    r = run(fake, "store", "set", "store-001", *args, code=2)
    assert args[0] in r.stderr
    assert fake.sent == []


def test_the_agents_refusals_keep_their_exit_codes() -> None:
    fake = (
        FakeAgent()
        .on("PATCH", f"{STORES}/any", {"error": "storeId: 'any' is not a store"}, status=422)
        .on("PATCH", f"{STORES}/store-001", {"error": "role 'clerk' may not"}, status=403)
        .on("GET", f"{STORES}/nope", {"error": "store 'nope' is not known"}, status=404)
    )
    r = run(fake, "store", "set", "any", "--name", "x", code=2)
    assert error_of(r) == "Error: storeId: 'any' is not a store"
    run(fake, "store", "set", "store-001", "--name", "x", code=1)
    r = run(fake, "store", "show", "nope", code=3)
    assert "not known" in error_of(r)


# --------------------------------------------------------- list and show
def test_store_list_is_a_table_at_80_columns_and_the_api_objects_with_json() -> None:
    data = [store_obj(), UNLISTED, store_obj("web", name="Web shop", online=False, lat=None)]
    fake = FakeAgent().on("GET", STORES, {"data": data})
    r = run(fake, "store", "list", env=NARROW)
    narrow(r.stdout)
    rows = table_rows(r.stdout)
    assert rows["Store"] == ["Store", "Name", "Priority", "Online", "Safety", "Location"]
    assert rows["store-001"] == ["store-001", "Madrid Centro", "1", "yes", "2", "40.42, -3.7"]
    # one column short at 80: the name, free text, gives way (one line, an ellipsis)
    assert rows["store-002"][1:3] == ["(not in the director…", "100"]
    assert rows["web"][1:4] == ["Web shop", "1", "no"]
    assert run_json(fake, "store", "list") == data


def test_store_show_names_the_defaults_and_an_unlisted_store() -> None:
    fake = FakeAgent().on("GET", f"{STORES}/store-002", UNLISTED)
    r = run(fake, "store", "show", "store-002", env=NARROW)
    lines = dict(
        line.strip().split(None, 1) for line in r.stdout.splitlines()[1:] if " " in line.strip()
    )
    assert lines["priority"] == "100"
    assert lines["defaults"] == "priority, online, safetyStock"
    assert lines["listed"] == "no (known from its events only)"
    assert "name" not in lines  # unset: an empty cell
    assert run_json(fake, "store", "show", "store-002") == UNLISTED


# ----------------------------------------------------------- stock safety
def safety_obj(effective: int, own: int | None, default: int = 0) -> dict[str, Any]:
    return {
        "productId": "id-PROD-001",
        "sku": "PROD-001",
        "storeId": "store-002",
        "safetyStock": effective,
        "skuSetting": own,
        "storeDefault": default,
    }


def test_stock_safety_sets_and_clears() -> None:
    fake = FakeAgent().on("PUT", SAFETY, safety_obj(3, 3)).on("PUT", SAFETY, safety_obj(5, None, 5))
    r = run(fake, "stock", "safety", "PROD-001", "3", "--store", "store-002")
    assert fake.last.body == {"safetyStock": 3, "storeId": "store-002"}
    assert r.stdout == "PROD-001 @ store-002: safety stock 3 (its own setting)\n"
    r = run(fake, "stock", "safety", "PROD-001", "none")
    assert fake.last.body == {"safetyStock": None}  # the agent's own store
    assert r.stdout == "PROD-001 @ store-002: safety stock 5 (the store's default)\n"
    assert run_json(fake, "stock", "safety", "PROD-001", "None") == safety_obj(5, None, 5)


@pytest.mark.parametrize("n", ["2.5", "x", "²", "1000000001", "-1"])
def test_stock_safety_refuses_what_is_not_a_count(n: str) -> None:
    fake = FakeAgent()
    r = run(fake, "stock", "safety", "PROD-001", n, code=2)
    # click reads "-1" as an option, and says so: a usage error all the same
    expected = "No such option: -1" if n == "-1" else "must be a whole number"
    assert expected in error_of(r)
    assert fake.sent == []


def test_stock_safety_of_an_unknown_product_is_exit_3() -> None:
    fake = FakeAgent().on("PUT", SAFETY, {"error": "product 'PROD-001' not found"}, status=404)
    run(fake, "stock", "safety", "PROD-001", "1", code=3)


# ------------------------------------------------- imports with safetyStock
def test_an_import_file_may_set_safety_stock(tmp_path: Path) -> None:
    f = tmp_path / "stock.csv"
    f.write_text("sku,quantity,safety_stock\nA-1,40,3\nA-2,,5\nA-3,7,\n", encoding="utf-8")
    changes = [
        {"line": 2, "sku": "A-1", "storeId": "s", "mode": "set", "from": 0, "to": 40,
         "safetyStock": {"from": None, "to": 3}},
        {"line": 3, "sku": "A-2", "storeId": "s", "mode": "set", "from": 9, "to": 9,
         "safetyStock": {"from": 1, "to": 5}},
        {"line": 4, "sku": "A-3", "storeId": "s", "mode": "set", "from": 0, "to": 7},
    ]  # fmt: skip
    reply = {"rows": 3, "applied": 0, "unchanged": 0, "dryRun": True, "alreadyImported": False}
    fake = FakeAgent().on("POST", "/api/v1/imports/stock", {**reply, "changes": changes})
    r = run(fake, "import", str(f), "--dry-run", env=NARROW)
    assert fake.last.body["rows"] == [
        {"line": 2, "sku": "A-1", "quantity": 40, "safetyStock": 3},
        {"line": 3, "sku": "A-2", "safetyStock": 5},  # an empty quantity: safety stock only
        {"line": 4, "sku": "A-3", "quantity": 7},  # an empty cell: left as it is
    ]
    rows = table_rows(r.stdout)
    assert rows["Line"][-1] == "Safety"
    assert (rows["2"][-1], rows["3"][-1], rows["4"][-1]) == ("- -> 3", "1 -> 5", "")


def test_bad_safety_stock_cells_are_reported_by_line_and_nothing_is_sent(tmp_path: Path) -> None:
    f = tmp_path / "stock.csv"
    f.write_text("sku,quantity,safetyStock\nA-1,1,-2\nA-2,1,lots\nA-3,,\n", encoding="utf-8")
    fake = FakeAgent()
    r = run(fake, "import", str(f), code=2)
    assert r.stderr.splitlines() == [
        f"{f}: line 2: safetyStock: must be 0 to 1000000000",
        f"{f}: line 3: safetyStock: 'lots' is not a whole number",
        f"{f}: line 4: quantity: is required "
        "(unless the row sets safetyStock, reorderPoint, maxStock, reorderQty)",
        f"Error: 3 invalid row(s) in {f}; nothing was imported",
    ]
    assert fake.sent == []
