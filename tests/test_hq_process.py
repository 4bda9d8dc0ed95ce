"""``inv-hq`` against the real things: a nats-server, two real agents writing
to it, a real PostgreSQL (tests/pgfix.py, a schema per test) and real
``inv-hq run`` processes, killed with SIGKILL where the test says so.

The contracts: HQ's digest of each store equals the store's own (``verify``
exit 0) and a difference is shown (exit 1 and the table); a kill between
COMMIT and ack loses nothing and duplicates nothing; of two projectors one
works and the other waits, then takes over; a hole in the stream is filled
from the origin. The merge rules themselves are tests/test_hq_projector.py's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from agent.hq.main import app
from tests import synckit
from tests.helpers import Agent, short_tmpdir, wait_for
from tests.hqkit import restored_logging  # noqa: F401 - a fixture
from tests.natsfix import NatsServer
from tests.pgfix import PgSchema, pg, pg_server  # noqa: F401 - fixtures
from tests.synckit import STREAM, ev_subject, stock_write, with_js

pytestmark = pytest.mark.usefixtures("restored_logging")
ISOLATED = {"INV_HQ_CONFIG": "", "XDG_CONFIG_HOME": "/nonexistent", "NO_COLOR": "1"}


@dataclass
class Chain:
    nats: NatsServer
    a: Agent  # store-001, with the demo data
    b: Agent  # store-002


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    """One nats-server and two agents on it for the module (each test has a
    read model and a consumer of its own)."""
    server = NatsServer().start()
    homes = [short_tmpdir(), short_tmpdir()]
    agents = []
    try:
        for store, home, demo in (("store-001", homes[0], True), ("store-002", homes[1], False)):
            extra = ["--nats", server.url] + (["--demo-data"] if demo else [])
            agents.append(Agent(store, home, extra_args=extra, env=synckit.FAST).start())
        a, b = agents
        synckit.wait_ready(a, b)
        synckit.wait_converged(a, b, stores=("store-001",))
        stock_write(b, "PROD-001", "set", 7, "store-002")
        stock_write(a, "PROD-002", "subtract", 1, "store-001")
        synckit.wait_converged(a, b, stores=("store-001", "store-002"))
        yield Chain(server, a, b)
    finally:
        for agent in agents:
            agent.stop()
        server.cleanup()


class Hq:
    """One ``inv-hq run`` process and its log (JSON lines)."""

    def __init__(self, db: PgSchema, url: str, home: Path, env: dict[str, str]) -> None:
        self.log_path = home / f"hq-{len(list(home.iterdir()))}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        full_env = {
            **os.environ,
            **ISOLATED,
            "INV_HQ_DSN": db.dsn,
            "INV_HQ_SCHEMA": db.schema,
            "INV_HQ_NATS_SERVERS": url,
            "INV_HQ_LOCK_POLL": "0.1",
            "INV_HQ_LOG_FORMAT": "json",
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.hq.main", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        log.close()

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": line})
        return out

    def said(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]

    def wait_said(self, event: str, timeout: float = 15) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            assert self.proc.poll() is None, self.log_path.read_text()
            said = self.said(event)
            return said[0] if said else None

        return wait_for(found, timeout, interval=0.05, what=f"inv-hq to log {event!r}")  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def db(pg: PgSchema) -> PgSchema:  # noqa: F811 - pgfix's fixture
    """This test's read model: a schema of its own."""
    return pg


@pytest.fixture
def start_hq(chain: Chain, db: PgSchema) -> Iterator[Any]:
    """``start_hq(env={...})``: an ``inv-hq run`` on this test's read model."""
    home = short_tmpdir()
    made: list[Hq] = []

    def factory(env: dict[str, str] | None = None) -> Hq:
        made.append(Hq(db, chain.nats.url, home, env or {}))
        return made[-1]

    yield factory
    for hq in made:
        if hq.proc.poll() is None:
            hq.proc.terminate()
            try:
                hq.proc.wait(10)
            except subprocess.TimeoutExpired:
                hq.kill()


def hq_cli(db: PgSchema, chain: Chain, *args: str) -> Result:
    """``inv-hq`` in process (status, verify): the same code as the script."""
    return CliRunner().invoke(
        app,
        [*args, "--dsn", db.dsn, "--schema", db.schema]
        + (["--nats", chain.nats.url] if args[0] != "rebuild" else []),
        env={**ISOLATED, "INV_HQ_DSN": ""},
    )


def verified(db: PgSchema, chain: Chain, timeout: float = 20) -> Result:
    result = hq_cli(db, chain, "verify", "--timeout", str(timeout))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def one(db: PgSchema, sql: str, *params: Any) -> Any:
    with db.connect() as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def test_every_store_is_equal_at_hq_and_a_difference_is_shown(
    chain: Chain, db: PgSchema, start_hq: Any
) -> None:
    start_hq().wait_said("projecting")
    result = verified(db, chain)
    assert result.stderr.strip() == "all 2 stores equal at HQ"
    status = hq_cli(db, chain, "status", "--json")
    report = json.loads(status.stdout)
    assert [s["storeId"] for s in report["stores"]] == ["store-001", "store-002"]
    assert all(s["pending"] == 0 for s in report["stores"]) and report["pending"] == 0
    assert report["projector"]["pid"] and report["checkpoint"] > 0
    # HQ's copy of store-002 is changed behind its back: a real difference
    with db.connect() as conn:
        conn.execute("UPDATE stock SET on_hand = on_hand + 1 WHERE store_id = 'store-002'")
    result = hq_cli(db, chain, "verify", "--timeout", "1")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    rows = {
        cells[0]: cells[1:]
        for line in result.stdout.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 4
    }
    assert rows["store-001"][2] == "equal" and rows["store-002"][2] == "differs"
    assert rows["store-002"][0] != rows["store-002"][1]


def test_a_kill_between_commit_and_ack_loses_nothing_and_duplicates_nothing(
    chain: Chain, db: PgSchema, start_hq: Any, tmp_path: Path
) -> None:
    paused = tmp_path / "paused"
    first = start_hq({"INV_HQ_TEST_PAUSE_AFTER_COMMIT": str(paused)})
    wait_for(paused.exists, 15, what="the first COMMIT")
    checkpoint = int(paused.read_text())
    first.kill()
    durable = f"hq-default-{db.schema}"

    async def floor(js: Any) -> int:
        return int((await js.consumer_info(STREAM, durable)).ack_floor.stream_seq or 0)

    # the window was real: committed in PostgreSQL, not acknowledged in NATS
    assert one(db, "SELECT stream_seq FROM checkpoint") == checkpoint
    assert with_js(chain.nats, floor) < checkpoint
    recorded = one(db, "SELECT count(*) FROM events")
    # the next run starts after the checkpoint: what was committed is not
    # delivered again, what was not is
    second = start_hq()
    skipped = second.wait_said(
        "messages committed but not acknowledged before the last stop; skipped"
    )
    assert skipped["checkpoint"] == checkpoint and skipped["count"] > 0
    verified(db, chain)
    assert one(db, "SELECT count(*) FROM events") == recorded
    assert not second.said("events delivered again were already applied")
    stock_write(chain.b, "PROD-001", "add", 1, "store-002")
    verified(db, chain)
    assert one(db, "SELECT count(*) FROM events") == recorded + 1


def test_of_two_projectors_one_works_and_the_other_takes_over_when_it_dies(
    chain: Chain, db: PgSchema, start_hq: Any
) -> None:
    first = start_hq()
    first.wait_said("projecting")
    second = start_hq()
    second.wait_said("another projector is active; waiting")
    assert not second.said("projecting")
    verified(db, chain)
    refused = hq_cli(db, chain, "rebuild", "--yes")
    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "inv-hq: a projector is running on this read model; stop it first (pid "
    )
    first.kill()
    second.wait_said("projecting")
    # the second one projects what is written from now on
    stock_write(chain.a, "PROD-003", "add", 2, "store-001")
    before = one(db, "SELECT stream_seq FROM checkpoint")
    wait_for(lambda: one(db, "SELECT stream_seq FROM checkpoint") > before, 10, what="a commit")
    verified(db, chain)


def test_a_hole_in_the_stream_is_filled_from_the_origin(
    chain: Chain, db: PgSchema, start_hq: Any
) -> None:
    async def drop_first_of_store_002(js: Any) -> int:
        msg = await js.get_msg(STREAM, seq=1, subject=ev_subject("store-002"), next=True)
        await js.delete_msg(STREAM, msg.seq)
        return int(json.loads(msg.data)["seq"])

    lost = with_js(chain.nats, drop_first_of_store_002)
    repaired = start_hq().wait_said("gap repaired from the origin")
    assert repaired["origin"] == "store-002" and repaired["first"] <= lost <= repaired["last"]
    verified(db, chain)
    assert one(db, "SELECT count(*) FROM events WHERE origin = 'store-002' AND seq = %s", lost) == 1
