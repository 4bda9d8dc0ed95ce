"""Local commands: the business rules that need the ledger's current state.

Each function runs on the writer thread inside one transaction (see
``LedgerStore.write``): it checks, then records its change as events through
the engine. Nothing here is applied partially.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from agent.domain import (
    OPERATION_KIND,
    MovementKind,
    ReservationStatus,
    product_id_for,
)
from agent.errors import Conflict, InsufficientStock, InvalidInput, Unavailable
from agent.ledger import queries
from agent.ledger.engine import Engine, dumps, now_ms
from agent.ledger.store import DryRun


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(dumps(obj).encode()).hexdigest()


FINGERPRINT_CHUNK = 10_000


def rows_fingerprint(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    """``fingerprint([{k: r.get(k) for k in keys} for r in rows])``, the same
    digest (files imported before keep being recognised), built from the JSON
    of ``FINGERPRINT_CHUNK`` rows at a time: one C-level encode per chunk, and
    never the whole file's text in memory at once."""
    h = hashlib.sha256(b"[")
    for start in range(0, len(rows), FINGERPRINT_CHUNK):
        part = rows[start : start + FINGERPRINT_CHUNK]
        chunk = dumps([{k: r.get(k) for k in keys} for r in part])
        if start:
            h.update(b",")
        h.update(chunk[1:-1].encode())  # the rows, without the list's brackets
    h.update(b"]")
    return h.hexdigest()


def _stock_levels(
    conn: sqlite3.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int, str]]:
    """(on_hand, reserved, writers) of those of ``keys`` that have a stock row,
    in one query (a lookup per row costs an import of 100,000 rows ~0.4 s)."""
    found = conn.execute(
        "SELECT s.sku, s.store_id, s.on_hand, s.reserved, s.writers FROM json_each(?) AS k "
        "CROSS JOIN stock AS s "
        "ON s.sku = json_extract(k.value, '$[0]') AND s.store_id = json_extract(k.value, '$[1]')",
        (dumps(keys),),
    )
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in found}


# ------------------------------------------------------------- idempotency
def recall(conn: sqlite3.Connection, key: str, fp: str) -> Any | None:
    """The stored response for a retried request, or None the first time.
    The same key with a different body is refused, never silently applied."""
    row = conn.execute(
        "SELECT fingerprint, response FROM idempotency WHERE key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    if row[0] != fp:
        raise Conflict(
            f"idempotency key {key.partition(':')[2] or key!r} was already used with a "
            "different request; "
            "use a new key for a new change"
        )
    return json.loads(row[1])


def remember(conn: sqlite3.Connection, key: str, fp: str, response: Any) -> None:
    conn.execute(
        "INSERT INTO idempotency (key, fingerprint, response, created_at_ms) VALUES (?,?,?,?)",
        (key, fp, dumps(response), now_ms()),
    )


# ---------------------------------------------------------------- products
def create_product(
    conn: sqlite3.Connection, engine: Engine, fields: dict[str, Any]
) -> dict[str, Any]:
    sku = fields["sku"]
    existing = conn.execute("SELECT * FROM products WHERE sku = ?", (sku,)).fetchone()
    pid = fields.get("id") or product_id_for(sku)
    if existing is not None:
        same = all(
            existing[k] == (int(v) if k == "active" else v)
            for k, v in fields.items()
            if k not in ("sku",) and v is not None
        )
        if same:
            return queries.product_view(existing)
        raise Conflict(f"product {sku!r} already exists; change it with: inv product update {sku}")
    other = conn.execute("SELECT sku FROM products WHERE id = ?", (pid,)).fetchone()
    if other is not None:
        raise Conflict(f"product id {pid!r} is already used by {other[0]!r}")
    values = {
        "id": pid,
        "name": fields.get("name") or "",
        "description": fields.get("description") or "",
        "category": fields.get("category") or "",
        "price": float(fields.get("price") or 0),
        "active": bool(fields.get("active", True)),
    }
    engine.emit(
        conn, "product.upserted", {"sku": sku, "fields": values, "basis": engine.basis(conn)}
    )
    return queries.get_product(conn, sku)


def update_product(
    conn: sqlite3.Connection, engine: Engine, ref: str, changes: dict[str, Any]
) -> dict[str, Any]:
    row = queries.product_row(conn, ref)
    diff = {
        k: v
        for k, v in changes.items()
        if v is not None and row[k] != (int(v) if k == "active" else v)
    }
    if diff:
        engine.emit(
            conn,
            "product.upserted",
            {"sku": row["sku"], "fields": diff, "basis": engine.basis(conn)},
        )
    return queries.get_product(conn, row["sku"])


# ------------------------------------------------------------------- stock
def update_stock(
    conn: sqlite3.Connection,
    engine: Engine,
    ref: str,
    store: str,
    operation: str,
    quantity: int,
    reason: str,
    actor: str,
    expected_version: int | None,
    idem_key: str | None,
) -> dict[str, Any]:
    prod = queries.product_row(conn, ref)
    request = {
        "ref": prod["sku"],
        "store": store,
        "op": operation,
        "qty": quantity,
        "reason": reason,
        "expectedVersion": expected_version,
    }
    fp = fingerprint(request)
    if idem_key:
        previous = recall(conn, f"stock:{idem_key}", fp)
        if previous is not None:
            return {**previous, "replayed": True}
    row = queries.stock_level(conn, prod["sku"], store)
    version = row["version"] if row else 0
    if expected_version is not None and expected_version != version:
        raise Conflict(
            f"version mismatch: expected {expected_version}, current version is {version}; "
            "re-read with: inv stock show " + prod["sku"],
            currentVersion=version,
        )
    kind = OPERATION_KIND[operation]
    on_hand = row["on_hand"] if row else 0
    reserved = row["reserved"] if row else 0
    if kind == MovementKind.ADJUST:
        if quantity > on_hand - reserved:
            raise InsufficientStock(on_hand - reserved, quantity)
        signed = -quantity
    else:
        signed = quantity
    movement: dict[str, Any] = {
        "sku": prod["sku"],
        "storeId": store,
        "kind": str(kind),
        "quantity": signed,
        "reason": reason,
        "actor": actor,
    }
    if kind == MovementKind.COUNT and row is not None:
        basis = engine.count_basis(engine.basis(conn), row["writers"])
        if basis:
            movement["basis"] = basis
    event = engine.emit(conn, "stock.movement", movement)
    after = queries.stock_level(conn, prod["sku"], store)
    assert after is not None
    result = {
        "message": "Stock updated",
        "movementId": event["id"],
        "operation": operation,
        **queries.stock_view(after, prod["id"]),
    }
    if idem_key:
        remember(conn, f"stock:{idem_key}", fp, result)
    return result


# ------------------------------------------------------------ reservations
def _reservation_event(
    conn: sqlite3.Connection,
    engine: Engine,
    row: dict[str, Any],
    status: str,
    order_id: str | None = None,
    movement: dict[str, Any] | None = None,
) -> None:
    now = now_ms()
    r = {
        "id": row["id"],
        "sku": row["sku"],
        "storeId": row["store_id"],
        "quantity": row["quantity"],
        "customerId": row["customer_id"],
        "status": status,
        "orderId": order_id if order_id is not None else row.get("order_id"),
        "expiresAtMs": row["expires_at_ms"],
        "createdAtMs": row["created_at_ms"],
        "updatedAtMs": now,
    }
    data: dict[str, Any] = {"reservation": r}
    if movement:
        data["movement"] = movement
    engine.emit(conn, "reservation.changed", data)


def expire_due(
    conn: sqlite3.Connection,
    engine: Engine,
    sku: str | None = None,
    store: str | None = None,
    limit: int = 500,
) -> int:
    """Write EXPIRED for this store's PENDING reservations past their expiry."""
    sql = (
        "SELECT * FROM reservations WHERE status = 'PENDING' AND expires_at_ms <= ? "
        "AND store_id = ?"
    )
    params: list[Any] = [now_ms(), engine.store_id]
    if sku:
        sql += " AND sku = ?"
        params.append(sku)
    rows = conn.execute(sql + " ORDER BY expires_at_ms LIMIT ?", [*params, limit]).fetchall()
    for row in rows:
        _reservation_event(conn, engine, dict(row), ReservationStatus.EXPIRED)
    return len(rows)


def reserve(
    conn: sqlite3.Connection,
    engine: Engine,
    rid: str,
    ref: str,
    store: str,
    quantity: int,
    customer: str | None,
    ttl: int,
) -> tuple[dict[str, Any], bool]:
    """Returns (reservation, created). The owner is the only writer."""
    if store != engine.store_id:
        raise Unavailable(f"store {store!r} owns that stock; only its agent can reserve it")
    prod = queries.product_row(conn, ref)
    existing = conn.execute("SELECT * FROM reservations WHERE id = ?", (rid,)).fetchone()
    if existing is not None:
        same = (
            existing["sku"],
            existing["store_id"],
            existing["quantity"],
            existing["customer_id"],
            existing["expires_at_ms"] - existing["created_at_ms"],
        ) == (prod["sku"], store, quantity, customer, ttl * 1000)
        if not same:
            raise Conflict(
                f"reservation id {rid!r} already exists with a different request; "
                "use a new id for a new reservation"
            )
        return queries.reservation_view(existing, prod["id"]), False
    expire_due(conn, engine, prod["sku"], store)
    row = queries.stock_level(conn, prod["sku"], store)
    available = (row["on_hand"] - row["reserved"]) if row else 0
    if quantity > available:
        raise InsufficientStock(max(available, 0), quantity)
    now = now_ms()
    new = {
        "id": rid,
        "sku": prod["sku"],
        "store_id": store,
        "quantity": quantity,
        "customer_id": customer,
        "expires_at_ms": now + ttl * 1000,
        "created_at_ms": now,
        "order_id": None,
    }
    _reservation_event(conn, engine, new, ReservationStatus.PENDING)
    return queries.get_reservation(conn, rid), True


def _owned_reservation(conn: sqlite3.Connection, engine: Engine, rid: str) -> sqlite3.Row:
    row = queries.reservation_row(conn, rid)
    if row["store_id"] != engine.store_id:
        raise Unavailable(f"reservation {rid!r} belongs to store {row['store_id']!r}")
    return row


def confirm(
    conn: sqlite3.Connection, engine: Engine, rid: str, order_id: str | None, actor: str
) -> dict[str, Any]:
    row = _owned_reservation(conn, engine, rid)
    status = row["status"]
    if status == ReservationStatus.PENDING and row["expires_at_ms"] <= now_ms():
        _reservation_event(conn, engine, dict(row), ReservationStatus.EXPIRED)
        status = ReservationStatus.EXPIRED
    if status == ReservationStatus.CONFIRMED:
        if order_id and row["order_id"] and order_id != row["order_id"]:
            raise Conflict(f"reservation {rid!r} was confirmed for order {row['order_id']!r}")
        return queries.get_reservation(conn, rid)
    if status != ReservationStatus.PENDING:
        raise Conflict(
            f"reservation {rid!r} is {status}; it can no longer be confirmed", status=str(status)
        )
    sell = {
        "sku": row["sku"],
        "storeId": row["store_id"],
        "kind": str(MovementKind.SELL),
        "quantity": -row["quantity"],
        "reason": f"order {order_id}" if order_id else "sale",
        "actor": actor,
    }
    _reservation_event(conn, engine, dict(row), ReservationStatus.CONFIRMED, order_id, sell)
    return queries.get_reservation(conn, rid)


def cancel(conn: sqlite3.Connection, engine: Engine, rid: str) -> dict[str, Any]:
    row = _owned_reservation(conn, engine, rid)
    status = row["status"]
    if status == ReservationStatus.PENDING and row["expires_at_ms"] <= now_ms():
        _reservation_event(conn, engine, dict(row), ReservationStatus.EXPIRED)
        status = ReservationStatus.EXPIRED
    if status == ReservationStatus.CANCELLED:
        return queries.get_reservation(conn, rid)
    if status != ReservationStatus.PENDING:
        raise Conflict(
            f"reservation {rid!r} is {status}; it can no longer be cancelled", status=str(status)
        )
    _reservation_event(conn, engine, dict(row), ReservationStatus.CANCELLED)
    return queries.get_reservation(conn, rid)


# ----------------------------------------------------------------- imports
CHANGES_SHOWN = 1000  # an import's answer lists its first changes only


def import_stock(
    conn: sqlite3.Connection,
    engine: Engine,
    rows: list[dict[str, Any]],
    dry_run: bool,
    force: bool,
    actor: str,
) -> dict[str, Any]:
    """All-or-nothing stock import. ``rows`` carry their source line numbers."""
    import_id = rows_fingerprint(rows, ("sku", "storeId", "quantity", "mode", "reason"))
    previous = _previous_import(conn, import_id, len(rows), dry_run)
    if previous is not None and not force:
        return previous
    skus = _known_skus(conn, {r["sku"] for r in rows})
    errors = [
        {
            "line": r["line"],
            "field": "sku",
            "error": f"unknown SKU {r['sku']!r} (add it with: inv product add)",
        }
        for r in rows
        if r["sku"] not in skus
    ]
    seen = engine.basis(conn)  # for the rows this import has not changed yet
    changes: list[dict[str, Any]] = []  # the first CHANGES_SHOWN; ``changed`` counts all
    changed = 0
    # rows new to the ledger (the bulk of a first import) are written in bulk,
    # the others one by one through emit; both write the same events
    new = engine.new_stock_movements(conn)
    levels = _stock_levels(conn, [(r["sku"], r["storeId"]) for r in rows if r["sku"] in skus])
    touched: set[tuple[str, str]] = set()  # keys this import has changed so far
    for r in rows:
        if r["sku"] not in skus:
            continue
        if r["mode"] == "set" and r["quantity"] < 0:
            errors.append(
                {"line": r["line"], "field": "quantity", "error": "a count cannot be negative"}
            )
            continue
        key = (r["sku"], r["storeId"])
        if key in touched:  # a second row for it: read it back from the ledger
            if key in new.keys:
                new.flush()
            row = queries.stock_level(conn, *key)
            level = (row["on_hand"], row["reserved"], row["writers"]) if row else None
            row_seen = engine.basis(conn)  # with this import's own writes to the row
        else:
            level = levels.get(key)
            row_seen = seen
        on_hand = level[0] if level else 0
        available = on_hand - (level[1] if level else 0)
        if r["mode"] == "add" and -r["quantity"] > available:
            # like a subtract: an import never takes available below zero
            errors.append(
                {
                    "line": r["line"],
                    "field": "quantity",
                    "error": f"insufficient stock: available={max(available, 0)}, "
                    f"requested={-r['quantity']}",
                }
            )
            continue
        target = r["quantity"] if r["mode"] == "set" else on_hand + r["quantity"]
        if target == on_hand:
            continue
        changed += 1
        if changed <= CHANGES_SHOWN:
            changes.append(
                {
                    "line": r["line"],
                    "sku": r["sku"],
                    "storeId": r["storeId"],
                    "mode": r["mode"],
                    "from": on_hand,
                    "to": target,
                }
            )
        mv: dict[str, Any] = {
            "sku": r["sku"],
            "storeId": r["storeId"],
            "reason": r.get("reason") or "import",
            "actor": actor,
        }
        if r["mode"] == "set":
            mv.update(kind=str(MovementKind.COUNT), quantity=r["quantity"])
            basis = engine.count_basis(row_seen, level[2]) if level else {}
            if basis:
                mv["basis"] = basis
        else:
            kind = MovementKind.RECEIVE if r["quantity"] > 0 else MovementKind.ADJUST
            mv.update(kind=str(kind), quantity=r["quantity"])
        if level is None:
            new.add(key, mv)
        else:
            new.flush()  # keep seq order: everything before this row goes first
            engine.emit(conn, "stock.movement", mv)
        touched.add(key)
    new.flush()
    if errors:  # raising rolls back every row applied above
        errors.sort(key=lambda e: e["line"])
        raise InvalidInput(f"{len(errors)} invalid row(s); nothing was imported", errors=errors)
    return _finish_import(conn, "stock", import_id, len(rows), changes, actor, dry_run, changed)


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
    kind: str,
    import_id: str,
    rows: int,
    changes: list[dict[str, Any]],
    actor: str,
    dry_run: bool,
    changed: int | None = None,
) -> dict[str, Any]:
    """Record the import (so the same file is not applied twice) and answer;
    a dry run is rolled back whole by the store. ``changed`` counts the
    changes when ``changes`` holds only the first of them."""
    changed = len(changes) if changed is None else changed
    conn.execute(
        "INSERT OR REPLACE INTO imports (id, kind, rows, changes, actor, created_at_ms) "
        "VALUES (?,?,?,?,?,?)",
        (import_id, kind, rows, changed, actor, now_ms()),
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
    if dry_run:
        raise DryRun(result)
    return result


def _known_skus(conn: sqlite3.Connection, skus: set[str]) -> set[str]:
    if len(skus) > 500:
        return {r[0] for r in conn.execute("SELECT sku FROM products")} & skus
    return {
        r[0]
        for r in conn.execute(
            f"SELECT sku FROM products WHERE sku IN ({','.join('?' * len(skus))})", list(skus)
        )
    }


def import_products(
    conn: sqlite3.Connection,
    engine: Engine,
    rows: list[dict[str, Any]],
    dry_run: bool,
    force: bool,
) -> dict[str, Any]:
    fields = ("sku", "id", "name", "description", "category", "price", "active")
    import_id = rows_fingerprint(rows, fields)
    previous = _previous_import(conn, import_id, len(rows), dry_run)
    if previous is not None and not force:
        return previous
    changes: list[dict[str, Any]] = []
    basis = engine.basis(conn)
    for r in rows:
        existing = conn.execute("SELECT * FROM products WHERE sku = ?", (r["sku"],)).fetchone()
        given = {k: r[k] for k in fields[1:] if r.get(k) is not None}
        if existing is None:
            given.setdefault("id", product_id_for(r["sku"]))
            values = {
                "name": "",
                "description": "",
                "category": "",
                "price": 0.0,
                "active": True,
                **given,
            }
            diff = values
        else:
            diff = {
                k: v for k, v in given.items() if existing[k] != (int(v) if k == "active" else v)
            }
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
    return _finish_import(conn, "products", import_id, len(rows), changes, "", dry_run)
