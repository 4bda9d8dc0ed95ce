"""Reading import files (CSV, JSON, YAML) into rows that remember their line.

Everything is validated before anything is sent: every bad row is reported
with its line number and the field, and then nothing is imported.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("csv", "json", "yaml")
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")
STORE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
MAX_QTY = 1_000_000_000

STOCK_COLUMNS = ("sku", "storeId", "quantity", "mode", "reason", "safetyStock")
PRODUCT_COLUMNS = ("sku", "id", "name", "description", "category", "price", "active")
ALIASES = {
    "store_id": "storeId",
    "store": "storeId",
    "qty": "quantity",
    "safety_stock": "safetyStock",
}


class ImportFileError(Exception):
    """The file can't be read at all (format, encoding, shape)."""


@dataclass
class RowError:
    line: int
    field: str
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.error}"


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise ImportFileError(f"--format must be one of {', '.join(FORMATS)}")
        return given
    ext = path.suffix.lower().lstrip(".")
    fmt = {"yml": "yaml", "jsonl": "json"}.get(ext, ext)
    if fmt not in FORMATS:
        raise ImportFileError(
            f"can't tell the format of {path.name} from its extension; use --format csv|json|yaml"
        )
    return fmt


def read_records(path: Path, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ImportFileError(f"file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path.name} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise ImportFileError(f"can't read {path}: {exc}") from exc
    if fmt == "csv":
        return _read_csv(text)
    if fmt == "json":
        return _read_json(text)
    return _read_yaml(text)


def _read_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if not header:
            raise ImportFileError("the CSV file is empty: expected a header line")
        names = [name.strip() for name in header]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ImportFileError(f"line 1: column {twice[0]!r} appears twice in the header")
        width = len(names)
        out = []
        for values in reader:
            if len(values) > width:
                raise ImportFileError(f"line {reader.line_num}: more values than header columns")
            # line_num is where the record ends: a quoted value may span lines
            start = reader.line_num
            for v in values:
                if "\n" in v:
                    start -= v.count("\n")
            cells: list[str | None] = [v.strip() for v in values]
            if not any(cells):
                continue
            if len(cells) < width:  # a short row: the missing columns are None
                cells += [None] * (width - len(cells))
            out.append((start, dict(zip(names, cells, strict=True))))
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: {exc}") from exc
    return out


def _read_json(text: str) -> list[tuple[int, dict[str, Any]]]:
    """A JSON array of objects (or {"rows": [...]}); each row keeps the line
    it starts on, found by decoding the array one element at a time."""
    if not text.strip():
        raise ImportFileError("the JSON file is empty: expected an array of rows")
    try:
        data = json.loads(text)  # the whole document, so trailing junk is an error too
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    except ValueError as exc:  # a number of more than 4300 digits
        raise ImportFileError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ImportFileError("invalid JSON: nested too deeply") from exc
    decoder = json.JSONDecoder()
    if isinstance(data, list):
        pos = _skip(_WS, text, 0)
    elif isinstance(data, dict) and isinstance(data.get("rows"), list):
        pos = _rows_position(text, decoder)
    else:
        raise ImportFileError('expected a JSON array of rows, or {"rows": [...]}')
    rows = data if isinstance(data, list) else data["rows"]
    out = []
    line, counted = 1, 0
    pos += 1  # past "["
    for row in rows:
        pos = _skip(_SEP, text, pos)
        line += text.count("\n", counted, pos)
        counted = pos
        out.append((line, row))
        pos = decoder.raw_decode(text, pos)[1]
    return out


_WS = re.compile(r"\s*")
_SEP = re.compile(r"[\s,]*")


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a run of ``pattern`` (it matches the empty string too) from ``pos`` ends."""
    found = pattern.match(text, pos)
    return found.end() if found else pos


def _rows_position(text: str, decoder: json.JSONDecoder) -> int:
    """Where the (last, as json.loads keeps the last) "rows" array of a valid
    top-level JSON object starts."""
    pos = _skip(_WS, text, 0) + 1
    found = -1
    while True:
        pos = _skip(_SEP, text, pos)
        if text[pos] == "}":
            return found
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip(_WS, text, pos) + 1  # past ":"
        pos = _skip(_WS, text, pos)
        if key == "rows":
            found = pos
        pos = decoder.raw_decode(text, pos)[1]


def _read_yaml(text: str) -> list[tuple[int, dict[str, Any]]]:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ImportFileError(f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ImportFileError("invalid YAML: nested too deeply") from exc
    if node is None:
        return []
    if isinstance(node, yaml.MappingNode):
        rows = [v for k, v in node.value if getattr(k, "value", None) == "rows"]
        if not rows:
            raise ImportFileError("expected a YAML list of rows, or rows: [...]")
        node = rows[0]
    if not isinstance(node, yaml.SequenceNode):
        raise ImportFileError("expected a YAML list of rows")

    class Loader(yaml.SafeLoader):
        def construct_yaml_int(self, node: Any) -> int:
            value: int = super().construct_yaml_int(node)
            str(value)  # 0x + 5000 digits: ValueError now, not where a row prints it
            return value

    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    loader = Loader("")
    out = []
    for item in node.value:
        line = item.start_mark.line + 1
        try:
            out.append((line, loader.construct_document(item)))
        # a tag the safe loader refuses, or a tagged value it can't convert
        # (!!int abc, !!bool maybe, !!timestamp 2020-13-45...)
        except (yaml.YAMLError, ValueError, TypeError, KeyError, RecursionError) as exc:
            problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
            if isinstance(exc, KeyError):  # !!bool maybe
                problem = f"{exc.args[0]!r} is not a value its tag allows"
            raise ImportFileError(f"line {line}: invalid YAML value: {problem}") from exc
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) < 19 and value.isascii() and value.isdigit():
        return int(value)  # the common case, without a regular expression
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        try:
            return int(value)
        except ValueError:  # over 4300 digits: far out of range, keep the sign
            return -(MAX_QTY + 1) if value.strip().startswith("-") else MAX_QTY + 1
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@functools.lru_cache(maxsize=64)
def _column_plan(keys: tuple[Any, ...], columns: tuple[str, ...]) -> tuple[str, ...] | RowError:
    """The canonical name of each of a row's keys (aliases resolved), or what
    is wrong with them (line 0: the caller's). The same for every row of a
    CSV file, so worked out once per file, not per row."""
    names: list[str] = []
    given: dict[str, str] = {}
    for k in keys:
        name = ALIASES.get(str(k), str(k))
        if name in given:
            return RowError(0, name, f"given twice (as {given[name]!r} and {k!r})")
        names.append(name)
        given[name] = str(k)
    unknown = sorted(set(names) - set(columns))
    if unknown:
        return RowError(0, unknown[0], f"unknown column (expected: {', '.join(columns)})")
    return tuple(names)


def _normalise(
    raw: Any, line: int, columns: tuple[str, ...], errors: list[RowError]
) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        errors.append(RowError(line, "row", "expected an object with named fields"))
        return None
    plan = _column_plan(tuple(raw), columns)
    if isinstance(plan, RowError):
        errors.append(RowError(line, plan.field, plan.error))
        return None
    row = {k: v for k, v in zip(plan, raw.values(), strict=True) if v is not None and v != ""}
    sku = row.get("sku")
    if sku is None or str(sku).strip() == "":
        errors.append(RowError(line, "sku", "is required"))
        return None
    if not SKU_RE.match(str(sku)):
        errors.append(RowError(line, "sku", f"{sku!r} is not a valid SKU"))
        return None
    return row


def stock_rows(records: list[tuple[int, Any]]) -> tuple[list[dict[str, Any]], list[RowError]]:
    errors: list[RowError] = []
    rows = []
    for line, raw in records:
        row = _normalise(raw, line, STOCK_COLUMNS, errors)
        if row is None:
            continue
        checked = _stock_row(line, row)
        if isinstance(checked, RowError):
            errors.append(checked)
        else:
            rows.append(checked)
    return rows, errors


def _stock_row(line: int, row: dict[str, Any]) -> dict[str, Any] | RowError:
    """One stock row as sent to the agent, or its first error. A row may
    leave out the quantity if it sets the safety stock (and then only that)."""
    mode = str(row.get("mode", "set")).lower()
    store = row.get("storeId")
    safety = _safety_stock(line, row)
    if isinstance(safety, RowError):
        return safety
    if "quantity" not in row and safety is None:
        return RowError(line, "quantity", "is required (unless the row sets safetyStock)")
    qty = _quantity(line, row, mode)
    if isinstance(qty, RowError):
        return qty
    if mode not in ("set", "add"):
        return RowError(line, "mode", f"{row['mode']!r} must be set or add")
    if store is not None and not STORE_RE.match(str(store)):
        return RowError(line, "storeId", f"{store!r} is not a valid store id")
    if len(str(row.get("reason", ""))) > 200:
        return RowError(line, "reason", "must be at most 200 characters")
    # the agent's defaults (this store, mode set, no reason) are left out: a
    # 100,000-row file is then 40 % less JSON to encode and parse
    out: dict[str, Any] = {"line": line, "sku": str(row["sku"])}
    if qty is not None:
        out["quantity"] = qty
    if store is not None:
        out["storeId"] = str(store)
    if mode != "set":
        out["mode"] = mode
    if row.get("reason"):
        out["reason"] = str(row["reason"])
    if safety is not None:
        out["safetyStock"] = safety
    return out


def _quantity(line: int, row: dict[str, Any], mode: str) -> int | RowError | None:
    """The row's quantity (None: not given)."""
    if "quantity" not in row:
        return None
    qty = _int(row["quantity"])
    if qty is None:
        return RowError(line, "quantity", f"{row['quantity']!r} is not a whole number")
    if mode == "set" and qty < 0:
        return RowError(line, "quantity", "must be 0 or more when mode is set")
    if abs(qty) > MAX_QTY:
        return RowError(line, "quantity", f"must be at most {MAX_QTY}")
    return qty


def _safety_stock(line: int, row: dict[str, Any]) -> int | RowError | None:
    """The row's safetyStock (None: not given, an empty cell: leave it as it is)."""
    if "safetyStock" not in row:
        return None
    value = _int(row["safetyStock"])
    if value is None:
        return RowError(line, "safetyStock", f"{row['safetyStock']!r} is not a whole number")
    if not 0 <= value <= MAX_QTY:
        return RowError(line, "safetyStock", f"must be 0 to {MAX_QTY}")
    return value


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    return None


def product_rows(records: list[tuple[int, Any]]) -> tuple[list[dict[str, Any]], list[RowError]]:
    errors: list[RowError] = []
    rows = []
    for line, raw in records:
        row = _normalise(raw, line, PRODUCT_COLUMNS, errors)
        if row is None:
            continue
        out: dict[str, Any] = {"line": line, "sku": str(row["sku"])}
        ok = True
        if "price" in row:
            try:
                price = float(row["price"])
                if not 0 <= price <= 1e9:
                    raise ValueError
                out["price"] = price
            except (TypeError, ValueError, OverflowError):
                errors.append(RowError(line, "price", f"{row['price']!r} is not a price >= 0"))
                ok = False
        if "active" in row:
            active = _bool(row["active"])
            if active is None:
                errors.append(RowError(line, "active", f"{row['active']!r} is not true/false"))
                ok = False
            out["active"] = active
        for field, limit in (("id", 128), ("name", 200), ("description", 2000), ("category", 200)):
            if field in row:
                value = str(row[field])
                if len(value) > limit:
                    errors.append(RowError(line, field, f"must be at most {limit} characters"))
                    ok = False
                out[field] = value
        if ok:
            rows.append(out)
    return rows, errors
