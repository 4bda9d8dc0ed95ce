"""``inv import`` and ``inv product import`` end to end: all rows or none,
every bad row reported by line, re-imports, --dry-run, --force, the three
formats, and 100,000 rows through the real CLI."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import (
    error_of,
    inv,
    inv_json,
    new_product,
    running_agent,
    stock_of,
    table_lines,
    unique,
)
from tests.helpers import Agent


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("store-001") as a:
        yield a


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def quantities(agent: Agent, sku: str) -> dict[str, int]:
    return {store: s["quantity"] for store, s in stock_of(agent, sku).items()}


def test_a_good_csv_applies(agent: Agent, tmp_path: Path) -> None:
    a, b = new_product(agent, {"store-001": 1}), new_product(agent)
    f = write(
        tmp_path / "stock.csv",
        f"sku,store,qty,mode,reason\n{a},store-001,40,set,count\n{a},store-002,3,add,\n"
        f"{b},store-003,12,,delivery\n",
    )
    r = inv(agent, "import", str(f))
    assert r.stdout == ""
    assert "Imported 3 rows: 3 changed, 0 unchanged." in r.stderr
    assert {s["storeId"]: s["quantity"] for s in inv_json(agent, "stock", "show", a)["stores"]} == {
        "store-001": 40,
        "store-002": 3,
    }
    assert (
        inv_json(agent, "stock", "show", b, "--store", "store-003")["stores"][0]["quantity"] == 12
    )
    reasons = {m["reason"] for m in inv_json(agent, "history", b)["data"]}
    assert reasons == {"delivery"}


def test_every_bad_row_is_reported_and_nothing_applied(agent: Agent, tmp_path: Path) -> None:
    sku = new_product(agent, {"store-001": 5})
    f = write(
        tmp_path / "bad.csv",
        "sku,storeId,quantity,mode\n"
        f"{sku},store-001,50,set\n"  # line 2: fine on its own
        f"{sku},store-001,ten,set\n"  # line 3
        f"{sku},store-001,-1,set\n"  # line 4
        "\n"  # line 5: blank, skipped
        f"{sku},store-001,1,replace\n"  # line 6
        ",store-001,1,set\n"  # line 7
        f"{sku},bad store,1,set\n"  # line 8
        f"{sku},store-002,2,add\n",  # line 9: fine
    )
    r = inv(agent, "import", str(f), code=2)
    lines = r.stderr.splitlines()
    assert lines == [
        f"{f}: line 3: quantity: 'ten' is not a whole number",
        f"{f}: line 4: quantity: must be 0 or more when mode is set",
        f"{f}: line 6: mode: 'replace' must be set or add",
        f"{f}: line 7: sku: is required",
        f"{f}: line 8: storeId: 'bad store' is not a valid store id",
        f"Error: 5 invalid row(s) in {f}; nothing was imported",
    ]
    assert quantities(agent, sku) == {"store-001": 5}

    unknown = write(tmp_path / "cols.csv", f"sku,quantity,colour\n{sku},1,red\n")
    r = inv(agent, "import", str(unknown), code=2)
    assert "line 2: colour: unknown column (expected: sku, storeId, quantity" in r.stderr


def test_unknown_skus_are_reported_by_line_and_nothing_applied(
    agent: Agent, tmp_path: Path
) -> None:
    sku = new_product(agent, {"store-001": 5})
    f = write(
        tmp_path / "unknown.csv",
        f"sku,quantity\n{sku},99\nNOPE-A,1\n{sku},98\nNOPE-B,2\n",
    )
    r = inv(agent, "import", str(f), code=2)
    assert "line 3: sku: unknown SKU 'NOPE-A'" in r.stderr
    assert "line 5: sku: unknown SKU 'NOPE-B'" in r.stderr
    assert "line 2" not in r.stderr and "line 4" not in r.stderr
    assert "2 invalid row(s); nothing was imported" in error_of(r)
    assert quantities(agent, sku) == {"store-001": 5}


def test_reimport_dry_run_and_force(agent: Agent, tmp_path: Path) -> None:
    sku = new_product(agent, {"store-001": 10})
    f = write(tmp_path / "delivery.csv", f"sku,storeId,quantity,mode\n{sku},store-001,5,add\n")

    r = inv(agent, "import", str(f), "--dry-run")
    header, *rows = table_lines(r.stdout)
    assert header == ["Line", "SKU", "Store", "Mode", "From", "To"]
    assert rows == [["2", sku, "store-001", "add", "10", "15"]]
    assert "Dry run: 1 of 1 rows would change; nothing applied." in r.stderr
    dry = inv_json(agent, "import", str(f), "--dry-run")
    assert dry["dryRun"] is True and dry["applied"] == 0
    assert quantities(agent, sku) == {"store-001": 10}

    first = inv_json(agent, "import", str(f))
    assert (first["applied"], first["alreadyImported"]) == (1, False)
    assert quantities(agent, sku) == {"store-001": 15}

    r = inv(agent, "import", str(f))
    assert r.stdout == ""
    assert "already imported" in r.stderr and "nothing applied" in r.stderr
    assert "--force" in r.stderr
    assert quantities(agent, sku) == {"store-001": 15}

    forced = inv_json(agent, "import", str(f), "--force")
    assert forced["applied"] == 1
    assert forced["changes"] == [
        {"line": 2, "sku": sku, "storeId": "store-001", "mode": "add", "from": 15, "to": 20}
    ]
    assert quantities(agent, sku) == {"store-001": 20}


def test_json_and_yaml_files(agent: Agent, tmp_path: Path) -> None:
    a, b = new_product(agent), new_product(agent)
    j = write(
        tmp_path / "stock.json",
        f'[\n  {{"sku": "{a}", "storeId": "store-001", "quantity": 7}},\n'
        f'  {{"sku": "{b}", "store_id": "store-004", "qty": "8", "mode": "add"}}\n]\n',
    )
    assert inv_json(agent, "import", str(j))["applied"] == 2
    y = write(
        tmp_path / "stock.yml",
        f"rows:\n  - sku: {a}\n    storeId: store-001\n    quantity: 17\n"
        f"  - {{sku: {b}, store: store-004, quantity: 1, mode: add, reason: gift}}\n",
    )
    assert inv_json(agent, "import", str(y))["applied"] == 2
    assert quantities(agent, a) == {"store-001": 17}
    assert quantities(agent, b) == {"store-004": 9}

    # --format for a file whose extension says nothing; errors keep their lines
    t = write(tmp_path / "stock.txt", f"- sku: {a}\n  quantity: 3\n- sku: NOPE-Y\n  quantity: 1\n")
    r = inv(agent, "import", str(t), code=2)
    assert "use --format csv|json|yaml" in error_of(r)
    r = inv(agent, "import", str(t), "--format", "yaml", code=2)
    assert "line 3: sku: unknown SKU 'NOPE-Y'" in r.stderr
    bad = write(
        tmp_path / "bad.json", f'[\n  {{"sku": "{a}", "quantity": 1}},\n  {{"sku": "{a}",\n'
    )
    r = inv(agent, "import", str(bad), code=2)
    assert "line 4: invalid JSON" in error_of(r)
    assert quantities(agent, a) == {"store-001": 17}


def test_unreadable_files(agent: Agent, tmp_path: Path) -> None:
    r = inv(agent, "import", str(tmp_path / "missing.csv"), code=2)
    assert "file not found" in error_of(r)
    r = inv(agent, "import", str(write(tmp_path / "empty.csv", "")), code=2)
    assert "empty" in error_of(r)
    r = inv(agent, "import", str(write(tmp_path / "header.csv", "sku,quantity\n")), code=2)
    assert "has no rows to import" in error_of(r)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("sku,quantity\nCAFÉ-1,1\n".encode("latin-1"))
    r = inv(agent, "import", str(latin), code=2)
    assert "is not UTF-8 text" in error_of(r)
    r = inv(agent, "import", str(latin), "--format", "xlsx", code=2)
    assert "--format must be one of csv, json, yaml" in error_of(r)


def test_product_import(agent: Agent, tmp_path: Path) -> None:
    old = new_product(agent)
    new = unique("IMP")
    f = write(
        tmp_path / "catalog.csv",
        "sku,name,category,price,active\n"
        f"{old},Renamed,tools,12.5,yes\n"
        f"{new},Brand new,tools,3,true\n",
    )
    r = inv(agent, "product", "import", str(f), "--dry-run")
    header, *rows = table_lines(r.stdout)
    assert header == ["Line", "SKU", "Action", "Fields"]
    assert [row[:3] for row in rows] == [["2", old, "update"], ["3", new, "create"]]
    assert "nothing applied" in r.stderr
    inv(agent, "product", "show", new, code=3)

    r = inv(agent, "product", "import", str(f))
    assert "Imported 2 products" in r.stderr
    assert inv_json(agent, "product", "show", old)["name"] == "Renamed"
    created = inv_json(agent, "product", "show", new)
    assert (created["name"], created["price"], created["category"]) == ("Brand new", 3.0, "tools")
    assert "already imported" in inv(agent, "product", "import", str(f)).stderr

    bad = write(
        tmp_path / "catalog-bad.json",
        f'[\n {{"sku": "{new}", "price": "free"}},\n {{"sku": "{new}", "active": "maybe"}}\n]',
    )
    r = inv(agent, "product", "import", str(bad), code=2)
    assert f"{bad}: line 2: price: 'free' is not a price >= 0" in r.stderr
    assert f"{bad}: line 3: active: 'maybe' is not true/false" in r.stderr
    assert inv_json(agent, "product", "show", new)["active"] is True


def test_100k_rows_through_the_cli(make_agent: Any, tmp_path: Path) -> None:
    agent = make_agent("store-001", demo=False)
    skus = [f"BULK-{i:04d}" for i in range(1000)]
    stores = [f"st-{s:03d}" for s in range(100)]
    products = tmp_path / "products.csv"
    with products.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "name", "category", "price"])
        w.writerows([sku, f"Bulk item {i}", "bulk", f"{i % 50}.25"] for i, sku in enumerate(skus))
    stock = tmp_path / "stock.csv"
    with stock.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "storeId", "quantity"])
        w.writerows(
            [sku, store, (i * 7 + s * 13) % 500 + 1]
            for s, store in enumerate(stores)
            for i, sku in enumerate(skus)
        )

    r = inv(agent, "product", "import", str(products))
    assert "Imported 1000 products: 1000 changed" in r.stderr
    result = inv_json(agent, "import", str(stock))  # its speed is benchmark B3
    assert (result["rows"], result["applied"], result["unchanged"]) == (100_000, 100_000, 0)

    for i, s in ((0, 0), (123, 42), (999, 99), (500, 7)):
        shown = inv_json(agent, "stock", "show", skus[i], "--store", stores[s])
        assert shown["stores"][0]["quantity"] == (i * 7 + s * 13) % 500 + 1
    everywhere = inv_json(agent, "stock", "show", "BULK-0321")
    assert len(everywhere["stores"]) == 100
    assert everywhere["totalAvailable"] == sum((321 * 7 + s * 13) % 500 + 1 for s in range(100))
    assert "already imported" in inv(agent, "import", str(stock)).stderr
