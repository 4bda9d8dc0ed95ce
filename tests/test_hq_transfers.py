"""HQ's read model of stock that moves and runs low: transfers, reorder
settings and alerts, against a real PostgreSQL (tests/pgfix.py).

The differential test runs seeded workloads with transfers (tests/hq_moves.py:
created, shipped, partly and over-received, received before the shipment,
cancelled racing a receipt), reorder settings and alerts through the agent's
engine and the projector, shuffled, repeated and in batches of every size,
and compares them (``check_like_the_agent``). The cases by hand are the
rare ones a workload seldom makes, and the views."""

from __future__ import annotations

import json
import random
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
    hq,  # noqa: F401 (a fixture)
    hq_rows,
    mv,
    one,
    stamp,
)


@pytest.mark.parametrize("seed", range(10))
def test_transfers_reorder_settings_and_alerts_merge_like_the_agent(hq: Any, seed: int) -> None:  # noqa: F811
    projector, conn = hq
    rng = random.Random(1000 + seed)
    events = Workload(1000 + seed, moves=True).events(rng.randint(40, 160))
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
    assert projector.rebuild(batch=rng.choice([3, 50, 10_000])) == len(events)
    all_in_order = AgentReplica()
    all_in_order.apply(sorted(events, key=stamp))
    check_like_the_agent(projector, conn, all_in_order)


def test_the_transfer_workload_has_what_it_claims() -> None:
    events = Workload(7, moves=True).events(600)
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


def test_one_id_given_by_two_stores_moves_both_and_keeps_the_first_record(
    hq: Any,  # noqa: F811
) -> None:
    """Two stores offline gave their transfers one id: both shipments move
    stock, the record is the first one applied (in stamp order within a
    batch), the other is listed; so is a receipt at a store the record does
    not send to."""
    _, conn = hq
    both(
        hq,
        [
            ev("s1", 1, 0, "stock.movement", mv("s1", "P", "receive", 10)),
            ev("s3", 1, 0, "stock.movement", mv("s3", "P", "receive", 10)),
            ev("s3", 2, 3, "transfer.changed", transfer("t1", "s3", "s2", "SHIPPED", {"P": 2})),
            ev("s1", 2, 1, "transfer.changed", transfer("t1", "s1", "s2", "SHIPPED", {"P": 5})),
        ],
        [
            ev("s1", 3, 4, "transfer.changed", cancel("t1", "s1", "s2", {"P": 5}, {"P": 5})),
            ev("s4", 1, 5, "transfer.received", receipt("t1", "s3", "s4", "r1", {"P": (2, 0)})),
            ev("s3", 3, 6, "transfer.changed", cancel("t1", "s3", "s2", {"P": 2}, {"P": 1})),
        ],
    )
    assert one(conn, "SELECT from_store, to_store, state FROM transfers") == (
        "s1",
        "s2",
        "CANCELLED",
    )
    assert hq_rows(conn, "SELECT store_id, on_hand FROM stock") == {
        ("s1", 10 - 5 + 3),  # the cancel returns what the (misdirected) receipt did not show
        ("s3", 10 - 2 + 1),  # a clash's return is what it claims: no record to check it by
        ("s4", 2),
    }
    found = conn.execute("SELECT kind, store_id, loser, detail FROM conflicts ORDER BY kind, loser")
    assert found.fetchall() == [
        ("cancel_vs_receipt", "s1", "s1:3", _lost_detail()),
        (
            "transfer_id_clash",
            "s3",
            "s3:2",
            {"transferId": "t1", "kept": ["s1", "s2"], "other": ["s3", "s2"]},
        ),
        (
            "transfer_id_clash",
            "s3",
            "s3:3",
            {"transferId": "t1", "kept": ["s1", "s2"], "other": ["s3", "s2"]},
        ),
        (
            "transfer_wrong_store",
            "s4",
            "s4:1",
            {"transferId": "t1", "toStoreId": "s2", "receivedBy": "s4"},
        ),
    ]


def _lost_detail() -> dict[str, Any]:
    return {
        "transferId": "t1",
        "field": "P",
        "shipped": 5,
        "claimed": 5,
        "cancelled": 3,
        "received": 2,
        "damaged": 0,
    }


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
    for table, columns in contract.items():
        found = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (projector.schema, table),
            ).fetchall()
        }
        assert set(columns.split()) <= found, (table, set(columns.split()) - found)
