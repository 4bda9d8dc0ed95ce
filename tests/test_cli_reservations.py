"""``inv reserve|confirm|cancel`` and ``inv reservation show|list`` end to end:
the reservation life cycle, idempotent ids, no oversell, and a standalone
agent refusing to reserve another store's stock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli_support import (
    api,
    error_of,
    inv,
    inv_json,
    new_product,
    running_agent,
    stock_of,
    table_rows,
    unique,
)
from tests.helpers import Agent, wait_for


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("store-001") as a:
        yield a


def test_reserve_then_confirm_sells(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 10})
    rid = unique("r")
    r = inv(agent, "reserve", sku, "3", "--customer", "alice", "--ttl", "900", "--id", rid)
    assert r.stderr == ""
    fields = {cells[0]: cells[1:] for cells in _field_lines(r.stdout)}
    assert r.stdout.startswith(f"Reservation {rid}")
    assert fields["status"] == ["PENDING"] and fields["customerId"] == ["alice"]
    level = stock_of(agent, sku)["store-001"]
    assert (level["quantity"], level["reserved"], level["available"]) == (10, 3, 7)

    shown = inv_json(agent, "reservation", "show", rid)
    status, body = api(agent, "GET", f"/api/v1/reservations/{rid}")
    assert status == 200
    assert {k: v for k, v in shown.items() if k != "remainingSeconds"} == {
        k: v for k, v in body.items() if k != "remainingSeconds"
    }
    assert (shown["sku"], shown["storeId"], shown["quantity"]) == (sku, "store-001", 3)
    assert 0 < shown["remainingSeconds"] <= 900

    confirmed = inv_json(agent, "confirm", rid, "--order", "order-77")
    assert confirmed["status"] == "CONFIRMED" and confirmed["orderId"] == "order-77"
    level = stock_of(agent, sku)["store-001"]
    assert (level["quantity"], level["reserved"], level["available"]) == (7, 0, 7)
    sells = [m for m in inv_json(agent, "history", sku)["data"] if m["kind"] == "sell"]
    assert [(m["storeId"], m["quantity"]) for m in sells] == [("store-001", -3)]

    again = inv_json(agent, "confirm", rid, "--order", "order-77")  # a retry: no second sale
    assert again["status"] == "CONFIRMED"
    assert stock_of(agent, sku)["store-001"]["quantity"] == 7

    r = inv(agent, "cancel", rid, code=4)
    assert "CONFIRMED" in error_of(r)


def _field_lines(stdout: str) -> list[list[str]]:
    """``key  value`` lines of a one-object view."""
    return [line.split() for line in stdout.splitlines()[1:] if line.strip()]


def test_cancel_frees_the_stock(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 5})
    rid = inv_json(agent, "reserve", sku, "5")["reservationId"]
    assert stock_of(agent, sku)["store-001"]["available"] == 0
    r = inv(agent, "cancel", rid)
    assert r.stdout == "" and f"Reservation {rid} cancelled." in r.stderr
    assert inv_json(agent, "reservation", "show", rid)["status"] == "CANCELLED"
    assert stock_of(agent, sku)["store-001"]["available"] == 5
    rid2 = inv_json(agent, "reserve", sku, "1")["reservationId"]
    assert inv_json(agent, "cancel", rid2) == {"reservationId": rid2, "status": "CANCELLED"}
    r = inv(agent, "confirm", rid2, code=4)
    assert "CANCELLED" in error_of(r)


def test_reusing_an_id_is_idempotent_but_not_for_another_request(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 10})
    rid = unique("r")
    first = inv_json(agent, "reserve", sku, "2", "--id", rid, "--customer", "bob")
    again = inv_json(agent, "reserve", sku, "2", "--id", rid, "--customer", "bob")
    assert again["reservationId"] == first["reservationId"] == rid
    assert again["createdAt"] == first["createdAt"]
    assert stock_of(agent, sku)["store-001"]["reserved"] == 2

    r = inv(agent, "reserve", sku, "3", "--id", rid, "--customer", "bob", code=4)
    assert f"reservation id {rid!r} already exists" in error_of(r)
    assert stock_of(agent, sku)["store-001"]["reserved"] == 2
    assert inv_json(agent, "reservation", "show", rid)["quantity"] == 2


def test_no_oversell(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 4})
    inv(agent, "reserve", sku, "3")
    r = inv(agent, "reserve", sku, "2", code=4)
    assert "insufficient stock: available=1, requested=2" in error_of(r)
    r = inv(agent, "stock", "remove", sku, "2", code=4)  # on hand never below reserved
    assert "insufficient stock: available=1" in error_of(r)
    assert stock_of(agent, sku)["store-001"]["reserved"] == 3


def test_not_found(agent: Agent) -> None:
    r = inv(agent, "reserve", "NOPE-77", "1", code=3)
    assert "NOPE-77" in error_of(r) and "inv product list" in error_of(r)
    for args in (["reservation", "show", "no-such-id"], ["confirm", "no-such-id"],
                 ["cancel", "no-such-id"]):  # fmt: skip
        r = inv(agent, *args, code=3)
        assert "reservation 'no-such-id' not found" in error_of(r)
        assert "inv reservation list" in error_of(r)


def test_reservation_list_and_status_filter(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 10})
    keep = inv_json(agent, "reserve", sku, "1", "--customer", "carol")["reservationId"]
    sold = inv_json(agent, "reserve", sku, "2")["reservationId"]
    inv(agent, "confirm", sold)

    mine = inv_json(agent, "reservation", "list", "--sku", sku)
    assert [x["reservationId"] for x in mine] == [sold, keep]  # newest first
    pending = inv_json(agent, "reservation", "list", "--sku", sku, "--status", "pending")
    assert [x["reservationId"] for x in pending] == [keep]
    confirmed = inv_json(agent, "reservation", "list", "--status", "CONFIRMED", "--sku", sku)
    assert [x["reservationId"] for x in confirmed] == [sold]
    assert inv_json(agent, "reservation", "list", "--sku", sku, "--store", "store-002") == []
    assert len(inv_json(agent, "reservation", "list", "--limit", "1")) == 1

    r = inv(agent, "reservation", "list", "--sku", sku)
    rows = table_rows(r.stdout)
    assert rows[keep][1:6] == [sku, "store-001", "1", "PENDING", "carol"]
    assert rows[sold][4] == "CONFIRMED"

    r = inv(agent, "reservation", "list", "--status", "DONE", code=2)
    assert "PENDING, CONFIRMED, CANCELLED or EXPIRED" in error_of(r)


def test_ttl_expires_and_frees_the_stock(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 2})
    rid = inv_json(agent, "reserve", sku, "2", "--ttl", "1")["reservationId"]
    wait_for(
        lambda: stock_of(agent, sku)["store-001"]["available"] == 2,
        timeout=10,
        what="the expiry task to free the stock",
    )
    assert inv_json(agent, "reservation", "show", rid)["status"] == "EXPIRED"
    expired = inv_json(agent, "reservation", "list", "--status", "EXPIRED", "--sku", sku)
    assert [x["reservationId"] for x in expired] == [rid]
    r = inv(agent, "confirm", rid, code=4)
    assert "EXPIRED" in error_of(r)


def test_another_stores_stock_on_a_standalone_agent_is_unreachable(agent: Agent) -> None:
    rid = unique("r-remote")
    before = stock_of(agent, "PROD-001")["store-002"]
    r = inv(agent, "reserve", "PROD-001", "1", "--store", "store-002", "--id", rid, code=5)
    message = error_of(r)
    assert "store 'store-002'" in message and "cannot be reached" in message
    assert "nothing was changed" in message
    # nothing reserved: checked through the API, not the CLI
    status, _ = api(agent, "GET", f"/api/v1/reservations/{rid}")
    assert status == 404
    status, body = api(agent, "GET", "/api/v1/reservations", params={"storeId": "store-002"})
    assert status == 200 and body["data"] == []
    assert stock_of(agent, "PROD-001")["store-002"] == before
