"""Routed reservations between real agents over a real nats-server: a web
shop's agent (store ``web``, no stock) routes an order to the first store that
can take it, and to the next one when that store is cut off; the granted id
is confirmed from the web agent; ``inv reserve --store any`` exits 4 when no
store can, 5 when the only one that could is out of reach."""

from __future__ import annotations

from tests import synckit
from tests.helpers import run_cli
from tests.natsfix import NatsServer
from tests.synckit import AgentFactory, wait_converged

nats_server = synckit.nats_server
peer = synckit.peer
ORDER = {"productId": "PROD-001", "storeId": "any", "stores": ["store-001", "store-002"]}


def test_an_online_order_goes_to_the_next_store_when_one_is_cut_off(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    # the demo data: PROD-001 has 10 units at store-001 and 5 at store-002
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    web = peer("web", nats_server)
    wait_converged(a, b, web, stores=("store-001", "store-002"))

    r = web.client().post(
        "/api/v1/reservations", json={**ORDER, "reservationId": "o-1", "quantity": 2}
    )
    assert r.status_code == 202, r.text
    assert (r.json()["storeId"], r.json()["reservationId"]) == ("store-001", "o-1@store-001")

    a.stop()  # store-001 is cut off: its agent is gone, nobody answers for it
    r = web.client().post(
        "/api/v1/reservations", json={**ORDER, "reservationId": "o-2", "quantity": 2}
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert [(x["storeId"], x["outcome"]) for x in body["routing"]["attempts"]] == [
        ("store-001", "unreachable"),
        ("store-002", "granted"),
    ]
    # the id the web shop was given works from its own agent: forwarded to the owner
    rid = body["reservationId"]
    r = web.client().post(f"/api/v1/reservations/{rid}/confirm", json={"orderId": "web-77"})
    assert (r.status_code, r.json()["status"], r.json()["storeId"]) == (
        200,
        "CONFIRMED",
        "store-002",
    )
    record = web.client().get("/api/v1/routings/o-2").json()
    assert (record["status"], record["reservationId"]) == ("granted", rid)

    # 8 and 3 left: nobody to ask for 9 (exit 4); and for 4, the one store
    # that could is out of reach (exit 5)
    cli = run_cli(web, "reserve", "PROD-001", "9", "--store", "any", "--id", "o-3")
    assert cli.returncode == 4, cli.stderr
    assert "no store can reserve 9 of PROD-001: 2 skipped" in cli.stderr
    cli = run_cli(web, "reserve", "PROD-001", "4", "--store", "any", "--id", "o-4")
    assert cli.returncode == 5, cli.stderr
    assert "no store could be reached to reserve 4 of PROD-001" in cli.stderr
