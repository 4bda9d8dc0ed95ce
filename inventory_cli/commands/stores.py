"""``inv store set|list|show``: the store directory (replicated to every store)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from inventory_cli import render, render_stores
from inventory_cli.commands.options import Json, StoreArg, Wide
from inventory_cli.context import client
from inventory_cli.errors import UsageError


def set_(
    ctx: typer.Context,
    store: StoreArg,
    name: Annotated[str | None, typer.Option("--name", help="the store's name")] = None,
    address: Annotated[str | None, typer.Option("--address")] = None,
    lat: Annotated[float | None, typer.Option("--lat", min=-90, max=90, help="latitude")] = None,
    lon: Annotated[float | None, typer.Option("--lon", min=-180, max=180, help="longitude")] = None,
    priority: Annotated[
        int | None,
        typer.Option("--priority", min=1, max=1_000_000, help="routed orders ask 1 first"),
    ] = None,
    online: Annotated[
        bool | None, typer.Option("--online/--no-online", help="fulfils online orders")
    ] = None,
    safety_stock: Annotated[
        int | None,
        typer.Option("--safety-stock", min=0, help="units of each SKU online orders may not take"),
    ] = None,
    as_json: Json = False,
) -> None:
    """Describe a store (only the fields given change; a new store is added)."""
    body = {
        k: v
        for k, v in {
            "name": name,
            "address": address,
            "lat": lat,
            "lon": lon,
            "priority": priority,
            "online": online,
            "safetyStock": safety_stock,
        }.items()
        if v is not None
    }
    if not body:
        raise UsageError(
            "nothing to change: give --name, --address, --lat, --lon, --priority, "
            "--online/--no-online or --safety-stock"
        )
    entry = client(ctx).request("PATCH", f"/api/v1/stores/{store}", body=body)
    render.emit(entry, as_json, render_stores.store)


def list_(ctx: typer.Context, wide: Wide = False, as_json: Json = False) -> None:
    """List every store this agent knows, with its directory entry."""
    data = client(ctx).get("/api/v1/stores")
    render.emit(data["data"], as_json, partial(render_stores.stores, wide=wide))


def show(ctx: typer.Context, store: StoreArg, as_json: Json = False) -> None:
    """Show one store's directory entry."""
    render.emit(client(ctx).get(f"/api/v1/stores/{store}"), as_json, render_stores.store)
