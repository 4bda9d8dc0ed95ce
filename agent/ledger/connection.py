"""Opening the ledger file, and what SQLite's errors say about it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# the ledger's durability: see ``connect``
SYNCHRONOUS = "FULL"


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
        # WAL + FULL: the WAL is fsynced at every COMMIT, so a transaction
        # that has returned survives a power cut, not only a process crash
        # (NORMAL fsyncs only at checkpoints: a power loss could take back the
        # last sales already answered 2xx). Group commit makes that one fsync
        # per group of commands; the cost is measured as B2 in
        # docs/PERFORMANCE.md. It is also what keeps seq and HLC from being
        # reused after a restart: an event is published only after its COMMIT
        # (the outbox is read from the ledger), so every id and stamp that
        # left this machine is on disk, and ``open_ledger`` restarts the HLC
        # above the newest stamp and the seq above the newest event held.
        conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
    return conn


# The primary result codes that mean "the ledger cannot be written": the disk
# is full (FULL), the OS failed a read or write (IOERR, with all its extended
# codes), the file, its directory or the file system is read-only (READONLY),
# the journal or WAL file cannot be opened (CANTOPEN), or the file is damaged
# or not a ledger at all (CORRUPT, NOTADB). None of them goes away by retrying
# the command; all of them may have rolled the transaction back, and health
# must report them. BUSY and LOCKED are not among them: another process holds
# a lock for a while, the ledger itself is fine.
NOT_WRITABLE = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }
)
# SQLite's own text for those codes (``sqlite3_errstr``): an error made by
# Python code rather than by SQLite carries no code, only its message
NOT_WRITABLE_TEXT = frozenset(
    {
        "database or disk is full",
        "disk I/O error",
        "attempt to write a readonly database",
        "unable to open database file",
        "database disk image is malformed",
        "file is not a database",
    }
)


def is_disk_error(exc: sqlite3.Error) -> bool:
    """Does ``exc`` say the ledger is not writable (see NOT_WRITABLE)?"""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return str(exc) in NOT_WRITABLE_TEXT
    return code & 0xFF in NOT_WRITABLE
