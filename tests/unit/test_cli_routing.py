"""``inv reserve --store any`` and ``inv reservation routing|routings`` in
process against a fake agent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli_support import FakeAgent, error_of, reservation_obj, run, run_json, table_rows

RESERVATIONS = "/api/v1/reservations"


def routing_obj(*attempts: tuple[str, str], **more: Any) -> dict[str, Any]:
    return {
        "requestId": "ord-1",
        "strategy": "priority",
        "attempts": [
            {
                "storeId": s,
                "outcome": o,
                "availableOnline": 4,
                **({"reservationId": f"ord-1@{s}"} if o != "skipped" else {}),
                **(
                    {"cleanup": {"state": "pending", "tries": 0, "nextAt": None}}
                    if o == "timeout"
                    else {}
                ),
            }
            for s, o in attempts
        ],
        **more,
    }


def test_reserve_any_sends_the_routing_fields_and_shows_the_attempts() -> None:
    routing = routing_obj(("store-001", "timeout"), ("store-002", "granted"))
    reply = reservation_obj("ord-1@store-002", storeId="store-002", routing=routing)
    fake = FakeAgent().on("POST", RESERVATIONS, reply, status=202)
    r = run(
        fake, "reserve", "PROD-001", "2", "--store", "any", "--id", "ord-1",
        "--strategy", "nearest", "--near", "48.85,2.35", "--candidates", "store-001, store-002",
    )  # fmt: skip
    assert fake.last.body == {
        "reservationId": "ord-1", "productId": "PROD-001", "quantity": 2, "storeId": "any",
        "strategy": "nearest", "near": "48.85,2.35", "stores": ["store-001", "store-002"],
    }  # fmt: skip
    assert r.stdout.startswith("Reservation ord-1@store-002")
    rows = table_rows(r.stdout)
    assert rows["store-001"][1:3] == ["timeout", "4"] and rows["store-001"][4].startswith("pending")
    assert rows["store-002"][1] == "granted"
    assert run_json(fake, "reserve", "PROD-001", "2", "--store", "any") == reply


def test_no_store_can_reserve_is_exit_4_with_the_attempts_on_stderr() -> None:
    body = {
        "error": "no store can reserve 2 of PROD-001: asked store-001 (insufficient)",
        "routing": routing_obj(("store-001", "insufficient"), ("store-002", "skipped")),
    }
    fake = FakeAgent().on("POST", RESERVATIONS, body, status=409)
    r = run(fake, "reserve", "PROD-001", "2", "--store", "any", code=4)
    assert error_of(r).startswith("Error: no store can reserve 2 of PROD-001")
    assert "store-002" in r.stderr and "skipped" in r.stderr
    body["error"] = "no store could be reached to reserve 2 of PROD-001"
    fake = FakeAgent().on("POST", RESERVATIONS, body, status=503)
    run(fake, "reserve", "PROD-001", "2", "--store", "any", code=5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nearest"], "--strategy: only with --store any"),
        (["--store", "any", "--strategy", "cheapest"], "--strategy: 'cheapest' must be one of"),
        (["--store", "any", "--near", "store-002"], "--near: only with --strategy nearest"),
        (["--store", "any", "--candidates", " , "], "--candidates: name at least one store"),
    ],
)
def test_routing_flags_that_do_not_go_together_are_refused_before_sending(
    args: list[str], message: str
) -> None:
    fake = FakeAgent()
    r = run(fake, "reserve", "PROD-001", "1", *args, code=2)
    assert error_of(r).startswith(f"Error: {message}")
    assert fake.sent == []


def test_reservation_routing_and_routings() -> None:
    record = {
        **routing_obj(("store-001", "timeout"), ("store-002", "granted")),
        "status": "granted", "sku": "PROD-001", "quantity": 2, "customerId": None,
        "storeId": "store-002", "reservationId": "ord-1@store-002", "error": None,
        "pendingCleanups": 1, "createdAt": "2024-01-01T10:00:00Z",
        "updatedAt": "2024-01-01T10:00:00Z",
    }  # fmt: skip
    fake = (
        FakeAgent()
        .on("GET", "/api/v1/routings/ord-1", record)
        .on("GET", "/api/v1/routings", {"data": [record]})
    )
    r = run(fake, "reservation", "routing", "ord-1")
    assert r.stdout.startswith("Routed reservation ord-1")
    assert table_rows(r.stdout)["store-002"][1] == "granted"
    r = run(fake, "reservation", "routings", "--cleanup", "pending")
    assert fake.last.query == {"cleanup": "pending", "limit": "100"}
    assert table_rows(r.stdout)["ord-1"][1:3] == ["granted", "PROD-001"]
    assert run_json(fake, "reservation", "routing", "ord-1") == record
