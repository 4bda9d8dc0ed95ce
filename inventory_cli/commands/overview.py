"""``inv`` alone: one screen of where this till stands (the store, the agent's
health, replication) and the commands a clerk types most."""

from __future__ import annotations

from typing import Any

import typer

from inventory_cli import render_overview
from inventory_cli.context import client
from inventory_cli.errors import CliError, UnavailableError, UnreachableError


def _health(ctx: typer.Context) -> dict[str, Any]:
    try:
        h: dict[str, Any] = client(ctx).get("/health")
    except UnavailableError as exc:  # 503: still a report, of an unhealthy agent
        if exc.body.get("status") != "unhealthy":
            raise
        h = exc.body
    return h


def overview(ctx: typer.Context) -> None:
    """Print the screen; an agent out of reach still gets the commands, and
    the exit code says so (5), as every command's would."""
    try:
        health = _health(ctx)
    except UnreachableError as exc:
        render_overview.screen(None, None, exc.message)
        raise typer.Exit(5) from exc
    try:
        sync: dict[str, Any] | None = client(ctx).get("/api/v1/sync/status")
    except CliError:  # e.g. a token that may read health but not sync: show the rest
        sync = None
    render_overview.screen(health, sync, None)
    if health.get("status") != "healthy":
        raise typer.Exit(1)
