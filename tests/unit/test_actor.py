"""Who did it, in process: every movement, reservation change and transfer
step records the acting user (a token's over TCP), and a request forwarded
to the owning store names its user with this store (``NAME@STORE``).
The socket's OS user (SO_PEERCRED) is read by ``agent.api.peercred``
(tests/unit/test_peercred.py) and seen end to end in tests/test_cli_stock.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.errors import RemoteError
from agent.replica import Replica
from agent.sync.rpc import handle, parse_reply
from tests import inproc
from tests.inproc import FakeForwarder, InProcAgent

pytestmark = pytest.mark.anyio
RESERVATIONS = "/api/v1/reservations"


@pytest.fixture
def forwarder() -> FakeForwarder:
    return FakeForwarder(reply=(204, None))  # the owner's answer: done


@pytest.fixture
async def store1(
    anyio_backend: str, tmp_path: Path, forwarder: FakeForwarder
) -> AsyncIterator[InProcAgent]:
    async with inproc.running(inproc.config(tmp_path / "a"), forwarder) as agent:
        yield agent


def wire(request: dict[str, Any]) -> bytes:
    return json.dumps(request).encode()


def as_user(agent: InProcAgent, user: str) -> httpx.AsyncClient:
    return agent.tcp(agent.token(user, "clerk", ["store-001"]))


async def ok(response: Any, status: int = 200) -> Any:
    r = await response
    assert r.status_code == status, r.text
    return r.json() if r.content else None


async def test_movements_and_reservations_record_the_logged_in_user(store1: InProcAgent) -> None:
    ana, ben = as_user(store1, "ana"), as_user(store1, "ben")
    sale = {"operation": "sell", "quantity": 2, "reason": "sale"}
    await ok(ana.post("/api/v1/products/PROD-001/stock", json=sale), 202)
    held = await ok(ana.post(RESERVATIONS, json={"productId": "PROD-001", "quantity": 1}), 202)
    assert (held["createdBy"], held["updatedBy"]) == ("ana", "ana")
    rid = held["reservationId"]
    await ok(ben.post(f"{RESERVATIONS}/{rid}/confirm", json={}))
    other = await ok(ben.post(RESERVATIONS, json={"productId": "PROD-001", "quantity": 1}), 202)
    await ok(ana.delete(f"{RESERVATIONS}/{other['reservationId']}"), 204)

    confirmed = await ok(store1.local.get(f"{RESERVATIONS}/{rid}"))
    assert (confirmed["createdBy"], confirmed["updatedBy"]) == ("ana", "ben")
    cancelled = await ok(store1.local.get(f"{RESERVATIONS}/{other['reservationId']}"))
    assert (cancelled["createdBy"], cancelled["updatedBy"]) == ("ben", "ana")
    history = await ok(store1.local.get("/api/v1/products/PROD-001/history"))
    mine = [(m["kind"], m["quantity"], m["actor"]) for m in history["data"]][:2]
    assert mine == [("sell", -1, "ben"), ("sell", -2, "ana")]  # the confirm's sale, the till's


async def test_a_forwarded_request_names_its_user_with_the_asking_store(
    store1: InProcAgent, forwarder: FakeForwarder
) -> None:
    ana = as_user(store1, "ana")
    ana_anywhere = store1.tcp(store1.token("ana", "clerk"))
    body = {"productId": "PROD-001", "quantity": 1, "storeId": "store-002"}
    await ok(ana_anywhere.post(RESERVATIONS, json=body), 204)
    elsewhere = {"storeId": "store-002"}
    await ok(ana_anywhere.delete(f"{RESERVATIONS}/r-elsewhere", params=elsewhere), 204)
    ops = [(store, op, payload["actor"]) for store, op, payload in forwarder.calls]
    assert ops == [
        ("store-002", "reserve", "ana@store-001"),
        ("store-002", "cancel", "ana@store-001"),
    ]
    # a clerk limited to store-001 is not sent anywhere else
    r = await ana.post(RESERVATIONS, json=body)
    assert r.status_code == 403 and len(forwarder.calls) == 2


async def test_the_owner_records_the_forwarded_user_and_an_old_agents_request(
    store1: InProcAgent, tmp_path: Path
) -> None:
    service = store1.agent.service
    replica = Replica(service.ledger, outbox=asyncio.Event(), snapshot_dir=tmp_path)
    asked = {"productId": "PROD-001", "quantity": 1, "reservationId": "r-fwd", "actor": "ana@x"}
    status, body = parse_reply(await handle(service, replica, "reserve", wire(asked)))
    assert (status, body["createdBy"], body["updatedBy"]) == (202, "ana@x", "ana@x")
    old = {"productId": "PROD-001", "quantity": 1, "reservationId": "r-old"}  # no actor field
    await handle(service, replica, "reserve", wire(old))
    view = await ok(store1.local.get(f"{RESERVATIONS}/r-old"), 200)
    assert view["createdBy"] == "forwarded"
    with pytest.raises(RemoteError) as refused:
        parse_reply(await handle(service, replica, "cancel", wire({**old, "actor": 7})))
    assert refused.value.status == 422 and refused.value.message.startswith("actor:")
    still = await ok(store1.local.get(f"{RESERVATIONS}/r-old"), 200)
    assert still["status"] == "PENDING"
