"""The accounts table, in ``<data_dir>/users.db`` (SQLite, WAL).

Written by ``inv-agent user ...`` while the agent may be running: the agent
reads through a connection of its own and notices each commit of another
connection by ``PRAGMA data_version`` (``UserStore.version``), so it never
serves a stale account. Hashes leave this module only through
``credentials``, the one read a login makes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.auth import ROLES
from agent.domain import STORE_RE

# no "@": a request forwarded from another store is recorded as by NAME@STORE
# (a name means something only with its store), and that must read one way
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a login body needs a bound
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'clerk', 'admin')),
    stores        TEXT,              -- JSON list of store ids; NULL: every store
    password_hash TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    generation    INTEGER NOT NULL DEFAULT 1,  -- bumped by passwd, disable, enable
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
)
"""
_COLUMNS = "name, role, stores, enabled, generation, created_at, updated_at"


class AccountError(ValueError):
    """Bad input for an account (the message names what is wrong), or an
    account that is not there (or already is)."""


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise AccountError(f"user name {name!r}: use 1-64 characters of letters, digits and . _ -")
    return name


def check_role(role: str, stores: list[str] | None) -> None:
    if role not in ROLES:
        raise AccountError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if stores and role != "clerk":
        raise AccountError(
            f"--store limits a clerk to some stores; a {role} is not limited (leave it out)"
        )
    for store in stores or ():
        if not STORE_RE.match(store):
            raise AccountError(f"store {store!r}: not a store id (letters, digits, _ and -)")


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password too long: at most {MAX_PASSWORD} characters")
    return password


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class User:
    """An account as status and tokens see it: no hash."""

    name: str
    role: str
    stores: tuple[str, ...] | None  # None: every store
    enabled: bool
    generation: int
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> User:
        name, role, stores, enabled, generation, created, updated = row
        return cls(
            name,
            role,
            tuple(json.loads(stores)) if stores is not None else None,
            bool(enabled),
            int(generation),
            created,
            updated,
        )

    def public(self) -> dict[str, Any]:
        """The account as ``user list --json`` shows it."""
        return {
            "name": self.name,
            "role": self.role,
            "stores": list(self.stores) if self.stores is not None else None,
            "enabled": self.enabled,
            "generation": self.generation,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def _create_private(path: Path) -> None:
    """The file, owner-only, before SQLite opens it (its -wal and -shm files
    take the same mode); the folder owner-only too."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


class UserStore:
    """One connection to a users.db (made, with its schema, if absent).
    Use from one thread at a time."""

    def __init__(self, path: Path) -> None:
        _create_private(path)
        self.path = path
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        with self._write():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AccountError(
                    f"{path} was made by a newer inv-agent (schema {version}); upgrade this one"
                )
            self._db.execute(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------ reads
    def version(self) -> int:
        """Changes whenever another connection commits (cheap: no I/O)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def all(self) -> list[User]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()
        return [User.from_row(r) for r in rows]

    def get(self, name: str) -> User | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return User.from_row(row) if row else None

    def credentials(self, name: str) -> tuple[User, str] | None:
        """The account and its password hash: for a login, nothing else."""
        row = self._db.execute(
            f"SELECT {_COLUMNS}, password_hash FROM users WHERE name = ?", (name,)
        ).fetchone()
        return (User.from_row(row[:-1]), row[-1]) if row else None

    def _existing(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise AccountError(f"no user {name!r} (see: inv-agent user list)")
        return user

    # ----------------------------------------------------------- writes
    def add(self, name: str, role: str, stores: list[str] | None, password_hash: str) -> User:
        check_name(name)
        check_role(role, stores)
        now = _now()
        listed = json.dumps(sorted(set(stores))) if stores else None
        with self._write():
            if self.get(name) is not None:
                raise AccountError(f"user {name!r} already exists (change it with: user passwd)")
            self._db.execute(
                "INSERT INTO users (name, role, stores, password_hash, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, role, listed, password_hash, now, now),
            )
        return self._existing(name)

    def set_password(self, name: str, password_hash: str) -> User:
        """A new password; every login made with the old one ends."""
        with self._write():
            self._existing(name)
            self._db.execute(
                "UPDATE users SET password_hash = ?, generation = generation + 1, updated_at = ?"
                " WHERE name = ?",
                (password_hash, _now(), name),
            )
        return self._existing(name)

    def set_enabled(self, name: str, enabled: bool) -> User:
        """Disable (every login of the account ends) or enable it again."""
        with self._write():
            self._existing(name)
            self._db.execute(
                "UPDATE users SET enabled = ?, generation = generation + 1, updated_at = ?"
                " WHERE name = ?",
                (int(enabled), _now(), name),
            )
        return self._existing(name)

    def rehash(self, name: str, old_hash: str, new_hash: str) -> bool:
        """The same password under new hashing parameters: not a change of
        password (the generation stays), and only if no one changed it meanwhile."""
        with self._write():
            cur = self._db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                (new_hash, name, old_hash),
            )
        return cur.rowcount == 1
