"""The channel a reservation came through travels in its events: a replica
shows a routed (online) reservation as ``online`` like its owner does, and an
event of an agent from before the chain (no channel) reads as ``store``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent import hlc as hlc_mod
from agent.ledger import queries
from agent.ledger.engine import TYPE_SCHEMA, Engine
from agent.ledger.schema import migrate
from agent.ledger.store import connect
from agent.sync import validate

BASE_MS = 1_790_000_000_000


def reservation_event(channel: str | None) -> dict[str, Any]:
    r: dict[str, Any] = {
        "id": "order-7@store-002",
        "sku": "PROD-001",
        "storeId": "store-002",
        "quantity": 2,
        "customerId": None,
        "status": "PENDING",
        "orderId": None,
        "expiresAtMs": BASE_MS + 600_000,
        "createdAtMs": BASE_MS,
        "updatedAtMs": BASE_MS,
    }
    if channel is not None:
        r["channel"] = channel
    return {
        "id": "store-002:1",
        "origin": "store-002",
        "seq": 1,
        "hlc": hlc_mod.pack(BASE_MS, 0),
        "type": "reservation.changed",
        "schemaVersion": TYPE_SCHEMA["reservation.changed"],
        "data": {"reservation": r},
    }


@pytest.mark.parametrize(("sent", "shown"), [("online", "online"), (None, "store")])
def test_a_replica_keeps_the_channel_of_the_event(sent: str | None, shown: str) -> None:
    conn = connect(":memory:")
    migrate(conn)
    engine = Engine("store-001", hlc_mod.HybridLogicalClock(clock=lambda: BASE_MS))
    conn.execute("BEGIN IMMEDIATE")
    assert engine.apply_remote(conn, reservation_event(sent))
    conn.execute("COMMIT")
    view = queries.get_reservation(conn, "order-7@store-002", BASE_MS)
    assert view["channel"] == shown


def test_an_unknown_channel_is_malformed() -> None:
    event = reservation_event("telepathy")
    checked = validate.check(
        "inv.default.ev.store-002", json.dumps(event).encode(), BASE_MS, 300_000
    )
    assert isinstance(checked, validate.Rejected)
    assert checked.reason == "malformed"
