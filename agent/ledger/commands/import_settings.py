"""The stock settings a stock import's rows make: a SKU's safety stock
(``safetyStock``) and its reorder settings (``reorderPoint``, ``maxStock``,
``reorderQty``) at the row's store.

Checked and noted row by row (a later row of the same SKU and store wins; a
column a row leaves out leaves the setting as it is, a null clears it),
written once at the end: one ``stock.settings`` event per (SKU, store) whose
safety stock changed, one ``stock.reorder`` event with the changed fields
per (SKU, store) whose reorder settings did."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.errors import InvalidInput
from agent.ledger import directory
from agent.ledger.commands.directory import emit_safety_stock
from agent.ledger.commands.reorder import REORDER_FIELDS, check_levels, emit_reorder
from agent.ledger.engine import Engine, dumps

SAFETY_KEY = "safetyStock"
SETTING_KEYS = (SAFETY_KEY, *REORDER_FIELDS)
_COLUMNS = "safety_stock, reorder_point, max_stock, reorder_qty"

Key = tuple[str, str]
Settings = dict[str, int | None]
Change = dict[str, dict[str, int | None]]  # {field: {"from": ..., "to": ...}}


def sets_any(row: dict[str, Any]) -> bool:
    return any(k in row for k in SETTING_KEYS)


class ImportSettings:
    def __init__(self, conn: sqlite3.Connection, engine: Engine, rows: list[dict[str, Any]]):
        self.conn, self.engine = conn, engine
        self.current: dict[Key, Settings] = {}
        self.before: dict[Key, Settings] = {}
        given = {(r["sku"], r["storeId"]) for r in rows if sets_any(r)}
        self.stores: set[str] = set()
        if given:  # where settings can be made: stores known, or stocked by this file
            self.stores = {*directory.known_store_ids(conn), engine.store_id}
            self.stores |= {r["storeId"] for r in rows if "quantity" in r}
            self.before = _settings(conn, sorted(given))

    def add(self, r: dict[str, Any]) -> Change | tuple[str, str] | None:
        """The row's changes of the settings, None if it makes none, or what
        is wrong with it: (field, message)."""
        fields = [k for k in SETTING_KEYS if k in r]
        if not fields:
            return None
        if r["storeId"] not in self.stores:
            return fields[0], (
                f"store {r['storeId']!r} is not known to this agent: describe it first "
                f"(inv store set {r['storeId']}), or give the row a quantity"
            )
        key = (r["sku"], r["storeId"])
        old = self.current.get(key) or self.before.get(key) or dict.fromkeys(SETTING_KEYS)
        new = {**old, **{k: r[k] for k in fields}}
        try:
            check_levels(new)
        except InvalidInput as exc:
            return "maxStock", exc.message.split(": ", 1)[1]
        self.current[key] = new
        change = {k: {"from": old[k], "to": new[k]} for k in fields if old[k] != new[k]}
        return change or None

    def emit(self) -> None:
        for (sku, store), now in self.current.items():
            was = self.before.get((sku, store)) or dict.fromkeys(SETTING_KEYS)
            if now[SAFETY_KEY] != was[SAFETY_KEY]:
                emit_safety_stock(self.conn, self.engine, sku, store, now[SAFETY_KEY])
            diff = {k: now[k] for k in REORDER_FIELDS if now[k] != was[k]}
            if diff:
                emit_reorder(self.conn, self.engine, sku, store, diff)


def _settings(conn: sqlite3.Connection, keys: list[Key]) -> dict[Key, Settings]:
    """The settings of those of ``keys`` (sku, store) that have a row, in one query."""
    found = conn.execute(
        f"SELECT s.sku, s.store_id, {_COLUMNS} FROM json_each(?) AS k "
        "CROSS JOIN stock_settings AS s "
        "ON s.sku = json_extract(k.value, '$[0]') AND s.store_id = json_extract(k.value, '$[1]')",
        (dumps(keys),),
    )
    return {(r[0], r[1]): dict(zip(SETTING_KEYS, tuple(r)[2:], strict=True)) for r in found}
