"""``inv stock reorder``, ``inv stock low``, ``inv alerts``, the reorder
columns of ``inv import`` and the deliveries in ``inv agent status``, in
process against a fake agent: what is sent, what is refused before
anything is sent, and how each answer is shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import FakeAgent, error_of, run, run_json, table_lines, table_rows

REORDER = "/api/v1/products/PROD-001/reorder"


def settings_obj(**fields: Any) -> dict[str, Any]:
    return {
        "productId": "id-PROD-001",
        "sku": "PROD-001",
        "storeId": "store-001",
        "reorderPoint": 12,
        "maxStock": 30,
        "reorderQty": None,
        "available": 10,
        "incoming": 0,
        "low": True,
        "suggested": 20,
        **fields,
    }


def test_reorder_sends_what_is_given() -> None:
    fake = FakeAgent().on("PUT", REORDER, settings_obj())
    r = run(fake, "stock", "reorder", "PROD-001", "--min", "12", "--max", "30")
    assert fake.last.body == {"reorderPoint": 12, "maxStock": 30}
    assert r.stdout == (
        "PROD-001 @ store-001: reorder point 12, max 30, qty -; available 10, "
        "incoming 0: LOW: suggested order 20\n"
    )
    run(fake, "stock", "reorder", "PROD-001", "--min", "3", "--qty", "6", "--store", "store-002")
    assert fake.last.body == {"reorderPoint": 3, "reorderQty": 6, "storeId": "store-002"}
    run(fake, "stock", "reorder", "PROD-001", "--min", "3", "--max", "none")
    assert fake.last.body == {"reorderPoint": 3, "maxStock": None}
    run(fake, "stock", "reorder", "PROD-001", "none")
    assert fake.last.body == {"reorderPoint": None, "maxStock": None, "reorderQty": None}
    assert run_json(fake, "stock", "reorder", "PROD-001", "--min", "1") == settings_obj()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([], "--min N is required (or clear them: inv stock reorder PROD-001 none)"),
        (["none", "--min", "3"], "none clears every reorder setting"),
        (["nothing"], "'nothing': give none to clear the settings, or --min N"),
        (["--min", "3", "--qty", "0"], "--qty: '0' must be a whole number from 1"),
        (["--min", "3", "--max", "lots"], "--max: 'lots' must be a whole number from 0"),
    ],
)
def test_bad_reorder_flags_send_nothing(args: list[str], text: str) -> None:
    fake = FakeAgent()
    r = run(fake, "stock", "reorder", "PROD-001", *args, code=2)
    assert text in error_of(r)
    assert fake.sent == []


def test_a_refused_setting_is_the_agents_message() -> None:
    error = {"error": "maxStock: 5 is below the reorder point 10; the stock to order ..."}
    fake = FakeAgent().on("PUT", REORDER, error, status=422)
    r = run(fake, "stock", "reorder", "PROD-001", "--min", "10", "--max", "5", code=2)
    assert "maxStock: 5 is below the reorder point 10" in error_of(r)


def low_obj(store: str = "store-001") -> dict[str, Any]:
    return {
        "storeId": store,
        "data": [
            {
                **settings_obj(incoming=3, suggested=17),
                "name": "Laptop",
                "storeId": "store-002" if store == "all" else store,
            }
        ],
    }


def test_stock_low_lists_what_to_order() -> None:
    fake = FakeAgent().on("GET", "/api/v1/stock/low", low_obj())
    r = run(fake, "stock", "low")
    assert fake.last.query == {}
    assert r.stdout.startswith("Low stock at store-001")
    rows = table_rows(r.stdout)
    assert rows["Store"] == [
        "Store",
        "SKU",
        "Name",
        "Available",
        "Incoming",
        "Point",
        "Max",
        "Qty",
        "Suggested",
    ]
    assert rows["store-001"] == [
        "store-001",
        "PROD-001",
        "Laptop",
        "10",
        "3",
        "12",
        "30",
        "-",
        "17",
    ]
    fake = FakeAgent().on("GET", "/api/v1/stock/low", low_obj("all"))
    assert run(fake, "stock", "low", "--all").stdout.startswith("Low stock at every store")
    assert fake.last.query == {"storeId": "all"}
    run(fake, "stock", "low", "--store", "store-002")
    assert fake.last.query == {"storeId": "store-002"}
    assert "give one of them" in error_of(
        run(fake, "stock", "low", "--all", "--store", "store-002", code=2)
    )
    empty = FakeAgent().on("GET", "/api/v1/stock/low", {"storeId": "store-001", "data": []})
    r = run(empty, "stock", "low")
    assert (r.stdout, r.stderr) == (
        "",
        "Nothing is at or below its reorder point at store-001.\n",
    )


def test_alerts_table_and_filters() -> None:
    alert = {
        "id": "store-001:42",
        "kind": "low",
        "sku": "PROD-001",
        "productId": "id-PROD-001",
        "storeId": "store-001",
        "before": 6,
        "after": 4,
        "reorderPoint": 5,
        "cause": "store-001:41",
        "raisedAt": "2024-01-01T10:00:00Z",
    }
    fake = FakeAgent().on("GET", "/api/v1/alerts", {"data": [alert]})
    r = run(fake, "alerts", "--since", "24h", "--store", "store-001", "--sku", "PROD-001")
    assert fake.last.query == {
        "since": "24h",
        "storeId": "store-001",
        "sku": "PROD-001",
        "limit": "100",
    }
    header, row = table_lines(r.stdout)
    assert header[:8] == ["Raised", "Kind", "SKU", "Store", "Before", "After", "Point", "Cause"]
    assert row[1:] == [
        "low",
        "PROD-001",
        "store-001",
        "6",
        "4",
        "5",
        "store-001:41",
        "store-001:42",
    ]
    assert run_json(fake, "alerts") == [alert]


def test_agent_status_shows_each_alert_target() -> None:
    health = {
        "status": "healthy",
        "storeId": "store-001",
        "version": "0.1.0",
        "uptimeSeconds": 12,
        "mode": "standalone",
        "checks": {"alerts": {"ok": True, "targets": 1, "pending": 2, "givenUp": 1}},
        "alertDeliveries": [
            {
                "target": "https://hooks.example/inv",
                "events": ["low", "restored"],
                "delivered": 7,
                "givenUp": 1,
                "pending": 2,
                "tries": 3,
                "nextAttemptAt": "2024-01-01T10:00:05Z",
                "lastStatus": 500,
                "lastError": "HTTP 500",
                "lastDeliveredAt": None,
                "lastTriedAt": None,
            }
        ],
    }
    r = run(FakeAgent().on("GET", "/health", health), "agent", "status")
    rows = table_rows(r.stdout)
    assert rows["alerts"] == ["alerts", "yes", "targets=1, pending=2, givenUp=1"]
    assert "Alert deliveries" in r.stdout
    assert rows["https://hooks.example/inv"] == [
        "https://hooks.example/inv",
        "7",
        "1",
        "2",
        "3",
        "2024-01-01 10:00:05",
        "HTTP 500",
    ]


def test_import_reads_the_reorder_columns(tmp_path: Path) -> None:
    f = tmp_path / "stock.csv"
    f.write_text(
        "sku,quantity,reorder_point,maxStock,reorderQty\n"
        "A-1,5,3,10,\n"  # an empty cell: left as it is
        "B-1,,2,,\n"  # a setting only
        "C-1,,none,none,none\n"  # cleared
    )
    result = {"rows": 3, "applied": 3, "unchanged": 0, "dryRun": False, "changes": []}
    fake = FakeAgent().on("POST", "/api/v1/imports/stock", {**result, "alreadyImported": False})
    run(fake, "import", str(f))
    assert fake.last.body["rows"] == [
        {"line": 2, "sku": "A-1", "quantity": 5, "reorderPoint": 3, "maxStock": 10},
        {"line": 3, "sku": "B-1", "reorderPoint": 2},
        {"line": 4, "sku": "C-1", "reorderPoint": None, "maxStock": None, "reorderQty": None},
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,quantity,reorderPoint,maxStock,reorderQty\nA-1,5,9,4,\nB-1,1,,,0\n")
    r = run(fake, "import", str(bad), code=2)
    assert "line 2: maxStock: 4 is below the reorderPoint 9" in r.stderr
    assert "line 3: reorderQty: must be 1 to 1000000000" in r.stderr


def test_an_import_dry_run_shows_the_settings_it_changes(tmp_path: Path) -> None:
    f = tmp_path / "stock.csv"
    f.write_text("sku,quantity,reorderPoint\nA-1,5,3\n")
    change = {
        "line": 2,
        "sku": "A-1",
        "storeId": "store-001",
        "mode": "set",
        "from": 10,
        "to": 5,
        "reorderPoint": {"from": None, "to": 3},
    }
    reply = {
        "rows": 1,
        "applied": 0,
        "unchanged": 0,
        "dryRun": True,
        "alreadyImported": False,
        "changes": [change],
    }
    r = run(FakeAgent().on("POST", "/api/v1/imports/stock", reply), "import", str(f), "--dry-run")
    header, row = table_lines(r.stdout)
    assert header == ["Line", "SKU", "Store", "Mode", "From", "To", "Point"]
    assert row == ["2", "A-1", "store-001", "set", "10", "5", "- -> 3"]
