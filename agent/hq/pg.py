"""Connecting to PostgreSQL, with errors a person can act on."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo


class PgError(Exception):
    """PostgreSQL can't be used: the message says why, without secrets.
    ``usage``: the DSN itself is wrong (exit 2, not 1)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


def check_dsn(dsn: str | None) -> str:
    """The DSN, if it parses; else PgError naming the problem."""
    if not dsn:
        raise PgError(
            "no PostgreSQL DSN: give --dsn postgresql://USER@HOST/DB or set INV_HQ_DSN",
            usage=True,
        )
    try:
        conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise PgError(
            f"--dsn is not a valid PostgreSQL DSN: {_first_line(exc)}", usage=True
        ) from exc
    return dsn


def redact(dsn: str) -> str:
    """The DSN fit for logs and messages: any password left out."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparseable DSN)"
    params.pop("password", None)
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def connect(dsn: str, application_name: str = "inv-hq") -> psycopg.Connection[Any]:
    """An autocommit connection (every transaction explicit, as the projector
    wants them), or PgError."""
    check_dsn(dsn)
    try:
        return psycopg.connect(
            dsn, autocommit=True, application_name=application_name, connect_timeout=10
        )
    except psycopg.OperationalError as exc:
        raise PgError(f"PostgreSQL not reachable at {redact(dsn)}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
