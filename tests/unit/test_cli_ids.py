"""Reservation, transfer and routing ids by their first characters
(``inventory_cli.ids``), in process against a fake agent: a unique prefix
runs the command with the whole id; an ambiguous one is exit 2 listing the
candidates; too short is exit 2; none is exit 3 naming it; a whole id goes
without a lookup."""

from __future__ import annotations

from typing import Any

from inventory_cli import ids
from tests.cli_support import FakeAgent, error_of, reservation_obj, run, run_json

RES = "/api/v1/reservations"
TRANSFERS = "/api/v1/transfers"
WHOLE = "ca65956e-1b2c-4d3e-8f40-5a6b7c8d9e0f"


def lookup(fake: FakeAgent, index: int = 0) -> tuple[str, str, dict[str, str]]:
    sent = fake.sent[index]
    return sent.method, sent.path, sent.query


def transfer(tid: str, status: str = "DRAFT") -> dict[str, Any]:
    return {"transferId": tid, "fromStoreId": "store-001", "toStoreId": "store-002",
            "status": status, "lines": [], "totals": {}, "discrepancies": []}  # fmt: skip


def test_a_unique_prefix_runs_the_command_with_the_whole_id() -> None:
    fake = (
        FakeAgent()
        .on("GET", RES, {"data": [reservation_obj(WHOLE)]})
        .on("POST", f"{RES}/{WHOLE}/confirm", reservation_obj(WHOLE, "CONFIRMED"))
        .on("DELETE", f"{RES}/{WHOLE}", None, status=204)
        .on("GET", f"{RES}/{WHOLE}", reservation_obj(WHOLE))
    )
    assert run_json(fake, "confirm", "ca65956e")["status"] == "CONFIRMED"
    assert lookup(fake) == ("GET", RES, {"idPrefix": "ca65956e", "limit": "51"})
    assert (fake.last.method, fake.last.path) == ("POST", f"{RES}/{WHOLE}/confirm")
    assert len(fake.sent) == 2

    r = run(fake, "cancel", "ca65")
    assert r.stderr == f"Reservation {WHOLE} cancelled.\n"
    assert lookup(fake, -2)[2]["idPrefix"] == "ca65" and fake.last.method == "DELETE"
    assert run_json(fake, "reservation", "show", "ca659")["reservationId"] == WHOLE
    assert fake.last.path == f"{RES}/{WHOLE}"


def test_a_whole_id_skips_the_lookup() -> None:
    fake = (
        FakeAgent()
        .on("POST", f"{RES}/{WHOLE}/confirm", reservation_obj(WHOLE, "CONFIRMED"))
        .on("POST", f"{TRANSFERS}/T-7K3M-9XQ2-P8RA/ship", transfer("T-7K3M-9XQ2-P8RA"))
    )
    run(fake, "confirm", WHOLE)
    run_json(fake, "transfer", "ship", "T-7K3M-9XQ2-P8RA")
    assert [s.method for s in fake.sent] == ["POST", "POST"]


def test_an_id_typed_whole_wins_over_the_longer_ones_it_starts() -> None:
    # ids a client chose (the seed's "rsv-123") may be short, or the start of others
    rows = [reservation_obj("rsv-1"), reservation_obj("rsv-10"), reservation_obj("rsv-11")]
    fake = (
        FakeAgent()
        .on("GET", RES, {"data": rows})
        .on("POST", f"{RES}/rsv-1/confirm", reservation_obj("rsv-1", "CONFIRMED"))
    )
    run(fake, "confirm", "rsv-1")
    assert fake.last.path == f"{RES}/rsv-1/confirm"


def test_an_ambiguous_prefix_is_exit_2_listing_the_candidates() -> None:
    rows = [
        reservation_obj(f"ca65956e-{i:04d}", "PENDING" if i % 2 else "CONFIRMED", sku=f"P-{i}")
        for i in range(12)
    ]
    fake = FakeAgent().on("GET", RES, {"data": rows})
    r = run(fake, "confirm", "ca65", code=2)
    lines = r.stderr.splitlines()
    assert lines[0] == "Error: 'ca65' is the start of 12 reservation ids; type more of it:"
    # each with its sku, store and status (an id not a UUID: whole, as a table shows it)
    assert lines[1].split() == ["ca65956e-0000", "P-0", "×3", "store-001", "CONFIRMED"]
    assert lines[2].split() == ["ca65956e-0001", "P-1", "×3", "store-001", "PENDING"]
    assert len(lines) == 12 and lines[-1] == "  …and 2 more"
    assert [s.method for s in fake.sent] == ["GET"]  # nothing confirmed

    many = [reservation_obj(f"ca65{i:04x}-0000-4000-8000-000000000000") for i in range(ids.ASK)]
    r = run(FakeAgent().on("GET", RES, {"data": many}), "cancel", "ca65", code=2)
    assert r.stderr.startswith("Error: 'ca65' is the start of at least 51 reservation ids")
    assert r.stderr.splitlines()[1].split()[0] == "ca650000"  # shortened as tables show them
    assert r.stderr.splitlines()[-1] == "  …and at least 41 more"


def test_a_prefix_too_short_is_exit_2_and_one_matching_nothing_is_exit_3() -> None:
    fake = FakeAgent().on("GET", RES, {"data": [reservation_obj(WHOLE)]})
    r = run(fake, "confirm", "ca6", code=2)
    assert "'ca6': give at least 4 characters of the reservation id" in error_of(r)
    fake = FakeAgent().on("GET", RES, {"data": []})
    r = run(fake, "reservation", "show", "ab12cd", code=3)
    assert error_of(r) == (
        "Error: no reservation id here starts with 'ab12cd'; list them with: inv reservation list"
    )
    assert len(fake.sent) == 1
    r = run(FakeAgent(), "confirm", "ca65/../x", code=2)  # not an id's characters: nothing sent
    assert "'ca65/../x': not a reservation id" in error_of(r)


def test_another_stores_id_unknown_here_goes_as_typed() -> None:
    # --store names the owner: it may know an id this agent has not heard of yet
    fake = (
        FakeAgent()
        .on("GET", RES, {"data": []})
        .on("POST", f"{RES}/ord-77@store-002/confirm", reservation_obj("x", "CONFIRMED"))
    )
    run(fake, "confirm", "ord-77@store-002", "--store", "store-002")
    assert (fake.last.path, fake.last.query) == (
        f"{RES}/ord-77@store-002/confirm",
        {"storeId": "store-002"},
    )


def test_a_prefix_in_the_other_case_is_looked_up_in_the_ids_own() -> None:
    tid = "T-7K3M-9XQ2-P8RA"
    fake = (
        FakeAgent()
        .on("GET", TRANSFERS, {"data": []})  # as typed: nothing
        .on("GET", TRANSFERS, {"data": [transfer(tid)]})  # upper case, as drawn
        .on("POST", f"{TRANSFERS}/{tid}/cancel", transfer(tid, "CANCELLED"))
    )
    run_json(fake, "transfer", "cancel", "t-7k3m")
    assert [s.query.get("idPrefix") for s in fake.sent] == ["t-7k3m", "T-7K3M", None]
    assert fake.last.path == f"{TRANSFERS}/{tid}/cancel"


def test_transfer_steps_and_routings_take_prefixes() -> None:
    tid = "T-7K3M-9XQ2-P8RA"
    fake = (
        FakeAgent()
        .on("GET", TRANSFERS, {"data": [transfer(tid)]})
        .on("POST", f"{TRANSFERS}/{tid}/receive", transfer(tid, "RECEIVED"), status=201)
        .on("GET", f"{TRANSFERS}/{tid}", transfer(tid))
        .on("GET", "/api/v1/routings", {"data": [{"requestId": WHOLE}]})
        .on("GET", f"/api/v1/routings/{WHOLE}", {"requestId": WHOLE, "x": 1})
    )
    run_json(fake, "transfer", "receive", "T-7K3M-9", "PROD-001:2")
    assert fake.last.path == f"{TRANSFERS}/{tid}/receive"
    assert run_json(fake, "transfer", "show", "T-7K3M")["transferId"] == tid
    assert run_json(fake, "reservation", "routing", "ca65")["requestId"] == WHOLE
    assert lookup(fake, -2) == ("GET", "/api/v1/routings", {"idPrefix": "ca65", "limit": "51"})

    r = run(FakeAgent(), "transfer", "receive", "T-7K", "PROD-001", code=2)
    assert "give each line as SKU:RECEIVED" in error_of(r)  # refused before any lookup
    fake = FakeAgent().on("GET", TRANSFERS, {"data": []})
    r = run(fake, "transfer", "receive", "T-9ZZZ", code=3)
    assert "(one not heard of here yet: its whole id, with --from and the lines)" in error_of(r)
