"""``inv stock add|remove|set`` and ``inv history`` end to end: store, reason,
optimistic versions, idempotency keys, and the conflict exit code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli_support import (
    error_of,
    inv,
    inv_json,
    new_product,
    running_agent,
    stock_of,
    table_lines,
)
from tests.helpers import Agent


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("store-001") as a:
        yield a


def test_add_remove_set_in_the_agents_own_store(agent: Agent) -> None:
    sku = new_product(agent)
    r = inv(agent, "stock", "add", sku, "12")
    assert r.stderr == ""
    assert r.stdout.strip() == (
        f"{sku} @ store-001: on hand 12, reserved 0, available 12 (version 1)"
    )
    removed = inv_json(agent, "stock", "remove", sku, "5", "--reason", "damaged")
    assert (removed["storeId"], removed["quantity"], removed["available"]) == ("store-001", 7, 7)
    assert removed["version"] == 2
    counted = inv_json(agent, "stock", "set", sku, "30", "-r", "cycle count")
    assert (counted["quantity"], counted["version"]) == (30, 3)
    assert stock_of(agent, sku)["store-001"]["quantity"] == 30


def test_store_option_and_history(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 4})
    inv(agent, "stock", "add", sku, "9", "--store", "store-007", "--reason", "delivery 42")
    inv(agent, "stock", "remove", sku, "2", "-s", "store-007", "--reason", "breakage")
    levels = stock_of(agent, sku)
    assert {s: v["quantity"] for s, v in levels.items()} == {"store-001": 4, "store-007": 7}

    history = inv_json(agent, "history", sku)
    assert history["sku"] == sku
    moves = [(m["storeId"], m["kind"], m["quantity"], m["reason"]) for m in history["data"]]
    assert moves[:2] == [
        ("store-007", "adjust", -2, "breakage"),
        ("store-007", "receive", 9, "delivery 42"),
    ]
    assert ("store-001", "count", 4, "count") in moves

    only = inv_json(agent, "history", sku, "--store", "store-007", "--since", "1h")
    assert {m["storeId"] for m in only["data"]} == {"store-007"} and len(only["data"]) == 2
    assert inv_json(agent, "history", sku, "--since", "2999-01-01")["data"] == []

    r = inv(agent, "history", sku, "--store", "store-007")
    assert r.stdout.startswith(f"History of {sku}")
    header, *rows = table_lines(r.stdout)
    assert header[:5] == ["When", "Store", "Kind", "Qty", "Reason"]
    assert [(c[1], c[2], c[3], c[4]) for c in rows] == [
        ("store-007", "adjust", "-2", "breakage"),
        ("store-007", "receive", "9", "delivery 42"),
    ]


def test_expected_version(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 10})
    version = stock_of(agent, sku)["store-001"]["version"]
    ok = inv_json(agent, "stock", "add", sku, "1", "--expected-version", str(version))
    assert (ok["quantity"], ok["version"]) == (11, version + 1)

    r = inv(agent, "stock", "set", sku, "50", "--expected-version", str(version), code=4)
    message = error_of(r)
    assert "version mismatch" in message and f"expected {version}" in message
    assert f"inv stock show {sku}" in message
    assert stock_of(agent, sku)["store-001"]["quantity"] == 11  # nothing changed


def test_idempotency_key_applies_once(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 10})
    first = inv_json(agent, "stock", "add", sku, "5", "--key", f"delivery-{sku}")
    assert first["quantity"] == 15
    again = inv(agent, "stock", "add", sku, "5", "--key", f"delivery-{sku}")
    assert "on hand 15" in again.stdout and "replayed: already applied" in again.stdout
    assert stock_of(agent, sku)["store-001"]["quantity"] == 15
    other = inv_json(agent, "stock", "add", sku, "5", "--key", f"delivery-{sku}-2")
    assert other["quantity"] == 20


def test_remove_more_than_available_is_a_conflict(agent: Agent) -> None:
    sku = new_product(agent, {"store-001": 3})
    r = inv(agent, "stock", "remove", sku, "4", code=4)
    assert "insufficient stock: available=3, requested=4" in error_of(r)
    assert stock_of(agent, sku)["store-001"]["quantity"] == 3


def test_stock_errors(agent: Agent) -> None:
    r = inv(agent, "stock", "add", "NOPE-9", "1", code=3)
    assert "inv product list" in error_of(r)
    r = inv(agent, "history", "NOPE-9", code=3)
    assert "inv product list" in error_of(r)
    r = inv(agent, "stock", "set", "PROD-001", "1", "--store", "bad store!", code=2)
    assert "storeId" in error_of(r)
    inv(agent, "stock", "set", "PROD-001", "1", "--expected-version", "v2", code=2)
    r = inv(agent, "stock", "show", "PROD-001", "--store", "store-999", code=3)
    assert "store-999" in error_of(r)
