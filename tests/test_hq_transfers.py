"""HQ's read model of stock that moves and runs low: transfers, reorder
settings and alerts, against a real PostgreSQL (tests/pgfix.py).

The differential tests run seeded workloads with transfers (tests/hq_moves.py:
created, shipped, partly and over-received, received before the shipment,
cancelled racing a receipt, one id given by two or three stores), reorder
settings and alerts through the agent's engine and the projector, shuffled,
repeated and in batches of every size, and compare them
(``merge_like_the_agent``). The cases by hand are the rare ones a workload
seldom makes, and the views."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from agent.sync import subjects, validate
from tests.hq_workload import Workload, arrivals
from tests.pgfix import PgSchema, pg, pg_server  # noqa: F401 (fixtures)
from tests.test_hq_projector import (
    NOW_MS,
    AgentReplica,
    check_like_the_agent,
    dump,
    ev,
    has_columns,
    hq,  # noqa: F401 (a fixture)
    hq_rows,
    mv,
    one,
    stamp,
)


def merge_like_the_agent(
    model: Any, rng: random.Random, events: list[dict[str, Any]], rebuild_batch: int = 0
) -> None:
    """``events`` through the projector shuffled, repeated and in batches of
    every size, against the agent applying the same batches (each in stamp
    order); then all again (nothing changes), then rebuilt (the agent
    applying them all in stamp order) in rounds of ``rebuild_batch`` (0: a
    size drawn)."""
    projector, conn = model
    in_stamp_order, as_arrived = AgentReplica(), AgentReplica()
    for batch in arrivals(rng, events):
        projector.apply(batch)
        in_stamp_order.apply(sorted(batch, key=stamp))
        as_arrived.apply(batch)
    check_like_the_agent(projector, conn, in_stamp_order)
    assert projector.digests() == as_arrived.digests()
    before = dump(conn, projector.schema)
    assert projector.apply(rng.sample(events, len(events))).applied == 0
    assert dump(conn, projector.schema) == before  # every event again: nothing changes
    rounds = rebuild_batch or rng.choice([3, 50, 10_000])
    assert projector.rebuild(batch=rounds) == len(events)
    all_in_order = AgentReplica()
    all_in_order.apply(sorted(events, key=stamp))
    check_like_the_agent(projector, conn, all_in_order)


@pytest.mark.parametrize("seed", range(10))
def test_transfers_reorder_settings_and_alerts_merge_like_the_agent(hq: Any, seed: int) -> None:  # noqa: F811
    rng = random.Random(1000 + seed)
    merge_like_the_agent(hq, rng, Workload(1000 + seed, moves=True).events(rng.randint(40, 160)))


CLASH_SEEDS = range(2000, 2006)


def clash_workload(seed: int) -> list[dict[str, Any]]:
    """Every transfer that can take another store's id does (``clashes=1``)."""
    return Workload(seed, moves=True, clashes=1.0).events(random.Random(seed).randint(150, 250))


@pytest.mark.parametrize("seed", CLASH_SEEDS)
def test_ids_given_by_two_stores_merge_like_the_agent(hq: Any, seed: int) -> None:  # noqa: F811
    """The record under a clashed id is the smallest origin's whatever the
    order (a smaller one arriving takes it over: the returns and lines change
    hands); all of them move stock; the conflicts are the agent's. Rebuilt in
    one round: the takeovers inside a batch (the smaller origin's first
    event stamped after a larger one's cancel)."""
    merge_like_the_agent(hq, random.Random(seed), clash_workload(seed), rebuild_batch=10_000)


def test_the_transfer_workload_has_what_it_claims() -> None:
    events = Workload(1, moves=True).events(600)
    for e in events:
        subject = subjects.events("default", e["origin"])
        checked = validate.check(subject, json.dumps(e).encode(), NOW_MS, 10**9)
        assert not isinstance(checked, validate.Rejected), (e, checked)
    assert {"transfer.changed", "transfer.received", "stock.reorder", "alert.raised"} <= {
        e["type"] for e in events
    }
    states = {e["data"]["transfer"]["state"] for e in events if e["type"] == "transfer.changed"}
    assert states == {"DRAFT", "SHIPPED", "CANCELLED"}
    shipped = {
        e["data"]["transfer"]["id"]: stamp(e)
        for e in events
        if e["type"] == "transfer.changed" and e["data"]["transfer"]["state"] == "SHIPPED"
    }
    receipts = [e for e in events if e["type"] == "transfer.received"]
    assert any(stamp(r) < shipped[r["data"]["receipt"]["transferId"]] for r in receipts)
    lines = [line for r in receipts for line in r["data"]["receipt"]["lines"]]
    assert any(line["damaged"] for line in lines)
    agent = AgentReplica()
    agent.apply(sorted(events, key=stamp))
    kinds = agent.rows("SELECT DISTINCT kind FROM conflicts")
    assert {("cancel_vs_receipt",), ("negative_available",)} <= kinds
    statuses = agent.rows("SELECT DISTINCT status FROM transfers")
    assert statuses == {
        (s,) for s in ("DRAFT", "SHIPPED", "PARTIALLY_RECEIVED", "RECEIVED", "CANCELLED")
    }
    over = agent.rows("SELECT 1 FROM transfer_lines WHERE received + damaged > shipped")
    assert over  # over-receipts, and SKUs the transfer does not list


def handed_over(batches: list[list[dict[str, Any]]]) -> Counter[str]:
    """How often a record passes from an origin whose cancel was applied to
    a smaller one, as an agent applies the batches (each in stamp order):
    its cancel in an earlier batch (``across``) or in the same (``within``)."""
    out: Counter[str] = Counter()
    applied: set[tuple[str, int]] = set()
    holders: dict[str, str] = {}  # transfer id -> the smallest origin applied
    cancels: dict[tuple[str, str], int] = {}  # (id, origin) -> the batch of its cancel
    for n, batch in enumerate(batches):
        for e in sorted(batch, key=stamp):
            if e["type"] != "transfer.changed" or (e["origin"], e["seq"]) in applied:
                continue
            applied.add((e["origin"], e["seq"]))
            tid, origin = e["data"]["transfer"]["id"], e["origin"]
            holder = holders.setdefault(tid, origin)
            if origin < holder:
                if (tid, holder) in cancels:
                    out["across" if cancels[tid, holder] < n else "within"] += 1
                holders[tid] = origin
            if e["data"].get("claims"):
                cancels[tid, origin] = n
    return out


def test_the_clash_workload_has_what_it_claims() -> None:
    """Over the clash test's seeds, ids given by two or three stores: cancels
    by the origin that holds the record and by one that does not, receipts
    and counts where they clash, records handed over from a cancelled
    holder between batches and inside one, and every conflict they list."""
    found: Counter[str] = Counter()
    for seed in CLASH_SEEDS:
        events = clash_workload(seed)
        origins: dict[str, set[str]] = {}
        for e in events:
            if e["type"] == "transfer.changed":
                origins.setdefault(e["data"]["transfer"]["id"], set()).add(e["origin"])
        clashed = {tid: o for tid, o in origins.items() if len(o) > 1}
        stores = set().union(*clashed.values())
        for e in events:
            d = e["data"]
            if (
                e["type"] == "transfer.changed"
                and d.get("claims")
                and d["transfer"]["id"] in clashed
            ):
                holder = min(clashed[d["transfer"]["id"]])
                found["cancel by the holder" if e["origin"] == holder else "cancel by another"] += 1
            elif e["type"] == "transfer.received" and d["receipt"]["transferId"] in clashed:
                found["receipt"] += 1
            elif e["type"] == "stock.movement" and d["kind"] == "count" and d["storeId"] in stores:
                found["count"] += 1
        found["three origins"] += sum(len(o) > 2 for o in clashed.values())
        found.update(f"handed over {k}" for k in handed_over(arrivals(random.Random(seed), events)))
        found.update(f"handed over {k} in stamp order" for k in handed_over([events]))
        agent = AgentReplica()
        agent.apply(sorted(events, key=stamp))
        found.update(kind for (kind,) in agent.rows("SELECT kind FROM conflicts"))
    assert set(found) >= {
        "cancel by the holder",
        "cancel by another",
        "receipt",
        "count",
        "three origins",
        "handed over across",
        "handed over within in stamp order",
        "transfer_id_clash",
        "transfer_wrong_store",
        "cancel_vs_receipt",
        "negative_available",
    }, found


# ------------------------------------------------------------ hand-made cases
def transfer(
    tid: str, origin: str, dest: str, state: str, lines: dict[str, int], ms: int = 0
) -> dict[str, Any]:
    return {
        "transfer": {
            "id": tid,
            "fromStoreId": origin,
            "toStoreId": dest,
            "note": "",
            "state": state,
            "lines": [{"sku": sku, "quantity": q} for sku, q in lines.items()],
            "actor": "",
            "createdAtMs": ms,
            "shippedAtMs": ms if state != "DRAFT" else None,
            "cancelledAtMs": ms if state == "CANCELLED" else None,
            "updatedAtMs": ms,
        }
    }


def cancel(tid: str, origin: str, dest: str, lines: dict[str, int], claims: dict[str, int]) -> Any:
    data = transfer(tid, origin, dest, "CANCELLED", lines)
    data["claims"] = [{"sku": sku, "quantity": q} for sku, q in claims.items()]
    return data


def receipt(
    tid: str, origin: str, dest: str, rid: str, lines: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    return {
        "receipt": {
            "id": rid,
            "transferId": tid,
            "fromStoreId": origin,
            "toStoreId": dest,
            "lines": [{"sku": s, "received": g, "damaged": d} for s, (g, d) in lines.items()],
            "actor": "",
            "receivedAtMs": 0,
        }
    }


def both(model: Any, *batches: list[dict[str, Any]]) -> AgentReplica:
    """The batches through the projector and the agent (each batch in stamp
    order), compared; the agent returned."""
    projector, conn = model
    agent = AgentReplica()
    for batch in batches:
        projector.apply(batch)
        agent.apply(sorted(batch, key=stamp))
    check_like_the_agent(projector, conn, agent)
    return agent


def test_a_receipt_older_than_the_cancel_corrects_its_recorded_return_before_a_count(
    hq: Any,  # noqa: F811
) -> None:
    """The cancel (and its return of 5) recorded first; then the receipt it
    raced, stamped before it, and a count at the origin between the two. As
    the agent applies them: the receipt takes 3 off the return, then the
    count sets on_hand to 7 plus the return as corrected (2)."""
    _, conn = hq
    first = [
        ev("s1", 1, 1, "stock.movement", mv("s1", "P", "receive", 10)),
        ev("s1", 2, 2, "transfer.changed", transfer("t1", "s1", "s2", "SHIPPED", {"P": 5})),
        ev("s1", 3, 10, "transfer.changed", cancel("t1", "s1", "s2", {"P": 5}, {"P": 5})),
    ]
    later = [
        ev("s2", 1, 5, "transfer.received", receipt("t1", "s1", "s2", "r1", {"P": (3, 0)})),
        ev("s3", 1, 7, "stock.movement", mv("s1", "P", "count", 7)),
        ev("s1", 4, 12, "stock.movement", mv("s1", "P", "sell", -1)),
    ]
    both(hq, first, later)
    assert one(conn, "SELECT on_hand FROM stock WHERE store_id = 's1'") == 7 + 2 - 1
    assert one(conn, "SELECT quantity FROM movements WHERE event_id = 's1:3/P'") == 2
    assert one(conn, "SELECT cancelled, pending FROM transfer_lines") == (2, 0)
    assert hq_rows(conn, "SELECT kind, loser, winner FROM conflicts") == {
        ("cancel_vs_receipt", "s1:3", "t1"),
        ("superseded_delta", "s1:1", "s3:1"),
        ("superseded_delta", "s1:2/P", "s3:1"),
    }
    assert one(conn, "SELECT detail FROM conflicts WHERE kind = 'cancel_vs_receipt'") == {
        "transferId": "t1",
        "field": "P",
        "shipped": 5,
        "claimed": 5,
        "cancelled": 2,
        "received": 3,
        "damaged": 0,
    }
    assert one(conn, "SELECT status FROM transfers") == "CANCELLED"


def test_a_correction_that_takes_available_below_zero_is_listed(hq: Any) -> None:  # noqa: F811
    """The return moved back what a receipt shows had arrived, and the origin
    sold it meanwhile: the correction takes its available below zero."""
    _, conn = hq
    both(
        hq,
        [
            ev("s1", 1, 1, "stock.movement", mv("s1", "P", "receive", 4)),
            ev("s1", 2, 2, "transfer.changed", transfer("t1", "s1", "s2", "SHIPPED", {"P": 4})),
            ev("s1", 3, 3, "transfer.changed", cancel("t1", "s1", "s2", {"P": 4}, {"P": 4})),
            ev("s1", 4, 4, "stock.movement", mv("s1", "P", "sell", -3)),
        ],
        [ev("s2", 1, 5, "transfer.received", receipt("t1", "s1", "s2", "r1", {"P": (2, 2)}))],
    )
    assert one(conn, "SELECT on_hand FROM stock WHERE store_id = 's1'") == -3
    assert one(conn, "SELECT on_hand FROM stock WHERE store_id = 's2'") == 2
    assert hq_rows(conn, "SELECT kind, loser FROM conflicts") == {
        ("cancel_vs_receipt", "s1:3"),
        ("negative_available", "s1:3/P"),
    }
    assert one(conn, "SELECT status FROM transfers") == "RECEIVED"  # the receipt beat it all


def test_one_id_given_by_two_stores_moves_both_and_the_smallest_holds_the_record(
    hq: Any,  # noqa: F811
) -> None:
    """Two stores offline gave their transfers one id. s3's events come
    first: it holds the record, and a receipt beats part of its cancel. Then
    s1's (a smaller id, stamped earlier and later): s1 takes the record over,
    s3's return goes back to its whole claim, the receipts stay with the id.
    Both shipments move stock; the record is s1's in any order (a rebuild
    applies them all in stamp order: s1 first)."""
    projector, conn = hq
    both(
        hq,
        [
            ev("s1", 1, 0, "stock.movement", mv("s1", "P", "receive", 10)),
            ev("s3", 1, 0, "stock.movement", mv("s3", "P", "receive", 10)),
            ev("s3", 2, 3, "transfer.changed", transfer("t1", "s3", "s2", "SHIPPED", {"P": 2})),
            ev("s3", 3, 4, "transfer.changed", cancel("t1", "s3", "s2", {"P": 2}, {"P": 2})),
            ev("s2", 1, 5, "transfer.received", receipt("t1", "s3", "s2", "r1", {"P": (1, 0)})),
        ],
        [
            ev("s1", 2, 1, "transfer.changed", transfer("t1", "s1", "s4", "SHIPPED", {"P": 5})),
            ev("s1", 3, 6, "transfer.changed", cancel("t1", "s1", "s4", {"P": 5}, {"P": 5})),
            ev("s4", 1, 7, "transfer.received", receipt("t1", "s1", "s4", "r2", {"P": (2, 0)})),
        ],
    )
    assert one(conn, "SELECT from_store, to_store, state, cancel_id FROM transfers") == (
        "s1",
        "s4",
        "CANCELLED",
        "s1:3",
    )
    assert one(conn, "SELECT shipped, claim, received, cancelled, pending FROM transfer_lines") == (
        5,
        5,
        1 + 2,  # both receipts: they belong to the id
        5 - 3,
        0,
    )
    found = {r[0]: r[1:] for r in conn.execute("SELECT event_id, quantity, kind FROM movements")}
    assert found["s3:3/P"] == (2, "transfer_return")  # outside the record: its whole claim
    assert found["s1:3/P"] == (2, "transfer_return")  # what the receipts leave of s1's
    on_hand = {("s1", 10 - 5 + 2), ("s3", 10 - 2 + 2), ("s2", 1), ("s4", 2)}
    assert hq_rows(conn, "SELECT store_id, on_hand FROM stock") == on_hand
    listed = "SELECT conflict_id, store_id, detail FROM conflicts WHERE kind = 'transfer_id_clash'"
    assert conn.execute(listed).fetchall() == [
        (
            "transfer_id_clash:t1:None:s3",
            "s3",
            {"transferId": "t1", "field": "s3", "fromStoreId": "s3", "toStoreId": "s2"},
        )
    ]
    beaten = "SELECT loser, detail->>'cancelled' FROM conflicts WHERE kind = 'cancel_vs_receipt'"
    # s3's while it held the record (the agent keeps the log as it was), s1's now
    assert hq_rows(conn, beaten) == {("s3:3", "1"), ("s1:3", "2")}
    digests = projector.digests()
    projector.rebuild()
    assert projector.digests() == digests
    assert hq_rows(conn, "SELECT store_id, on_hand FROM stock") == on_hand
    assert hq_rows(conn, beaten) == {("s1:3", "2")}  # s3 never held it in stamp order


def test_a_receipt_before_any_of_the_origins_events_takes_the_origins_word_later(
    hq: Any,  # noqa: F811
) -> None:
    """The truck came while the network was down: the destination records
    the transfer from the packing slip; the origin's events, when they come,
    say who sends it to whom, and the record follows them."""
    _, conn = hq
    slip = receipt("t1", "s9", "s2", "r1", {"P": (3, 0), "Q": (1, 0)})
    both(hq, [ev("s2", 1, 5, "transfer.received", slip)])
    assert one(conn, "SELECT from_store, to_store, state, status FROM transfers") == (
        "s9",
        "s2",
        None,
        "RECEIVED",
    )
    both(
        hq,
        [ev("s2", 1, 5, "transfer.received", slip)],
        [ev("s1", 1, 1, "transfer.changed", transfer("t1", "s1", "s2", "SHIPPED", {"P": 3}))],
    )
    assert one(conn, "SELECT from_store, state, status FROM transfers") == (
        "s1",
        "SHIPPED",
        "RECEIVED",
    )
    assert hq_rows(
        conn, "SELECT sku, position, quantity, received, pending FROM transfer_lines"
    ) == {
        ("P", 0, 3, 3, 0),
        ("Q", None, 0, 1, 0),  # on no line of the origin's
    }


# -------------------------------------------------------------------- views
def test_in_transit_incoming_and_what_is_due_for_reorder(hq: Any) -> None:  # noqa: F811
    projector, conn = hq
    reorder = {"sku": "P", "storeId": "s2", "fields": {"reorderPoint": 4, "maxStock": 10}}
    projector.apply(
        [
            ev("s1", 1, 1, "stock.movement", mv("s1", "P", "receive", 20)),
            ev("s2", 1, 1, "stock.movement", mv("s2", "P", "receive", 1)),
            ev("s1", 2, 2, "transfer.changed", transfer("t1", "s1", "s2", "SHIPPED", {"P": 5})),
            ev("s1", 3, 3, "transfer.changed", transfer("t2", "s1", "s3", "SHIPPED", {"P": 2})),
            ev("s3", 1, 4, "transfer.received", receipt("t2", "s1", "s3", "r1", {"P": (1, 0)})),
            ev("hq", 1, 5, "stock.reorder", {**reorder, "basis": {}}),
            ev("s2", 2, 6, "alert.raised", _alert("s2", "P", 3, 1)),
        ]
    )
    levels = conn.execute(
        "SELECT store_id, on_hand, available, in_transit, incoming FROM stock_levels ORDER BY 1"
    ).fetchall()
    assert levels == [("s1", 13, 13, 6, 0), ("s2", 1, 1, 0, 5), ("s3", 1, 1, 0, 1)]
    assert conn.execute("SELECT * FROM chain_in_transit").fetchall() == [
        ("P", 6, {"s1": 6}, {"s2": 5, "s3": 1})
    ]
    assert one(conn, "SELECT total_on_hand, total_in_transit FROM chain_availability") == (15, 6)
    assert conn.execute(
        "SELECT store_id, sku, available, incoming, reorder_point, suggested FROM reorder_due"
    ).fetchall() == [("s2", "P", 1, 5, 4, 10 - 1 - 5)]
    assert hq_rows(conn, "SELECT transfer_id, status FROM transfers") == {
        ("t1", "SHIPPED"),
        ("t2", "PARTIALLY_RECEIVED"),
    }
    assert one(conn, "SELECT receipt_id, store_id, lines FROM transfer_receipts") == (
        "r1",
        "s3",
        [{"sku": "P", "received": 1, "damaged": 0}],
    )
    assert one(conn, "SELECT alert_id, kind, store_id, before, after, cause FROM alerts") == (
        "s2:2",
        "low",
        "s2",
        3,
        1,
        "s2:1",
    )


def _alert(store: str, sku: str, before: int, after: int) -> dict[str, Any]:
    return {
        "alert": {
            "kind": "low",
            "sku": sku,
            "storeId": store,
            "before": before,
            "after": after,
            "reorderPoint": 2,
            "cause": f"{store}:1",
            "raisedAtMs": 0,
        }
    }


def test_the_new_contract_tables_have_their_columns(hq: Any) -> None:  # noqa: F811
    projector, conn = hq
    contract = {
        "transfers": "transfer_id from_store to_store state status note created_at shipped_at "
        "cancelled_at updated_at",
        "transfer_lines": "transfer_id sku quantity shipped claim received damaged cancelled "
        "pending",
        "transfer_receipts": "event_id transfer_id receipt_id store_id lines received_at",
        "alerts": "alert_id kind store_id sku before after reorder_point cause raised_at at",
        "stock_levels": "in_transit incoming",
        "stock_settings": "reorder_point max_stock reorder_qty",
        "movements": "transfer_id",
        "transit": "store_id sku in_transit incoming",
        "chain_in_transit": "sku units from_stores to_stores",
        "chain_availability": "total_in_transit",
        "reorder_due": "store_id sku available incoming reorder_point max_stock reorder_qty "
        "suggested",
    }
    has_columns(conn, projector.schema, contract)


def test_receipts_name_the_sides_until_an_origin_and_are_judged_by_the_record_now(
    hq: Any,  # noqa: F811
) -> None:
    """Receipts only: the record's stores are the earliest receipt's by stamp,
    though applied last, and a second event of one receipt counts in the lines
    but is one receipt. An origin's word then makes s2's receipt the wrong
    store's; a smaller origin taking the record over sends it to s2: s2's
    listing goes, s4's comes."""
    projector, conn = hq
    agent = AgentReplica()
    wrong = "SELECT loser FROM conflicts WHERE kind = 'transfer_wrong_store'"
    batches = [
        [ev("s4", 1, 9, "transfer.received", receipt("t1", "s9", "s4", "rB", {"P": (1, 0)}))],
        [
            ev("s2", 1, 5, "transfer.received", receipt("t1", "s1", "s2", "rA", {"P": (2, 0)})),
            ev("s2", 2, 6, "transfer.received", receipt("t1", "s1", "s2", "rA", {"P": (1, 0)})),
        ],
        [ev("s3", 1, 3, "transfer.changed", transfer("t1", "s3", "s4", "SHIPPED", {"P": 4}))],
        [ev("s1", 1, 4, "transfer.changed", transfer("t1", "s1", "s2", "SHIPPED", {"P": 4}))],
    ]
    seen = []
    for batch in batches:
        projector.apply(batch)
        agent.apply(sorted(batch, key=stamp))
        check_like_the_agent(projector, conn, agent)
        seen.append(
            (
                one(conn, "SELECT from_store, to_store FROM transfers"),
                hq_rows(conn, wrong),
            )
        )
    assert seen == [
        (("s9", "s4"), set()),
        (("s1", "s2"), set()),
        (("s3", "s4"), {("s2:1",)}),
        (("s1", "s2"), {("s4:1",)}),
    ]
    assert hq_rows(conn, "SELECT event_id FROM transfer_receipts") == {("s4:1",), ("s2:1",)}
    assert one(conn, "SELECT received FROM transfer_lines") == 1 + 2 + 1
