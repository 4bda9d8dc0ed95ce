"""The writer's failure modes: a closed store refuses work at once (nobody
waits on a writer that is gone), disk errors are known by SQLite's result
codes, and a command's unexpected error is logged with its traceback."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog

from agent.errors import Conflict, Unavailable
from agent.ledger.store import LedgerStore, connect, is_disk_error


def put(conn: sqlite3.Connection) -> str:
    conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    return "k"


def in_thread(fn: Any, timeout: float = 2.0) -> BaseException | object:
    """``fn()``'s outcome (its value or the exception), or a hang reported as
    one: the call runs on a daemon thread, so a hang cannot stop the tests."""
    out: list[BaseException | object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert out, f"{fn} did not return within {timeout} s"
    return out[0]


def test_a_closed_store_refuses_work_at_once(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "ledger.db")
    assert store.write_sync(put) == "k"
    store.close()

    async def calls() -> list[BaseException]:
        out = []
        for call in (
            store.write(put),
            store.write_attached(tmp_path / "other.db", put),
            store.read(put),
        ):
            with pytest.raises(Unavailable, match="ledger is closed") as caught:
                await asyncio.wait_for(call, timeout=2)
            out.append(caught.value)
        return out

    assert len(asyncio.run(calls())) == 3
    for sync in (lambda: store.write_sync(put), lambda: store.read_sync(put)):
        outcome = in_thread(sync)
        assert isinstance(outcome, Unavailable) and "ledger is closed" in str(outcome)
    with pytest.raises(Unavailable, match="ledger is closed"):
        store.read_here(put)
    assert in_thread(store.close) is None  # a second close does nothing, at once


def test_writes_queued_before_close_still_commit(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = LedgerStore(path)
    release = threading.Event()

    async def main() -> str:
        blocker = asyncio.ensure_future(store.write(lambda conn: release.wait(10)))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(store.write(put))
        await asyncio.sleep(0.05)
        closing = asyncio.get_running_loop().run_in_executor(None, store.close)
        await asyncio.sleep(0.05)
        release.set()
        await blocker
        await closing
        return await queued

    assert asyncio.run(main()) == "k"
    conn = connect(path, readonly=True)
    assert conn.execute("SELECT value FROM meta WHERE key = 'k'").fetchone()[0] == "v"
    conn.close()


def coded(cls: type[sqlite3.Error], message: str, code: int) -> sqlite3.Error:
    exc = cls(message)
    exc.sqlite_errorcode = code  # as the sqlite3 module sets it
    return exc


def test_disk_errors_are_known_by_their_result_code(tmp_path: Path) -> None:
    for code in (
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR_WRITE,  # an extended code: its primary one counts
        sqlite3.SQLITE_IOERR_FSYNC,
        sqlite3.SQLITE_READONLY_DBMOVED,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    ):
        assert is_disk_error(coded(sqlite3.OperationalError, "anything", code)), code
    # words do not decide: a constraint on a "disk" column is no disk error
    message = "UNIQUE constraint failed: disk.id"
    unique = coded(sqlite3.IntegrityError, message, sqlite3.SQLITE_CONSTRAINT_UNIQUE)
    assert not is_disk_error(unique)
    assert not is_disk_error(coded(sqlite3.OperationalError, "database is locked", 5))
    # an error made by Python code has no code: SQLite's own text for one counts
    assert is_disk_error(sqlite3.OperationalError("database or disk is full"))
    assert not is_disk_error(sqlite3.OperationalError("the disk of the full moon"))

    # and a real one, from SQLite itself
    path = tmp_path / "ro.db"
    connect(path).close()
    ro = connect(path, readonly=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        ro.execute("CREATE TABLE t (x)")
    assert caught.value.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY
    assert is_disk_error(caught.value)
    ro.close()


def test_a_disk_error_by_code_fails_the_write_as_unavailable(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "ledger.db")
    try:

        def fails(conn: sqlite3.Connection) -> None:
            put(conn)
            raise coded(sqlite3.OperationalError, "disk I/O error", sqlite3.SQLITE_IOERR_WRITE)

        with pytest.raises(Unavailable, match="ledger is not writable: disk I/O error"):
            store.write_sync(fails)
        assert store.last_write_error == "disk I/O error"
    finally:
        store.close()


def test_an_unexpected_error_of_a_command_is_logged_with_its_traceback(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "ledger.db")
    try:

        def buggy(conn: sqlite3.Connection) -> None:
            raise KeyError("missing")

        def refused(conn: sqlite3.Connection) -> None:
            raise Conflict("an answer, not a fault")

        with structlog.testing.capture_logs() as logs:
            with pytest.raises(KeyError):
                store.write_sync(buggy)
            with pytest.raises(Conflict):
                store.write_sync(refused)
        failed = [e for e in logs if e["event"] == "ledger command failed"]
        assert len(failed) == 1, logs
        assert "buggy" in failed[0]["command"]
        assert isinstance(failed[0]["exc_info"], KeyError)
        assert failed[0]["exc_info"].__traceback__ is not None
    finally:
        store.close()
