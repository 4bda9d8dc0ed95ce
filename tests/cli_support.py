"""What the ``inv`` tests share.

In process (most tests): ``FakeAgent``, a transport that answers canned
replies and records every request, and ``run``, which drives the typer app
with typer's CliRunner against it. End to end (the console script, the real
transports, 100k rows): ``inv`` runs the real ``inv`` against a real agent.
Both check, on every call, the rules every command keeps (an exit code we
chose, no traceback, no escape codes, nothing on stdout after an error)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from typer.testing import CliRunner, Result

from inventory_cli import render
from inventory_cli.context import Context
from inventory_cli.main import app
from inventory_cli.transport import Response, TransportError
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


def error_of(r: subprocess.CompletedProcess[str] | Result) -> str:
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


# ------------------------------------------------------------- in process
@dataclass
class Sent:
    """One request as the agent would receive it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAgent:
    """A transport standing in for the agent: each request gets the next reply
    queued for its method and (quoted) path (the last one repeats; JSON, or
    bytes sent as they are), or a 404; ``fail``
    raises a transport error instead. Everything sent is in ``sent``."""

    replies: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    fail: list[TransportError] = field(default_factory=list)

    def on(self, method: str, path: str, body: Any = None, status: int = 200) -> FakeAgent:
        self.replies.setdefault((method, path), []).append((status, body))
        return self

    def request(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        parts = urlsplit(url)
        body = json.loads(content) if content is not None else None
        self.sent.append(Sent(method, parts.path, dict(parse_qsl(parts.query)), headers, body))
        if self.fail:
            raise self.fail.pop(0)
        queue = self.replies.get((method, parts.path))
        if not queue:
            return Response(404, json.dumps({"error": f"no reply for {method} {url}"}).encode())
        status, reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, bytes):  # sent as it is
            return Response(status, reply)
        return Response(status, b"" if reply is None else json.dumps(reply).encode())

    def close(self) -> None:
        pass

    @property
    def last(self) -> Sent:
        assert self.sent, "nothing was sent"
        return self.sent[-1]


def run(
    fake: FakeAgent | None,
    *args: str,
    code: int = 0,
    env: dict[str, str | None] | None = None,
    report: bool = False,
    input: str | None = None,
) -> Result:
    """Run ``inv ARGS`` in this process against ``fake``; assert the exit code
    is ``code`` and the rules every command keeps. ``report``: a failure that
    is the command's answer (an unhealthy ``agent status``), not an error.
    ``input``: what stdin holds (answers to prompts)."""
    render.reset()  # a new process would start with new consoles
    environment: dict[str, str | None] = {
        "INV_AGENT": "/nonexistent/fake-agent.sock",
        "INV_TOKEN": None,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        **(env or {}),
    }
    obj = Context(transport=fake) if fake is not None else None
    r = CliRunner().invoke(app, list(args), obj=obj, env=environment, input=input)
    shown = f"inv {' '.join(args)} -> {r.exit_code}\n--stdout--\n{r.stdout}--stderr--\n{r.stderr}"
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        shown += "".join(traceback.format_exception(r.exception))
        raise AssertionError(f"a traceback, not an error message: {shown}")
    assert not ANSI.search(r.stdout) and not ANSI.search(r.stderr), shown
    assert r.exit_code == code, shown
    if code != 0 and not report:
        assert r.stdout == "", shown
        assert r.stderr.strip(), shown
    return r


def run_json(fake: FakeAgent, *args: str) -> Any:
    """``inv ... --json`` in this process: exit 0, the data on stdout, nothing on stderr."""
    r = run(fake, *args, "--json")
    assert r.stderr == "", r.stderr
    return json.loads(r.stdout)


# API objects as the agent sends them, for FakeAgent replies
def product_obj(sku: str = "PROD-001", **fields: Any) -> dict[str, Any]:
    return {
        "id": f"id-{sku}",
        "sku": sku,
        "name": "Laptop Dell XPS 13",
        "description": "",
        "category": "laptops",
        "price": 999.0,
        "active": True,
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-01T00:00:00Z",
        **fields,
    }


def stock_obj(store: str = "store-001", quantity: int = 10, **fields: Any) -> dict[str, Any]:
    return {
        "sku": "PROD-001",
        "productId": "id-PROD-001",
        "storeId": store,
        "quantity": quantity,
        "reserved": 0,
        "available": quantity,
        "version": 1,
        "lastUpdated": "2024-01-01T10:00:00Z",
        "asOf": "2024-01-01T10:00:00Z",
        **fields,
    }


def availability_obj(*stores: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": "PROD-001",
        "productId": "id-PROD-001",
        "stores": list(stores),
        "totalAvailable": sum(s["available"] for s in stores),
    }


def reservation_obj(rid: str = "r-1", status: str = "PENDING", **fields: Any) -> dict[str, Any]:
    return {
        "reservationId": rid,
        "sku": "PROD-001",
        "productId": "id-PROD-001",
        "storeId": "store-001",
        "quantity": 3,
        "status": status,
        "customerId": None,
        "orderId": None,
        "createdAt": "2024-01-01T10:00:00Z",
        "expiresAt": "2024-01-01T10:10:00Z",
        "remainingSeconds": 600,
        **fields,
    }
