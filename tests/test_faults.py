"""Proof under faults: a real inv-agent killed with SIGKILL in the middle of a
stream of concurrent writes loses none it acknowledged, and a full disk gives
clear 503s on writes while reads and the ledger stay sound.

Every check ends by reading the ledger file itself: ``PRAGMA integrity_check``
on a read-only connection, and derived stock recomputed from the movements and
reservations (DESIGN.md §2: on_hand = latest count by (hlc, origin) + deltas
ordered after it; reserved = sum of PENDING reservations).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.errors import Unavailable
from agent.ledger.store import LedgerStore
from tests.helpers import Agent, wait_for

STORE = "store-001"


# ------------------------------------------------------------ ledger checks
def open_readonly(ledger: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def integrity(ledger: Path) -> str:
    conn = open_readonly(ledger)
    try:
        return " / ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def derived_stock_errors(ledger: Path) -> tuple[int, list[str]]:
    """Recompute every (sku, store) stock row from the ledger's movements and
    reservations; returns (rows checked, mismatches)."""
    conn = open_readonly(ledger)
    bad: list[str] = []
    try:
        rows = conn.execute("SELECT sku, store_id, on_hand, reserved FROM stock").fetchall()
        for sku, store, on_hand, reserved in rows:
            moves = conn.execute(
                "SELECT kind, quantity FROM movements WHERE sku = ? AND store_id = ? "
                "ORDER BY hlc, origin",
                (sku, store),
            ).fetchall()
            counts = [i for i, (kind, _) in enumerate(moves) if kind == "count"]
            start, base = (counts[-1] + 1, moves[counts[-1]][1]) if counts else (0, 0)
            expected = base + sum(q for kind, q in moves[start:] if kind != "count")
            pending = conn.execute(
                "SELECT coalesce(sum(quantity), 0) FROM reservations "
                "WHERE sku = ? AND store_id = ? AND status = 'PENDING'",
                (sku, store),
            ).fetchone()[0]
            if on_hand != expected or reserved != pending:
                bad.append(
                    f"{sku}@{store}: on_hand={on_hand} (ledger says {expected}), "
                    f"reserved={reserved} (PENDING sum {pending})"
                )
    finally:
        conn.close()
    return len(rows), bad


def levels(availability: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(s["storeId"], s["quantity"], s["reserved"]) for s in availability["stores"]]


def digests_of(agent: Agent) -> dict[str, str]:
    response = agent.client().get("/api/v1/sync/status")
    assert response.status_code == 200, response.text
    return response.json()["digests"]  # type: ignore[no-any-return]


# --------------------------------------------------------------- crash test
CRASH_SKUS = [f"CRASH-{i}" for i in range(8)]
PLANNED = 6000  # requests planned; the agent is killed long before they are all sent
KILL_AFTER = 2000  # acknowledged writes before the SIGKILL
CONCURRENCY = 24


@dataclass
class Op:
    kind: str  # stock | reserve
    sku: str
    key: str  # X-Idempotency-Key or reservationId
    body: dict[str, Any]


@dataclass
class Outcomes:
    stock: dict[str, tuple[Op, str]] = field(default_factory=dict)  # key -> (op, movementId)
    reservations: dict[str, Op] = field(default_factory=dict)
    refused: dict[int, int] = field(default_factory=dict)  # 4xx/5xx status -> count
    unknown: int = 0  # in flight when the agent died: either outcome is allowed
    sent: int = 0

    @property
    def acknowledged(self) -> int:
        return len(self.stock) + len(self.reservations)


def plan(seed: int = 20261128) -> list[Op]:
    rng = random.Random(seed)
    ops = []
    for i in range(PLANNED):
        sku = rng.choice(CRASH_SKUS)
        if rng.random() < 0.3:
            body = {"reservationId": f"crash-r{i}", "productId": sku, "quantity": rng.randint(1, 3)}
            ops.append(Op("reserve", sku, f"crash-r{i}", body | {"ttl": 3600}))
            continue
        roll = rng.random()
        if roll < 0.65:
            body = {"operation": "add", "quantity": rng.randint(1, 20)}
        elif roll < 0.9:
            body = {"operation": "subtract", "quantity": rng.randint(1, 5)}
        else:
            body = {"operation": "set", "quantity": rng.randint(2000, 3000)}
        ops.append(Op("stock", sku, f"crash-k{i}", body | {"reason": f"crash test {i}"}))
    return ops


async def drive(socket: Path, ops: list[Op], out: Outcomes) -> None:
    """Send ``ops`` with CONCURRENCY requests in flight until the plan is done
    or the agent dies; record each answer."""
    pending = iter(ops)
    transport = httpx.AsyncHTTPTransport(uds=str(socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://agent", timeout=60) as c:

        async def worker() -> None:
            for op in pending:
                out.sent += 1
                try:
                    if op.kind == "stock":
                        r = await c.post(
                            f"/api/v1/products/{op.sku}/stock",
                            json=op.body,
                            headers={"X-Idempotency-Key": op.key},
                        )
                    else:
                        r = await c.post("/api/v1/reservations", json=op.body)
                except httpx.HTTPError:
                    out.unknown += 1
                    return  # the agent is gone
                if 200 <= r.status_code < 300:
                    if op.kind == "stock":
                        out.stock[op.key] = (op, r.json()["movementId"])
                    else:
                        assert r.json()["reservationId"] == op.key
                        out.reservations[op.key] = op
                else:
                    out.refused[r.status_code] = out.refused.get(r.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def test_kill_9_mid_stream_loses_no_acknowledged_write(make_agent: Any) -> None:
    agent: Agent = make_agent(STORE, demo=False)
    c = agent.client()
    for sku in CRASH_SKUS:
        assert c.post("/api/v1/products", json={"sku": sku, "name": sku}).status_code == 201
        r = c.post(f"/api/v1/products/{sku}/stock", json={"operation": "set", "quantity": 2500})
        assert r.status_code == 202, r.text
    ops = plan()
    out = Outcomes()
    errors: list[BaseException] = []

    def client_thread() -> None:
        try:
            asyncio.run(drive(agent.socket, ops, out))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=client_thread, name="crash-client", daemon=True)
    started = time.monotonic()
    thread.start()
    wait_for(
        lambda: out.acknowledged >= KILL_AFTER or not thread.is_alive(),
        timeout=90,
        interval=0.005,
        what=f"{KILL_AFTER} acknowledged writes",
    )
    agent.kill()  # SIGKILL, with CONCURRENCY requests in flight
    killed_after = time.monotonic() - started
    thread.join(30)
    assert not thread.is_alive(), "the client did not notice the agent died"
    assert not errors, errors
    assert out.sent < len(ops), "the plan finished before the kill: raise PLANNED"
    assert out.unknown >= 1, "no request was in flight at the kill"
    assert not [s for s in out.refused if s >= 500], f"5xx before the kill: {out.refused}"

    agent.start()  # same data dir: recovers the WAL
    c = agent.client()
    seen: set[str] = set()
    for sku in CRASH_SKUS:
        r = c.get(f"/api/v1/products/{sku}/history", params={"storeId": STORE, "limit": 1000})
        assert r.status_code == 200, r.text
        seen |= {m["movementId"] for m in r.json()["data"]}
    found_in_history = found_by_replay = 0
    lost: list[str] = []
    for key, (op, movement_id) in out.stock.items():
        if movement_id in seen:
            found_in_history += 1
            continue
        # older than the newest 1000 of its SKU: the idempotency key must replay it
        r = c.post(
            f"/api/v1/products/{op.sku}/stock", json=op.body, headers={"X-Idempotency-Key": key}
        )
        if (
            r.status_code == 202
            and r.json().get("replayed")
            and r.json()["movementId"] == movement_id
        ):
            found_by_replay += 1
        else:
            lost.append(f"stock {key} ({movement_id}): {r.status_code} {r.text[:200]}")
    reservations_found = 0
    for rid, op in out.reservations.items():
        r = c.get(f"/api/v1/reservations/{rid}")
        if r.status_code == 200 and r.json()["quantity"] == op.body["quantity"]:
            reservations_found += 1
        else:
            lost.append(f"reservation {rid}: {r.status_code} {r.text[:200]}")
    assert agent.stop() == 0, agent.log()

    ledger = agent.data_dir / "ledger.db"
    check = integrity(ledger)
    conn = open_readonly(ledger)
    try:
        in_file = {r[0] for r in conn.execute("SELECT id FROM movements")}
        rids = {r[0] for r in conn.execute("SELECT id FROM reservations")}
    finally:
        conn.close()
    missing_in_file = [m for _, m in out.stock.values() if m not in in_file] + [
        rid for rid in out.reservations if rid not in rids
    ]
    rows, stock_errors = derived_stock_errors(ledger)
    found = found_in_history + found_by_replay + reservations_found
    summary = (
        f"kill -9 after {killed_after:.1f}s: writes acknowledged={out.acknowledged} "
        f"(stock changes {len(out.stock)}, reservations {len(out.reservations)}); "
        f"found after restart={found} (history {found_in_history}, idempotent replay "
        f"{found_by_replay}, reservations {reservations_found}); lost={len(lost)}; "
        f"in flight at the kill (either outcome allowed)={out.unknown}; "
        f"refused={out.refused}; integrity_check={check}; "
        f"stock rows recomputed={rows}, mismatches={len(stock_errors)}"
    )
    print("\n" + summary)
    assert out.acknowledged >= KILL_AFTER, summary
    assert not lost and found == out.acknowledged, f"{summary}\nlost: {lost[:20]}"
    assert not missing_in_file, f"{summary}\nnot in the ledger file: {missing_in_file[:20]}"
    assert check == "ok", summary
    assert not stock_errors, f"{summary}\n" + "\n".join(stock_errors)


# ----------------------------------------------------------------- disk full
@contextlib.contextmanager
def tmpfs(path: Path, size: str = "4m") -> Any:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(
            f"cannot mount a {size} tmpfs on {path} (this test needs root / CAP_SYS_ADMIN): "
            f"{done.stderr.strip() or done.returncode}"
        )
    try:
        yield path
    finally:
        result = subprocess.run(["umount", str(path)], capture_output=True, text=True)
        if result.returncode != 0:  # still busy: detach it, the kernel frees it later
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the file system says ENOSPC; returns bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return written


def test_disk_full_refuses_writes_with_503_and_keeps_reads_and_the_ledger(
    make_agent: Any,
) -> None:
    agent: Agent = make_agent(STORE, start=False)
    with tmpfs(agent.data_dir):
        try:
            agent.start()
            c = agent.client()
            for i in range(5):
                r = c.post(
                    "/api/v1/products/PROD-001/stock",
                    json={"operation": "add", "quantity": 1, "reason": f"before {i}"},
                )
                assert r.status_code == 202, r.text
            r = c.post(
                "/api/v1/reservations",
                json={"reservationId": "df-r1", "productId": "PROD-001", "quantity": 2},
            )
            assert r.status_code == 202, r.text
            before = digests_of(agent)
            stock_before = c.get("/api/v1/products/PROD-001/availability").json()
            assert c.get("/health").status_code == 200

            filler = agent.data_dir / "filler"
            assert fill(filler) > 0

            # writes: 503 with a clear JSON error, nothing applied
            writes = [
                ("/api/v1/products/PROD-001/stock", {"operation": "add", "quantity": 3}),
                ("/api/v1/products/PROD-002/stock", {"operation": "set", "quantity": 7}),
                ("/api/v1/reservations", {"productId": "PROD-002", "quantity": 1}),
                ("/api/v1/products", {"sku": "DF-NEW", "name": "created on a full disk"}),
            ]
            for path, body in writes:
                r = c.post(path, json=body)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert r.headers["content-type"].startswith("application/json")
                assert "ledger is not writable" in r.json()["error"], r.text
                assert "full" in r.json()["error"], r.text
            r = c.delete("/api/v1/reservations/df-r1")
            assert r.status_code == 503 and "not writable" in r.json()["error"], r.text
            # a big import: its transaction outgrows the page cache, which
            # spills to the WAL before COMMIT; all or nothing, still a 503
            rows = [
                {
                    "line": i + 2,
                    "sku": "PROD-003",
                    "quantity": 1,
                    "mode": "add",
                    "reason": "x" * 150,
                }
                for i in range(6000)
            ]
            r = c.post("/api/v1/imports/stock", json={"rows": rows})
            assert r.status_code == 503 and "not writable" in r.json()["error"], r.text[:300]

            # reads keep working
            r = c.get("/api/v1/products")
            assert r.status_code == 200 and r.json()["pagination"]["total"] == 3, r.text
            r = c.get("/api/v1/products/PROD-001/availability")
            assert r.status_code == 200, r.text
            assert levels(r.json()) == levels(stock_before)
            assert c.get("/api/v1/reservations/df-r1").json()["status"] == "PENDING"
            assert digests_of(agent) == before, "a refused write changed the state"

            # health says why, and keeps saying it (an empty expiry pass is no proof)
            for _ in range(3):
                r = c.get("/health")
                assert r.status_code == 503, r.text
                ledger_check = r.json()["checks"]["ledger"]
                assert ledger_check["ok"] is False and ledger_check["writable"] is False
                assert "full" in ledger_check["lastWriteError"], ledger_check
                time.sleep(0.3)  # > expiry_interval: the expiry task has run meanwhile
            assert integrity(agent.data_dir / "ledger.db") == "ok"

            # space again: writes succeed and health recovers
            filler.unlink()
            r = c.post("/api/v1/products/PROD-001/stock", json={"operation": "add", "quantity": 3})
            assert r.status_code == 202, r.text
            assert c.delete("/api/v1/reservations/df-r1").status_code == 204
            r = c.post("/api/v1/imports/stock", json={"rows": rows[:50]})
            assert r.status_code == 200 and r.json()["applied"] == 50, r.text[:300]
            r = c.get("/health")
            assert r.status_code == 200, r.text
            ledger_check = r.json()["checks"]["ledger"]
            assert ledger_check["ok"] is True and "lastWriteError" not in ledger_check
            assert agent.stop() == 0, agent.log()
            ledger = agent.data_dir / "ledger.db"
            assert integrity(ledger) == "ok"
            rows_checked, stock_errors = derived_stock_errors(ledger)
            assert rows_checked >= 4 and not stock_errors, stock_errors
        finally:
            agent.stop()


# ------------------------------------------- the writer's error mapping, unit
def test_write_errors_from_statements_and_commit_map_to_unavailable(tmp_path: Path) -> None:
    """sqlite3 may report a full disk as OperationalError or DatabaseError, from
    COMMIT or from any statement; every one is Unavailable (HTTP 503), and a
    constraint error is not mistaken for one."""
    store = LedgerStore(tmp_path / "ledger.db")
    try:

        def raising(exc: Exception) -> Any:
            def fn(conn: sqlite3.Connection) -> None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'x')")
                raise exc

            return fn

        for exc in (
            sqlite3.OperationalError("database or disk is full"),
            sqlite3.DatabaseError("database or disk is full"),
            sqlite3.OperationalError("disk I/O error"),
        ):
            with pytest.raises(Unavailable, match="ledger is not writable"):
                store.write_sync(raising(exc))
            assert store.last_write_error == str(exc)
        with pytest.raises(sqlite3.IntegrityError):
            store.write_sync(raising(sqlite3.IntegrityError("UNIQUE constraint failed")))
        # an empty transaction proves nothing; one that wrote does
        store.write_sync(lambda conn: None)
        assert store.last_write_error is not None
        store.write_sync(lambda conn: conn.execute("INSERT INTO meta VALUES ('ok', '1')"))
        assert store.last_write_error is None
        keys = store.read_sync(lambda conn: conn.execute("SELECT key FROM meta").fetchall())
        assert [k[0] for k in keys] == ["ok"]  # nothing of the failed transactions
    finally:
        store.close()
