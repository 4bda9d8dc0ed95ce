"""Full-text product search (schema v3, an FTS5 index kept by triggers):
word prefixes over SKU, name, description and category; a SKU or name
substring still matches. The index stays right whoever writes a product: a
command, a peer's event, a snapshot restore, or the migration from v2."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, TypeVar

import pytest

from agent import hlc as hlc_mod
from agent.ledger import commands, queries, schema, snapshot
from agent.ledger.engine import Engine
from agent.ledger.schema import MIGRATIONS, migrate
from agent.ledger.store import connect
from tests.ledgerkit import tx

T = TypeVar("T")
Shop = tuple[sqlite3.Connection, Engine]
BASE_MS = 1_790_000_000_000
CATALOGUE = [
    {"sku": "PROD-001", "name": "Laptop HP Pavilion", "category": "Electronics"},
    {"sku": "PROD-002", "name": "Laptop Dell XPS", "category": "Electronics"},
    {"sku": "PROD-003", "name": "Office chair", "description": "ergonomic, mesh back"},
    {"sku": "CAB-77", "name": "HDMI cable", "category": "Accessories"},
]


def engine(store: str = "store-a") -> Engine:
    return Engine(store, hlc_mod.HybridLogicalClock(clock=lambda: BASE_MS), wall_ms=lambda: BASE_MS)


def shop(
    path: Path | str = ":memory:", store: str = "store-a"
) -> tuple[sqlite3.Connection, Engine]:
    conn = connect(path)
    migrate(conn)
    me = engine(store)
    for p in CATALOGUE:
        tx(conn, commands.create_product, me, p)
    return conn, me


def found(conn: sqlite3.Connection, search: str, category: str | None = None) -> list[str]:
    page = queries.list_products(conn, 1, 50, category, search)
    assert page["pagination"]["total"] == len(page["data"])
    return [p["sku"] for p in page["data"]]


def index_is_consistent(conn: sqlite3.Connection) -> bool:
    """FTS5's own check of the index against the products table."""
    conn.execute("INSERT INTO products_fts (products_fts, rank) VALUES ('integrity-check', 1)")
    return True


@pytest.fixture
def ledger() -> Any:
    conn, me = shop()
    yield conn, me
    conn.close()


def test_words_match_by_their_beginnings(ledger: Shop) -> None:
    conn, _ = ledger
    assert found(conn, "lap hp") == ["PROD-001"]
    assert found(conn, "LAPTOP") == ["PROD-001", "PROD-002"]
    assert found(conn, "electro") == ["PROD-001", "PROD-002"]  # a category word
    assert found(conn, "ergo") == ["PROD-003"]  # a description word
    assert found(conn, "mesh chair") == ["PROD-003"]  # words of different fields
    assert found(conn, "lap dell", category="Electronics") == ["PROD-002"]
    assert found(conn, "hp xps") == []  # every word must match


def test_sku_and_name_substrings_still_match(ledger: Shop) -> None:
    conn, _ = ledger
    assert found(conn, "OD-00") == ["PROD-001", "PROD-002", "PROD-003"]
    assert found(conn, "B-7") == ["CAB-77"]
    assert found(conn, "avil") == ["PROD-001"]  # inside a word of the name
    assert found(conn, "cab-77") == ["CAB-77"]


def test_query_syntax_in_a_search_is_only_text(ledger: Shop) -> None:
    conn, _ = ledger
    for odd in ('"', "lap*", "NOT hp", "name:laptop", "(", "-", "hp OR", "^lap"):
        found(conn, odd)  # never an FTS syntax error
    assert found(conn, "lap*") == ["PROD-001", "PROD-002"]


def test_an_update_moves_the_product_in_the_index(
    ledger: Shop,
) -> None:
    conn, me = ledger
    tx(conn, commands.update_product, me, "PROD-001", {"name": "Notebook Lenovo", "category": "IT"})
    assert found(conn, "pavilion") == []
    assert found(conn, "electro") == ["PROD-002"]
    assert found(conn, "noteb len") == ["PROD-001"]
    assert index_is_consistent(conn)


def test_a_peers_product_events_keep_the_index_right(
    ledger: Shop,
) -> None:
    conn, me = ledger

    def event(seq: int, ms: int, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"store-b:{seq}",
            "origin": "store-b",
            "seq": seq,
            "hlc": hlc_mod.pack(BASE_MS + ms, 0),
            "type": "product.upserted",
            "schemaVersion": 1,
            "data": {"sku": "PEER-1", "fields": fields, "basis": {}},
        }

    tx(conn, me.apply_remote, event(1, 10, {"id": "peer-1", "name": "Standing desk"}))
    assert found(conn, "stand") == ["PEER-1"]
    tx(conn, me.apply_remote, event(3, 30, {"name": "Sit-stand desk"}))
    tx(conn, me.apply_remote, event(2, 20, {"name": "Old desk"}))  # older: loses
    assert found(conn, "old") == []
    assert found(conn, "sit stand") == ["PEER-1"]
    assert index_is_consistent(conn)


def test_a_ledger_from_v2_gets_its_products_indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connect(":memory:")
    with monkeypatch.context() as m:  # a ledger made by the release before search
        m.setattr(schema, "MIGRATIONS", MIGRATIONS[:2])
        assert migrate(conn) == 2
    conn.execute(
        "INSERT INTO products (sku, id, name, category, created_at_ms, updated_at_ms) "
        "VALUES ('OLD-1', 'o1', 'Laptop HP Envy', 'Electronics', 1, 1)"
    )
    assert migrate(conn) == len(MIGRATIONS) >= 3
    assert found(conn, "lap envy") == ["OLD-1"]
    assert index_is_consistent(conn)
    # the triggers are in place too
    tx(conn, commands.update_product, engine(), "OLD-1", {"name": "Desktop"})
    assert found(conn, "envy") == [] and found(conn, "desk") == ["OLD-1"]


def test_a_snapshot_restore_leaves_the_index_right(tmp_path: Path) -> None:
    peer, _ = shop(tmp_path / "peer.db", "store-b")
    tx(peer, commands.update_product, engine("store-b"), "PROD-003", {"name": "Gaming chair"})
    peer.close()
    snapshot.write_snapshot(tmp_path / "peer.db", tmp_path / "snap.db")

    conn = connect(tmp_path / "new.db")
    migrate(conn)
    me = engine("store-c")
    tx(conn, commands.create_product, me, {"sku": "MINE-1", "name": "Local lamp"})
    tx(conn, commands.create_product, me, {"sku": "PROD-003", "name": "Office chair"})
    conn.execute("ATTACH DATABASE ? AS snap", (str(tmp_path / "snap.db"),))
    result = tx(conn, snapshot.restore, me)
    conn.execute("DETACH DATABASE snap")
    assert result["reappliedOwnEvents"] == 2
    assert found(conn, "lamp") == ["MINE-1"]  # our own product, re-applied on top
    assert found(conn, "lap hp") == ["PROD-001"]  # the snapshot's
    name = queries.get_product(conn, "PROD-003")["name"]  # whichever write won
    lost = ({"Gaming chair", "Office chair"} - {name}).pop()
    assert found(conn, name.split()[0]) == ["PROD-003"]
    assert found(conn, lost.split()[0]) == []
    assert index_is_consistent(conn)
    conn.close()


def test_a_snapshot_of_a_peer_before_search_restores_and_is_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer still on schema v2 (no search index) serves a snapshot: its
    state tables are ours, and the restore indexes its products."""
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", MIGRATIONS[:2])
        peer = connect(tmp_path / "peer.db")
        assert migrate(peer) == 2
        tx(peer, commands.create_product, engine("store-b"), {"sku": "P-1", "name": "Old lamp"})
        peer.close()
    snapshot.write_snapshot(tmp_path / "peer.db", tmp_path / "snap.db")
    conn = connect(tmp_path / "new.db")
    migrate(conn)
    conn.execute("ATTACH DATABASE ? AS snap", (str(tmp_path / "snap.db"),))
    tx(conn, snapshot.restore, engine("store-c"))
    conn.execute("DETACH DATABASE snap")
    assert found(conn, "lamp") == ["P-1"]
    assert index_is_consistent(conn)
    conn.close()
