"""The ledger's single writer and its readers.

One thread owns the write connection and runs every write function there, so
writes are serialised and each command is atomic: it commits whole or not at
all. Commands that queue up while the writer is busy are **group-committed**:
one ``BEGIN IMMEDIATE … COMMIT`` around several commands, each inside its own
savepoint, so a command that fails (or is a dry run) is rolled back alone and
the others stand. No caller hears back before the COMMIT that holds its
command has returned, so an acknowledged write is as durable as with one
transaction per command; what a group saves is a commit (a WAL append) and a
wake-up of the event loop per command. Reads use their own connections on a
small pool (WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

from agent.errors import InventoryError, Unavailable
from agent.ledger.connection import SYNCHRONOUS, connect, is_disk_error
from agent.ledger.schema import migrate

__all__ = ["MAX_GROUP", "DryRun", "LedgerStore", "connect", "is_disk_error"]

T = TypeVar("T")
log = structlog.get_logger("agent.ledger")

# the most commands one transaction holds (a bound on how long the first of
# them waits for its answer behind the others)
MAX_GROUP = 64


class DryRun(Exception):
    """Raised by a write function to roll its transaction back and still
    return ``result``: a dry run does all the work, then keeps none of it."""

    def __init__(self, result: Any) -> None:
        super().__init__("dry run")
        self.result = result


@dataclass(slots=True)
class _Job:
    """One write function for the writer thread, and where its outcome goes:
    an asyncio future on ``loop``, or a concurrent future for a sync caller."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    attach: Path | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: Any = None
    alone: bool = False  # in a transaction of its own
    bare: bool = False  # outside any transaction (opening and closing the ledger)
    lazy: bool = False  # may go without an fsync of its own (see ``write_lazy``)
    ok: bool = False
    value: Any = field(default=None)

    def settle(self, ok: bool, value: Any) -> None:
        self.ok, self.value = ok, value


def _done(*args: Any) -> None:
    """Stands in for a job's function once it has run."""


def _deliver(jobs: list[_Job]) -> None:
    """On the event loop: hand each finished job's outcome to its caller."""
    for job in jobs:
        fut = job.future
        if fut.cancelled():
            continue
        if job.ok:
            fut.set_result(job.value)
        else:
            fut.set_exception(job.value)


class LedgerStore:
    """Owns the ledger file: the writer thread and the read pool."""

    def __init__(self, path: Path, read_workers: int = 4) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._read_pool = ThreadPoolExecutor(read_workers, thread_name_prefix="ledger-reader")
        self._local = threading.local()
        self.last_write_error: str | None = None
        self._closed = False
        self._lock = threading.Lock()  # orders submissions against close()
        self.writer: sqlite3.Connection = connect(self.path)
        self._thread = threading.Thread(target=self._writer_loop, name="ledger-writer", daemon=True)
        self._thread.start()
        self._call_sync(self._open_writer, bare=True)

    def _open_writer(self, conn: sqlite3.Connection) -> None:
        migrate(conn)
        for suffix in ("", "-wal", "-shm"):  # the ledger is the store's books: owner only
            p = Path(f"{self.path}{suffix}")
            if p.exists():
                p.chmod(0o600)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        return conn

    # -- the writer thread --

    def _writer_loop(self) -> None:
        pending: _Job | None = None  # a job that must run alone, taken off the queue
        while True:
            first = pending if pending is not None else self._queue.get()
            if first is None:
                return
            group, pending, stop = self._gather(first)
            try:
                self._run_group(group)
            except BaseException:  # a fault of the writer itself: never silent
                log.exception("ledger writer failed to settle a group", commands=len(group))
            # drop the group before waiting for the next one: the last write's
            # arguments (a whole import's rows) must not live on until then
            del first, group
            if stop:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], _Job | None, bool]:
        """``first`` and whatever is queued behind it that may share its
        transaction; also a job that must run alone next, and whether the
        writer was asked to stop."""
        group = [first]
        while not first.alone and len(group) < MAX_GROUP:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return group, None, True
            if nxt.alone:
                return group, nxt, False
            group.append(nxt)
        return group, None, False

    def _run_group(self, group: list[_Job]) -> None:
        if group[0].bare:
            job = group[0]
            try:
                job.settle(True, job.fn(self.writer, *job.args))
            except BaseException as exc:
                _log_unexpected(job, exc)
                job.settle(False, exc)
        else:
            self._write_group(group)
        by_loop: dict[Any, list[_Job]] = {}
        for job in group:
            job.fn, job.args = _done, ()  # what remains is only the outcome
            if job.loop is None:
                if job.ok:
                    job.future.set_result(job.value)
                else:
                    job.future.set_exception(job.value)
            else:
                by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(_deliver, jobs)

    def _write_group(self, group: list[_Job]) -> None:
        """Run ``group`` in one transaction, each command in a savepoint;
        settle every job only with what the COMMIT decided."""
        conn = self.writer
        attach = group[0].attach  # a job with ``attach`` is always alone in its group
        if attach is not None:  # ATTACH is not allowed inside a transaction
            try:
                conn.execute("ATTACH DATABASE ? AS snap", (str(attach),))
            except sqlite3.DatabaseError as exc:
                group[0].settle(False, exc)
                return
        try:
            self._transaction(conn, group)
        finally:
            if attach is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("DETACH DATABASE snap")

    def _transaction(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        lazy = all(job.lazy for job in group)
        if lazy:
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            self._commands(conn, group)
        finally:
            if lazy:
                conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")

    def _commands(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            self._not_writable(exc)
            for job in group:
                job.settle(False, Unavailable(f"ledger is not writable: {exc}"))
            return
        wrote = False
        for job in group:
            changes = conn.total_changes
            try:
                conn.execute("SAVEPOINT command")
                job.settle(True, job.fn(conn, *job.args))
                conn.execute("RELEASE command")
                wrote = wrote or conn.total_changes != changes
            except DryRun as dry:
                _undo_savepoint(conn)
                job.settle(True, dry.result)
            except sqlite3.DatabaseError as exc:
                if is_disk_error(exc):
                    # a full disk or an I/O error: SQLite may already have
                    # rolled the whole transaction back; nothing in it stands
                    self._fail_all(conn, group, exc)
                    return
                _log_unexpected(job, exc)
                _undo_savepoint(conn)
                job.settle(False, exc)
            except BaseException as exc:
                _log_unexpected(job, exc)
                _undo_savepoint(conn)
                job.settle(False, exc)
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            # a full disk or an I/O error surfaces from COMMIT too
            self._fail_all(conn, group, exc)
            return
        if wrote:
            # Only a commit that wrote something proves the ledger writable
            # again: an empty one (the expiry pass with nothing due) writes no
            # page and succeeds on a full disk too.
            self.last_write_error = None

    def _fail_all(
        self, conn: sqlite3.Connection, group: list[_Job], exc: sqlite3.DatabaseError
    ) -> None:
        _rollback(conn)
        error: BaseException = exc
        if is_disk_error(exc):
            self._not_writable(exc)
            error = Unavailable(f"ledger is not writable: {exc}")
        else:  # a COMMIT that failed for another reason: a fault
            log.error("ledger commit failed", commands=len(group), exc_info=exc)
        for job in group:
            if job.ok or job.value is None:  # it ran (or never did); its commit did not happen
                job.settle(False, error)

    def _not_writable(self, exc: sqlite3.Error) -> None:
        if self.last_write_error is None:  # once when it starts, not on every command
            log.error("ledger is not writable", error=str(exc))
        self.last_write_error = str(exc)

    def _check_not_closed(self) -> None:
        if self._closed:
            raise Unavailable("ledger is closed")

    def _submit(self, job: _Job) -> None:
        """Queue ``job`` for the writer; refused at once once the store is
        closed (the writer is gone: nobody would ever answer)."""
        with self._lock:
            self._check_not_closed()
            self._queue.put(job)

    def _call_sync(self, fn: Callable[..., T], *args: Any, bare: bool = False) -> T:
        future: Future[T] = Future()
        self._submit(_Job(fn, args, future=future, alone=bare, bare=bare))
        return future.result()

    def _read(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return fn(self._reader(), *args)

    # -- async API used by the service --

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` atomically on the writer; return what it
        returned once the transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(_Job(fn, args, loop=loop, future=future))
        return await future

    async def write_lazy(self, fn: Callable[..., T], *args: Any) -> T:
        """A write whose loss in a power cut costs nothing but work done again
        (marking events published: they would be published once more, and
        deduplicated). A group made only of such writes commits without an
        fsync; the next durable commit's fsync carries it to the disk (the
        WAL is written in order, so a power cut never keeps a later commit
        and loses an earlier one)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(_Job(fn, args, loop=loop, future=future, lazy=True))
        return await future

    async def write_attached(self, attach: Path, fn: Callable[..., T], *args: Any) -> T:
        """A write that sees another ledger file as schema ``snap``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(_Job(fn, args, attach=attach, loop=loop, future=future, alone=True))
        return await future

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_not_closed()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._read, fn, args)

    def read_here(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read on the calling thread (the event loop). Only for a lookup
        by key: it takes microseconds, a hop to the read pool and back costs
        more, and under WAL a reader never waits for the writer."""
        self._check_not_closed()
        return fn(self._reader(), *args)

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return self._call_sync(fn, *args)

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_not_closed()
        return self._read_pool.submit(self._read, fn, args).result()

    def close(self) -> None:
        """Finish the queued writes, close the ledger, stop the writer. Every
        call after this one (a second close too) is refused or does nothing;
        none waits for a writer that is gone."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            closed: Future[None] = Future()
            # behind the writes queued before, which still run
            self._queue.put(_Job(_close_writer, (), future=closed, alone=True, bare=True))
            self._queue.put(None)
        self._read_pool.shutdown(wait=True)
        try:
            closed.result()
        finally:
            self._thread.join()


def _close_writer(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA optimize")
    conn.close()


def _log_unexpected(job: _Job, exc: BaseException) -> None:
    """A command's error goes back to its caller; one that is not an answer
    (an agent error or a dry run) is a fault: log it with its traceback too."""
    if not isinstance(exc, InventoryError | DryRun):
        name = getattr(job.fn, "__qualname__", repr(job.fn))
        log.error("ledger command failed", command=name, exc_info=exc)


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _undo_savepoint(conn: sqlite3.Connection) -> None:
    """Roll one command back to its savepoint; the transaction goes on."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK TO command")
        conn.execute("RELEASE command")
