"""``inv reserve|confirm|cancel`` and ``inv reservation show`` end to end
against a real agent: the life cycle, and a standalone agent refusing to
reserve another store's stock (the rest: tests/unit/test_cli_reservations.py)."""

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
    unique,
)
from tests.helpers import Agent


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

    other = inv_json(agent, "reserve", sku, "2")["reservationId"]  # a 204 over the socket:
    r = inv(agent, "cancel", other)
    assert r.stdout == "" and f"Reservation {other} cancelled." in r.stderr
    assert stock_of(agent, sku)["store-001"]["available"] == 7


def _field_lines(stdout: str) -> list[list[str]]:
    """``key  value`` lines of a one-object view."""
    return [line.split() for line in stdout.splitlines()[1:] if line.strip()]


def test_another_stores_stock_on_a_standalone_agent_is_a_conflict(agent: Agent) -> None:
    rid = unique("r-remote")
    before = stock_of(agent, "PROD-001")["store-002"]
    r = inv(agent, "reserve", "PROD-001", "1", "--store", "store-002", "--id", rid, code=4)
    message = error_of(r)
    assert "store 'store-002' owns that stock, and this agent runs standalone" in message
    assert "it can only reserve its own store's stock; nothing was changed" in message
    r = inv(agent, "reserve", "PROD-001", "1", "--store", "store-999", "--id", rid, code=3)
    assert error_of(r) == "Error: store 'store-999' is not known to this agent"
    # nothing reserved: checked through the API, not the CLI
    status, _ = api(agent, "GET", f"/api/v1/reservations/{rid}")
    assert status == 404
    status, body = api(agent, "GET", "/api/v1/reservations", params={"storeId": "store-002"})
    assert status == 200 and body["data"] == []
    assert stock_of(agent, "PROD-001")["store-002"] == before
