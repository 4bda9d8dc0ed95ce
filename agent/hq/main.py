"""``inv-hq``: the chain's read model in PostgreSQL (the projector, its status,
verify against the stores, rebuild). A thin skin: flags and output here, the
work in ``agent.hq.runner`` and ``agent.hq.commands``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer
from typer.core import TyperGroup

from agent.config import ConfigError
from agent.hq import commands, embedded, pg, render
from agent.hq.commands import EXIT_OTHER, EXIT_UNREACHABLE, EXIT_USAGE, HqError
from agent.hq.config import HqConfig, load

if TYPE_CHECKING:
    from typer._click import Context as ClickContext

HELP = (
    "HQ: every store's events from the NATS stream into a read model in PostgreSQL. "
    "The DSN comes from --dsn, INV_HQ_DSN or the config file (keep passwords off the "
    "command line). Exit codes: 0 ok, 1 error (verify: a store differs), 2 usage or "
    "configuration, 5 PostgreSQL unreachable."
)


class _App(TyperGroup):
    """An HqError from any command: one ``inv-hq: ...`` line, its exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except HqError as exc:
            render.message(f"inv-hq: {exc.message}")
            ctx.exit(exc.code)


app = typer.Typer(
    cls=_App,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# the options every command shares, written once
Dsn = Annotated[
    str | None,
    typer.Option(
        "--dsn", metavar="DSN", help="PostgreSQL DSN (default: INV_HQ_DSN)", show_default=False
    ),
]
Schema = Annotated[
    str | None,
    typer.Option(
        "--schema", metavar="NAME", help="the read model's schema [inv_hq]", show_default=False
    ),
]
Nats = Annotated[
    list[str] | None,
    typer.Option("--nats", metavar="URL", help="NATS server URL (repeatable)", show_default=False),
]
Network = Annotated[
    str | None,
    typer.Option(
        "--network", metavar="NAME", help="the stores' network name [default]", show_default=False
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="YAML config file (default: INV_HQ_CONFIG)",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="JSON instead of a table")]
Embedded = Annotated[
    bool,
    typer.Option(
        "--embedded-postgres",
        help="a PostgreSQL of its own in the data dir, instead of --dsn (make hq; not for "
        "production)",
    ),
]


@contextlib.contextmanager
def _database(cfg: HqConfig, embedded_pg: bool) -> Iterator[HqConfig]:
    """``cfg`` as given, or with the DSN of the embedded PostgreSQL (started
    here if it is not running yet; stopped at the end if no other inv-hq
    uses it)."""
    if not embedded_pg:
        yield cfg
        return
    if cfg.dsn:
        raise HqError(
            "--embedded-postgres and a DSN (--dsn, INV_HQ_DSN) exclude each other", EXIT_USAGE
        )
    try:
        server, dsn = embedded.start(cfg.data_dir)
    except embedded.EmbeddedUnavailable as exc:
        raise HqError(str(exc)) from exc
    try:
        yield dataclasses.replace(cfg, dsn=dsn)
    finally:
        server.cleanup()


def _config(
    config: Path | None,
    dsn: str | None,
    schema: str | None,
    nats: list[str] | None,
    network: str | None,
    **more: Any,
) -> HqConfig:
    overrides = {
        "dsn": dsn,
        "schema": schema,
        "nats": {"servers": nats or None, "network": network},
        **more,
    }
    try:
        return load(config, overrides)
    except ConfigError as exc:
        raise HqError(str(exc), EXIT_USAGE) from exc


@app.command()
def run(
    dsn: Dsn = None,
    schema: Schema = None,
    nats: Nats = None,
    network: Network = None,
    config: ConfigFile = None,
    embedded_postgres: Embedded = False,
    log_level: Annotated[
        str | None, typer.Option(metavar="LEVEL", help="debug|info|warning|error")
    ] = None,
    log_format: Annotated[str | None, typer.Option(metavar="FORMAT", help="json|console")] = None,
) -> None:
    """Project every store's events into PostgreSQL, in the foreground, until
    stopped (one active projector per network: a second one waits)."""
    cfg = _config(config, dsn, schema, nats, network, log_level=log_level, log_format=log_format)
    from agent import logs

    logs.configure(cfg.log_level, cfg.log_format)
    with _database(cfg, embedded_postgres) as cfg:
        try:
            pg.check_dsn(cfg.dsn)
            asyncio.run(_run(cfg))
        except pg.PgError as exc:
            raise HqError(exc.message, EXIT_USAGE if exc.usage else EXIT_UNREACHABLE) from exc


async def _run(cfg: HqConfig) -> None:
    from agent.hq.runner import Runner

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await Runner(cfg).run(stopping)
    structlog.get_logger("agent.hq").info("projector stopped")


@app.command()
def status(
    dsn: Dsn = None,
    schema: Schema = None,
    nats: Nats = None,
    network: Network = None,
    config: ConfigFile = None,
    embedded_postgres: Embedded = False,
    as_json: Json = False,
) -> None:
    """Per store: applied seq, events pending, last event, lag; the checkpoint
    and events/s (from PostgreSQL, plus the stream's pending count if NATS
    answers)."""
    _quiet_logs()
    with _database(_config(config, dsn, schema, nats, network), embedded_postgres) as cfg:
        report = asyncio.run(commands.status_report(cfg))
    if as_json:
        render.print_json(report)
    else:
        render.status(report)


@app.command()
def verify(
    dsn: Dsn = None,
    schema: Schema = None,
    nats: Nats = None,
    network: Network = None,
    config: ConfigFile = None,
    timeout: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="how long to wait for HQ or the stores to catch up"),
    ] = 30.0,
    embedded_postgres: Embedded = False,
    as_json: Json = False,
) -> None:
    """Ask every known store's agent for its digest and compare it with HQ's:
    exit 0 only if all are equal, else a table and exit 1."""
    _quiet_logs()
    with _database(_config(config, dsn, schema, nats, network), embedded_postgres) as cfg:
        rows = asyncio.run(commands.verify_rows(cfg, timeout))
    if as_json:
        from agent.hq.verify import as_json as rows_json

        sys.stdout.write(rows_json(rows) + "\n")
    else:
        render.verify(rows)
    if not all(r.state == "equal" for r in rows):
        raise typer.Exit(EXIT_OTHER)


@app.command()
def rebuild(
    dsn: Dsn = None,
    schema: Schema = None,
    network: Network = None,
    config: ConfigFile = None,
    embedded_postgres: Embedded = False,
    yes: Annotated[bool, typer.Option("--yes", help="do it without asking")] = False,
) -> None:
    """Empty the read model's tables and replay the events recorded at HQ
    into them (refused while a projector runs: stop it first)."""
    cfg = _config(config, dsn, schema, None, network)
    if not yes:
        if not sys.stdin.isatty():
            raise HqError("rebuild replaces the whole read model: add --yes", EXIT_USAGE)
        typer.confirm(f"Rebuild the read model in schema {cfg.schema}?", abort=True)
    _quiet_logs()
    with _database(cfg, embedded_postgres) as cfg:
        replayed = asyncio.run(commands.rebuild(cfg))
    render.message(f"read model {cfg.schema} rebuilt: {replayed:,} events replayed")


def _quiet_logs() -> None:
    """One-shot commands print their result, not the NATS link's log lines
    (structlog's default would print them on stdout, into ``--json``): only
    errors, on stderr. Loggers are not cached, so whoever configures
    structlog next (a test capturing logs) is obeyed."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def main() -> None:
    app(prog_name="inv-hq")


if __name__ == "__main__":  # python -m agent.hq.main (before the console script is installed)
    main()
