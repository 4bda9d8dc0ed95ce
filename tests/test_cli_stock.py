"""``inv stock add|remove|set`` end to end against a real agent: the changes,
an optimistic version and an idempotency key as the agent applies them (the
requests and their rendering: tests/unit/test_cli_stock.py)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator

import pytest

from tests.cli_support import (
    error_of,
    inv,
    inv_json,
    new_product,
    running_agent,
    stock_of,
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


def test_the_counter_shortcuts_record_the_os_user_who_ran_them(agent: Agent) -> None:
    """Over the socket the agent names the caller by its OS user (the
    kernel's SO_PEERCRED), for movements and reservations alike."""
    me = pwd.getpwuid(os.getuid()).pw_name
    sku = new_product(agent, {"store-001": 10})
    sold = inv_json(agent, "sell", sku, "3")
    assert (sold["quantity"], sold["available"]) == (7, 7)
    assert inv_json(agent, "receive", sku, "5", "-r", "delivery 7782")["quantity"] == 12
    inv(agent, "sell", sku, "13", code=4)  # more than there is: nothing sold
    held = inv_json(agent, "reserve", sku, "1")
    assert (held["createdBy"], held["updatedBy"]) == (me, me)
    moves = inv_json(agent, "history", sku)["data"]
    assert [(m["kind"], m["quantity"], m["reason"], m["actor"]) for m in moves[:2]] == [
        ("receive", 5, "delivery 7782", me),
        ("sell", -3, "sale", me),
    ]
    assert me in inv(agent, "history", sku).stdout  # the "By" column
