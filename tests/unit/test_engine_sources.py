"""The engine carries every source of time and identity the ledger uses: with
the same sources and the same inputs, two ledgers are identical, and no
wall-clock reading leaks in from anywhere else (what a deterministic
simulator needs)."""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from typing import Any

from agent import hlc as hlc_mod
from agent.inputs import ReservationRequest, StockChange
from agent.ledger import commands, replication
from agent.ledger.engine import Engine
from agent.ledger.schema import migrate
from agent.ledger.store import DryRun, connect

HLC_MS = 1_790_000_000_000  # what the clock stamps events with
WALL_MS = 1_000_000  # the wall time the engine writes down: far from both HLC_MS and now
TTL = 600


def run(conn: sqlite3.Connection, fn: Any, *args: Any) -> Any:
    conn.execute("BEGIN IMMEDIATE")
    try:
        out = fn(conn, *args)
    except DryRun as dry:
        conn.execute("ROLLBACK")
        return dry.result
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return out


def scenario() -> sqlite3.Connection:
    conn = connect(":memory:")
    migrate(conn)
    ids = (f"id-{i}" for i in itertools.count())
    me = Engine(
        "store-a",
        hlc_mod.HybridLogicalClock(clock=lambda: HLC_MS),
        wall_ms=lambda: WALL_MS,
        new_id=lambda: next(ids),
    )
    assert me.new_id() == "id-0"
    run(conn, commands.create_product, me, {"sku": "S", "name": "s"})
    run(conn, commands.update_product, me, "S", {"price": 2.5})
    stock = (me, "S", "store-a")
    run(
        conn,
        commands.update_stock,
        stock[0],
        StockChange(*stock[1:], "add", 5, "", "t", None, "key-1"),
    )
    run(
        conn,
        commands.update_stock,
        stock[0],
        StockChange(*stock[1:], "set", 9, "", "t", None, None),
    )
    run(conn, commands.reserve, me, ReservationRequest("S", 2, "r1", "store-a", None, TTL))
    run(conn, commands.confirm, me, "r1", "o1", "t")
    run(conn, commands.reserve, me, ReservationRequest("S", 1, "r2", "store-a", "c", TTL))
    run(conn, commands.cancel, me, "r2", "clerk")
    run(conn, commands.reserve, me, ReservationRequest("S", 1, "r3", "store-a", None, 0))
    assert run(conn, commands.expire_due, me) == 1
    rows = [{"line": 2, "sku": "S", "storeId": "store-b", "quantity": 4, "mode": "set"}]
    run(conn, commands.import_stock, me, rows, False, False, "t")
    products = [{"line": 2, "sku": "T", "name": "t"}]
    run(conn, commands.import_products, me, products, True, False)  # a dry run
    run(conn, commands.import_products, me, products, False, False)
    peer_count = {
        "id": "store-b:1",
        "origin": "store-b",
        "seq": 1,
        "hlc": hlc_mod.pack(HLC_MS - 5, 0),
        "type": "stock.movement",
        "schemaVersion": 1,
        "data": {"sku": "S", "storeId": "store-a", "kind": "count", "quantity": 1, "basis": {}},
    }
    refused = [{"eventId": "store-c:1", "subject": "x", "reason": "bad", "body": "{}"}]
    run(conn, replication.apply_batch, me, [peer_count], refused)
    return conn


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'products_fts%'"
        )
    ]
    return {t: sorted(tuple(r) for r in conn.execute(f"SELECT * FROM {t}")) for t in tables}


def test_the_same_sources_and_inputs_give_the_same_ledger() -> None:
    a, b = dump(scenario()), dump(scenario())
    assert a == b
    assert a["conflicts"] and a["quarantine"] and a["idempotency"] and a["imports"]


def test_every_wall_time_written_comes_from_the_engine() -> None:
    conn = scenario()
    hlc_wall = {HLC_MS, HLC_MS - 5}  # product stamps are the wall part of their hlc
    expected = {WALL_MS, WALL_MS + TTL * 1000} | hlc_wall
    for table, columns in {
        "products": ("created_at_ms", "updated_at_ms"),
        "stock": ("updated_at_ms",),
        "reservations": ("created_at_ms", "updated_at_ms", "expires_at_ms"),
        "origins": ("last_event_at_ms",),
        "idempotency": ("created_at_ms",),
        "imports": ("created_at_ms",),
        "conflicts": ("detected_at_ms",),
        "quarantine": ("received_at_ms",),
    }.items():
        for column in columns:
            seen = {r[0] for r in conn.execute(f"SELECT {column} FROM {table}")}
            assert seen and seen <= expected, (table, column, seen)


def test_the_default_id_source_is_a_random_uuid() -> None:
    me = Engine("store-a", hlc_mod.HybridLogicalClock())
    first, second = me.new_id(), me.new_id()
    assert first != second and uuid.UUID(first).version == 4
    assert abs(me.wall_ms() - hlc_mod.now_ms()) < 60_000
