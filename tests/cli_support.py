"""What the ``inv`` end-to-end tests share: one way to run the real CLI that
checks, on every call, the rules every command keeps (an exit code we chose, no
traceback, no escape codes, nothing on stdout after an error)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers import Agent, free_port, run_cli, short_tmpdir

ANSI = re.compile(r"\x1b\[")
_ids = itertools.count(1)


@contextmanager
def running_agent(
    store_id: str = "store-001", *, tcp: bool = False, demo: bool = True
) -> Iterator[Agent]:
    """A real inv-agent for a whole test module (each start costs ~1 s)."""
    home = short_tmpdir()
    agent = Agent(
        store_id,
        home,
        port=free_port() if tcp else None,
        extra_args=["--demo-data"] if demo else [],
    )
    try:
        yield agent.start()
    finally:
        agent.stop()
        shutil.rmtree(home, ignore_errors=True)


def inv(
    agent: Agent | None,
    *args: str,
    code: int = 0,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``inv`` and assert its exit code is ``code``."""
    r = run_cli(agent, *args, env=env, input=input, timeout=timeout)
    shown = f"inv {' '.join(args)} -> {r.returncode}\n--stdout--\n{r.stdout}--stderr--\n{r.stderr}"
    assert "Traceback" not in r.stderr, shown
    assert not ANSI.search(r.stdout) and not ANSI.search(r.stderr), shown
    assert r.returncode == code, shown
    if code != 0:
        assert r.stdout == "", shown
        assert r.stderr.strip(), shown
    return r


def inv_json(agent: Agent | None, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``inv ... --json``: exit 0, the data on stdout, nothing on stderr."""
    r = inv(agent, *args, "--json", env=env)
    assert r.stderr == "", r.stderr
    return json.loads(r.stdout)


def error_of(r: subprocess.CompletedProcess[str]) -> str:
    """The one ``Error: ...`` message of a failed command (rich may wrap it)."""
    assert "Error: " in r.stderr, r.stderr
    return " ".join(r.stderr[r.stderr.index("Error: ") :].split())


def table_lines(stdout: str) -> list[list[str]]:
    """Cells of each row of a rich table, the header row first."""
    rows = []
    for line in stdout.splitlines():
        bar = line[:1]
        if bar in ("│", "┃"):
            rows.append([c.strip() for c in line.strip(bar).split(bar)])
    return rows


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Cells of a rich table (the header row too), keyed by the first cell."""
    return {cells[0]: cells for cells in table_lines(stdout)}


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_ids):04d}"


def new_product(agent: Agent, stock: dict[str, int] | None = None, prefix: str = "T") -> str:
    """A product of the test's own (so tests sharing an agent stay independent),
    with stock counted in the given stores. Set up through the API: quicker
    than the CLI, which has its own tests for these commands."""
    sku = unique(prefix)
    status, body = api(
        agent, "POST", "/api/v1/products", json={"sku": sku, "name": f"Test {sku}", "price": 9.5}
    )
    assert status == 201, body
    for store, qty in (stock or {}).items():
        status, body = api(
            agent,
            "POST",
            f"/api/v1/products/{sku}/stock",
            json={"storeId": store, "operation": "set", "quantity": qty, "reason": "count"},
        )
        assert status == 202, body
    return sku


def api(agent: Agent, method: str, path: str, **kw: Any) -> Any:
    r = agent.client().request(method, path, **kw)
    return r.status_code, (r.json() if r.content else None)


def stock_of(agent: Agent, sku: str) -> dict[str, dict[str, Any]]:
    """{store: stock object} from the API (not through the CLI)."""
    status, body = api(agent, "GET", f"/api/v1/products/{sku}/availability")
    assert status == 200, body
    return {s["storeId"]: s for s in body["stores"]}
