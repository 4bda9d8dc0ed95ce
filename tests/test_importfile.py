"""Unit tests of inventory_cli/importfile.py: reading CSV, JSON and YAML into
rows that remember their line, and validating them before anything is sent."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from inventory_cli.importfile import (
    MAX_QTY,
    ImportFileError,
    RowError,
    detect_format,
    product_rows,
    read_records,
    stock_rows,
)


def read(tmp_path: Path, name: str, content: str | bytes, fmt: str | None = None) -> list[Any]:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return read_records(path, detect_format(path, fmt))


def lines(records: list[tuple[int, Any]]) -> list[int]:
    return [line for line, _ in records]


def errors_of(parsed: tuple[list[Any], list[RowError]]) -> list[str]:
    return [str(e) for e in parsed[1]]


# ------------------------------------------------------------------ formats
@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("a.csv", None, "csv"),
        ("A.CSV", None, "csv"),
        ("a.json", None, "json"),
        ("a.yaml", None, "yaml"),
        ("a.yml", None, "yaml"),
        ("a.txt", "csv", "csv"),
        ("a.csv", "yaml", "yaml"),
    ],
)
def test_detect_format(name: str, given: str | None, expected: str) -> None:
    assert detect_format(Path(name), given) == expected


def test_detect_format_refuses_what_it_cannot_tell() -> None:
    with pytest.raises(ImportFileError, match="use --format csv\\|json\\|yaml"):
        detect_format(Path("stock.xlsx"), None)
    with pytest.raises(ImportFileError, match="--format must be one of csv, json, yaml"):
        detect_format(Path("stock.csv"), "xml")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="file not found"):
        read_records(tmp_path / "missing.csv", "csv")
    for name in ("latin.csv", "latin.json", "latin.yaml"):
        with pytest.raises(ImportFileError, match="is not UTF-8 text"):
            read(tmp_path, name, "sku,quantity\nCAFÉ,1\n".encode("latin-1"))


def test_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="the CSV file is empty"):
        read(tmp_path, "e.csv", "")
    with pytest.raises(ImportFileError, match="the JSON file is empty"):
        read(tmp_path, "e.json", "  \n")
    assert read(tmp_path, "e.yaml", "") == []
    assert read(tmp_path, "e2.yaml", "# only a comment\n") == []
    assert read(tmp_path, "h.csv", "sku,quantity\n") == []
    assert read(tmp_path, "e2.json", "[]") == []


# ---------------------------------------------------------------------- CSV
def test_csv_rows_keep_their_line(tmp_path: Path) -> None:
    records = read(
        tmp_path,
        "s.csv",
        "sku,quantity,reason\n"  # 1
        "A,1,x\n"  # 2
        "\n"  # 3: blank, skipped
        ",,\n"  # 4: only separators, skipped
        'B,2,"two\nlines"\n'  # 5-6: a quoted value across lines
        "C,3,y\n",  # 7
    )
    assert records == [
        (2, {"sku": "A", "quantity": "1", "reason": "x"}),
        (5, {"sku": "B", "quantity": "2", "reason": "two\nlines"}),
        (7, {"sku": "C", "quantity": "3", "reason": "y"}),
    ]


def test_csv_trims_and_reads_bom_and_crlf(tmp_path: Path) -> None:
    records = read(tmp_path, "s.csv", "\ufeff sku , qty \r\n A-1 , 4 \r\nB,\r\n")
    assert records == [(2, {"sku": "A-1", "qty": "4"}), (3, {"sku": "B", "qty": ""})]


def test_csv_shape_errors(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="line 3: more values than header columns"):
        read(tmp_path, "m.csv", "sku,quantity\nA,1\nB,2,3\n")
    with pytest.raises(ImportFileError, match="line 1: column 'qty' appears twice"):
        read(tmp_path, "d.csv", "sku,qty, qty\nA,1,2\n")
    # fewer values than columns: the missing ones are missing, not empty strings
    assert read(tmp_path, "f.csv", "sku,quantity,mode\nA,1\n") == [
        (2, {"sku": "A", "quantity": "1", "mode": None})
    ]


# --------------------------------------------------------------------- JSON
def test_json_array_rows_keep_their_line(tmp_path: Path) -> None:
    text = (
        '[\n  {"sku": "A",\n   "quantity": 1},\n\n  {"sku": "B", "quantity": 2}, {"sku": "C"}\n]\n'
    )
    assert read(tmp_path, "s.json", text) == [
        (2, {"sku": "A", "quantity": 1}),
        (5, {"sku": "B", "quantity": 2}),
        (5, {"sku": "C"}),
    ]


def test_json_rows_object_keeps_real_lines(tmp_path: Path) -> None:
    text = (
        "{\n"
        '  "comment": {"rows": ["not these"]},\n'
        '  "rows": [\n'
        '    {"sku": "A", "quantity": 1},\n'  # line 4
        "\n"
        '    {"sku": "B", "quantity": 2}\n'  # line 6
        "  ]\n"
        "}\n"
    )
    assert lines(read(tmp_path, "s.json", text)) == [4, 6]
    with pytest.raises(ImportFileError, match=r'expected a JSON array of rows, or \{"rows"'):
        read(tmp_path, "n.json", '{"rows": 3}')
    with pytest.raises(ImportFileError, match="expected a JSON array"):
        read(tmp_path, "x.json", '"rows"')


def test_json_syntax_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="line 3: invalid JSON"):
        read(tmp_path, "b.json", '[\n {"sku": "A"},\n {"sku": oops}\n]')
    # content after the array is not silently ignored (those rows would be lost)
    with pytest.raises(ImportFileError, match="line 2: invalid JSON: Extra data"):
        read(tmp_path, "t.json", '[{"sku": "A", "quantity": 1}]\n[{"sku": "B", "quantity": 1}]')


def test_json_reads_100k_rows_quickly(tmp_path: Path) -> None:
    rows = [{"sku": f"S-{i}", "storeId": "st-1", "quantity": i} for i in range(100_000)]
    text = json.dumps(rows, indent=1)  # 5 lines per row
    started = time.monotonic()
    records = read(tmp_path, "big.json", text)
    assert time.monotonic() - started < 5  # counting lines must not be quadratic
    assert len(records) == 100_000
    assert records[0] == (2, rows[0]) and records[-1] == (499_997, rows[-1])


# --------------------------------------------------------------------- YAML
def test_yaml_rows_keep_their_line(tmp_path: Path) -> None:
    text = "# stock\n- sku: A\n  quantity: 1\n\n- sku: B\n  quantity: 2\n- {sku: C, qty: 3}\n"
    assert read(tmp_path, "s.yaml", text) == [
        (2, {"sku": "A", "quantity": 1}),
        (5, {"sku": "B", "quantity": 2}),
        (7, {"sku": "C", "qty": 3}),
    ]
    wrapped = "rows:\n  - sku: A\n    quantity: 1\n  - sku: B\n    quantity: 2\n"
    assert lines(read(tmp_path, "w.yml", wrapped)) == [2, 4]


def test_yaml_shape_errors(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="invalid YAML"):
        read(tmp_path, "b.yaml", "- sku: A\n  quantity: [1\n")
    with pytest.raises(ImportFileError, match="expected a YAML list of rows"):
        read(tmp_path, "s.yaml", "just a string\n")
    with pytest.raises(ImportFileError, match="expected a YAML list of rows, or rows:"):
        read(tmp_path, "m.yaml", "items:\n  - sku: A\n")


# --------------------------------------------------------------- stock rows
def test_stock_rows_defaults_and_aliases() -> None:
    rows, errors = stock_rows(
        [
            (2, {"sku": "A", "quantity": "5"}),
            (3, {"sku": "B", "store": "st-2", "qty": 7, "mode": "ADD", "reason": "gift"}),
            (4, {"sku": "C", "store_id": "st-3", "quantity": "+4", "mode": "set"}),
            (5, {"sku": "D/1", "quantity": 6.0, "mode": "add"}),
            (6, {"sku": "E", "quantity": "-2", "mode": "add"}),
            (7, {"sku": "F", "quantity": 0, "storeId": "", "reason": ""}),
        ]
    )
    assert errors == []
    # what the agent defaults (this store, mode set, no reason) is not sent
    assert rows == [
        {"line": 2, "sku": "A", "quantity": 5},
        {"line": 3, "sku": "B", "storeId": "st-2", "quantity": 7, "mode": "add", "reason": "gift"},
        {"line": 4, "sku": "C", "storeId": "st-3", "quantity": 4},
        {"line": 5, "sku": "D/1", "quantity": 6, "mode": "add"},
        {"line": 6, "sku": "E", "quantity": -2, "mode": "add"},
        {"line": 7, "sku": "F", "quantity": 0},
    ]


def test_stock_rows_report_every_bad_row_by_line() -> None:
    parsed = stock_rows(
        [
            (2, {"sku": "OK", "quantity": 1}),
            (3, {"sku": "A", "quantity": "ten"}),
            (4, {"sku": "A", "quantity": "1.5"}),
            (5, {"sku": "A", "quantity": 2.5}),
            (6, {"sku": "A", "quantity": True}),
            (7, {"sku": "A"}),
            (8, {"sku": "A", "quantity": ""}),
            (9, {"sku": "A", "quantity": -1}),
            (10, {"sku": "A", "quantity": MAX_QTY + 1, "mode": "add"}),
            (11, {"sku": "A", "quantity": 1, "mode": "replace"}),
            (12, {"sku": "A", "quantity": 1, "storeId": "no spaces"}),
            (13, {"sku": "A", "quantity": 1, "reason": "x" * 201}),
            (14, {"quantity": 1}),
            (15, {"sku": "", "quantity": 1}),
            (16, {"sku": "-bad", "quantity": 1}),
            (17, {"sku": "A", "quantity": 1, "colour": "red"}),
            (18, {"sku": "A", "qty": 1, "quantity": 2}),
            (19, ["A", 1]),
            (20, {"sku": "LAST", "quantity": 3}),
        ]
    )
    assert [r["line"] for r in parsed[0]] == [2, 20]
    assert errors_of(parsed) == [
        "line 3: quantity: 'ten' is not a whole number",
        "line 4: quantity: '1.5' is not a whole number",
        "line 5: quantity: 2.5 is not a whole number",
        "line 6: quantity: True is not a whole number",
        "line 7: quantity: is required "
        "(unless the row sets safetyStock, reorderPoint, maxStock, reorderQty)",
        "line 8: quantity: is required "
        "(unless the row sets safetyStock, reorderPoint, maxStock, reorderQty)",
        "line 9: quantity: must be 0 or more when mode is set",
        f"line 10: quantity: must be at most {MAX_QTY}",
        "line 11: mode: 'replace' must be set or add",
        "line 12: storeId: 'no spaces' is not a valid store id",
        "line 13: reason: must be at most 200 characters",
        "line 14: sku: is required",
        "line 15: sku: is required",
        "line 16: sku: '-bad' is not a valid SKU",
        "line 17: colour: unknown column "
        "(expected: sku, storeId, quantity, mode, reason, safetyStock, reorderPoint, "
        "maxStock, reorderQty)",
        "line 18: quantity: given twice (as 'qty' and 'quantity')",
        "line 19: row: expected an object with named fields",
    ]


# ------------------------------------------------------------- product rows
def test_product_rows() -> None:
    rows, errors = product_rows(
        [
            (2, {"sku": "P-1", "name": "Lamp", "price": "12.50", "active": "yes"}),
            (3, {"sku": "P-2", "id": "p2", "category": "tools", "active": False, "price": 0}),
            (4, {"sku": "P-3", "description": "", "active": "0"}),
        ]
    )
    assert errors == []
    assert rows == [
        {"line": 2, "sku": "P-1", "name": "Lamp", "price": 12.5, "active": True},
        {"line": 3, "sku": "P-2", "id": "p2", "category": "tools", "active": False, "price": 0.0},
        {"line": 4, "sku": "P-3", "active": False},
    ]


def test_product_rows_report_every_bad_row_by_line() -> None:
    parsed = product_rows(
        [
            (2, {"sku": "P", "price": "free"}),
            (3, {"sku": "P", "price": "-1"}),
            (4, {"sku": "P", "price": "nan"}),
            (5, {"sku": "P", "active": "maybe"}),
            (6, {"sku": "P", "name": "n" * 201}),
            (7, {"sku": "P", "stock": 3}),
            (8, {"name": "no sku"}),
            (9, {"sku": "P", "name": "fine"}),
        ]
    )
    assert [r["line"] for r in parsed[0]] == [9]
    assert errors_of(parsed) == [
        "line 2: price: 'free' is not a price >= 0",
        "line 3: price: '-1' is not a price >= 0",
        "line 4: price: 'nan' is not a price >= 0",
        "line 5: active: 'maybe' is not true/false",
        "line 6: name: must be at most 200 characters",
        "line 7: stock: unknown column (expected: sku, id, name, description, category, price, "
        "active)",
        "line 8: sku: is required",
    ]


def test_from_file_to_rows_keeps_csv_lines(tmp_path: Path) -> None:
    records = read(tmp_path, "s.csv", "sku,store,qty\nA,st-1,1\n\nB,st-1,x\nC,,3\n")
    rows, errors = stock_rows(records)
    found = [(r["line"], r["sku"], r.get("storeId")) for r in rows]
    assert found == [(2, "A", "st-1"), (5, "C", None)]
    assert errors_of((rows, errors)) == ["line 4: quantity: 'x' is not a whole number"]
