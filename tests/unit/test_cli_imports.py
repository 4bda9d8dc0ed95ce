"""``inv import`` and ``inv product import`` in process against a fake agent:
the file is read and checked before anything is sent (every bad row named by
line), the rows sent, --dry-run/--force, and how each result is shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inventory_cli.transport import ConnectionBroken, TimedOut
from tests.cli_support import FakeAgent, error_of, run, run_json, table_lines

STOCK = "/api/v1/imports/stock"
PRODUCTS = "/api/v1/imports/products"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def result(rows: int, applied: int, **extra: Any) -> dict[str, Any]:
    return {
        "rows": rows,
        "applied": applied,
        "unchanged": rows - applied,
        "dryRun": False,
        "alreadyImported": False,
        "changes": [],
        **extra,
    }


def test_a_good_csv_sends_its_rows(tmp_path: Path) -> None:
    f = write(
        tmp_path / "stock.csv",
        "sku,store,qty,mode,reason\nA-1,store-001,40,set,count\nA-1,store-002,3,add,\n"
        "B-1,store-003,12,,delivery\n",
    )
    fake = FakeAgent().on("POST", STOCK, result(3, 3))
    r = run(fake, "import", str(f))
    assert r.stdout == ""
    assert r.stderr == "Imported 3 rows: 3 changed, 0 unchanged.\n"
    assert fake.last.body == {
        "rows": [
            {"line": 2, "sku": "A-1", "quantity": 40, "storeId": "store-001", "reason": "count"},
            {"line": 3, "sku": "A-1", "quantity": 3, "storeId": "store-002", "mode": "add"},
            {"line": 4, "sku": "B-1", "quantity": 12, "storeId": "store-003", "reason": "delivery"},
        ],
        "dryRun": False,
        "force": False,
    }
    assert run_json(fake, "import", str(f), "--force", "--dry-run") == result(3, 3)
    assert (fake.last.body["dryRun"], fake.last.body["force"]) == (True, True)


def test_every_bad_row_is_reported_and_nothing_sent(tmp_path: Path) -> None:
    f = write(
        tmp_path / "bad.csv",
        "sku,storeId,quantity,mode\n"
        "A-1,store-001,50,set\n"  # line 2: fine on its own
        "A-1,store-001,ten,set\n"  # line 3
        "A-1,store-001,-1,set\n"  # line 4
        "\n"  # line 5: blank, skipped
        "A-1,store-001,1,replace\n"  # line 6
        ",store-001,1,set\n"  # line 7
        "A-1,bad store,1,set\n"  # line 8
        "A-1,store-002,2,add\n",  # line 9: fine
    )
    fake = FakeAgent()
    r = run(fake, "import", str(f), code=2)
    assert r.stderr.splitlines() == [
        f"{f}: line 3: quantity: 'ten' is not a whole number",
        f"{f}: line 4: quantity: must be 0 or more when mode is set",
        f"{f}: line 6: mode: 'replace' must be set or add",
        f"{f}: line 7: sku: is required",
        f"{f}: line 8: storeId: 'bad store' is not a valid store id",
        f"Error: 5 invalid row(s) in {f}; nothing was imported",
    ]
    unknown = write(tmp_path / "cols.csv", "sku,quantity,colour\nA-1,1,red\n")
    r = run(fake, "import", str(unknown), code=2)
    assert "line 2: colour: unknown column (expected: sku, storeId, quantity" in r.stderr
    assert fake.sent == []


def test_only_the_first_50_bad_rows_are_listed(tmp_path: Path) -> None:
    f = write(tmp_path / "many.csv", "sku,quantity\n" + "A-1,x\n" * 60)
    r = run(FakeAgent(), "import", str(f), code=2)
    lines = r.stderr.splitlines()
    assert len(lines) == 52 and lines[50] == "... and 10 more"
    assert lines[51] == f"Error: 60 invalid row(s) in {f}; nothing was imported"


def test_rows_the_agent_refuses_are_listed_by_line(tmp_path: Path) -> None:
    f = write(tmp_path / "unknown.csv", "sku,quantity\nA-1,99\nNOPE-A,1\n")
    refused = {
        "error": "2 invalid row(s); nothing was imported",
        "errors": [
            {"line": 3, "field": "sku", "error": "unknown SKU 'NOPE-A'"},
            {"field": "rows", "error": "no line"},
        ],
    }
    fake = FakeAgent().on("POST", STOCK, refused, status=422)
    r = run(fake, "import", str(f), code=2)
    assert r.stderr.splitlines() == [
        "line 3: sku: unknown SKU 'NOPE-A'",
        "rows: no line",
        "Error: 2 invalid row(s); nothing was imported",
    ]


def test_dry_run_and_reimport(tmp_path: Path) -> None:
    f = write(tmp_path / "delivery.csv", "sku,storeId,quantity,mode\nA-1,store-001,5,add\n")
    change = {"line": 2, "sku": "A-1", "storeId": "store-001", "mode": "add", "from": 10, "to": 15}
    fake = FakeAgent().on("POST", STOCK, result(1, 0, dryRun=True, changes=[change]))
    r = run(fake, "import", str(f), "--dry-run")
    header, *rows = table_lines(r.stdout)
    assert header == ["Line", "SKU", "Store", "Mode", "From", "To"]
    assert rows == [["2", "A-1", "store-001", "add", "10", "15"]]
    assert r.stderr == "Dry run: 1 of 1 rows would change; nothing applied.\n"

    again = result(1, 0, alreadyImported=True, importedAt="2024-01-01T10:00:00Z")
    fake = FakeAgent().on("POST", STOCK, again)
    r = run(fake, "import", str(f))
    assert r.stdout == ""
    assert r.stderr == (
        "This file was already imported at 2024-01-01T10:00:00Z: nothing applied "
        "(use --force to apply it again).\n"
    )


def test_json_and_yaml_files(tmp_path: Path) -> None:
    j = write(
        tmp_path / "stock.json",
        '[\n  {"sku": "A-1", "storeId": "store-001", "quantity": 7},\n'
        '  {"sku": "B-1", "store_id": "store-004", "qty": "8", "mode": "add"}\n]\n',
    )
    fake = FakeAgent().on("POST", STOCK, result(2, 2))
    run(fake, "import", str(j))
    assert fake.last.body["rows"] == [
        {"line": 2, "sku": "A-1", "quantity": 7, "storeId": "store-001"},
        {"line": 3, "sku": "B-1", "quantity": 8, "storeId": "store-004", "mode": "add"},
    ]
    y = write(
        tmp_path / "stock.yml",
        "rows:\n  - sku: A-1\n    storeId: store-001\n    quantity: 17\n"
        "  - {sku: B-1, store: store-004, quantity: 1, mode: add, reason: gift}\n",
    )
    run(fake, "import", str(y))
    assert fake.last.body["rows"] == [
        {"line": 2, "sku": "A-1", "quantity": 17, "storeId": "store-001"},
        {"line": 5, "sku": "B-1", "quantity": 1, "storeId": "store-004", "mode": "add",
         "reason": "gift"},
    ]  # fmt: skip
    t = write(tmp_path / "stock.txt", "- sku: A-1\n  quantity: 3\n")
    assert "use --format csv|json|yaml" in error_of(run(fake, "import", str(t), code=2))
    run(fake, "import", str(t), "--format", "yaml")
    assert fake.last.body["rows"] == [{"line": 1, "sku": "A-1", "quantity": 3}]
    bad = write(tmp_path / "bad.json", '[\n  {"sku": "A-1", "quantity": 1},\n  {"sku": "A-1",\n')
    assert "line 4: invalid JSON" in error_of(run(fake, "import", str(bad), code=2))


def test_unreadable_files(tmp_path: Path) -> None:
    fake = FakeAgent()
    r = run(fake, "import", str(tmp_path / "missing.csv"), code=2)
    assert "file not found" in error_of(r)
    r = run(fake, "import", str(write(tmp_path / "empty.csv", "")), code=2)
    assert "empty" in error_of(r)
    r = run(fake, "import", str(write(tmp_path / "header.csv", "sku,quantity\n")), code=2)
    assert "has no rows to import" in error_of(r)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("sku,quantity\nCAFÉ-1,1\n".encode("latin-1"))
    assert "is not UTF-8 text" in error_of(run(fake, "import", str(latin), code=2))
    r = run(fake, "import", str(latin), "--format", "xlsx", code=2)
    assert "--format must be one of csv, json, yaml" in error_of(r)
    assert fake.sent == []


def test_product_import(tmp_path: Path) -> None:
    f = write(
        tmp_path / "catalog.csv",
        "sku,name,category,price,active\n"
        "OLD-1,Renamed,tools,12.5,yes\n"
        "NEW-1,Brand new,tools,3,true\n",
    )
    changes = [
        {"line": 2, "sku": "OLD-1", "action": "update", "fields": ["name", "price"]},
        {"line": 3, "sku": "NEW-1", "action": "create", "fields": ["name"]},
    ]
    fake = FakeAgent().on("POST", PRODUCTS, result(2, 0, dryRun=True, changes=changes))
    r = run(fake, "product", "import", str(f), "--dry-run")
    header, *rows = table_lines(r.stdout)
    assert header == ["Line", "SKU", "Action", "Fields"]
    assert rows == [["2", "OLD-1", "update", "name, price"], ["3", "NEW-1", "create", "name"]]
    assert r.stderr == "Dry run: 2 of 2 products would change; nothing applied.\n"
    assert fake.last.body["rows"][0] == {
        "line": 2, "sku": "OLD-1", "price": 12.5, "active": True, "name": "Renamed",
        "category": "tools",
    }  # fmt: skip

    fake = FakeAgent().on("POST", PRODUCTS, result(2, 2))
    assert run(fake, "product", "import", str(f)).stderr == (
        "Imported 2 products: 2 changed, 0 unchanged.\n"
    )
    bad = write(
        tmp_path / "catalog-bad.json",
        '[\n {"sku": "NEW-1", "price": "free"},\n {"sku": "NEW-1", "active": "maybe"}\n]',
    )
    r = run(fake, "product", "import", str(bad), code=2)
    assert f"{bad}: line 2: price: 'free' is not a price >= 0" in r.stderr
    assert f"{bad}: line 3: active: 'maybe' is not true/false" in r.stderr
    assert len(fake.sent) == 1


@pytest.mark.parametrize(
    ("command", "path", "text"),
    [
        (["import"], STOCK, "sku,storeId,quantity\nA-1,store-001,4\n"),
        (["product", "import"], PRODUCTS, "sku,name\nA-1,Apple\n"),
    ],
)
@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (TimedOut("read"), "the agent did not answer within 600 s"),
        (ConnectionBroken("reset by peer"), "the connection to the agent broke (reset by peer)"),
    ],
)
def test_an_import_sent_and_not_answered_is_not_sent_again(
    tmp_path: Path, command: list[str], path: str, text: str, failure: Any, said: str
) -> None:
    """A 10-minute import that timed out used to be sent twice more (30
    minutes before exit 5): it may have been applied, so it is sent once, and
    the message says how to find out."""
    f = write(tmp_path / "rows.csv", text)
    fake = FakeAgent(fail=[failure, failure, failure]).on("POST", path, result(1, 1))
    r = run(fake, *command, str(f), code=5)
    assert [(s.method, s.path) for s in fake.sent] == [("POST", path)]  # exactly once
    assert error_of(r) == (
        f"Error: {said}; the import may have been applied: run the same command again "
        "to check (a re-import applies nothing)"
    )
