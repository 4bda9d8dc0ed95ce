"""Unit tests of the pure logic: agent.domain, agent.hlc, and the event engine
(agent.ledger.engine) on an in-memory SQLite ledger, including the property
that replicas applying the same events in any order, with duplicates, converge
to identical digests."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import hlc as hlc_mod
from agent.domain import (
    OPERATION_KIND,
    MovementKind,
    ReservationStatus,
    ReservationView,
    batch_movement_id,
    covered,
    product_id_for,
    split_event_id,
)
from agent.errors import Conflict, InsufficientStock
from agent.inputs import ReservationRequest, StockChange
from agent.ledger import commands, queries
from agent.ledger.engine import Engine
from agent.ledger.schema import MIGRATIONS, migrate
from agent.ledger.store import DryRun, LedgerStore, connect

T = TypeVar("T")
BASE_MS = 1_790_000_000_000


# ------------------------------------------------------------------ helpers
def new_ledger() -> sqlite3.Connection:
    conn = connect(":memory:")
    migrate(conn)
    return conn


def tx(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in one write transaction, as the agent's writer thread does."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def make_event(origin: str, seq: int, hlc: int, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{origin}:{seq}",
        "origin": origin,
        "seq": seq,
        "hlc": hlc,
        "type": type_,
        "schemaVersion": 1,
        "data": data,
    }


def movement(sku: str, store: str, kind: str, qty: int, **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "storeId": store, "kind": kind, "quantity": qty, "reason": "", **extra}


def reservation(
    rid: str, sku: str, store: str, qty: int, status: str, order: str | None = None
) -> dict[str, Any]:
    return {
        "id": rid,
        "sku": sku,
        "storeId": store,
        "quantity": qty,
        "customerId": None,
        "status": status,
        "orderId": order,
        "expiresAtMs": BASE_MS + 600_000,
        "createdAtMs": BASE_MS,
        "updatedAtMs": BASE_MS,
    }


def apply_all(events: list[dict[str, Any]]) -> sqlite3.Connection:
    """A fresh replica that applies ``events`` in the given order (each a copy,
    as if it came over the wire)."""
    conn = new_ledger()
    engine = Engine("observer", hlc_mod.HybridLogicalClock())
    for event in events:
        tx(conn, engine.apply_remote, json.loads(json.dumps(event)))
    return conn


def stock_of(conn: sqlite3.Connection, sku: str, store: str) -> tuple[int, int]:
    row = queries.stock_level(conn, sku, store)
    return (row["on_hand"], row["reserved"]) if row else (0, 0)


@pytest.fixture
def ledger() -> Iterator[sqlite3.Connection]:
    conn = new_ledger()
    yield conn
    conn.close()


# ---------------------------------------------------------------------- HLC
def test_hlc_packs_wall_ms_and_counter() -> None:
    t = hlc_mod.pack(BASE_MS, 7)
    assert (hlc_mod.wall_ms(t), t & hlc_mod.LOGICAL_MASK) == (BASE_MS, 7)
    assert hlc_mod.pack(BASE_MS, 65535) < hlc_mod.pack(BASE_MS + 1, 0)
    assert queries.iso(hlc_mod.wall_ms(hlc_mod.pack(1_000_123, 5))) == "1970-01-01T00:16:40.123Z"


def test_hlc_never_goes_backwards_even_if_the_wall_clock_does() -> None:
    wall = [BASE_MS]
    clock = hlc_mod.HybridLogicalClock(clock=lambda: wall[0])
    a = clock.now()
    assert a == hlc_mod.pack(BASE_MS, 0)
    b = clock.now()  # same millisecond: the counter moves
    assert b == hlc_mod.pack(BASE_MS, 1)
    wall[0] = BASE_MS - 5_000  # the wall clock jumps back
    c = clock.now()
    assert c > b
    assert hlc_mod.wall_ms(c) == BASE_MS
    wall[0] = BASE_MS + 10
    assert clock.now() == hlc_mod.pack(BASE_MS + 10, 0)
    # restarting from the last stamp stored in the ledger keeps the order
    restarted = hlc_mod.HybridLogicalClock(last=clock.last, clock=lambda: BASE_MS)
    assert restarted.now() > clock.last


def test_hlc_observe_moves_past_a_remote_stamp() -> None:
    clock = hlc_mod.HybridLogicalClock(clock=lambda: BASE_MS)
    remote = hlc_mod.pack(BASE_MS + 2_000, 3)
    assert clock.observe(remote) > remote
    assert clock.now() > remote
    last = clock.last
    # an older remote stamp never moves the clock back
    assert clock.observe(hlc_mod.pack(BASE_MS - 1_000, 0)) >= last
    assert clock.now() > last


def test_hlc_is_unique_across_threads() -> None:
    clock = hlc_mod.HybridLogicalClock(clock=lambda: BASE_MS)
    out: list[list[int]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        out[i].extend(clock.now() for _ in range(2_000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = [s for chunk in out for s in chunk]
    assert len(set(stamps)) == len(stamps) == 16_000
    assert all(chunk == sorted(chunk) for chunk in out)


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("now"), st.integers(-3_000, 3_000)),
            st.tuples(st.just("observe"), st.integers(-3_000, 3_000)),
        ),
        max_size=60,
    )
)
def test_hlc_local_stamps_strictly_increase_and_follow_remote_ones(
    steps: list[tuple[str, int]],
) -> None:
    wall = [BASE_MS]
    clock = hlc_mod.HybridLogicalClock(clock=lambda: wall[0])
    last = 0
    for what, offset in steps:
        if what == "now":
            wall[0] = BASE_MS + offset  # the wall clock wanders both ways
            stamp = clock.now()
            assert stamp > last  # every local stamp is new
        else:
            remote = hlc_mod.pack(BASE_MS + offset, abs(offset) % 50)
            stamp = clock.observe(remote)
            assert stamp > remote  # later local stamps sort after what we saw
            assert stamp >= last
        assert clock.last == stamp
        last = stamp


# ------------------------------------------------------------------- domain
def test_operations_map_to_movement_kinds() -> None:
    assert OPERATION_KIND == {
        "add": MovementKind.RECEIVE,
        "subtract": MovementKind.ADJUST,
        "sell": MovementKind.SELL,
        "set": MovementKind.COUNT,
    }


def test_covered_and_event_ids() -> None:
    assert covered({"store-a": 5}, "store-a", 5)
    assert not covered({"store-a": 5}, "store-a", 6)
    assert not covered({"store-a": 5}, "store-b", 1)
    assert not covered(None, "store-a", 1)
    assert not covered({}, "store-a", 1)
    assert split_event_id("store-001:42") == ("store-001", 42)
    assert split_event_id("odd:name:7") == ("odd:name", 7)
    # a movement of a batch, and of a transfer (a SKU may have a "/")
    assert batch_movement_id("store-001:42", 7) == "store-001:42/7"
    assert split_event_id(batch_movement_id("store-001:42", 7)) == ("store-001", 42)
    assert split_event_id("store-001:42/A/B#damaged") == ("store-001", 42)
    with pytest.raises(ValueError):
        split_event_id("store-001:x")


def test_product_id_is_derived_from_the_sku() -> None:
    assert product_id_for("PROD-001") == product_id_for("PROD-001")
    assert product_id_for("PROD-001") != product_id_for("PROD-002")
    assert len(product_id_for("X")) == 36


def test_a_pending_reservation_reads_expired_once_due() -> None:
    view = ReservationView(ReservationStatus.PENDING, expires_at_ms=1_000)
    assert view.effective(999) == ReservationStatus.PENDING
    assert view.effective(1_000) == ReservationStatus.EXPIRED
    assert view.effective(5_000) == ReservationStatus.EXPIRED
    for final in ("CONFIRMED", "CANCELLED", "EXPIRED"):
        assert ReservationView(final, expires_at_ms=1_000).effective(5_000) == final


# ------------------------------------------------------------------- schema
def test_migrations_are_versioned_and_rerunnable(ledger: sqlite3.Connection) -> None:
    assert ledger.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert migrate(ledger) == len(MIGRATIONS)  # nothing to do the second time
    ledger.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this agent"):
        migrate(ledger)


def test_ledger_store_commits_rolls_back_and_dry_runs(tmp_path: Any) -> None:
    store = LedgerStore(tmp_path / "ledger.db")
    try:

        def put(conn: sqlite3.Connection, key: str) -> str:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,))
            return key

        def put_then_fail(conn: sqlite3.Connection) -> None:
            put(conn, "failed")
            raise Conflict("no")

        def put_dry(conn: sqlite3.Connection) -> None:
            put(conn, "dry")
            raise DryRun({"would": 1})

        assert store.write_sync(put, "kept") == "kept"
        with pytest.raises(Conflict):
            store.write_sync(put_then_fail)
        assert store.write_sync(put_dry) == {"would": 1}
        keys = store.read_sync(lambda c: [r[0] for r in c.execute("SELECT key FROM meta")])
        assert keys == ["kept"]
    finally:
        store.close()


# ------------------------------------------------------------------- engine
def test_local_events_get_gap_free_seqs_and_wait_in_the_outbox(
    ledger: sqlite3.Connection,
) -> None:
    engine = Engine("store-a", hlc_mod.HybridLogicalClock())
    ids = [
        tx(ledger, engine.emit, "stock.movement", movement("S", "store-a", "receive", 1))["id"]
        for _ in range(5)
    ]
    assert ids == [f"store-a:{i}" for i in range(1, 6)]
    assert queries.outbox_backlog(ledger, "store-a") == 5
    assert engine.basis(ledger) == {"store-a": 5}
    assert stock_of(ledger, "S", "store-a") == (5, 0)
    hlcs = [r[0] for r in ledger.execute("SELECT hlc FROM events ORDER BY seq")]
    assert hlcs == sorted(set(hlcs))


def test_a_rolled_back_command_leaves_no_event(ledger: sqlite3.Connection) -> None:
    engine = Engine("store-a", hlc_mod.HybridLogicalClock())
    tx(ledger, commands.create_product, engine, {"sku": "S", "name": "s"})
    with pytest.raises(InsufficientStock):
        tx(
            ledger,
            commands.update_stock,
            engine,
            StockChange("S", "store-a", "subtract", 1, "", "t", None, None),
        )
    assert engine.next_seq(ledger) == 2
    assert queries.outbox_backlog(ledger, "store-a") == 1


def test_applying_a_remote_event_twice_changes_nothing(ledger: sqlite3.Connection) -> None:
    engine = Engine("observer", hlc_mod.HybridLogicalClock())
    ev = make_event(
        "store-b", 1, hlc_mod.pack(BASE_MS, 0), "stock.movement", movement("S", "b", "receive", 3)
    )
    assert tx(ledger, engine.apply_remote, ev) is True
    assert tx(ledger, engine.apply_remote, ev) is False
    assert stock_of(ledger, "S", "b") == (3, 0)
    assert ledger.execute("SELECT count(*) FROM movements").fetchone()[0] == 1
    assert queries.outbox_backlog(ledger, "store-b") == 0  # a peer's event is not ours to send


def test_the_applied_watermark_waits_for_missing_events(ledger: sqlite3.Connection) -> None:
    engine = Engine("observer", hlc_mod.HybridLogicalClock())

    def ev(seq: int) -> dict[str, Any]:
        return make_event(
            "store-b",
            seq,
            hlc_mod.pack(BASE_MS + seq, 0),
            "stock.movement",
            movement("S", "b", "receive", 1),
        )

    def watermark() -> tuple[int, int]:
        row = ledger.execute(
            "SELECT applied_seq, max_seq FROM origins WHERE origin = 'store-b'"
        ).fetchone()
        return row[0], row[1]

    tx(ledger, engine.apply_remote, ev(3))
    assert watermark() == (0, 3)
    tx(ledger, engine.apply_remote, ev(1))
    assert watermark() == (1, 3)
    tx(ledger, engine.apply_remote, ev(4))
    assert watermark() == (1, 4)
    tx(ledger, engine.apply_remote, ev(2))
    assert watermark() == (4, 4)
    assert engine.basis(ledger) == {"store-b": 4}
    assert stock_of(ledger, "S", "b") == (4, 0)


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]])
def test_a_count_supersedes_the_deltas_ordered_before_it(order: list[int]) -> None:
    events = [
        make_event(
            "store-a",
            1,
            hlc_mod.pack(BASE_MS, 0),
            "stock.movement",
            movement("S", "x", "receive", 5),
        ),
        make_event(
            "store-b",
            1,
            hlc_mod.pack(BASE_MS + 10, 0),
            "stock.movement",
            movement("S", "x", "count", 100, basis={}),
        ),
        make_event(
            "store-c",
            1,
            hlc_mod.pack(BASE_MS + 20, 0),
            "stock.movement",
            movement("S", "x", "adjust", -1),
        ),
    ]
    conn = apply_all([events[i] for i in order])
    assert stock_of(conn, "S", "x") == (99, 0)
    superseded = dict(conn.execute("SELECT id, superseded FROM movements").fetchall())
    assert superseded == {"store-a:1": 1, "store-b:1": 0, "store-c:1": 0}
    # the count's writer had not seen the delta: that loss is logged, not silent
    kinds = {(r[0], r[1]) for r in conn.execute("SELECT kind, loser FROM conflicts")}
    assert ("superseded_delta", "store-a:1") in kinds


def test_a_count_that_saw_the_delta_is_no_conflict() -> None:
    events = [
        make_event(
            "store-a",
            1,
            hlc_mod.pack(BASE_MS, 0),
            "stock.movement",
            movement("S", "x", "receive", 5),
        ),
        make_event(
            "store-b",
            1,
            hlc_mod.pack(BASE_MS + 10, 0),
            "stock.movement",
            movement("S", "x", "count", 7, basis={"store-a": 1}),
        ),
    ]
    for order in (events, events[::-1]):
        conn = apply_all(order)
        assert stock_of(conn, "S", "x") == (7, 0)
        assert conn.execute("SELECT count(*) FROM conflicts").fetchone()[0] == 0


def test_a_count_names_only_the_rows_writers_in_its_basis(ledger: sqlite3.Connection) -> None:
    """A count's basis lists the origins that have written its stock row, not
    every store this node has heard from (which in a big network would put
    ~2 KB in every count): the same answer for every conflict it can have."""
    me = Engine("store-a", hlc_mod.HybridLogicalClock())
    tx(ledger, commands.create_product, me, {"sku": "S", "name": "S"})
    tx(ledger, commands.create_product, me, {"sku": "T", "name": "T"})
    # three peers this node has heard from; only store-b has written S@x
    for origin, ts in (("store-b", 10), ("store-c", 20), ("store-d", 30)):
        event = make_event(
            origin, 1, hlc_mod.pack(BASE_MS + ts, 0), "stock.movement",
            movement("T", origin, "receive", 1),
        )  # fmt: skip
        if origin == "store-b":
            event["data"] = movement("S", "x", "receive", 4)
        tx(ledger, me.apply_remote, event)

    def count(sku: str, store: str, qty: int) -> dict[str, Any]:
        out = tx(
            ledger,
            commands.update_stock,
            me,
            StockChange(sku, store, "set", qty, "", "t", None, None),
        )
        body = ledger.execute(
            "SELECT body FROM events WHERE origin = 'store-a' AND seq = ?",
            (int(out["movementId"].split(":")[1]),),
        ).fetchone()[0]
        return json.loads(body)["data"]

    assert "basis" not in count("S", "y", 3)  # a row nobody has written
    assert count("S", "x", 9)["basis"] == {"store-b": 1}
    assert count("S", "x", 8)["basis"] == {"store-a": me.basis(ledger)["store-a"] - 1, "store-b": 1}
    writers = ledger.execute("SELECT writers FROM stock WHERE sku = 'S' AND store_id = 'x'")
    assert writers.fetchone()[0] == "store-a,store-b"


def test_the_writers_migration_fills_them_in_from_the_movements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.ledger import schema

    conn = connect(":memory:")
    with monkeypatch.context() as m:  # a ledger made by the first release
        m.setattr(schema, "MIGRATIONS", MIGRATIONS[:1])
        assert migrate(conn) == 1
    conn.execute("INSERT INTO stock (sku, store_id) VALUES ('S', 'x'), ('S', 'y')")
    conn.executemany(
        "INSERT INTO movements (id, sku, store_id, kind, quantity, hlc, origin) "
        "VALUES (?, 'S', 'x', 'receive', 1, ?, ?)",
        [("store-c:1", 1, "store-c"), ("store-a:1", 2, "store-a"), ("store-c:2", 3, "store-c")],
    )
    assert migrate(conn) == len(MIGRATIONS)
    writers = dict(conn.execute("SELECT store_id, writers FROM stock").fetchall())
    assert writers == {"x": "store-a,store-c", "y": ""}


def test_product_fields_are_last_write_wins_per_field() -> None:
    older = make_event(
        "store-a",
        1,
        hlc_mod.pack(BASE_MS, 0),
        "product.upserted",
        {"sku": "S", "fields": {"id": "id-s", "name": "old", "price": 1.0}, "basis": {}},
    )
    newer_name = make_event(
        "store-b",
        1,
        hlc_mod.pack(BASE_MS + 5, 0),
        "product.upserted",
        {"sku": "S", "fields": {"name": "new"}, "basis": {}},
    )
    for order in ([older, newer_name], [newer_name, older]):
        conn = apply_all(order)
        p = queries.get_product(conn, "S")
        assert (p["id"], p["name"], p["price"]) == ("id-s", "new", 1.0)
        lost = [json.loads(r[0]) for r in conn.execute("SELECT detail FROM conflicts")]
        assert [(d["field"], d["lost"]) for d in lost] == [("name", "old")]


def test_an_older_reservation_state_never_overwrites_a_newer_one() -> None:
    pending = make_event(
        "store-a",
        1,
        hlc_mod.pack(BASE_MS, 0),
        "reservation.changed",
        {"reservation": reservation("r1", "S", "store-a", 2, "PENDING")},
    )
    confirmed = make_event(
        "store-a",
        2,
        hlc_mod.pack(BASE_MS + 1, 0),
        "reservation.changed",
        {
            "reservation": reservation("r1", "S", "store-a", 2, "CONFIRMED", "o1"),
            "movement": movement("S", "store-a", "sell", -2),
        },
    )
    for order in ([pending, confirmed], [confirmed, pending], [confirmed, pending, confirmed]):
        conn = apply_all(order)
        assert queries.reservation_row(conn, "r1")["status"] == "CONFIRMED"
        assert stock_of(conn, "S", "store-a") == (-2, 0)
        assert conn.execute("SELECT count(*) FROM movements").fetchone()[0] == 1


# ----------------------------------------------------------- local commands
@pytest.fixture
def shop(ledger: sqlite3.Connection) -> tuple[sqlite3.Connection, Engine]:
    engine = Engine("store-a", hlc_mod.HybridLogicalClock())
    tx(ledger, commands.create_product, engine, {"sku": "S", "name": "s"})
    tx(
        ledger,
        commands.update_stock,
        engine,
        StockChange("S", "store-a", "set", 3, "", "t", None, None),
    )
    return ledger, engine


def test_reserve_never_takes_available_below_zero(shop: tuple[sqlite3.Connection, Engine]) -> None:
    conn, engine = shop
    _, created = tx(
        conn, commands.reserve, engine, ReservationRequest("S", 2, "r1", "store-a", None, 600)
    )
    assert created
    with pytest.raises(InsufficientStock, match="available=1, requested=2"):
        tx(conn, commands.reserve, engine, ReservationRequest("S", 2, "r2", "store-a", None, 600))
    view, created = tx(
        conn, commands.reserve, engine, ReservationRequest("S", 2, "r1", "store-a", None, 600)
    )
    assert not created and view["reservationId"] == "r1"
    for qty, customer, ttl in [(1, None, 600), (2, "c1", 600), (2, None, 60)]:
        with pytest.raises(Conflict, match="different request"):
            tx(
                conn,
                commands.reserve,
                engine,
                ReservationRequest("S", qty, "r1", "store-a", customer, ttl),
            )
    assert stock_of(conn, "S", "store-a") == (3, 2)


def test_a_due_reservation_reads_expired_before_the_task_writes_it(
    shop: tuple[sqlite3.Connection, Engine],
) -> None:
    conn, engine = shop
    tx(conn, commands.reserve, engine, ReservationRequest("S", 2, "r1", "store-a", None, 600))
    later = engine.wall_ms() + 601_000
    view = queries.get_reservation(conn, "r1", later)
    assert (view["status"], view["remainingSeconds"]) == ("EXPIRED", 0)
    assert queries.reservation_row(conn, "r1")["status"] == "PENDING"  # not yet written
    listed = queries.list_reservations(conn, "EXPIRED", None, None, 10, now=later)["data"]
    assert [r["reservationId"] for r in listed] == ["r1"]

    engine.wall_ms = lambda: later
    with pytest.raises(Conflict, match="EXPIRED"):
        tx(conn, commands.confirm, engine, "r1", None, "t")
    assert stock_of(conn, "S", "store-a") == (3, 2)  # no sale
    assert tx(conn, commands.expire_due, engine) == 1
    assert queries.reservation_row(conn, "r1")["status"] == "EXPIRED"
    assert stock_of(conn, "S", "store-a") == (3, 0)
    assert tx(conn, commands.expire_due, engine) == 0


def test_confirm_sells_once(shop: tuple[sqlite3.Connection, Engine]) -> None:
    conn, engine = shop
    tx(conn, commands.reserve, engine, ReservationRequest("S", 2, "r1", "store-a", None, 600))
    assert tx(conn, commands.confirm, engine, "r1", "o1", "t")["status"] == "CONFIRMED"
    assert tx(conn, commands.confirm, engine, "r1", "o1", "t")["status"] == "CONFIRMED"
    with pytest.raises(Conflict, match="o1"):
        tx(conn, commands.confirm, engine, "r1", "o2", "t")
    sells = conn.execute("SELECT quantity, reservation_id FROM movements WHERE kind = 'sell'")
    assert [tuple(r) for r in sells] == [(-2, "r1")]
    assert stock_of(conn, "S", "store-a") == (1, 0)


# --------------------------------------------------------- convergence property
ORIGINS = ("store-a", "store-b", "store-c")
SKUS = ("SKU-1", "SKU-2")

product_op = st.tuples(
    st.just("product"),
    st.sampled_from(SKUS),
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["red", "green", "blue"]),
            "price": st.sampled_from([1.0, 2.5, 9.99]),
            "category": st.sampled_from(["x", "y"]),
            "active": st.booleans(),
        },
    ),
)
delta_op = st.tuples(
    st.just("delta"),
    st.sampled_from(SKUS),
    st.sampled_from(ORIGINS),
    st.one_of(
        st.tuples(st.just("receive"), st.integers(1, 9)),
        st.tuples(st.just("adjust"), st.integers(-9, 9).filter(bool)),
    ),
)
count_op = st.tuples(
    st.just("count"), st.sampled_from(SKUS), st.sampled_from(ORIGINS), st.integers(0, 30)
)
reserve_op = st.tuples(
    st.just("reserve"),
    st.sampled_from(SKUS),
    st.integers(1, 4),
    st.sampled_from([None, "CONFIRMED", "CANCELLED", "EXPIRED"]),
)
op = st.one_of(product_op, delta_op, count_op, reserve_op)


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events from three origins, each origin's in seq order with increasing
    HLCs; HLCs of different origins may tie (the origin breaks the tie)."""
    events: list[dict[str, Any]] = []
    for origin in ORIGINS:
        bodies: list[tuple[str, dict[str, Any]]] = []
        closing: list[tuple[str, dict[str, Any]]] = []
        for i, o in enumerate(draw(st.lists(op, max_size=8))):
            if o[0] == "product":
                fields = {"id": product_id_for(o[1]), **o[2]}
                bodies.append(("product.upserted", {"sku": o[1], "fields": fields, "basis": {}}))
            elif o[0] == "delta":
                kind, qty = o[3]
                bodies.append(("stock.movement", movement(o[1], o[2], kind, qty)))
            elif o[0] == "count":
                bodies.append(("stock.movement", movement(o[1], o[2], "count", o[3], basis={})))
            else:
                _, sku, qty, final = o
                rid = f"{origin}-r{i}"
                bodies.append(
                    (
                        "reservation.changed",
                        {"reservation": reservation(rid, sku, origin, qty, "PENDING")},
                    )
                )
                if final == "CONFIRMED":
                    data = {
                        "reservation": reservation(rid, sku, origin, qty, final, f"o-{rid}"),
                        "movement": movement(sku, origin, "sell", -qty),
                    }
                    closing.append(("reservation.changed", data))
                elif final:
                    data = {"reservation": reservation(rid, sku, origin, qty, final)}
                    closing.append(("reservation.changed", data))
        bodies += closing
        ticks = sorted(
            draw(
                st.lists(
                    st.integers(0, 60), min_size=len(bodies), max_size=len(bodies), unique=True
                )
            )
        )
        for seq, ((type_, data), tick) in enumerate(zip(bodies, ticks, strict=True), start=1):
            stamp = hlc_mod.pack(BASE_MS + tick // 3, tick % 3)
            events.append(make_event(origin, seq, stamp, type_, data))
    return events


def expected_state(events: list[dict[str, Any]]) -> dict[str, Any]:
    """An independent model of the merge rules."""
    stamp = {e["id"]: (e["hlc"], e["origin"]) for e in events}
    moves: dict[tuple[str, str], list[tuple[tuple[int, str], str, int]]] = {}
    reservations: dict[str, tuple[tuple[int, str], dict[str, Any]]] = {}
    fields: dict[str, dict[str, tuple[tuple[int, str], Any]]] = {}
    for e in events:
        data = e["data"]
        if e["type"] == "stock.movement":
            mv = [data]
        elif e["type"] == "reservation.changed":
            mv = [data["movement"]] if "movement" in data else []
            r = data["reservation"]
            if r["id"] not in reservations or reservations[r["id"]][0] < stamp[e["id"]]:
                reservations[r["id"]] = (stamp[e["id"]], r)
        else:
            mv = []
            for k, v in data["fields"].items():
                cur = fields.setdefault(data["sku"], {}).get(k)
                if cur is None or cur[0] < stamp[e["id"]]:
                    fields[data["sku"]][k] = (stamp[e["id"]], v)
        for m in mv:
            key = (m["sku"], m["storeId"])
            moves.setdefault(key, []).append((stamp[e["id"]], m["kind"], m["quantity"]))
    stock: dict[tuple[str, str], list[int]] = {}
    for key, ms in moves.items():
        ms.sort()
        counts = [i for i, m in enumerate(ms) if m[1] == "count"]
        start = counts[-1] if counts else -1
        base = ms[start][2] if counts else 0
        stock[key] = [base + sum(q for _, k, q in ms[start + 1 :] if k != "count"), 0]
    for _, r in reservations.values():
        if r["status"] == "PENDING":
            stock.setdefault((r["sku"], r["storeId"]), [0, 0])[1] += r["quantity"]
    return {
        "stock": {k: tuple(v) for k, v in stock.items() if v != [0, 0]},
        "reservations": {rid: r["status"] for rid, (_, r) in reservations.items()},
        "products": {sku: {k: v for k, (_, v) in f.items()} for sku, f in fields.items()},
    }


def observed_state(conn: sqlite3.Connection) -> dict[str, Any]:
    stock = {
        (r[0], r[1]): (r[2], r[3])
        for r in conn.execute("SELECT sku, store_id, on_hand, reserved FROM stock")
        if (r[2], r[3]) != (0, 0)
    }
    products = {}
    for r in conn.execute("SELECT * FROM products"):
        stamped = json.loads(r["stamps"])
        products[r["sku"]] = {k: (bool(r[k]) if k == "active" else r[k]) for k in stamped}
    return {
        "stock": stock,
        "reservations": dict(conn.execute("SELECT id, status FROM reservations").fetchall()),
        "products": products,
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(events=event_sets(), data=st.data())
def test_any_order_with_duplicates_gives_identical_digests(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    reference = apply_all(events)  # each origin in seq order, origins one after another
    want = queries.digests(reference)
    assert observed_state(reference) == expected_state(events)

    dups = data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    shuffled = data.draw(st.permutations(events + dups))
    replica = apply_all(shuffled)
    assert queries.digests(replica) == want
    assert observed_state(replica) == observed_state(reference)
    superseded = "SELECT id, superseded FROM movements ORDER BY id"
    assert replica.execute(superseded).fetchall() == reference.execute(superseded).fetchall()
    applied = "SELECT origin, applied_seq, max_seq FROM origins ORDER BY origin"
    assert replica.execute(applied).fetchall() == reference.execute(applied).fetchall()
    reference.close()
    replica.close()
