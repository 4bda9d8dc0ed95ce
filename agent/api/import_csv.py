"""A stock import sent as the file itself (``Content-Type: text/csv``).

Its bytes are read here into the rows a JSON body carries, and those are
validated by the same schema (``schemas.STOCK_IMPORT``): the same rows make
the same import (the same id, so a file imported as JSON is "already
imported" as CSV), and a bad row the same 422 naming its line and field. It
spares a client the JSON copy of 100,000 rows to encode, send and parse again
(docs/PERFORMANCE.md, B3); `inv import` still sends JSON rows this round.

The reading is the CLI's (``inventory_cli.importformats``): UTF-8 (a BOM
allowed), a header line of column names (their aliases too: ``store``,
``qty``...), blank lines skipped, cells stripped, an empty cell left out (the
agent's default, or the setting left as it is), ``none`` in a reorder column
clears it (null), a row's line the one it starts on. A cell of an integer
column is a number when it is written as one; anything else stays text, which
the schema then refuses for that line and column."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from agent.api import schemas
from agent.errors import InvalidInput

CONTENT_TYPE = "text/csv"
ALIASES = {
    "store_id": "storeId",
    "store": "storeId",
    "qty": "quantity",
    "safety_stock": "safetyStock",
    "reorder_point": "reorderPoint",
    "max_stock": "maxStock",
    "reorder_qty": "reorderQty",
}
REORDER_COLUMNS = ("reorderPoint", "maxStock", "reorderQty")
COLUMNS = ("sku", "storeId", "quantity", "mode", "reason", "safetyStock", *REORDER_COLUMNS)
_WHOLE = re.compile(r"[+-]?\d+")

Cell = Callable[[str], Any]


def is_csv(content_type: str | None) -> bool:
    return (content_type or "").partition(";")[0].strip().lower() == CONTENT_TYPE


def stock_import(raw: bytes, dry_run: bool, force: bool) -> schemas.StockImport:
    """The import body (``schemas.StockImport``) a CSV file makes; a file that
    cannot be read is ``InvalidInput``, a bad row ``RequestValidationError``
    (as a JSON body's would be)."""
    rows = _rows(raw)
    try:
        body = schemas.STOCK_IMPORT.validate_python(
            {"rows": rows, "dryRun": dry_run, "force": force}
        )
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body={"rows": rows}) from None
    return body


def _rows(raw: bytes) -> list[dict[str, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _unreadable(None, "body", f"is not UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if not header:
            raise _unreadable(None, "body", "the CSV is empty: expected a header line")
        columns = _columns(header)
        out: list[dict[str, Any]] = []
        end = reader.line_num  # where the record before ends: a quoted value may span lines
        for values in reader:
            start, end = end + 1, reader.line_num
            if len(values) > len(columns):
                raise _unreadable(start, "row", "more values than header columns")
            row: dict[str, Any] = {"line": start}
            for (name, cell), value in zip(columns, values, strict=False):
                value = value.strip()
                if value:
                    row[name] = cell(value)
            if len(row) > 1:  # not a blank line
                out.append(row)
    except csv.Error as exc:
        raise _unreadable(reader.line_num, "row", str(exc)) from None
    return out


def _columns(header: list[str]) -> list[tuple[str, Cell]]:
    """Each header column's name (aliases resolved) and how its cells read."""
    given: dict[str, str] = {}
    for raw in header:
        name = ALIASES.get(raw.strip(), raw.strip())
        if name in given:
            raise _unreadable(1, name, f"given twice (as {given[name]!r} and {raw.strip()!r})")
        if name not in COLUMNS:
            raise _unreadable(1, name, f"unknown column (expected: {', '.join(COLUMNS)})")
        given[name] = raw.strip()
    return [(name, _CELLS.get(name, str)) for name in given]


def _whole(value: str) -> int | str:
    if value.isdigit() and value.isascii():
        return int(value)  # the common case, without a regular expression
    if _WHOLE.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # over 4300 digits: out of range, which the schema says
            pass
    return value


def _setting(value: str) -> int | str | None:
    return None if value.lower() == "none" else _whole(value)


_CELLS: dict[str, Cell] = {
    "quantity": _whole,
    "safetyStock": _whole,
    "mode": str.lower,
    **dict.fromkeys(REORDER_COLUMNS, _setting),
}


def _unreadable(line: int | None, field: str, message: str) -> InvalidInput:
    where = f"line {line}: " if line is not None else ""
    error: dict[str, Any] = {"field": field, "error": message}
    if line is not None:
        error = {"line": line, **error}
    return InvalidInput(f"{where}{field}: {message}; nothing was imported", errors=[error])
