"""``inv reserve|confirm|cancel`` and ``inv reservation show|list`` in process
against a fake agent."""

from __future__ import annotations

import uuid

import pytest

from inventory_cli.transport import TimedOut
from tests.cli_support import FakeAgent, error_of, reservation_obj, run, run_json, table_rows

RESERVATIONS = "/api/v1/reservations"
# whole ids (the shape this CLI draws): a command runs with them, no lookup first
RID = "3f0c5a2e-8b1d-4c7a-9e6f-1a2b3c4d5e6f"
RX = "00000000-0000-4000-8000-000000000000"


def test_reserve_sends_a_new_id_or_the_one_given() -> None:
    fake = FakeAgent().on("POST", RESERVATIONS, reservation_obj("r-1"), status=201)
    r = run(fake, "reserve", "PROD-001", "3")
    assert r.stderr == "" and r.stdout.startswith("Reservation r-1")
    body = fake.last.body
    assert uuid.UUID(body.pop("reservationId"))
    assert body == {"productId": "PROD-001", "quantity": 3}
    run(fake, "reserve", "PROD-001", "3", "--customer", "alice", "--ttl", "900", "--id", "r-9",
        "--store", "store-002")  # fmt: skip
    assert fake.last.body == {
        "reservationId": "r-9", "productId": "PROD-001", "quantity": 3,
        "storeId": "store-002", "customerId": "alice", "ttl": 900,
    }  # fmt: skip


def test_reservation_view() -> None:
    obj = reservation_obj(RID, customerId="alice")
    fake = FakeAgent().on("GET", f"{RESERVATIONS}/{RID}", obj)
    r = run(fake, "reservation", "show", RID)
    fields = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[1:] if line}
    assert fields["status"] == ["PENDING"] and fields["customerId"] == ["alice"]
    assert fields["remainingSeconds"] == ["600"]
    assert run_json(fake, "reservation", "show", RID) == obj


def test_confirm_and_cancel() -> None:
    fake = (
        FakeAgent()
        .on("POST", f"{RESERVATIONS}/{RID}/confirm", reservation_obj(RID, "CONFIRMED"))
        .on("DELETE", f"{RESERVATIONS}/{RID}", None, status=204)
    )
    assert run_json(fake, "confirm", RID, "--order", "order-77")["status"] == "CONFIRMED"
    assert (fake.last.body, fake.last.query) == ({"orderId": "order-77"}, {})
    run(fake, "confirm", RID, "--store", "store-002")
    assert (fake.last.body, fake.last.query) == ({}, {"storeId": "store-002"})

    r = run(fake, "cancel", RID)
    assert r.stdout == "" and r.stderr == f"Reservation {RID} cancelled.\n"
    assert run_json(fake, "cancel", RID, "-s", "store-002") == {
        "reservationId": RID,
        "status": "CANCELLED",
    }
    assert (fake.last.method, fake.last.query) == ("DELETE", {"storeId": "store-002"})


@pytest.mark.parametrize(
    ("status", "code", "args"),
    [
        (404, 3, ["confirm", RX]),
        (404, 3, ["cancel", RX]),
        (404, 3, ["reservation", "show", RX]),
        (409, 4, ["confirm", RX]),
        (409, 4, ["reserve", "PROD-001", "2", "--id", RX]),
        (404, 3, ["reserve", "PROD-001", "1", "--store", "store-999"]),  # unknown store
        (409, 4, ["reserve", "PROD-001", "1", "--store", "store-002"]),  # standalone
        (503, 5, ["reserve", "PROD-001", "1", "--store", "store-002"]),  # owner unreachable
    ],
)
def test_errors_map_to_exit_codes(status: int, code: int, args: list[str]) -> None:
    message = f"the agent's own words ({status})"
    fake = FakeAgent()
    for method, path in (
        ("POST", f"{RESERVATIONS}/{RX}/confirm"),
        ("DELETE", f"{RESERVATIONS}/{RX}"),
        ("GET", f"{RESERVATIONS}/{RX}"),
        ("POST", RESERVATIONS),
    ):
        fake.on(method, path, {"error": message}, status=status)
    assert error_of(run(fake, *args, code=code)) == f"Error: {message}"


def test_reservation_list_and_status_filter() -> None:
    items = [
        reservation_obj("r-2", "CONFIRMED", quantity=2, orderId="o-1"),
        reservation_obj("r-1", customerId="carol", quantity=1),
    ]
    fake = FakeAgent().on("GET", RESERVATIONS, {"data": items})
    assert (
        run_json(fake, "reservation", "list", "--status", "pending", "--sku", "PROD-001") == items
    )
    assert fake.last.query == {"status": "PENDING", "sku": "PROD-001", "limit": "100"}
    run(fake, "reservation", "list", "-s", "store-002", "--limit", "1")
    assert fake.last.query == {"storeId": "store-002", "limit": "1"}
    rows = table_rows(run(fake, "reservation", "list").stdout)
    assert rows["ID"] == ["ID", "SKU", "Store", "Qty", "Status", "Customer", "Order", "Expires"]
    assert rows["r-1"][1:6] == ["PROD-001", "store-001", "1", "PENDING", "carol"]
    assert rows["r-2"][4:7] == ["CONFIRMED", "", "o-1"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["reservation", "list", "--status", "DONE"], "PENDING, CONFIRMED, CANCELLED or EXPIRED"),
        (["reserve", "PROD-001", "0"], "Invalid value for 'quantity'"),
        (["reserve", "PROD-001", "1", "--ttl", "0"], "Invalid value for '--ttl'"),
        (["reservation", "list", "--limit", "1001"], "Invalid value for '--limit'"),
    ],
)
def test_bad_flags_are_exit_2_and_send_nothing(args: list[str], expected: str) -> None:
    fake = FakeAgent()
    r = run(fake, *args, code=2)
    assert expected in " ".join(r.stderr.split())
    assert fake.sent == []


def test_a_reservation_not_answered_in_time_names_its_id_and_is_sent_once() -> None:
    fake = FakeAgent(fail=[TimedOut("read"), TimedOut("read")])
    r = run(fake, "reserve", "PROD-001", "1", "--id", "r-7", code=5)
    assert len(fake.sent) == 1
    assert error_of(r) == (
        "Error: the agent did not answer within 30 s; the reservation may have been made "
        "as r-7: check with `inv reservation show r-7`, or run the same command again "
        "with --id r-7 (the same id never reserves twice)"
    )


def test_an_owner_that_did_not_answer_in_time_is_exit_5_with_the_id() -> None:
    """The agent's 503 for a forwarded reservation whose outcome is unknown."""
    said = (
        "store 'store-001' did not answer within 0.5 s; the reservation may have been "
        "made as r-8: check with `inv reservation show r-8` (once it has replicated here), "
        "or reserve again with the same id (--id r-8): it never reserves twice"
    )
    body = {"error": said, "owner": "store-001", "reservationId": "r-8", "outcome": "unknown"}
    fake = FakeAgent().on("POST", RESERVATIONS, body, status=503)
    r = run(fake, "reserve", "PROD-001", "1", "--store", "store-001", "--id", "r-8", code=5)
    assert error_of(r) == f"Error: {said}"
