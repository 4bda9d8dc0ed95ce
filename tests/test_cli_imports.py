"""``inv import`` end to end against a real agent: the agent's row errors by
line, re-imports, --dry-run, --force, and 100,000 rows through the real CLI
(reading and checking files, and the rendering: tests/unit/test_cli_imports.py)."""

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
