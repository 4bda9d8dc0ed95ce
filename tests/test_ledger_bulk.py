"""The bulk path of stock imports (rows new to the ledger written with
executemany, agent.ledger.engine.NewStockMovements) leaves exactly the ledger
the one-event-at-a-time path (Engine.emit) leaves: same events, bodies,
movements, stock rows, watermarks and conflicts."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from agent import hlc as hlc_mod
from agent.ledger import commands
from agent.ledger import engine as engine_mod
from agent.ledger.engine import Engine
from agent.ledger.schema import migrate
from agent.ledger.store import connect
from tests.ledgerkit import tx

BASE_MS = 1_790_000_000_000
TABLES = {
    "events": "origin, seq",
    "movements": "id",
    "stock": "sku, store_id",
    "origins": "origin",
    "conflicts": "id",
    "imports": "id",
}


class OneByOne:
    """Stands in for NewStockMovements: every movement through Engine.emit."""

    def __init__(self, engine: Engine, conn: sqlite3.Connection) -> None:
        self.engine, self.conn = engine, conn
        self.keys: set[tuple[str, str]] = set()

    def add(self, key: tuple[str, str], mv: dict[str, Any]) -> dict[str, Any]:
        return self.engine.emit(self.conn, "stock.movement", mv)

    def flush(self) -> None:
        pass


def ledger(bulk: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[sqlite3.Connection, Engine]:
    conn = connect(":memory:")
    migrate(conn)
    engine = Engine(
        "store-1", hlc_mod.HybridLogicalClock(clock=lambda: BASE_MS), wall_ms=lambda: BASE_MS
    )
    if not bulk:
        monkeypatch.setattr(engine, "new_stock_movements", lambda c: OneByOne(engine, c))
    return conn, engine


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY {order}")]
        for t, order in TABLES.items()
    }


def rows(*specs: tuple[str, str, int, str]) -> list[dict[str, Any]]:
    return [
        {"line": i + 2, "sku": sku, "storeId": store, "quantity": qty, "mode": mode, "reason": ""}
        for i, (sku, store, qty, mode) in enumerate(specs)
    ]


@pytest.mark.parametrize("flush_every", [10_000, 2])
def test_bulk_import_writes_the_same_ledger_as_one_event_at_a_time(
    monkeypatch: pytest.MonkeyPatch, flush_every: int
) -> None:
    monkeypatch.setattr(engine_mod.NewStockMovements, "FLUSH_EVERY", flush_every)
    imports = [
        # a first import: new rows (bulk), the same row twice, a delta on a new row
        rows(
            ("A", "s1", 5, "set"),
            ("B", "s1", 7, "set"),
            ("A", "s1", 9, "set"),
            ("C", "s2", 3, "add"),
            ("B", "s2", 1, "set"),
            ("C", "s2", 4, "add"),
        ),
        # a second one over existing rows (counts supersede counts), mixed with new ones
        rows(
            ("A", "s1", 2, "set"),
            ("D", "s1", 8, "set"),
            ("B", "s1", -3, "add"),
            ("C", "s3", 6, "set"),
            ("A", "s2", 1, "add"),
            ("A", "s1", 1, "add"),  # a row this import has already changed
        ),
    ]
    imports[1][3]["reason"] = 'recount "B" — é'  # escaped the same way on both paths
    ledgers = []
    for bulk in (True, False):
        conn, engine = ledger(bulk, monkeypatch)
        # peers this node has heard from: counts carry them in their basis
        conn.executemany(
            "INSERT INTO origins (origin, applied_seq, max_seq) VALUES (?, ?, ?)",
            [("store-0", 5, 5), ("store-9", 2, 3)],
        )
        for sku in "ABCD":
            tx(conn, commands.create_product, engine, {"sku": sku, "name": sku})
        answers = [
            tx(conn, commands.import_stock, engine, r, False, False, "tester") for r in imports
        ]
        ledgers.append((dump(conn), answers))
    (bulk_tables, bulk_answers), (slow_tables, slow_answers) = ledgers
    assert bulk_answers == slow_answers
    for table in TABLES:
        assert bulk_tables[table] == slow_tables[table], table
    stock = {(r[0], r[1]): r[2] for r in bulk_tables["stock"]}
    assert stock[("A", "s1")] == 3 and stock[("B", "s1")] == 4 and stock[("C", "s2")] == 7
    origins = {r[0]: r for r in bulk_tables["origins"]}
    assert origins["store-1"][1] == origins["store-1"][2] == len(bulk_tables["events"])


def test_a_failed_bulk_import_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    conn, engine = ledger(True, monkeypatch)
    tx(conn, commands.create_product, engine, {"sku": "A", "name": "A"})
    before = dump(conn)
    with pytest.raises(Exception, match="invalid row"):
        tx(
            conn,
            commands.import_stock,
            engine,
            rows(("A", "s1", 5, "set"), ("NOPE", "s1", 1, "set"), ("A", "s2", 2, "set")),
            False,
            False,
            "tester",
        )
    assert dump(conn) == before


def test_import_ids_are_the_digest_of_the_rows_json() -> None:
    """Hashed row by row, an import's id is still the digest of its rows'
    JSON: files imported before keep being recognised."""
    keys = ("sku", "storeId", "quantity", "mode", "reason")
    some = rows(("A", "s1", 5, "set"), ("B", "s2", -1, "add"))
    some[1]["reason"] = 'é "quoted"'
    many = rows(*((f"S{i}", "s1", i, "set") for i in range(2 * commands.FINGERPRINT_CHUNK + 3)))
    for sample in (some, [], some[:1], many):
        expected = commands.fingerprint([{k: r.get(k) for k in keys} for r in sample])
        assert commands.rows_fingerprint(sample, keys) == expected
