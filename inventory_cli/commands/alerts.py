"""``inv stock reorder``, ``inv stock low`` and ``inv alerts``: reorder points
and what runs low."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import typer

from inventory_cli import render, render_alerts
from inventory_cli.commands.options import Json, Limit, Ref, Since, Sku, Store, Wide
from inventory_cli.context import client
from inventory_cli.errors import UsageError

MAX_UNITS = 1_000_000_000
ALL = "all"


def _units(flag: str, text: str | None, least: int) -> int | None:
    """A flag's value: a whole number from ``least``, or none (clears it)."""
    value = (text or "").strip()
    if value.lower() == "none":
        return None
    if value.isascii() and value.isdigit() and least <= int(value) <= MAX_UNITS:
        return int(value)
    raise UsageError(f"{flag}: {text!r} must be a whole number from {least}, or none to clear it")


def reorder(
    ctx: typer.Context,
    ref: Ref,
    clear: Annotated[
        str | None,
        typer.Argument(metavar="[none]", help="none: clear the point, maximum and quantity"),
    ] = None,
    minimum: Annotated[
        int | None,
        typer.Option("--min", min=0, max=MAX_UNITS, help="reorder point: low at or below it"),
    ] = None,
    maximum: Annotated[
        str | None,
        typer.Option("--max", metavar="M", help="stock to order up to (none: clear it)"),
    ] = None,
    qty: Annotated[
        str | None,
        typer.Option("--qty", metavar="Q", help="units to order when there is no --max"),
    ] = None,
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Set a product's reorder point at a store (it is low at or below it),
    with the stock to order up to (--max) or a fixed quantity (--qty); none
    clears them. The store that holds the stock raises an alert at once if
    the new point leaves it low."""
    body: dict[str, Any]
    if clear is not None:
        if clear.strip().lower() != "none":
            raise UsageError(f"{clear!r}: give none to clear the settings, or --min N to set them")
        if minimum is not None or maximum is not None or qty is not None:
            raise UsageError("none clears every reorder setting: give it without --min/--max/--qty")
        body = {"reorderPoint": None, "maxStock": None, "reorderQty": None}
    else:
        if minimum is None:
            raise UsageError(f"--min N is required (or clear them: inv stock reorder {ref} none)")
        body = {"reorderPoint": minimum}
        if maximum is not None:
            body["maxStock"] = _units("--max", maximum, 0)
        if qty is not None:
            body["reorderQty"] = _units("--qty", qty, 1)
    if store:
        body["storeId"] = store
    r = client(ctx).request("PUT", f"/api/v1/products/{ref}/reorder", body=body)
    render.emit(r, as_json, render_alerts.reorder_settings)


def low(
    ctx: typer.Context,
    store: Store = None,
    every: Annotated[bool, typer.Option("--all", help="every store this agent knows")] = False,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """What is at or below its reorder point (this store, one --store, or
    --all), with what is on its way and the suggested order."""
    if every and store and store != ALL:
        raise UsageError("--all and --store: give one of them")
    data = client(ctx).get("/api/v1/stock/low", storeId=ALL if every else store)
    render.emit(data, as_json, partial(render_alerts.low_stock, wide=wide))


def alerts(
    ctx: typer.Context,
    since: Since = None,
    store: Store = None,
    sku: Sku = None,
    limit: Limit = 100,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Low-stock alerts of every store (or one --store), newest first: what
    crossed its reorder point, from what to what, and the write that did it."""
    data = client(ctx).get("/api/v1/alerts", since=since, storeId=store, sku=sku, limit=limit)
    render.emit(data["data"], as_json, partial(render_alerts.alerts, wide=wide))
