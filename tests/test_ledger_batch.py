"""Stock batches (agent.ledger.engine.batch): an import's movements go out as
``stock.batch`` events, and applying one, here or at a peer, leaves the state
applying each of its movements as a ``stock.movement`` of the same stamp
leaves: the same stock rows, movements, conflicts and alerts (only the ids
differ: ``origin:seq/i`` against one event each)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from agent import hlc as hlc_mod
from agent.inputs import StockChange
from agent.ledger import commands, queries
from agent.ledger.engine import Engine, batch
from agent.ledger.schema import migrate
from agent.ledger.store import connect
from tests.ledgerkit import tx

BASE_MS = 1_790_000_000_000
STOCK = "SELECT sku, store_id, on_hand, reserved, version, count_hlc, count_origin, writers"
# not basis: the seqs it names differ (one event a movement, or a batch of them)
MOVEMENTS = "SELECT sku, store_id, kind, quantity, reason, actor, hlc, origin, superseded"
CONFLICTS = "SELECT kind, sku, store_id, detail, hlc"


class OneByOne(batch.StockBatch):
    """Stands in for StockBatch: each movement a stock.movement event of its own,
    all of a would-be batch with the stamp that batch would have had."""

    def flush(self) -> None:
        if not self.movements:
            return
        now = self.engine.clock.now()
        for mv in self.movements:
            self.engine.clock.now = lambda: now  # type: ignore[method-assign]
            self.engine.emit(self.conn, "stock.movement", mv)
        del self.engine.clock.now
        self.events += 1
        self.movements, self.keys, self.size = [], set(), 0


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def ledger(
    store: str, batched: bool, monkeypatch: pytest.MonkeyPatch, clock: Clock | None = None
) -> tuple[sqlite3.Connection, Engine]:
    conn = connect(":memory:")
    migrate(conn)
    clock = clock or Clock(BASE_MS)
    engine = Engine(store, hlc_mod.HybridLogicalClock(clock=clock), wall_ms=lambda: BASE_MS)
    if not batched:
        monkeypatch.setattr(engine, "stock_batch", lambda c: OneByOne(engine, c))
    for sku in "ABCDX":
        tx(conn, commands.create_product, engine, {"sku": sku, "name": sku})
    return conn, engine


def state(conn: sqlite3.Connection) -> dict[str, Any]:
    """What must be the same whichever way the movements came (ids aside)."""
    return {
        "stock": sorted(tuple(r) for r in conn.execute(f"{STOCK} FROM stock")),
        "movements": sorted(tuple(r) for r in conn.execute(f"{MOVEMENTS} FROM movements")),
        "conflicts": sorted(tuple(r) for r in conn.execute(f"{CONFLICTS} FROM conflicts")),
        "digests": queries.digests(conn),
    }


def rows(*specs: tuple[str, str, int, str]) -> list[dict[str, Any]]:
    return [
        {"line": i + 2, "sku": sku, "storeId": store, "quantity": qty, "mode": mode, "reason": ""}
        for i, (sku, store, qty, mode) in enumerate(specs)
    ]


IMPORTS = [
    # a first import: new rows, the same row twice (a second event), a delta on a new row
    rows(
        ("A", "s1", 5, "set"),
        ("B", "s1", 7, "set"),
        ("A", "s1", 9, "set"),
        ("C", "s2", 3, "add"),
        ("B", "s2", 1, "set"),
        ("C", "s2", 4, "add"),
        ("X", "s3", 6, "set"),
    ),
    # a second one over existing rows (counts supersede counts), mixed with new ones
    rows(
        ("A", "s1", 2, "set"),
        ("D", "s1", 8, "set"),
        ("B", "s1", -3, "add"),
        ("C", "s3", 6, "set"),
        ("A", "s2", 1, "add"),
        ("A", "s1", 1, "add"),  # a row this import has already changed
        ("X", "s3", -6, "add"),
    ),
]
IMPORTS[1][3]["reason"] = 'recount "B" — é'


def imported(batched: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    conn, engine = ledger("store-1", batched, monkeypatch)
    # peers this node has heard from: counts carry them in their basis
    conn.executemany(
        "INSERT INTO origins (origin, applied_seq, max_seq) VALUES (?, ?, ?)",
        [("store-0", 5, 5), ("store-9", 2, 3)],
    )
    answers = [tx(conn, commands.import_stock, engine, r, False, False, "tester") for r in IMPORTS]
    own = [json.loads(b) for (b,) in conn.execute("SELECT body FROM events ORDER BY seq")]
    return state(conn), answers, [e for e in own if e["type"].startswith("stock.")]


def at_peer(
    events: list[dict[str, Any]], batched: bool, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A peer that wrote some of the same rows itself, before and after the
    imports' stamps, and takes the events in reverse order (rows the batches
    find missing there, a negative delta on one)."""
    clock = Clock(BASE_MS - 1000)
    conn, engine = ledger("store-2", batched, monkeypatch, clock)
    sets = (
        ("B", "s1", "add", 2),  # before the imports' counts: superseded
        ("A", "s2", "set", 4),  # a count the import's delta comes after
        ("C", "s3", "add", 1),  # before the import's count of it
    )
    for sku, store, op, qty in sets:
        tx(conn, commands.update_stock, engine, StockChange(sku, store, op, qty, actor="peer"))
    clock.ms = BASE_MS + 1000
    later = StockChange("D", "s1", "set", 3, actor="peer")  # after the imports: it wins
    tx(conn, commands.update_stock, engine, later)
    for e in reversed(events):
        engine.clock.observe(e["hlc"])
        tx(conn, engine.apply_remote, json.loads(json.dumps(e)))
    return state(conn)


def test_an_import_in_batches_leaves_the_state_movement_events_leave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (batched, answers, events), (plain, plain_answers, plain_events) = (
        imported(b, monkeypatch) for b in (True, False)
    )
    assert [{**a, "importId": ""} for a in answers] == [
        {**a, "importId": ""} for a in plain_answers
    ]
    assert [a["events"] for a in answers] == [3, 2]  # an event ends at a row it moves already
    assert {e["type"] for e in events} == {"stock.batch"}
    assert {e["type"] for e in plain_events} == {"stock.movement"}
    assert batched == plain
    stock = {(r[0], r[1]): r[2] for r in batched["stock"]}
    assert stock[("A", "s1")] == 3 and stock[("B", "s1")] == 4 and stock[("C", "s2")] == 7
    ids = [f"{e['id']}/{i}" for e in events for i in range(len(e["data"]["movements"]))]
    assert sorted(ids) == sorted(r[0] for r in _conn_of(events).execute("SELECT id FROM movements"))

    peer, plain_peer = at_peer(events, True, monkeypatch), at_peer(plain_events, False, monkeypatch)
    assert peer == plain_peer
    kinds = {c[0] for c in peer["conflicts"]}
    assert {"superseded_delta", "negative_available"} <= kinds, peer["conflicts"]
    assert peer["digests"]["s1"] != batched["digests"]["s1"]  # the peer's own writes count


def _conn_of(events: list[dict[str, Any]]) -> sqlite3.Connection:
    """A fresh replica that took ``events``."""
    conn = connect(":memory:")
    migrate(conn)
    engine = Engine("store-7", hlc_mod.HybridLogicalClock(), wall_ms=lambda: BASE_MS)
    for e in events:
        tx(conn, engine.apply_remote, e)
    return conn


def test_a_batch_applied_twice_changes_nothing_the_second_time() -> None:
    _, _, events = imported(True, pytest.MonkeyPatch())
    conn = _conn_of(events)
    before = state(conn)
    engine = Engine("store-7", hlc_mod.HybridLogicalClock(), wall_ms=lambda: BASE_MS)
    assert not any(tx(conn, engine.apply_remote, e) for e in events)
    assert state(conn) == before


def test_an_event_ends_at_its_row_or_byte_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    conn, engine = ledger("store-1", True, monkeypatch)
    monkeypatch.setattr(batch, "BATCH_ROWS", 3)
    many = rows(*((sku, f"s{i}", 1, "set") for sku in "ABCD" for i in range(2)))
    assert tx(conn, commands.import_stock, engine, many, False, False, "t")["events"] == 3
    monkeypatch.setattr(batch, "BATCH_ROWS", 100)
    monkeypatch.setattr(batch, "BATCH_BYTES", 500)  # two of these rows
    big = rows(*(("X", f"t{i}", 1, "set") for i in range(4)))
    for r in big:
        r["reason"] = "r" * 150
    assert tx(conn, commands.import_stock, engine, big, False, False, "t")["events"] == 2
    sizes = [len(b) for (b,) in conn.execute("SELECT body FROM events WHERE type = 'stock.batch'")]
    assert max(sizes) < 1000


def test_a_failed_import_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    conn, engine = ledger("store-1", True, monkeypatch)
    before = state(conn)
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
    assert state(conn) == before


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
