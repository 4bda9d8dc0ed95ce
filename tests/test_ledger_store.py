"""The ledger's writer: commands queued while it is busy share one
transaction (group commit), each in its own savepoint, and nobody hears back
before the COMMIT that holds their command."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.errors import Unavailable
from agent.ledger.store import DryRun, LedgerStore, connect


def insert(key: str, then: BaseException | None = None) -> Any:
    def fn(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, 'x')", (key,))
        if then is not None:
            raise then
        return key

    return fn


def keys(store: LedgerStore) -> list[str]:
    rows = store.read_sync(lambda c: c.execute("SELECT key FROM meta ORDER BY key").fetchall())
    return [r[0] for r in rows if r[0].startswith("k-")]


async def queued_behind_a_busy_writer(store: LedgerStore, fns: list[Any]) -> list[Any]:
    """Hold the writer until every one of ``fns`` is queued, so they form one
    group; return each one's outcome (a value or the exception)."""
    release = threading.Event()
    blocker = asyncio.ensure_future(store.write(lambda conn: release.wait(10)))
    await asyncio.sleep(0.05)  # the blocker is running on the writer
    tasks = [asyncio.ensure_future(store.write(fn)) for fn in fns]
    await asyncio.sleep(0.05)
    release.set()
    await blocker
    return await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = LedgerStore(tmp_path / "ledger.db")
    yield s
    s.close()


def test_a_group_commits_its_good_commands_and_undoes_the_others(store: LedgerStore) -> None:
    seen_from_outside: list[list[str]] = []

    def last(conn: sqlite3.Connection) -> str:
        # from another connection, the group's earlier commands are not
        # visible yet: they are in this same, uncommitted transaction
        other = connect(store.path, readonly=True)
        seen_from_outside.append(
            [r[0] for r in other.execute("SELECT key FROM meta WHERE key LIKE 'k-%'")]
        )
        other.close()
        return insert("k-4")(conn)

    outcomes = asyncio.run(
        queued_behind_a_busy_writer(
            store,
            [
                insert("k-1"),
                insert("k-2", ValueError("bad request")),
                insert("k-3", DryRun("would insert k-3")),
                last,
            ],
        )
    )
    assert outcomes[0] == "k-1"
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == "would insert k-3"
    assert outcomes[3] == "k-4"
    assert seen_from_outside == [[]]  # k-1 was not committed before k-4 ran
    assert keys(store) == ["k-1", "k-4"]


def test_a_disk_error_fails_every_command_of_its_group(store: LedgerStore) -> None:
    outcomes = asyncio.run(
        queued_behind_a_busy_writer(
            store,
            [
                insert("k-1"),
                insert("k-2", sqlite3.OperationalError("database or disk is full")),
                insert("k-3"),
            ],
        )
    )
    # k-1 ran fine, but the transaction holding it did not commit: its caller
    # must not be told it did
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
    assert keys(store) == []
    assert store.last_write_error == "database or disk is full"
    store.write_sync(insert("k-5"))
    assert keys(store) == ["k-5"] and store.last_write_error is None
