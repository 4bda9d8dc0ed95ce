"""``inv`` end to end, the real console script against a real agent: help,
the output contract (tables, --json, stdout/stderr), an exit code of each
kind, reaching the agent (the default socket, INV_AGENT, TCP + token),
NO_COLOR in a terminal, and each area once (the CLI and the agent agree on
the API). Everything else about the commands: tests/unit/test_cli_*.py."""

from __future__ import annotations

import os
import pty
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import __version__
from tests.cli_support import (
    ANSI,
    api,
    error_of,
    inv,
    inv_json,
    running_agent,
    table_rows,
    unique,
)
from tests.helpers import Agent, bin_path, short_tmpdir


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("store-001", tcp=True) as a:
        yield a


def without_as_of(availability: dict) -> dict:
    """``asOf`` of the agent's own store is "now": it differs between two reads."""
    return {
        **availability,
        "stores": [{k: v for k, v in s.items() if k != "asOf"} for s in availability["stores"]],
    }


# ------------------------------------------------------------------- help
def test_help_lists_every_exit_code() -> None:
    r = inv(None, "--help")
    text = " ".join(r.stdout.split())
    assert r.stderr == ""
    for phrase in (
        "Exit codes: 0 ok",
        "1 other error",
        "2 usage or invalid input",
        "3 not found",
        "4 conflict (insufficient stock, version mismatch, id reused)",
        "5 agent or owning store unreachable",
    ):
        assert phrase in text
    for command in ("product", "stock", "reserve", "confirm", "cancel", "import", "sync"):
        assert command in r.stdout


def test_a_group_alone_shows_its_help_as_a_usage_error() -> None:
    r = inv(None, "stock", code=2)  # help on stderr: it is an error, stdout stays empty
    assert "Usage: inv stock" in r.stderr and "Commands:" in r.stderr


def test_inv_alone_is_one_screen_of_the_running_agent(agent: Agent) -> None:
    r = inv(agent)
    assert r.stdout.splitlines()[:3] == [
        "Store:  store-001",
        f"Agent:  healthy, v{__version__}, standalone",
        "Sync:   standalone (no NATS configured): this store only",
    ]
    assert "inv sell SKU [QTY]" in r.stdout and r.stderr == ""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INV_AGENT", "INV_TOKEN")}
    return {**env, "NO_COLOR": "1", **extra}


# ------------------------------------------------------------- stock show
def test_stock_show_table_has_the_seed_stock(agent: Agent) -> None:
    r = inv(agent, "stock", "show", "PROD-001")
    assert r.stderr == ""
    assert r.stdout.startswith("Stock of PROD-001")
    rows = table_rows(r.stdout)
    assert set(rows) >= {"Store", "store-001", "store-002"}
    header = rows["Store"]
    on_hand, available = header.index("On hand"), header.index("Available")
    assert rows["store-001"][on_hand] == "10" and rows["store-001"][available] == "10"
    assert rows["store-002"][on_hand] == "5" and rows["store-002"][available] == "5"
    assert "Total available: 15" in r.stdout


def test_stock_show_json_is_the_api_object(agent: Agent) -> None:
    data = inv_json(agent, "stock", "show", "PROD-001")
    status, body = api(agent, "GET", "/api/v1/products/PROD-001/availability")
    assert status == 200
    assert without_as_of(data) == without_as_of(body)
    assert {s["storeId"]: s["quantity"] for s in data["stores"]} == {
        "store-001": 10,
        "store-002": 5,
    }
    assert data["totalAvailable"] == 15


@pytest.mark.parametrize("as_json", [False, True])
def test_unknown_sku_is_exit_3_with_a_hint(agent: Agent, as_json: bool) -> None:
    r = inv(agent, "stock", "show", "NOPE-404", *(["--json"] if as_json else []), code=3)
    message = error_of(r)
    assert "NOPE-404" in message and "not found" in message
    assert "inv product list" in message


# ------------------------------------------------------------ usage errors
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["stock", "show", "PROD-001", "--bogus"], "No such option: --bogus"),  # click's
        (["reservation", "list", "--status", "LOST"], "--status: 'LOST' must be PENDING"),  # ours
        (["history", "PROD-001", "--since", "yesterday-ish"], "since: 'yesterday-ish'"),  # 422
        (["stock", "add", "PROD-001", "0"], "quantity: must be at least 1"),  # the agent's 422
    ],
)
def test_usage_errors_are_exit_2(agent: Agent, args: list[str], expected: str) -> None:
    r = inv(agent, *args, code=2)
    assert expected in " ".join(r.stderr.split())


# -------------------------------------------------------- reaching the agent
@pytest.fixture
def home() -> Iterator[Path]:
    """A short directory (AF_UNIX paths are limited to ~107 bytes)."""
    path = short_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_no_agent_at_the_socket_is_exit_5_saying_how_to_start_it(home: Path) -> None:
    missing = str(home / "nothing-here.sock")
    r = inv(None, "stock", "show", "PROD-001", code=5, env=_env(INV_AGENT=missing, COLUMNS="60"))
    # one line, however narrow the terminal: the suggested command stays whole
    assert r.stderr.count("\n") == 1
    message = error_of(r)
    assert missing in message
    assert "start it with: inv-agent --store-id STORE" in message and "INV_AGENT" in message
    # a stale socket file (the agent died) is unreachable too, not a crash
    stale = home / "s"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))
    r = inv(None, "product", "list", code=5, env=_env(INV_AGENT=str(stale)))
    assert "inv-agent --store-id" in error_of(r)
    r = inv(None, "--agent", str(stale), "agent", "status", code=5, env=_env())
    assert "inv-agent --store-id" in error_of(r)


def test_tcp_needs_inv_token(agent: Agent) -> None:
    r = inv(agent, "stock", "show", "PROD-001", code=1, env={"INV_AGENT": agent.url})
    assert "INV_TOKEN" in error_of(r)
    r = inv(
        agent,
        "stock",
        "show",
        "PROD-001",
        code=1,
        env={"INV_AGENT": agent.url, "INV_TOKEN": "not-a-jwt"},
    )
    assert "INV_TOKEN" in error_of(r)

    token = agent.token()
    data = inv_json(
        agent, "stock", "show", "PROD-001", env={"INV_AGENT": agent.url, "INV_TOKEN": token}
    )
    assert {s["storeId"]: s["quantity"] for s in data["stores"]} == {
        "store-001": 10,
        "store-002": 5,
    }
    # the same through the global options instead of the environment
    r = inv(agent, "--agent", agent.url, "--token", token, "product", "show", "PROD-002")
    assert "Mouse Logitech M185" in r.stdout


# ---------------------------------------------------------------- NO_COLOR
def _in_a_terminal(agent: Agent, *args: str, no_color: bool) -> tuple[int, bytes]:
    """Run ``inv`` with stdout and stderr on a pseudo-terminal, where rich would
    style its output: that is where NO_COLOR matters."""
    env = agent.cli_env()
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [bin_path("inv"), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks)


def test_no_color_means_no_escape_codes_even_in_a_terminal(agent: Agent) -> None:
    for args, code, text in (
        (("stock", "show", "PROD-001"), 0, b"Total available: 15"),
        (("stock", "show", "NOPE"), 3, b"Error: product 'NOPE' not found"),
    ):
        rc, styled = _in_a_terminal(agent, *args, no_color=False)
        assert rc == code
        assert ANSI.search(styled.decode()), "expected styling in a terminal without NO_COLOR"
        rc, plain = _in_a_terminal(agent, *args, no_color=True)
        assert rc == code
        assert not ANSI.search(plain.decode()), plain
        assert text in plain


# ----------------------------------------------------------------- products
def test_product_add_show_update_list(agent: Agent) -> None:
    sku = unique("CLI")
    r = inv(agent, "product", "add", sku, "--name", "Desk lamp", "--price", "19.99",
            "--category", "lighting", "--description", "LED, warm white")  # fmt: skip
    assert r.stderr == ""
    assert f"Product {sku}" in r.stdout and "Desk lamp" in r.stdout

    shown = inv_json(agent, "product", "show", sku)
    assert shown["sku"] == sku and shown["price"] == 19.99 and shown["active"] is True
    assert shown["category"] == "lighting" and shown["description"] == "LED, warm white"
    status, body = api(agent, "GET", f"/api/v1/products/{sku}")
    assert status == 200 and body == shown
    assert inv_json(agent, "product", "show", shown["id"])["sku"] == sku

    updated = inv_json(agent, "product", "update", sku, "--price", "17.5", "--inactive")
    assert updated["price"] == 17.5 and updated["active"] is False
    assert updated["name"] == "Desk lamp"  # untouched fields stay
    r = inv(agent, "product", "update", sku, "--name", "Desk lamp v2")
    assert "Desk lamp v2" in r.stdout

    listed = inv_json(agent, "product", "list", "--search", sku)
    assert [p["sku"] for p in listed] == [sku]
    r = inv(agent, "product", "list", "--category", "lighting")
    rows = table_rows(r.stdout)
    assert rows[sku][1] == "Desk lamp v2" and rows[sku][4] == "no"
    everything = inv_json(agent, "product", "list")
    assert {"PROD-001", "PROD-002", "PROD-003", sku} <= {p["sku"] for p in everything}
    assert len(inv_json(agent, "product", "list", "--limit", "2")) == 2


# --------------------------------------------------------------- operations
def test_agent_and_sync_status_and_conflicts(agent: Agent) -> None:
    r = inv(agent, "agent", "status")
    assert "Agent store-001 (standalone" in r.stdout and "healthy" in r.stdout
    assert {"ledger", "expiry", "outbox"} <= set(table_rows(r.stdout))
    health = inv_json(agent, "agent", "status")
    assert health["status"] == "healthy" and health["storeId"] == "store-001"
    r = inv(agent, "sync", "status")
    assert r.stdout.startswith("Store store-001: standalone, not connected")
    status = inv_json(agent, "sync", "status")
    assert status["storeId"] == "store-001" and status["connected"] is False
    assert status["outboxBacklog"] >= 1 and "store-001" in status["digests"]
    assert inv_json(agent, "conflicts", "--since", "1h", "--limit", "5") == []
    inv(agent, "conflicts", "--since", "last tuesday", code=2)


def test_the_default_socket_without_inv_agent(agent: Agent, home: Path) -> None:
    """No INV_AGENT: the agent's own default ($XDG_RUNTIME_DIR/inv-agent/agent.sock)."""
    (home / "inv-agent").mkdir()
    (home / "inv-agent" / "agent.sock").symlink_to(agent.socket)
    env = {**_env(XDG_RUNTIME_DIR=str(home)), "COLUMNS": "200"}
    r = subprocess.run(
        [bin_path("inv"), "stock", "show", "PROD-001"], capture_output=True, text=True, env=env
    )
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert "Total available: 15" in r.stdout
    (home / "inv-agent" / "agent.sock").unlink()
    r = subprocess.run(
        [bin_path("inv"), "stock", "show", "PROD-001"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 5 and r.stdout == ""
    assert f"no agent is running at {home}/inv-agent/agent.sock" in r.stderr
