"""``inv stock show|add|remove|set``, ``inv availability`` and ``inv history``
in process against a fake agent: the request each sends, the table and
--json each prints, and the exit code of each error."""

from __future__ import annotations

import pytest

from tests.cli_support import (
    FakeAgent,
    availability_obj,
    error_of,
    run,
    run_json,
    stock_obj,
    table_lines,
    table_rows,
)

AVAIL = "/api/v1/products/PROD-001/availability"
STOCK = "/api/v1/products/PROD-001/stock"


def test_stock_show_table_has_safety_stock_and_what_online_orders_may_take() -> None:
    obj = availability_obj(
        stock_obj("store-001", 10, safetyStock=3, availableOnline=7),
        stock_obj("store-002", 5, safetyStock=0, availableOnline=0),  # not online
    )
    obj["totalAvailableOnline"] = 7
    fake = FakeAgent().on("GET", AVAIL, obj)
    r = run(fake, "stock", "show", "PROD-001", env={"COLUMNS": "80"})
    assert r.stderr == ""
    assert r.stdout.startswith("Stock of PROD-001")
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    rows = table_rows(r.stdout)
    assert set(rows) == {"Store", "store-001", "store-002"}
    assert rows["Store"] == [
        "Store",
        "On hand",
        "Reserved",
        "Available",
        "Safety",
        "For online",
        "Version",
    ]
    assert rows["store-001"] == ["store-001", "10", "0", "10", "3", "7", "1"]
    assert rows["store-002"][3:6] == ["5", "0", "0"]
    assert "Total available: 15 (for online orders: 7)" in r.stdout
    assert (fake.last.method, fake.last.path, fake.last.query) == ("GET", AVAIL, {})


def test_availability_table_shows_how_fresh_each_view_is() -> None:
    fake = FakeAgent().on(
        "GET", AVAIL, availability_obj(stock_obj("store-001", 10), stock_obj("store-002", 5))
    )
    r = run(fake, "availability", "PROD-001")
    rows = table_rows(r.stdout)
    assert rows["Store"] == [
        "Store",
        "On hand",
        "Reserved",
        "Available",
        "Version",
        "Last updated",
        "As of",
    ]
    assert rows["store-001"][1] == "10" and rows["store-002"][3] == "5"
    # an agent from before the chain reports no online figures: none shown
    assert r.stdout.rstrip().endswith("Total available: 15")


def test_stock_show_json_is_the_api_object_and_store_is_a_query() -> None:
    obj = availability_obj(stock_obj("store-002", 5))
    fake = FakeAgent().on("GET", AVAIL, obj)
    assert run_json(fake, "stock", "show", "PROD-001", "--store", "store-002") == obj
    assert fake.last.query == {"storeId": "store-002"}
    assert run_json(fake, "availability", "PROD-001", "-s", "store-001") == obj
    assert fake.last.query == {"storeId": "store-001"}
    r = run(fake, "availability", "PROD-001")
    assert "Total available: 5" in r.stdout


def test_a_path_segment_is_quoted() -> None:
    fake = FakeAgent()
    run(fake, "stock", "show", "A B/C", code=3)
    assert fake.last.path == "/api/v1/products/A%20B/C/availability"


@pytest.mark.parametrize("as_json", [False, True])
def test_not_found_is_exit_3_with_the_agents_message(as_json: bool) -> None:
    message = "product 'NOPE-404' not found; list products with: inv product list"
    fake = FakeAgent().on(
        "GET", "/api/v1/products/NOPE-404/availability", {"error": message}, status=404
    )
    r = run(fake, "stock", "show", "NOPE-404", *(["--json"] if as_json else []), code=3)
    assert error_of(r) == f"Error: {message}"


@pytest.mark.parametrize(
    ("command", "operation", "reason"),
    [("add", "add", "receive"), ("remove", "subtract", "adjust"), ("set", "set", "count")],
)
def test_stock_changes_send_operation_reason_and_a_new_key(
    command: str, operation: str, reason: str
) -> None:
    fake = FakeAgent().on("POST", STOCK, stock_obj(quantity=12), status=202)
    r = run(fake, "stock", command, "PROD-001", "12")
    assert r.stdout.strip() == (
        "PROD-001 @ store-001: on hand 12, reserved 0, available 12 (version 1)"
    )
    sent = fake.last
    assert sent.body == {"operation": operation, "quantity": 12, "reason": reason}
    first_key = sent.headers["X-Idempotency-Key"]
    run(fake, "stock", command, "PROD-001", "12")
    assert fake.last.headers["X-Idempotency-Key"] != first_key  # a new one per command


@pytest.mark.parametrize(
    ("args", "body"),
    [
        (["sell", "PROD-001"], {"operation": "sell", "quantity": 1, "reason": "sale"}),
        (
            ["sell", "PROD-001", "3", "-r", "till 2"],
            {"operation": "sell", "quantity": 3, "reason": "till 2"},
        ),
        (["receive", "PROD-001", "24"], {"operation": "add", "quantity": 24, "reason": "receive"}),
        (
            ["receive", "PROD-001", "6", "-s", "store-002", "-r", "delivery 7782"],
            {"operation": "add", "quantity": 6, "reason": "delivery 7782", "storeId": "store-002"},
        ),
    ],
)  # fmt: skip
def test_the_counter_shortcuts_are_stock_changes(args: list[str], body: dict[str, object]) -> None:
    fake = FakeAgent().on("POST", STOCK, stock_obj(quantity=9), status=202)
    r = run(fake, *args, "--key", "till-1")
    assert r.stdout.startswith("PROD-001 @ store-001: on hand 9")
    assert (fake.last.body, fake.last.headers["X-Idempotency-Key"]) == (body, "till-1")


def test_a_sale_of_more_than_is_available_is_exit_4_and_of_none_a_usage_error() -> None:
    message = "insufficient stock: 1 available, 2 requested"
    fake = FakeAgent().on("POST", STOCK, {"error": message, "available": 1}, status=409)
    r = run(fake, "sell", "PROD-001", "2", code=4)
    assert error_of(r) == f"Error: {message}"
    before = len(fake.sent)
    run(fake, "sell", "PROD-001", "0", code=2)
    run(fake, "receive", "PROD-001", code=2)  # a receipt names its quantity
    assert len(fake.sent) == before  # nothing sent


def test_stock_change_options() -> None:
    fake = FakeAgent().on("POST", STOCK, stock_obj(quantity=7, version=2), status=202)
    out = run_json(
        fake, "stock", "remove", "PROD-001", "5", "-s", "store-007", "-r", "damaged",
        "--expected-version", "1", "--key", "delivery-42",
    )  # fmt: skip
    assert out["quantity"] == 7
    assert fake.last.body == {
        "operation": "subtract",
        "quantity": 5,
        "reason": "damaged",
        "storeId": "store-007",
        "expectedVersion": 1,
    }
    assert fake.last.headers["X-Idempotency-Key"] == "delivery-42"


def test_a_replayed_change_says_so() -> None:
    fake = FakeAgent().on("POST", STOCK, stock_obj(quantity=15, replayed=True), status=200)
    r = run(fake, "stock", "add", "PROD-001", "5", "--key", "k")
    assert "on hand 15" in r.stdout and "replayed: already applied" in r.stdout


def test_a_conflict_is_exit_4() -> None:
    message = "version mismatch: expected 3, current version is 4; re-read with: inv stock show X"
    fake = FakeAgent().on("POST", STOCK, {"error": message, "currentVersion": 4}, status=409)
    r = run(fake, "stock", "set", "PROD-001", "50", "--expected-version", "3", code=4)
    assert error_of(r) == f"Error: {message}"


def test_history() -> None:
    moves = {
        "sku": "PROD-001",
        "data": [
            {"at": "2024-01-02T10:00:00Z", "storeId": "store-007", "kind": "adjust",
             "quantity": -2, "reason": "breakage", "actor": "cli", "origin": "store-007",
             "superseded": False},
            {"at": "2024-01-01T10:00:00Z", "storeId": "store-007", "kind": "receive",
             "quantity": 9, "reason": "delivery 42", "actor": "cli", "origin": "store-007",
             "superseded": True},
        ],
    }  # fmt: skip
    fake = FakeAgent().on("GET", "/api/v1/products/PROD-001/history", moves)
    r = run(fake, "history", "PROD-001", "--store", "store-007", "--since", "1h")
    assert fake.last.query == {"storeId": "store-007", "since": "1h", "limit": "100"}
    assert r.stdout.startswith("History of PROD-001")
    header, *rows = table_lines(r.stdout)
    assert header == ["When", "Store", "Kind", "Qty", "Reason", "By", "Origin", "Note"]
    assert [(c[1], c[2], c[3], c[4]) for c in rows] == [
        ("store-007", "adjust", "-2", "breakage"),
        ("store-007", "receive", "9", "delivery 42"),
    ]
    assert rows[1][7] == "superseded by a later count"
    assert run_json(fake, "history", "PROD-001", "--limit", "5") == moves
    assert fake.last.query == {"limit": "5"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["stock", "show"], "Missing argument"),
        (["stock", "show", "PROD-001", "--bogus"], "No such option: --bogus"),
        (["stock", "add", "PROD-001", "many"], "Invalid value for 'quantity'"),
        (["stock", "add", "PROD-001", "-1"], "No such option: -1"),
        (["stock", "set", "PROD-001", "1", "--expected-version", "v2"], "'v2' is not a valid"),
        (["stock", "frobnicate"], "No such command"),
        (["history", "PROD-001", "--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_bad_flags_are_exit_2_and_send_nothing(args: list[str], expected: str) -> None:
    fake = FakeAgent()
    r = run(fake, *args, code=2)
    assert expected in " ".join(r.stderr.split())
    assert fake.sent == []


def test_invalid_data_the_agent_refuses_is_exit_2() -> None:
    fake = FakeAgent().on(
        "POST", STOCK, {"error": "quantity: must be at least 1", "field": "quantity"}, status=422
    )
    r = run(fake, "stock", "add", "PROD-001", "0", code=2)
    assert error_of(r) == "Error: quantity: must be at least 1"
    fake.on("GET", "/api/v1/products/PROD-001/history", {"error": "since: 'x'"}, status=400)
    r = run(fake, "history", "PROD-001", "--since", "x", code=2)
    assert "since: 'x'" in error_of(r)
