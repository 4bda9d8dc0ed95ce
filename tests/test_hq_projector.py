"""HQ's read model against a real PostgreSQL (tests/pgfix.py): the projector
merges like the agent.

The differential tests apply the same seeded event sets (tests/hq_workload.py:
counts, deltas, sales, concurrent product edits, reservations, out of order,
repeated, in random batches) to the agent's own engine on SQLite and to the
projector, and compare digests, conflict ids, superseded flags and
watermarks. The agent applies each batch in stamp order, which is the order
the projector's set-based merge stands for (its conflicts log depends on
arrival order; its state does not, which a second replica fed in arrival
order checks)."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import psycopg
import pytest

from agent import digest
from agent.hlc import HybridLogicalClock
from agent.hq import inbox, staging
from agent.hq.projector import DERIVED, Projector
from agent.hq.schema import migrate
from agent.ledger import queries, replication
from agent.ledger.connection import connect
from agent.ledger.engine import Engine
from agent.ledger.schema import migrate as migrate_ledger
from agent.sync import subjects, validate
from tests.hq_workload import BASE_MS, Workload, arrivals, envelope
from tests.pgfix import PgSchema, pg, pg_server  # noqa: F401 (fixtures)

NOW_MS = BASE_MS + 3_600_000


def stamp(event: dict[str, Any]) -> tuple[int, str]:
    return (event["hlc"], event["origin"])


class AgentReplica:
    """The agent's engine on an in-memory ledger, applying peers' events."""

    def __init__(self) -> None:
        self.conn = connect(":memory:")
        migrate_ledger(self.conn)
        self.engine = Engine("observer", HybridLogicalClock(), wall_ms=lambda: NOW_MS)

    def apply(self, events: list[dict[str, Any]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        replication.apply_batch(self.conn, self.engine, events, [])
        self.conn.execute("COMMIT")

    def digests(self) -> dict[str, str]:
        return queries.digests(self.conn)

    def rows(self, sql: str) -> set[tuple[Any, ...]]:
        return {tuple(r) for r in self.conn.execute(sql)}


def hq_rows(conn: psycopg.Connection[Any], sql: str) -> set[tuple[Any, ...]]:
    return {tuple(r) for r in conn.execute(sql).fetchall()}


def dump(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[Any]]:
    """Every row of the model (bookkeeping times left out)."""
    out = {}
    for table in (*DERIVED, "origins", "events"):
        cols = "*" if table not in ("origins", "events") else "origin, max_seq, applied_seq"
        if table == "events":
            cols = "origin, seq, hlc, type, body"
        rows = conn.execute(f'SELECT {cols} FROM "{schema}".{table}').fetchall()
        out[table] = sorted(map(repr, rows))
    return out


@pytest.fixture
def hq(pg: PgSchema) -> Any:  # noqa: F811
    with pg.connect() as conn:
        migrate(conn, pg.schema)
        yield Projector(conn, pg.schema, wall_ms=lambda: NOW_MS), conn


def check_like_the_agent(
    projector: Projector, conn: psycopg.Connection[Any], agent: AgentReplica
) -> None:
    assert projector.digests() == agent.digests()
    assert hq_rows(conn, "SELECT conflict_id FROM conflicts") == agent.rows(
        "SELECT id FROM conflicts"
    )
    assert hq_rows(
        conn, "SELECT event_id, superseded::int, quantity, transfer_id FROM movements"
    ) == agent.rows("SELECT id, superseded, quantity, transfer_id FROM movements")
    assert hq_rows(
        conn,
        "SELECT transfer_id, sku, quantity, shipped, claim, received, damaged, cancelled, "
        "pending FROM transfer_lines",
    ) == agent.rows(
        "SELECT transfer_id, sku, quantity, shipped, claim, received, damaged, cancelled, "
        "pending FROM transfer_lines"
    )
    assert hq_rows(
        conn, "SELECT transfer_id, from_store, to_store, state, status, cancel_id FROM transfers"
    ) == agent.rows("SELECT id, from_store, to_store, state, status, cancel_id FROM transfers")
    assert projector.watermarks() == {
        o: (a, m) for o, a, m in agent.rows("SELECT origin, applied_seq, max_seq FROM origins")
    }


@pytest.mark.parametrize("seed", range(16))
def test_hq_merges_like_the_agent_whatever_the_order_and_batches(hq: Any, seed: int) -> None:
    projector, conn = hq
    rng = random.Random(seed)
    events = Workload(seed, directory=True).events(rng.randint(30, 160))
    in_stamp_order, as_arrived = AgentReplica(), AgentReplica()
    received = applied = 0
    for batch in arrivals(rng, events):
        # odd seeds: with the payloads the events came as (COPY'd as they are)
        payloads = [json.dumps(e).encode() for e in batch] if seed % 2 else None
        result = projector.apply(batch, payloads=payloads)
        received += result.received
        applied += result.applied
        assert result.received == result.applied + result.duplicates
        in_stamp_order.apply(sorted(batch, key=stamp))
        as_arrived.apply(batch)
    assert applied == len(events)
    check_like_the_agent(projector, conn, in_stamp_order)
    assert projector.digests() == as_arrived.digests()

    # the whole set again: nothing changes
    before = dump(conn, projector.schema)
    again = projector.apply(rng.sample(events, len(events)))
    assert (again.applied, again.duplicates) == (0, len(events))
    assert dump(conn, projector.schema) == before

    # rebuilt from the recorded events: the agent applying all of them in stamp order
    assert projector.rebuild(batch=rng.choice([1, 7, 50, 10_000])) == len(events)
    all_in_order = AgentReplica()
    all_in_order.apply(sorted(events, key=stamp))
    check_like_the_agent(projector, conn, all_in_order)


def test_the_differential_workload_has_what_it_claims() -> None:
    events = Workload(3, directory=True).events(400)
    for e in events:  # what agents would accept from the stream
        subject = subjects.events("default", e["origin"])
        checked = validate.check(subject, json.dumps(e).encode(), NOW_MS, 10**9)
        assert not isinstance(checked, validate.Rejected), (e, checked)
    types = {e["type"] for e in events}
    assert types == {
        "stock.movement",
        "stock.batch",
        "product.upserted",
        "reservation.changed",
        "store.upserted",
        "stock.settings",
    }
    kinds = {e["data"]["kind"] for e in events if e["type"] == "stock.movement"}
    assert kinds == {"receive", "sell", "adjust", "count"}
    batches = [e["data"]["movements"] for e in events if e["type"] == "stock.batch"]
    assert any(len(b) > 1 for b in batches)
    assert {m["kind"] for b in batches for m in b} == {"receive", "adjust", "count"}
    statuses = {e["data"]["reservation"]["status"] for e in events if "reservation" in e["data"]}
    assert statuses == {"PENDING", "CONFIRMED", "CANCELLED", "EXPIRED"}
    walls = {}
    for e in events:
        walls.setdefault(e["hlc"] >> 16, set()).add(e["origin"])
    assert any(len(origins) > 1 for origins in walls.values())  # same-ms writes of two stores


# ------------------------------------------------------------ hand-made cases
def ev(origin: str, seq: int, ms: int, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return envelope(origin, seq, (BASE_MS + ms) << 16, type_, data)


def product(sku: str, basis: dict[str, int] | None = None, **fields: Any) -> dict[str, Any]:
    return {"sku": sku, "fields": fields, "basis": basis or {}}


def mv(store: str, sku: str, kind: str, qty: int, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "storeId": store, "kind": kind, "quantity": qty, "reason": "", **extra}


def res(rid: str, store: str, sku: str, qty: int, status: str, **by: str) -> dict[str, Any]:
    """``by``: createdBy, updatedBy (events of agents before them have neither)."""
    return {
        "reservation": {
            "id": rid,
            "sku": sku,
            "storeId": store,
            "quantity": qty,
            "customerId": None,
            "status": status,
            "orderId": None,
            "expiresAtMs": BASE_MS + 900_000,
            "createdAtMs": BASE_MS,
            "updatedAtMs": BASE_MS,
            **by,
        }
    }


def one(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return row[0] if row and len(row) == 1 else row


def test_an_older_stamp_arriving_late_overwrites_nothing(hq: Any) -> None:
    projector, conn = hq
    projector.apply(
        [
            ev("s2", 1, 20, "product.upserted", product("P", name="new", price=2)),
            ev("s2", 2, 21, "stock.movement", mv("s1", "P", "count", 10)),
            ev(
                "s1",
                2,
                30,
                "reservation.changed",
                res("r1", "s1", "P", 3, "CANCELLED", createdBy="ana", updatedBy="ben@s2"),
            ),
        ]
    )
    projector.apply(  # all older than what is there, in a later batch
        [
            ev(
                "s1",
                1,
                25,
                "reservation.changed",
                res("r1", "s1", "P", 3, "PENDING", createdBy="ana", updatedBy="ana"),
            ),
            ev("s3", 1, 10, "product.upserted", product("P", name="old", price=1)),
            ev("s3", 2, 11, "stock.movement", mv("s1", "P", "count", 99)),
            ev("s3", 3, 12, "stock.movement", mv("s1", "P", "receive", 5)),
        ]
    )
    assert one(conn, "SELECT name, price FROM products") == ("new", 2.0)
    assert one(conn, "SELECT on_hand, reserved FROM stock") == (10, 0)
    assert one(conn, "SELECT status, created_by, updated_by FROM reservations") == (
        "CANCELLED",
        "ana",
        "ben@s2",
    )
    assert hq_rows(conn, "SELECT event_id FROM movements WHERE superseded") == {
        ("s3:2",),
        ("s3:3",),
    }
    assert hq_rows(conn, "SELECT kind, loser, winner FROM conflicts") == {
        ("product_field", "s3:1", "s2:1"),  # name and price: one row per field
        ("concurrent_count", "s3:2", "s2:2"),
        ("superseded_delta", "s3:3", "s2:2"),
    }
    assert one(conn, "SELECT count(*) FROM conflicts") == 4


def test_many_writes_to_one_key_in_one_batch(hq: Any) -> None:
    projector, conn = hq
    writes = [
        ev("s1", 1, 1, "product.upserted", product("P", name="a")),
        ev("s2", 1, 2, "product.upserted", product("P", name="b")),
        ev("s3", 1, 3, "product.upserted", product("P", name="c", basis={"s2": 1})),
        ev("s1", 2, 4, "stock.movement", mv("s1", "P", "receive", 5)),
        ev("s2", 2, 5, "stock.movement", mv("s1", "P", "count", 7)),
        ev("s1", 3, 6, "stock.movement", mv("s1", "P", "sell", -2)),
        ev("s3", 2, 7, "stock.movement", mv("s1", "P", "count", 1, basis={"s1": 3, "s2": 2})),
        ev("s1", 4, 8, "stock.movement", mv("s1", "P", "sell", -4)),
        ev("s1", 5, 9, "reservation.changed", res("r", "s1", "P", 1, "PENDING")),
        ev("s1", 6, 10, "reservation.changed", res("r", "s1", "P", 2, "PENDING")),
        ev("s1", 7, 11, "reservation.changed", res("r", "s1", "P", 2, "CONFIRMED")),
    ]
    batch = writes + writes[:4]  # and exact repeats in the same batch
    random.Random(5).shuffle(batch)
    result = projector.apply(batch)
    assert (result.received, result.applied, result.duplicates) == (15, 11, 4)
    agent = AgentReplica()
    agent.apply(writes)
    check_like_the_agent(projector, conn, agent)
    assert one(conn, "SELECT name FROM products") == "c"
    assert one(conn, "SELECT on_hand, reserved FROM stock") == (-3, 0)
    assert hq_rows(conn, "SELECT kind, loser, winner FROM conflicts") == {
        ("product_field", "s1:1", "s2:1"),  # c had seen b, not a; b had seen neither
        ("superseded_delta", "s1:2", "s2:2"),
        ("negative_available", "s1:4", None),
    }


def test_rebuild_replays_into_the_same_state(hq: Any) -> None:
    projector, conn = hq
    events = Workload(11).events(120)
    projector.apply(events, checkpoint=120)
    before = projector.digests()
    conn.execute(f'UPDATE "{projector.schema}".stock SET on_hand = on_hand + 1')
    assert projector.digests() != before
    assert projector.rebuild(batch=16) == 120
    assert projector.digests() == before
    assert projector.checkpoint() == 120
    assert projector.watermarks() == {o: (n, n) for o, n in _max_seqs(events).items()}


def _max_seqs(events: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e["origin"]] = max(out.get(e["origin"], 0), e["seq"])
    return out


def test_directory_events_merge_like_the_agent(hq: Any) -> None:
    projector, conn = hq
    events = Workload(21, directory=True).events(200)
    projector.apply(events)
    agent = AgentReplica()
    agent.apply(sorted(events, key=stamp))
    check_like_the_agent(projector, conn, agent)


def test_store_entries_and_stock_settings_are_last_writer_wins_per_field(hq: Any) -> None:
    projector, conn = hq
    up = "store.upserted"
    first = [
        ev("s1", 1, 1, up, {"storeId": "s1", "fields": {"name": "A", "lat": 40}, "basis": {}}),
        ev("s2", 1, 2, up, {"storeId": "s1", "fields": {"name": "B"}, "basis": {}}),
        ev("s2", 2, 3, up, {"storeId": "s9", "fields": {}, "basis": {}}),
        ev("s1", 2, 4, "stock.settings", _safety("s1", "P", 4)),
        ev("s2", 3, 5, "stock.settings", _safety("s1", "P", None, basis={"s1": 2})),
    ]
    late = [ev("s3", 1, 0, up, {"storeId": "s1", "fields": {"lat": 1}, "basis": {}})]
    agent = AgentReplica()
    for batch in (first, late):
        projector.apply(batch)
        agent.apply(batch)
    check_like_the_agent(projector, conn, agent)
    assert hq_rows(conn, "SELECT store_id, name, lat, listed FROM stores") == {
        ("s1", "B", 40.0, True),
        ("s2", None, None, False),
        ("s3", None, None, False),
        ("s9", None, None, True),
    }
    assert one(conn, "SELECT safety_stock FROM stock_settings") is None
    assert hq_rows(
        conn, "SELECT kind, store_id, sku, loser, winner, detail->>'field' FROM conflicts"
    ) == {
        ("store_field", "s1", None, "s1:1", "s2:1", "name"),
        ("store_field", "s1", None, "s3:1", "s1:1", "lat"),
    }


def _safety(store: str, sku: str, n: int | None, basis: dict[str, int] | None = None) -> Any:
    return {"sku": sku, "storeId": store, "fields": {"safetyStock": n}, "basis": basis or {}}


def test_a_confirms_sale_counts_only_with_its_state(hq: Any) -> None:
    """As in the agent: a reservation event older than the state recorded is
    ignored whole, the sale a confirm carries included."""
    projector, conn = hq
    confirmed = res("r2", "s1", "P", 2, "CONFIRMED")
    confirmed["movement"] = mv("s1", "P", "sell", -2)
    first = [
        ev("s1", 1, 1, "stock.movement", mv("s1", "P", "receive", 9)),
        ev("s1", 3, 3, "reservation.changed", res("r2", "s1", "P", 2, "CANCELLED")),
    ]
    late = [ev("s1", 2, 2, "reservation.changed", confirmed)]
    projector.apply(first)
    projector.apply(late)
    agent = AgentReplica()
    agent.apply(first)
    agent.apply(late)
    check_like_the_agent(projector, conn, agent)
    assert one(conn, "SELECT on_hand, reserved FROM stock") == (9, 0)
    assert one(conn, "SELECT count(*) FROM movements") == 1


# -------------------------------------------------------------------- views
def test_the_contract_views_on_a_small_chain(hq: Any) -> None:
    from datetime import UTC, datetime

    from agent.domain import (
        DEFAULT_ONLINE,
        DEFAULT_PRIORITY,
        DEFAULT_SAFETY_STOCK,
        available_online,
        safety_stock_of,
    )

    projector, conn = hq
    day = 86_400_000
    s1 = {"online": False, "safetyStock": 2, "priority": 1, "name": "North"}
    sale = res("r1", "s1", "P", 1, "CONFIRMED")
    sale["movement"] = mv("s1", "P", "sell", -1)
    projector.apply(
        [
            ev("hq", 1, 0, "store.upserted", {"storeId": "s1", "fields": s1, "basis": {}}),
            ev("hq", 2, 1, "stock.settings", _safety("s1", "Q", 5)),
            ev("s1", 1, 2, "stock.movement", mv("s1", "P", "receive", 10)),
            ev("s1", 2, 3, "stock.movement", mv("s1", "P", "sell", -3)),
            ev("s1", 3, day + 4, "stock.movement", mv("s1", "P", "sell", -1)),
            ev("s1", 4, day + 5, "reservation.changed", res("r0", "s1", "P", 2, "PENDING")),
            ev("s1", 5, day + 6, "reservation.changed", sale),
            ev("s1", 6, day + 7, "stock.movement", mv("s1", "Q", "receive", 4)),
            ev("s2", 1, 8, "stock.movement", mv("s2", "P", "count", 6)),
        ]
    )
    stores = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT store_id, name, online, priority, safety_stock, listed FROM stores"
        ).fetchall()
    }
    assert stores == {
        "hq": (None, DEFAULT_ONLINE, DEFAULT_PRIORITY, DEFAULT_SAFETY_STOCK, False),
        "s1": ("North", False, 1, 2, True),
        "s2": (None, DEFAULT_ONLINE, DEFAULT_PRIORITY, DEFAULT_SAFETY_STOCK, False),
    }
    levels = conn.execute(
        "SELECT store_id, sku, on_hand, reserved, available, safety_stock, available_online "
        "FROM stock_levels ORDER BY 1, 2"
    ).fetchall()
    assert levels == [
        ("s1", "P", 5, 2, 3, 2, 0),
        ("s1", "Q", 4, 0, 4, 5, 0),
        ("s2", "P", 6, 0, 6, 0, 6),
    ]
    for store, sku, _, _, available, safety, online_ in levels:
        own = 5 if (store, sku) == ("s1", "Q") else None
        default = 2 if store == "s1" else None
        assert safety == safety_stock_of(own, default)
        assert online_ == available_online(available, safety, store != "s1")
    assert conn.execute("SELECT * FROM chain_availability ORDER BY sku").fetchall() == [
        ("P", 11, 9, 6, {"s1": 3, "s2": 6}, 0),
        ("Q", 4, 4, 0, {"s1": 4}, 0),
    ]
    first = datetime.fromtimestamp(BASE_MS / 1000, UTC).date()
    second = datetime.fromtimestamp((BASE_MS + day + 4) / 1000, UTC).date()
    assert conn.execute("SELECT * FROM sales_daily ORDER BY day").fetchall() == [
        (first, "s1", "P", 3),
        (second, "s1", "P", 2),  # a sale and a confirmed reservation's
    ]
    assert conn.execute("SELECT * FROM low_stock").fetchall() == [("s1", "Q", 4, 5)]
    movement = conn.execute(
        "SELECT event_id, kind, quantity, at FROM movements ORDER BY hlc"
    ).fetchone()
    assert movement == ("s1:1", "receive", 10, datetime.fromtimestamp((BASE_MS + 2) / 1000, UTC))


def has_columns(conn: psycopg.Connection[Any], schema: str, contract: dict[str, str]) -> None:
    """Each table or view of ``contract`` has at least the columns named (space-separated)."""
    for table, columns in contract.items():
        found = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (schema, table),
            ).fetchall()
        }
        assert set(columns.split()) <= found, (table, set(columns.split()) - found)


def test_the_contract_tables_have_their_columns(hq: Any) -> None:
    projector, conn = hq
    contract = {
        "products": "sku product_id name category price active updated_at",
        "stores": "store_id name address lat lon online priority safety_stock updated_at",
        "stock_levels": "store_id sku on_hand reserved available safety_stock updated_at",
        "movements": "event_id store_id sku kind quantity reason actor at superseded",
        "reservations": "reservation_id store_id sku quantity status customer_id order_id "
        "channel created_by updated_by expires_at updated_at",
        "conflicts": "conflict_id kind store_id sku winner loser detail at",
        "origins": "origin applied_seq max_seq last_event_at",
        "chain_availability": "sku total_on_hand total_available stores",
        "sales_daily": "day store_id sku units",
        "low_stock": "store_id sku available safety_stock",
    }
    has_columns(conn, projector.schema, contract)
    timestamps = conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND column_name IN ('at', 'updated_at', 'expires_at')",
        (projector.schema,),
    ).fetchall()
    assert {t for _, _, t in timestamps} == {"timestamp with time zone"}


# -------------------------------------------------------------- bookkeeping
def _receive(origin: str, seq: int) -> dict[str, Any]:
    return ev(origin, seq, seq, "stock.movement", mv(origin, "P", "receive", 1))


def test_watermarks_holes_and_what_quarantine_holds(hq: Any) -> None:
    projector, conn = hq
    assert (projector.checkpoint(), projector.watermarks(), projector.holes()) == (0, {}, {})
    projector.apply([_receive("s1", n) for n in (1, 2, 5, 6)] + [_receive("s2", 2)], checkpoint=9)
    assert projector.watermarks() == {"s1": (2, 6), "s2": (0, 2)}
    assert projector.holes() == {"s1": [3, 4], "s2": [1]}
    assert projector.holes(limit=1) == {"s1": [3], "s2": [1]}

    held = {"eventId": "s1:3", "subject": "inv.default.ev.s1", "reason": "clock_skew", "body": "{}"}
    forged = {"eventId": "s1:4", "subject": "inv.default.ev.s2", "reason": "origin_mismatch"}
    result = projector.apply([], rejected=[held, held, forged], checkpoint=7)
    assert (result.received, result.quarantined) == (0, 3)
    assert projector.checkpoint() == 9  # never moves back
    assert one(conn, "SELECT count(*) FROM quarantine") == 2  # once per id and reason
    assert projector.holes() == {"s1": [4], "s2": [1]}  # held back is not missing; forged is

    [(qid, body)] = projector.held_back()
    assert body == "{}"
    projector.apply([_receive("s1", 3), _receive("s1", 4)], released=[qid], checkpoint=12)
    assert projector.held_back() == []
    assert projector.watermarks()["s1"] == (6, 6)
    assert projector.holes() == {"s2": [1]}
    assert projector.checkpoint() == 12


def test_events_postgresql_cannot_store_are_quarantined_not_applied(hq: Any) -> None:
    projector, conn = hq
    nul = ev("s1", 1, 1, "stock.movement", mv("s1", "P", "receive", 1, reason="a\x00b"))
    surrogate = ev("s1", 2, 2, "product.upserted", product("P", name="\ud800"))
    fine = ev("s1", 3, 3, "stock.movement", mv("s1", "P", "receive", 1, reason="\\u0000 is text"))
    bad_record = {"eventId": "x\x00", "subject": None, "reason": "malformed", "body": "\x00\ud800"}
    result = projector.apply([nul, surrogate, fine], rejected=[bad_record])
    assert (result.applied, result.duplicates, result.quarantined) == (1, 0, 3)
    assert hq_rows(conn, "SELECT event_id, reason FROM quarantine") == {
        ("s1:1", "malformed"),
        ("s1:2", "malformed"),
        ("x\ufffd", "malformed"),
    }
    assert one(conn, "SELECT reason FROM movements") == "\\u0000 is text"
    assert projector.holes() == {}  # refused here: not asked for again


def test_a_failing_batch_changes_nothing(hq: Any) -> None:
    projector, conn = hq
    projector.apply([_receive("s1", 1)], checkpoint=1)
    before = dump(conn, projector.schema)
    broken = _receive("s1", 3)
    broken["data"]["quantity"] = "many"  # what validation would refuse
    with pytest.raises(psycopg.Error):
        projector.apply([_receive("s1", 2), broken], checkpoint=3)
    assert dump(conn, projector.schema) == before
    assert projector.checkpoint() == 1
    assert projector.apply([_receive("s1", 2)]).applied == 1  # the connection still works


# --------------------------------------------------------------- migrations
def test_migrations_are_versioned_and_idempotent(pg: PgSchema) -> None:  # noqa: F811
    import threading

    from agent.hq import schema

    with pg.connect() as conn:
        assert schema.version(conn, pg.schema) == 0
        with pytest.raises(RuntimeError, match="migrate it first"):
            Projector(conn, pg.schema)
        results: list[int] = []

        def run() -> None:
            with pg.connect() as other:
                results.append(migrate(other, pg.schema))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [len(schema.MIGRATIONS)] * 2
        assert migrate(conn, pg.schema) == len(schema.MIGRATIONS)
        rows = conn.execute(f'SELECT version FROM "{pg.schema}".schema_version').fetchall()
        assert rows == [(v,) for v in range(1, len(schema.MIGRATIONS) + 1)]

        conn.execute(f'INSERT INTO "{pg.schema}".schema_version (version) VALUES (99)')
        with pytest.raises(RuntimeError, match="newer than this inv-hq knows"):
            migrate(conn, pg.schema)
        with pytest.raises(ValueError, match="not a plain PostgreSQL name"):
            migrate(conn, 'x"; DROP TABLE y; --')
    with psycopg.connect(pg.dsn) as implicit, pytest.raises(ValueError, match="autocommit"):
        migrate(implicit, pg.schema)


def test_a_fresh_schema_is_created_with_the_model(pg_server: str) -> None:  # noqa: F811
    from agent.hq import schema

    name = f"hq_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        try:
            assert migrate(conn, name) == len(schema.MIGRATIONS)
            assert Projector(conn, name).digests() == digest.digests([], [])
        finally:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def test_a_stores_own_later_write_is_no_field_conflict(hq: Any) -> None:
    """With no basis at all, a field a store overwrites itself is history, not
    a conflict (as in the agent); a count is judged by its basis alone."""
    projector, conn = hq
    events = [
        ev("s1", 1, 1, "product.upserted", {"sku": "P", "fields": {"category": "x"}}),
        ev("s1", 2, 2, "product.upserted", {"sku": "P", "fields": {"category": "y"}}),
        ev("s1", 3, 3, "stock.movement", mv("s1", "P", "count", 5)),
        ev("s1", 4, 4, "stock.movement", mv("s1", "P", "count", 7)),
    ]
    projector.apply(events[::-1])
    agent = AgentReplica()
    agent.apply(events)
    check_like_the_agent(projector, conn, agent)
    assert hq_rows(conn, "SELECT kind, loser FROM conflicts") == {("concurrent_count", "s1:3")}


# ------------------------------------------------------ payloads and inbox
def test_payloads_are_recorded_as_they_came_or_encoded_anew(hq: Any) -> None:
    """A payload PostgreSQL takes as it is (plain ASCII: what agents send) is
    COPY'd as it is; any other is encoded anew from the event (escapes,
    UTF-8, line breaks, a NaN, which is refused). Either way the model is
    what the events say."""
    projector, conn = hq
    name = 'a "quoted"\\ name\twith tab, caf\u00e9 \U0001f600 and \\u0000 as text'
    events = [
        ev("s1", 1, 1, "product.upserted", product("P", name=name, price=1.5)),
        ev("s1", 2, 2, "stock.movement", mv("s1", "P", "receive", 4, reason="ok")),
        ev("s1", 3, 3, "stock.movement", mv("s1", "P", "sell", -1, reason="l\u00e4den")),
        ev("s1", 4, 4, "stock.movement", mv("s1", "P", "sell", -1, note=float("nan"))),
    ]
    payloads = [
        json.dumps(events[0]).encode(),  # \u escapes: encoded anew
        json.dumps(events[1], indent=1).encode(),  # line breaks: encoded anew
        json.dumps(events[2], ensure_ascii=False).encode(),  # UTF-8: encoded anew
        json.dumps(events[3]).encode(),  # NaN: PostgreSQL cannot hold it
    ]
    assert [staging.as_arrived(p) is not None for p in payloads] == [False] * 4
    plain = json.dumps(events[1]).encode()
    assert staging.as_arrived(plain) == plain
    result = projector.apply(events, payloads=payloads)
    assert (result.applied, result.quarantined) == (3, 1)
    assert one(conn, "SELECT name FROM products") == name
    assert one(conn, "SELECT on_hand FROM stock") == 3
    assert one(conn, "SELECT reason FROM quarantine") == "malformed"
    bodies = hq_rows(conn, "SELECT seq, body::text FROM events")
    assert {seq: json.loads(body) for seq, body in bodies} == {e["seq"]: e for e in events[:3]}
    with pytest.raises(ValueError, match="one per event"):
        projector.apply(events, payloads=payloads[:1])


def test_a_batch_posted_to_the_inbox_applies_once_whole(hq: Any, pg: PgSchema) -> None:  # noqa: F811
    projector, conn = hq
    events = Workload(5).events(60)
    more = [ev("s9", n, 10_000 + n, "stock.movement", mv("s9", "P", "receive", 1)) for n in (1, 2)]
    with pg.connect() as other:
        box = inbox.Inbox(other, pg.schema)
        posted = box.post(projector.encode(events, [json.dumps(e).encode() for e in events]))
        assert projector.apply(posted).applied == len(events)
        agent = AgentReplica()
        agent.apply(sorted(events, key=stamp))
        check_like_the_agent(projector, conn, agent)

        posted = box.post(projector.encode(more, [json.dumps(e).encode() for e in more]))
        conn.execute("DELETE FROM inbox WHERE origin = 's9' AND seq = 2")  # lost: a restart
        before = dump(conn, projector.schema)
        with pytest.raises(psycopg.Error, match="not whole"):
            projector.apply(posted, checkpoint=99)
        assert dump(conn, projector.schema) == before

        # a batch's rows go when the batch after next is posted; the rest on clear
        assert one(conn, "SELECT count(*) FROM inbox") == len(events) + 1
        box.post(projector.encode([]))
        assert one(conn, "SELECT count(*) FROM inbox") == 1
        box.clear()
        assert one(conn, "SELECT count(*) FROM inbox") == 0


def test_the_events_of_the_last_minute_are_counted(pg: PgSchema) -> None:  # noqa: F811
    """inv-hq status reads them by ``received_at`` (a BRIN index since schema 2)."""
    from agent.hq import reads

    with pg.connect() as conn:
        migrate(conn, pg.schema)
        projector = Projector(conn, pg.schema)  # the wall clock: received now
        projector.apply([_receive("s1", n) for n in (1, 2, 3)])
        assert reads.events_last_minute(conn, pg.schema) == 3
