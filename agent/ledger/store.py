"""Connections to the ledger file and the single writer.

One thread owns the write connection; every write is a function run there
inside ``BEGIN IMMEDIATE … COMMIT``, so writes are serialised and each command
is exactly one transaction. Reads use their own connections on a small pool
(WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import Unavailable
from agent.ledger.schema import migrate

T = TypeVar("T")


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a committed transaction survives a process crash; a
        # power loss may lose the last transactions since the last checkpoint.
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def is_disk_error(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(
        s in text for s in ("readonly", "read-only", "disk", "full", "i/o", "unable to open")
    )


class DryRun(Exception):
    """Raised by a write function to roll its transaction back and still
    return ``result``: a dry run does all the work, then keeps none of it."""

    def __init__(self, result: Any) -> None:
        super().__init__("dry run")
        self.result = result


class LedgerStore:
    """Owns the ledger file: the writer thread and the read pool."""

    def __init__(self, path: Path, read_workers: int = 4) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        self._read_pool = ThreadPoolExecutor(read_workers, thread_name_prefix="ledger-reader")
        self._local = threading.local()
        self.writer: sqlite3.Connection = self._writer_pool.submit(self._open_writer).result()
        self.last_write_error: str | None = None

    def _open_writer(self) -> sqlite3.Connection:
        conn = connect(self.path)
        migrate(conn)
        for suffix in ("", "-wal", "-shm"):  # the ledger is the store's books: owner only
            p = Path(f"{self.path}{suffix}")
            if p.exists():
                p.chmod(0o600)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        return conn

    # -- synchronous entry points (run on the right thread by the async ones) --

    def _write_tx(
        self, fn: Callable[..., T], args: tuple[Any, ...], attach: Path | None = None
    ) -> T:
        conn = self.writer
        if attach is not None:  # ATTACH is not allowed inside a transaction
            conn.execute("ATTACH DATABASE ? AS snap", (str(attach),))
            try:
                return self._write_tx(fn, args)
            finally:
                conn.execute("DETACH DATABASE snap")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            self.last_write_error = str(exc)
            raise Unavailable(f"ledger is not writable: {exc}") from exc
        changes = conn.total_changes
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            # A full disk or an I/O error surfaces from COMMIT, or from any
            # statement once the page cache spills to the WAL mid-transaction.
            _rollback(conn)
            if is_disk_error(exc):
                self.last_write_error = str(exc)
                raise Unavailable(f"ledger is not writable: {exc}") from exc
            raise
        except DryRun as dry:
            _rollback(conn)
            return dry.result  # type: ignore[no-any-return]
        except BaseException:
            _rollback(conn)
            raise
        if conn.total_changes != changes:
            # Only a commit that wrote something proves the ledger writable
            # again: an empty one (the expiry pass with nothing due) writes no
            # page and succeeds on a full disk too.
            self.last_write_error = None
        return result

    def _read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return fn(self._reader(), *args)

    # -- async API used by the service --

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, self._write_tx, fn, args)

    async def write_attached(self, attach: Path, fn: Callable[..., T], *args: Any) -> T:
        """A write that sees another ledger file as schema ``snap``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, self._write_tx, fn, args, attach)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._read, fn, args)

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return self._writer_pool.submit(self._write_tx, fn, args).result()

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return self._read_pool.submit(self._read, fn, args).result()

    def close(self) -> None:
        self._read_pool.shutdown(wait=True)

        def _close_writer() -> None:
            with contextlib.suppress(sqlite3.Error):
                self.writer.execute("PRAGMA optimize")
            self.writer.close()

        self._writer_pool.submit(_close_writer).result()
        self._writer_pool.shutdown(wait=True)


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")
