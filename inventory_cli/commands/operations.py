"""``inv agent status``, ``inv sync status`` and ``inv conflicts``: how the
agent and replication are doing."""

from __future__ import annotations

from functools import partial

import typer

from inventory_cli import render, render_alerts, render_conflicts
from inventory_cli.commands.options import Json, Limit, Since, Wide
from inventory_cli.context import client
from inventory_cli.errors import UnavailableError


def agent_status(ctx: typer.Context, wide: Wide = False, as_json: Json = False) -> None:
    """The agent's health: ledger, expiry task, outbox, NATS, and the
    delivery of alerts to each webhook (delivered, given up, pending)."""
    try:
        h = client(ctx).get("/health")
    except UnavailableError as exc:  # 503: still a health report, of an unhealthy agent
        if "unhealthy" not in exc.message and exc.body.get("status") != "unhealthy":
            raise
        h = exc.body
    render.emit(h, as_json, partial(render_alerts.agent_health, wide=wide))
    if h.get("status") != "healthy":
        raise typer.Exit(1)


def sync_status(ctx: typer.Context, wide: Wide = False, as_json: Json = False) -> None:
    """Replication: connection, outbox backlog, peers, state digests."""
    render.emit(
        client(ctx).get("/api/v1/sync/status"), as_json, partial(render.sync_status, wide=wide)
    )


def conflicts(
    ctx: typer.Context,
    since: Since = None,
    limit: Limit = 100,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Writes that lost a merge (last-write-wins) or oversold, newest first."""
    data = client(ctx).get("/api/v1/conflicts", since=since, limit=limit)
    render.emit(data["data"], as_json, partial(render_conflicts.conflicts, wide=wide))
