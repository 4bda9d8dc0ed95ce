"""``inv stock show|add|remove|set|safety``, ``inv availability``, ``inv history``
and the counter's shortcuts ``inv sell`` and ``inv receive``."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import typer

from inventory_cli import render, render_stores
from inventory_cli.commands.options import (
    ExpectedVersion,
    Json,
    Key,
    Limit,
    Qty,
    Reason,
    Ref,
    Since,
    Store,
    Wide,
)
from inventory_cli.context import client
from inventory_cli.errors import UsageError


def show(
    ctx: typer.Context, ref: Ref, store: Store = None, wide: Wide = False, as_json: Json = False
) -> None:
    """Stock of a product in every store this agent knows (or one --store), with
    each store's safety stock and what online orders may take."""
    a = client(ctx).get(f"/api/v1/products/{ref}/availability", storeId=store)
    render.emit(a, as_json, partial(render_stores.stock_levels, wide=wide))


def availability(
    ctx: typer.Context, ref: Ref, store: Store = None, wide: Wide = False, as_json: Json = False
) -> None:
    """Availability of a product in every store, with how fresh each view is."""
    a = client(ctx).get(f"/api/v1/products/{ref}/availability", storeId=store)
    render.emit(a, as_json, partial(render_stores.availability, wide=wide))


def history(
    ctx: typer.Context,
    ref: Ref,
    store: Store = None,
    since: Since = None,
    limit: Limit = 100,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Stock movements of a product, newest first."""
    h = client(ctx).get(f"/api/v1/products/{ref}/history", storeId=store, since=since, limit=limit)
    render.emit(h, as_json, partial(render.history, wide=wide))


def _change(
    ctx: typer.Context,
    op: str,
    ref: str,
    qty: int,
    store: str | None,
    reason: str,
    expected: int | None,
    key: str | None,
    as_json: bool,
) -> None:
    import uuid

    body: dict[str, Any] = {"operation": op, "quantity": qty, "reason": reason}
    if store:
        body["storeId"] = store
    if expected is not None:
        body["expectedVersion"] = expected
    key = key or str(uuid.uuid4())
    unknown = (
        f"the change may have been applied: check with `inv history {ref}`, or run "
        f"the same command again with --key {key} (the same key never applies twice)"
    )
    r = client(ctx).request(
        "POST",
        f"/api/v1/products/{ref}/stock",
        body=body,
        headers={"X-Idempotency-Key": key},
        unknown=unknown,
    )
    render.emit(r, as_json, render.stock_result)


def add(
    ctx: typer.Context,
    ref: Ref,
    quantity: Qty,
    store: Store = None,
    reason: Reason = "receive",
    expected_version: ExpectedVersion = None,
    key: Key = None,
    as_json: Json = False,
) -> None:
    """Receive stock: on hand += QUANTITY."""
    _change(ctx, "add", ref, quantity, store, reason, expected_version, key, as_json)


def remove(
    ctx: typer.Context,
    ref: Ref,
    quantity: Qty,
    store: Store = None,
    reason: Reason = "adjust",
    expected_version: ExpectedVersion = None,
    key: Key = None,
    as_json: Json = False,
) -> None:
    """Take stock out: on hand -= QUANTITY (never below what is reserved)."""
    _change(ctx, "subtract", ref, quantity, store, reason, expected_version, key, as_json)


def set_(
    ctx: typer.Context,
    ref: Ref,
    quantity: Qty,
    store: Store = None,
    reason: Reason = "count",
    expected_version: ExpectedVersion = None,
    key: Key = None,
    as_json: Json = False,
) -> None:
    """Record a physical count: on hand = QUANTITY."""
    _change(ctx, "set", ref, quantity, store, reason, expected_version, key, as_json)


def sell(
    ctx: typer.Context,
    ref: Ref,
    quantity: Annotated[int, typer.Argument(min=1, help="units sold (default 1)")] = 1,
    store: Store = None,
    reason: Reason = "sale",
    key: Key = None,
    as_json: Json = False,
) -> None:
    """A sale at the counter: on hand -= QUANTITY, as a sell movement (never
    below what is reserved)."""
    _change(ctx, "sell", ref, quantity, store, reason, None, key, as_json)


def receive(
    ctx: typer.Context,
    ref: Ref,
    quantity: Annotated[int, typer.Argument(min=1, help="units received")],
    store: Store = None,
    reason: Reason = "receive",
    key: Key = None,
    as_json: Json = False,
) -> None:
    """Goods in: on hand += QUANTITY, as a receive movement."""
    _change(ctx, "add", ref, quantity, store, reason, None, key, as_json)


def safety(
    ctx: typer.Context,
    ref: Ref,
    units: Annotated[
        str, typer.Argument(metavar="N", help="units, or none: back to the store's default")
    ],
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Set the units of a product that online (routed) orders may not take at a
    store; none clears it (the store's default applies)."""
    value: int | None
    if units.strip().lower() == "none":
        value = None
    elif units.strip().isascii() and units.strip().isdigit() and int(units) <= 1_000_000_000:
        value = int(units)
    else:
        raise UsageError(f"N: {units!r} must be a whole number from 0, or none to clear it")
    body: dict[str, Any] = {"safetyStock": value}
    if store:
        body["storeId"] = store
    r = client(ctx).request("PUT", f"/api/v1/products/{ref}/safety-stock", body=body)
    render.emit(r, as_json, render_stores.safety_stock)
