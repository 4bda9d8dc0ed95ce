"""The store directory and per-SKU stock settings on an in-memory ledger:
per-field last-writer-wins (the rule products use, ``engine.lww``), with
concurrent losses logged, late old stamps losing, re-applied events changing
nothing, and any order of arrival giving the same state; and the local
commands that write them (only changed fields emit; ``any`` and unknown
stores refused)."""

from __future__ import annotations

import itertools
import json
import sqlite3
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import hlc as hlc_mod
from agent.errors import InvalidInput, NotFound
from agent.ledger import commands, directory, directory_views, queries
from agent.ledger.engine import TYPE_SCHEMA, Engine
from agent.ledger.engine.lww import FieldWrite, outcome
from agent.ledger.schema import migrate
from agent.ledger.store import connect
from tests.ledgerkit import tx

T = TypeVar("T")
BASE_MS = 1_790_000_000_000


def ledger() -> sqlite3.Connection:
    conn = connect(":memory:")
    migrate(conn)
    return conn


def event(origin: str, seq: int, ms: int, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{origin}:{seq}",
        "origin": origin,
        "seq": seq,
        "hlc": hlc_mod.pack(BASE_MS + ms, 0),
        "type": type_,
        "schemaVersion": TYPE_SCHEMA[type_],
        "data": data,
    }


def store_event(
    origin: str, seq: int, ms: int, fields: dict[str, Any], basis: dict[str, int] | None = None
) -> dict[str, Any]:
    data = {"storeId": "store-009", "fields": fields, "basis": basis or {}}
    return event(origin, seq, ms, "store.upserted", data)


def setting_event(
    origin: str, seq: int, ms: int, value: int | None, basis: dict[str, int] | None = None
) -> dict[str, Any]:
    data = {
        "sku": "S",
        "storeId": "store-009",
        "fields": {"safetyStock": value},
        "basis": basis or {},
    }
    return event(origin, seq, ms, "stock.settings", data)


def replica(events: list[dict[str, Any]]) -> sqlite3.Connection:
    """A fresh replica that applied ``events`` in this order (copies, as off the wire)."""
    conn = ledger()
    engine = Engine("observer", hlc_mod.HybridLogicalClock())
    for e in events:
        tx(conn, engine.apply_remote, json.loads(json.dumps(e)))
    return conn


def entry(conn: sqlite3.Connection) -> directory.StoreEntry:
    return directory.store_entry(conn, "store-009")


def conflicts(conn: sqlite3.Connection) -> list[tuple[str, str, str, dict[str, Any]]]:
    rows = conn.execute("SELECT kind, winner, loser, detail FROM conflicts ORDER BY id")
    return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


def state(conn: sqlite3.Connection) -> dict[str, str]:
    return queries.digests(conn)


# --------------------------------------------------------------- the rule
def test_outcome_is_the_per_field_rule() -> None:
    def write(hlc: int, origin: str, seq: int, basis: dict[str, int]) -> FieldWrite:
        return FieldWrite({}, (hlc, origin), f"{origin}:{seq}", basis)

    current = [10, "a", "a:1", {}]
    assert outcome(None, write(5, "b", 1, {})) == (True, None)  # the first write
    assert outcome(current, write(11, "b", 1, {})) == (True, "a:1")  # b had not seen a:1
    assert outcome(current, write(11, "b", 1, {"a": 1})) == (True, None)  # it had
    assert outcome(current, write(11, "a", 2, {})) == (True, None)  # one writer: history
    assert outcome(current, write(9, "b", 1, {})) == (False, "b:1")  # older and unseen
    assert outcome([10, "a", "a:1", {"b": 1}], write(9, "b", 1, {})) == (False, None)
    assert outcome(current, write(10, "a", 1, {})) == (False, None)  # itself again


# ------------------------------------------------------------ stores
def test_concurrent_writes_of_different_fields_both_stand() -> None:
    a = store_event("store-a", 1, 0, {"name": "Centro", "priority": 5})
    b = store_event("store-b", 1, 10, {"online": False, "safetyStock": 2})
    for order in ([a, b], [b, a]):
        conn = replica(order)
        e = entry(conn)
        assert (e.name, e.priority, e.online, e.safety_stock, e.listed) == (
            "Centro",
            5,
            False,
            2,
            True,
        )
        assert conflicts(conn) == []


def test_a_concurrent_write_of_the_same_field_loses_to_the_later_and_is_logged() -> None:
    a = store_event("store-a", 1, 0, {"priority": 5, "lat": 40.4})
    b = store_event("store-b", 1, 10, {"priority": 1, "lat": 40.4})  # the same lat: no loss
    digests = []
    for order in ([a, b], [b, a]):
        conn = replica(order)
        assert entry(conn).priority == 1
        assert conflicts(conn) == [
            ("store_field", "store-b:1", "store-a:1", {"field": "priority", "kept": 1, "lost": 5})
        ]
        [c] = queries.list_conflicts(conn, None, 10)["data"]
        assert (c["kind"], c["storeId"], c["sku"]) == ("store_field", "store-009", None)
        digests.append(state(conn))
    assert digests[0] == digests[1]


def test_an_older_stamp_arriving_late_loses_and_one_that_was_seen_is_no_conflict() -> None:
    old = store_event("store-a", 1, 0, {"name": "Old name"})
    new = store_event("store-b", 1, 10, {"name": "New name"}, basis={"store-a": 1})
    conn = replica([new, old])  # the older write arrives after the newer
    assert entry(conn).name == "New name"
    assert conflicts(conn) == []  # the newer one's writer had seen it: an edit, not a race
    late_unseen = store_event("store-c", 1, 5, {"name": "Lost name"})
    tx(conn, Engine("observer", hlc_mod.HybridLogicalClock()).apply_remote, late_unseen)
    assert entry(conn).name == "New name"
    assert [(c[1], c[2]) for c in conflicts(conn)] == [("store-b:1", "store-c:1")]


def test_re_applying_an_event_changes_nothing() -> None:
    e1 = store_event("store-a", 1, 0, {"name": "Centro", "online": True})
    e2 = store_event("store-b", 1, 10, {"online": False})
    conn = replica([e1, e2])
    before = (state(conn), conflicts(conn))
    engine = Engine("observer", hlc_mod.HybridLogicalClock())
    assert tx(conn, engine.apply_remote, e1) is False
    assert tx(conn, engine.apply_remote, e2) is False
    # and replaying the effects themselves (a snapshot restore does) changes nothing either
    for e in (e1, e2):
        tx(conn, engine.apply_effects, json.loads(json.dumps(e)), False)
    assert (state(conn), conflicts(conn)) == before


def test_null_unsets_a_field_and_the_default_applies() -> None:
    conn = replica(
        [
            store_event("store-a", 1, 0, {"priority": 3, "online": False}),
            store_event("store-a", 2, 10, {"priority": None, "online": None}),
        ]
    )
    e = entry(conn)
    assert (e.priority, e.online, e.listed) == (100, True, True)
    view = directory_views.get_store(conn, "store-009", "observer")
    assert view["defaults"] == ["priority", "online", "safetyStock"]


# --------------------------------------------------------- stock settings
def test_a_skus_safety_stock_is_lww_and_null_goes_back_to_the_store_default() -> None:
    default = store_event("store-a", 1, 0, {"safetyStock": 4})
    own = setting_event("store-a", 2, 10, 9)
    rival = setting_event("store-b", 1, 20, 1)  # concurrent, later: wins
    cleared = setting_event("store-a", 3, 30, None, basis={"store-a": 2, "store-b": 1})
    for order in itertools.permutations([default, own, rival]):
        conn = replica(list(order))
        assert directory.safety_stock(conn, "S", "store-009") == 1
        assert [(c[0], c[3]) for c in conflicts(conn)] == [
            ("stock_setting", {"field": "safetyStock", "kept": 1, "lost": 9})
        ]
    conn = replica([default, own, rival, cleared])
    assert directory.safety_stock(conn, "S", "store-009") == 4  # the store's default
    assert directory.safety_stock(conn, "S", "store-010") == 0  # nothing set anywhere


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(6)), st.lists(st.integers(0, 5), max_size=3))
def test_any_order_with_duplicates_gives_the_same_state(order: list[int], again: list[int]) -> None:
    events = [
        store_event("store-a", 1, 0, {"name": "A", "priority": 2}),
        store_event("store-b", 1, 0, {"name": "B", "lat": 1.5}),  # same stamp time: origin decides
        store_event("store-a", 2, 20, {"online": False}, basis={"store-a": 1}),
        setting_event("store-b", 2, 5, 3),
        setting_event("store-c", 1, 6, 7),
        store_event("store-c", 2, 30, {"safetyStock": 1, "priority": None}),
    ]
    reference = replica(events)
    shuffled = replica([events[i] for i in order] + [events[i] for i in again])
    assert state(shuffled) == state(reference)
    assert conflicts(shuffled) == conflicts(reference)


# ---------------------------------------------------------- local commands
@pytest.fixture
def shop() -> tuple[sqlite3.Connection, Engine]:
    conn = ledger()
    engine = Engine("store-a", hlc_mod.HybridLogicalClock())
    tx(conn, commands.create_product, engine, {"sku": "S", "name": "s"})
    return conn, engine


def own_events(conn: sqlite3.Connection, type_: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT body FROM events WHERE origin = 'store-a' AND type = ? ORDER BY seq", (type_,)
    )
    return [json.loads(r[0]) for r in rows]


def test_setting_a_store_emits_only_the_fields_that_change(
    shop: tuple[sqlite3.Connection, Engine],
) -> None:
    conn, engine = shop
    view = tx(conn, commands.set_store, engine, "store-009", {"name": "Centro", "priority": 2})
    assert (view["storeId"], view["listed"], view["name"], view["priority"]) == (
        "store-009",
        True,
        "Centro",
        2,
    )
    tx(conn, commands.set_store, engine, "store-009", {"name": "Centro", "online": True})
    tx(conn, commands.set_store, engine, "store-009", {"priority": 2})  # nothing new
    [first, second] = own_events(conn, "store.upserted")
    assert first["data"]["fields"] == {"name": "Centro", "priority": 2}
    assert second["data"]["fields"] == {"online": True}  # unset before: a change
    assert (first["schemaVersion"], first["data"]["basis"]) == (2, {"store-a": 1})


def test_a_store_command_refuses_any_and_bad_ids(shop: tuple[sqlite3.Connection, Engine]) -> None:
    conn, engine = shop
    with pytest.raises(InvalidInput, match="storeId: 'any' is not a store"):
        tx(conn, commands.set_store, engine, "any", {"name": "x"})
    with pytest.raises(InvalidInput, match=r"storeId: 'a\.b' is not a store id"):
        tx(conn, commands.set_store, engine, "a.b", {"name": "x"})
    with pytest.raises(InvalidInput, match="colour: not a store field"):
        tx(conn, commands.set_store, engine, "store-009", {"colour": "red"})
    assert own_events(conn, "store.upserted") == []


def test_safety_stock_of_a_sku_is_set_cleared_and_checked(
    shop: tuple[sqlite3.Connection, Engine],
) -> None:
    conn, engine = shop
    with pytest.raises(NotFound, match="store 'store-404' is not known"):
        tx(conn, commands.set_safety_stock, engine, "S", "store-404", 3)
    with pytest.raises(NotFound, match="product 'NOPE' not found"):
        tx(conn, commands.set_safety_stock, engine, "NOPE", "store-a", 3)
    view = tx(conn, commands.set_safety_stock, engine, "S", "store-a", 3)  # its own store
    assert (view["safetyStock"], view["skuSetting"], view["storeDefault"]) == (3, 3, 0)
    tx(conn, commands.set_safety_stock, engine, "S", "store-a", 3)  # the same: no event
    tx(conn, commands.set_store, engine, "store-a", {"safetyStock": 5})
    view = tx(conn, commands.set_safety_stock, engine, "S", "store-a", None)
    assert (view["safetyStock"], view["skuSetting"], view["storeDefault"]) == (5, None, 5)
    values = [e["data"]["fields"] for e in own_events(conn, "stock.settings")]
    assert values == [{"safetyStock": 3}, {"safetyStock": None}]


def test_known_stores_are_the_listed_the_origins_and_the_stocked_ones() -> None:
    conn = ledger()
    assert directory.known_store_ids(conn) == []
    conn.executemany(
        "INSERT INTO stock (sku, store_id) VALUES (?, ?)",
        [(f"S{i}", f"store-{i % 3}") for i in range(30)],
    )
    conn.execute("INSERT INTO stores (store_id) VALUES ('web'), ('store-1')")
    tx(
        conn,
        Engine("observer", hlc_mod.HybridLogicalClock()).apply_remote,
        setting_event("hq", 1, 0, 1),
    )
    assert directory.known_store_ids(conn) == ["hq", "store-0", "store-1", "store-2", "web"]
    assert [s.store_id for s in directory.all_stores(conn)] == directory.known_store_ids(conn)
