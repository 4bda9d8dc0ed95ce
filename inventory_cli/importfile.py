"""Import files (CSV, JSON, YAML) into rows that remember their line.

Everything is validated before anything is sent: every bad row is reported
with its line number and the field, and then nothing is imported. Reading
each format is ``importformats``'s.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from inventory_cli.importformats import FORMATS, ImportFileError, detect_format, read_records

__all__ = [
    "FORMATS",
    "ImportFileError",
    "RowError",
    "detect_format",
    "product_rows",
    "read_records",
    "stock_rows",
]
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")
STORE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
MAX_QTY = 1_000_000_000

# reorder settings: the least each may be (a reorder quantity orders something)
REORDER_COLUMNS = {"reorderPoint": 0, "maxStock": 0, "reorderQty": 1}
SETTING_COLUMNS = ("safetyStock", *REORDER_COLUMNS)
STOCK_COLUMNS = ("sku", "storeId", "quantity", "mode", "reason", *SETTING_COLUMNS)
PRODUCT_COLUMNS = ("sku", "id", "name", "description", "category", "price", "active")
ALIASES = {
    "store_id": "storeId",
    "store": "storeId",
    "qty": "quantity",
    "safety_stock": "safetyStock",
    "reorder_point": "reorderPoint",
    "max_stock": "maxStock",
    "reorder_qty": "reorderQty",
}


@dataclass
class RowError:
    line: int
    field: str
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.error}"


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
    leave out the quantity if it sets the safety stock or a reorder setting
    (and then only those)."""
    mode = str(row.get("mode", "set")).lower()
    store = row.get("storeId")
    settings = _settings(line, row)
    if isinstance(settings, RowError):
        return settings
    if "quantity" not in row and not settings:
        return RowError(
            line, "quantity", f"is required (unless the row sets {', '.join(SETTING_COLUMNS)})"
        )
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
    return {**out, **settings}


def _settings(line: int, row: dict[str, Any]) -> dict[str, int | None] | RowError:
    """The row's stock settings: a column left out or empty leaves the
    setting as it is; ``none`` clears a reorder setting (null in the agent's JSON)."""
    safety = _safety_stock(line, row)
    if isinstance(safety, RowError):
        return safety
    out: dict[str, int | None] = {} if safety is None else {"safetyStock": safety}
    for name, least in REORDER_COLUMNS.items():
        if name not in row:
            continue
        if str(row[name]).strip().lower() == "none":
            out[name] = None
            continue
        value = _int(row[name])
        if value is None:
            return RowError(line, name, f"{row[name]!r} is not a whole number (or none to clear)")
        if not least <= value <= MAX_QTY:
            return RowError(line, name, f"must be {least} to {MAX_QTY}")
        out[name] = value
    point, most = out.get("reorderPoint"), out.get("maxStock")
    if point is not None and most is not None and most < point:
        return RowError(line, "maxStock", f"{most} is below the reorderPoint {point}")
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
