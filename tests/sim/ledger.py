"""The simulated machine's disk: the agent's real schema and SQL on SQLite,
run on the caller's thread (no writer thread: the world is single-threaded).

``SimLedgerStore`` offers what the service and the replica use of
``LedgerStore``: every write is one ``BEGIN IMMEDIATE … COMMIT`` (a
``DryRun`` rolls back and still answers), reads run on the same connection.

Durability follows the mode the agent runs (``synchronous=FULL`` in WAL: a
transaction is on disk when its COMMIT returns), so a power loss keeps every
committed transaction and loses only what lived in the process, except the
writes the agent commits without an fsync of their own (``write_lazy``:
marking events published, peers' events read from the stream with the
checkpoint), which a power loss takes back unless a durable
commit came after them (the WAL is written in order). ``NORMAL``
is modelled too, for the regression test that shows why the agent no longer
runs it: the disk image is only brought up to date at checkpoints (every so
many commits), and a power loss rolls the ledger back to the last one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import Unavailable
from agent.ledger.schema import migrate
from agent.ledger.store import DryRun

T = TypeVar("T")
_TEMPLATE: sqlite3.Connection | None = None


def _template() -> sqlite3.Connection:
    """One migrated empty ledger, copied for every new store (migrating each
    one would cost more than the rest of a short run)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = sqlite3.connect(":memory:", isolation_level=None)
        migrate(_TEMPLATE)
    return _TEMPLATE


def new_disk(path: Path | None) -> sqlite3.Connection:
    """A fresh, migrated ledger: in memory, or in a real file (WAL) at ``path``."""
    conn = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
    _template().backup(conn)
    conn.row_factory = sqlite3.Row
    if path is not None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    return conn


class Disk:
    """What survives the process: the ledger's connection stands for the file.

    ``durable`` is the image a power loss leaves (None: every commit is durable)."""

    def __init__(self, path: Path | None, mode: str, checkpoint_every: int) -> None:
        self.path = path
        self.mode = mode
        self.conn = new_disk(path)
        self.checkpoint_every = checkpoint_every
        self.commits_since_checkpoint = 0
        self.durable: sqlite3.Connection | None = None
        if mode == "NORMAL":
            self.durable = sqlite3.connect(":memory:", isolation_level=None)
            self.conn.backup(self.durable)

    def before_lazy(self) -> None:
        """A commit without its own fsync is coming: until a durable one
        follows, a power loss returns the disk to the state before it."""
        if self.mode == "FULL" and self.durable is None:
            self.durable = sqlite3.connect(":memory:", isolation_level=None)
            self.conn.backup(self.durable)

    def committed(self, lazy: bool = False) -> None:
        if self.mode == "FULL":
            if not lazy:
                self.durable = None  # this commit's fsync carried the lazy ones too
            return
        if self.durable is None:
            return
        self.commits_since_checkpoint += 1
        if self.commits_since_checkpoint >= self.checkpoint_every:
            self.conn.backup(self.durable)
            self.commits_since_checkpoint = 0

    def power_loss(self) -> None:
        """What the mode does not guarantee is gone; a file ledger is reopened."""
        if self.durable is not None:
            self.durable.backup(self.conn)
            self.commits_since_checkpoint = 0
            if self.mode == "FULL":
                self.durable = None
        if self.path is not None:
            self.conn.close()
            self.conn = sqlite3.connect(str(self.path), isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")


class SimLedgerStore:
    """``LedgerStore``'s interface, synchronously, on one ``Disk``."""

    def __init__(
        self,
        disk: Disk,
        busy: Callable[[], Awaitable[None]] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        """``busy``: awaited before a write, as a write waits in the agent's
        writer queue behind a long one (an import) before it runs;
        ``after_commit``: called as each write commits (the checker looks at
        what it wrote at that very moment)."""
        self.disk = disk
        self._busy = busy
        self._after_commit = after_commit
        self.path = disk.path or Path(":memory:")
        self.last_write_error: str | None = None
        self.closed = False

    def _check(self) -> sqlite3.Connection:
        if self.closed:
            raise Unavailable("ledger is closed")
        return self.disk.conn

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...], lazy: bool = False) -> T:
        conn = self._check()
        if lazy:
            self.disk.before_lazy()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
        except DryRun as dry:
            conn.execute("ROLLBACK")
            return dry.result  # type: ignore[no-any-return]
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self.disk.committed(lazy)
        if self._after_commit is not None:
            self._after_commit()
        return result

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        if self._busy is not None:
            await self._busy()
        return self._transaction(fn, args)

    async def write_lazy(self, fn: Callable[..., T], *args: Any) -> T:
        if self._busy is not None:
            await self._busy()
        return self._transaction(fn, args, lazy=True)

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return self._transaction(fn, args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._check(), *args)

    def read_here(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._check(), *args)

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._check(), *args)

    async def write_attached(self, attach: Path, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError("snapshots are not simulated")

    def close(self) -> None:
        self.closed = True
