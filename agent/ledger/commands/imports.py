"""All-or-nothing imports of stock levels and products from a file.

An import's id is the digest of its rows: the same file is applied once (a
retry answers "already imported") unless forced. Any invalid row rolls the
whole import back; a dry run does all the work and keeps none of it. A stock
row may also set the SKU's safety stock and reorder settings at its store
(``import_settings``), in the same transaction. The whole import is one write
for the low-stock alerts (``Engine.as_one_write``): each row is judged once,
at the end, against its level before the import."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.domain import ANY_STORE, MovementKind, product_id_for
from agent.errors import InvalidInput
from agent.ledger import queries
from agent.ledger.commands.common import rows_fingerprint
from agent.ledger.commands.import_settings import SETTING_KEYS, Change, ImportSettings, sets_any
from agent.ledger.engine import Engine, dumps
from agent.ledger.engine.batch import stocked_stores
from agent.ledger.store import DryRun

CHANGES_SHOWN = 1000  # an import's answer lists its first changes only
STOCK_KEYS = ("sku", "storeId", "quantity", "mode", "reason")
PRODUCT_KEYS = ("sku", "id", "name", "description", "category", "price", "active")

Level = tuple[int, int, str]  # a stock row's (on_hand, reserved, writers)


# ------------------------------------------------------------------- stock
def import_stock(
    conn: sqlite3.Connection,
    engine: Engine,
    rows: list[dict[str, Any]],
    dry_run: bool,
    force: bool,
    actor: str,
) -> dict[str, Any]:
    """All-or-nothing stock import. ``rows`` carry their source line numbers."""
    # a file without a settings column keeps the id it had before the column existed
    given = tuple(k for k in SETTING_KEYS if any(k in r for r in rows))
    import_id = rows_fingerprint(rows, (*STOCK_KEYS, *given))
    previous = _previous_import(conn, import_id, len(rows), dry_run)
    if previous is not None and not force:
        return previous
    with engine.as_one_write(conn):
        run = _StockImport(conn, engine, actor, rows)
        for r in rows:
            run.add(r)
        run.batch.flush()
        run.settings.emit()
    if run.errors:  # raising rolls back every row applied above
        run.errors.sort(key=lambda e: e["line"])
        raise InvalidInput(
            f"{len(run.errors)} invalid row(s); nothing was imported", errors=run.errors
        )
    return _finish_import(
        conn,
        engine,
        "stock",
        import_id,
        len(rows),
        run.changes,
        actor,
        dry_run,
        run.changed,
        run.batch.events,
    )


class _StockImport:
    """One stock import's rows, applied in order: their movements gathered
    into ``stock.batch`` events (``Engine.stock_batch``), a few thousand rows
    an event."""

    def __init__(
        self, conn: sqlite3.Connection, engine: Engine, actor: str, rows: list[dict[str, Any]]
    ) -> None:
        self.conn, self.engine, self.actor = conn, engine, actor
        self.skus = _known_skus(conn, {r["sku"] for r in rows})
        self.errors: list[dict[str, Any]] = [
            {
                "line": r["line"],
                "field": "sku",
                "error": f"unknown SKU {r['sku']!r} (add it with: inv product add)",
            }
            for r in rows
            if r["sku"] not in self.skus
        ]
        self.seen = engine.basis(conn)  # for the rows this import has not changed yet
        self.changes: list[dict[str, Any]] = []  # the first CHANGES_SHOWN; ``changed`` counts all
        self.changed = 0
        self.batch = engine.stock_batch(conn)
        keys = [(r["sku"], r["storeId"]) for r in rows if r["sku"] in self.skus]
        self.levels = _stock_levels(conn, keys)
        self.touched: set[tuple[str, str]] = set()  # keys this import has changed so far
        self.settings = ImportSettings(conn, engine, rows)

    def add(self, r: dict[str, Any]) -> None:
        if r["sku"] not in self.skus:
            return  # reported already
        if r["storeId"] == ANY_STORE:
            self._error(r, f"{ANY_STORE!r} is not a store: it asks for routing", "storeId")
            return
        if "quantity" not in r and not sets_any(r):
            self._error(r, f"is required (unless the row sets {', '.join(SETTING_KEYS)})")
            return
        if "quantity" in r and r["mode"] == "set" and r["quantity"] < 0:
            self._error(r, "a count cannot be negative")
            return
        settings = self.settings.add(r)
        if isinstance(settings, tuple):
            self._error(r, settings[1], settings[0])
            return
        level = self._stock_change(r)
        if level is not None or settings is not None:
            on_hand = level[0] if level else self._on_hand(r)
            self._note_change(r, on_hand, level[1] if level else on_hand, settings)

    def _on_hand(self, r: dict[str, Any]) -> int:
        level, _ = self._level((r["sku"], r["storeId"]))
        return level[0] if level else 0

    def _stock_change(self, r: dict[str, Any]) -> tuple[int, int] | None:
        """Apply the row's quantity, if it has one and it changes the level:
        the row's (on hand before, after); None if it changes nothing."""
        if "quantity" not in r:
            return None
        key = (r["sku"], r["storeId"])
        level, seen = self._level(key)
        on_hand = level[0] if level else 0
        available = on_hand - (level[1] if level else 0)
        if r["mode"] == "add" and -r["quantity"] > available:
            # like a subtract: an import never takes available below zero
            self._error(
                r,
                f"insufficient stock: available={max(available, 0)}, requested={-r['quantity']}",
            )
            return None
        target = r["quantity"] if r["mode"] == "set" else on_hand + r["quantity"]
        if target == on_hand:
            return None
        self.batch.add(self._movement(r, level, seen))
        self.touched.add(key)
        return on_hand, target

    def _level(self, key: tuple[str, str]) -> tuple[Level | None, dict[str, int]]:
        """The row's level before this import row, and what a count on it has
        seen. A row this import has changed already is read back from the
        ledger, with this import's own writes in what it has seen."""
        if key not in self.touched:
            return self.levels.get(key), self.seen
        if key in self.batch.keys:
            self.batch.flush()
        row = queries.stock_level(self.conn, *key)
        level = (row["on_hand"], row["reserved"], row["writers"]) if row else None
        return level, self.engine.basis(self.conn)

    def _movement(
        self, r: dict[str, Any], level: Level | None, seen: dict[str, int]
    ) -> dict[str, Any]:
        mv: dict[str, Any] = {
            "sku": r["sku"],
            "storeId": r["storeId"],
            "reason": r.get("reason") or "import",
            "actor": self.actor,
        }
        if r["mode"] == "set":
            mv.update(kind=str(MovementKind.COUNT), quantity=r["quantity"])
            basis = self.engine.count_basis(seen, level[2]) if level else {}
            if basis:
                mv["basis"] = basis
        else:
            kind = MovementKind.RECEIVE if r["quantity"] > 0 else MovementKind.ADJUST
            mv.update(kind=str(kind), quantity=r["quantity"])
        return mv

    def _note_change(
        self, r: dict[str, Any], before: int, after: int, settings: Change | None
    ) -> None:
        self.changed += 1
        if self.changed <= CHANGES_SHOWN:
            change = {
                "line": r["line"],
                "sku": r["sku"],
                "storeId": r["storeId"],
                "mode": r["mode"],
                "from": before,
                "to": after,
            }
            self.changes.append({**change, **(settings or {})})

    def _error(self, r: dict[str, Any], message: str, field: str = "quantity") -> None:
        self.errors.append({"line": r["line"], "field": field, "error": message})


def _stock_levels(
    conn: sqlite3.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Level]:
    """(on_hand, reserved, writers) of those of ``keys`` that have a stock row,
    in one query rather than a lookup per row (none for a store with no stock)."""
    stocked = stocked_stores(conn, {store for _, store in keys})
    keys = [k for k in keys if k[1] in stocked]
    if not keys:
        return {}
    found = conn.execute(
        "SELECT s.sku, s.store_id, s.on_hand, s.reserved, s.writers FROM json_each(?) AS k "
        "CROSS JOIN stock AS s "
        "ON s.sku = json_extract(k.value, '$[0]') AND s.store_id = json_extract(k.value, '$[1]')",
        (dumps(keys),),
    )
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in found}


def _known_skus(conn: sqlite3.Connection, skus: set[str]) -> set[str]:
    if len(skus) > 500:
        return {r[0] for r in conn.execute("SELECT sku FROM products")} & skus
    return {
        r[0]
        for r in conn.execute(
            f"SELECT sku FROM products WHERE sku IN ({','.join('?' * len(skus))})", list(skus)
        )
    }


# ---------------------------------------------------------------- products
def import_products(
    conn: sqlite3.Connection,
    engine: Engine,
    rows: list[dict[str, Any]],
    dry_run: bool,
    force: bool,
) -> dict[str, Any]:
    import_id = rows_fingerprint(rows, PRODUCT_KEYS)
    previous = _previous_import(conn, import_id, len(rows), dry_run)
    if previous is not None and not force:
        return previous
    changes: list[dict[str, Any]] = []
    basis = engine.basis(conn)
    for r in rows:
        existing = conn.execute("SELECT * FROM products WHERE sku = ?", (r["sku"],)).fetchone()
        diff = _product_diff(existing, r)
        if not diff:
            continue
        changes.append(
            {
                "line": r["line"],
                "sku": r["sku"],
                "action": "create" if existing is None else "update",
                "fields": sorted(diff),
            }
        )
        engine.emit(conn, "product.upserted", {"sku": r["sku"], "fields": diff, "basis": basis})
    return _finish_import(conn, engine, "products", import_id, len(rows), changes, "", dry_run)


def _product_diff(existing: sqlite3.Row | None, r: dict[str, Any]) -> dict[str, Any]:
    """The fields an import row writes: all of a new product's (defaults for
    those not given), the changed ones of an existing product's."""
    given = {k: r[k] for k in PRODUCT_KEYS[1:] if r.get(k) is not None}
    if existing is None:
        given.setdefault("id", product_id_for(r["sku"]))
        defaults = {"name": "", "description": "", "category": "", "price": 0.0, "active": True}
        return {**defaults, **given}
    return {k: v for k, v in given.items() if existing[k] != (int(v) if k == "active" else v)}


# ------------------------------------------------------------------ common
def _previous_import(
    conn: sqlite3.Connection, import_id: str, rows: int, dry_run: bool
) -> dict[str, Any] | None:
    """The answer for a file that was imported before: nothing applied."""
    done = conn.execute("SELECT * FROM imports WHERE id = ?", (import_id,)).fetchone()
    if done is None:
        return None
    return {
        "importId": import_id,
        "rows": rows,
        "applied": 0,
        "unchanged": rows,
        "alreadyImported": True,
        "importedAt": queries.iso(done["created_at_ms"]),
        "dryRun": dry_run,
        "changes": [],
    }


def _finish_import(
    conn: sqlite3.Connection,
    engine: Engine,
    kind: str,
    import_id: str,
    rows: int,
    changes: list[dict[str, Any]],
    actor: str,
    dry_run: bool,
    changed: int | None = None,
    events: int | None = None,
) -> dict[str, Any]:
    """Record the import (so the same file is not applied twice) and answer;
    a dry run is rolled back whole by the store. ``changed`` counts the
    changes when ``changes`` holds only the first of them; ``events``: the
    stock.batch events a stock import's movements went into."""
    changed = len(changes) if changed is None else changed
    conn.execute(
        "INSERT OR REPLACE INTO imports (id, kind, rows, changes, actor, created_at_ms) "
        "VALUES (?,?,?,?,?,?)",
        (import_id, kind, rows, changed, actor, engine.wall_ms()),
    )
    result = {
        "importId": import_id,
        "rows": rows,
        "applied": 0 if dry_run else changed,
        "unchanged": rows - changed,
        "alreadyImported": False,
        "dryRun": dry_run,
        "changes": changes[:CHANGES_SHOWN],
        "changesTruncated": changed > CHANGES_SHOWN,
    }
    if events is not None:
        result["events"] = 0 if dry_run else events
    if dry_run:
        raise DryRun(result)
    return result
