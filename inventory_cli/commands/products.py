"""``inv product add|update|list|show``: the catalogue."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from inventory_cli import render
from inventory_cli.commands.options import Json, Ref, Wide
from inventory_cli.context import client
from inventory_cli.errors import UsageError


def add(
    ctx: typer.Context,
    sku: str,
    name: Annotated[str, typer.Option("--name", help="product name")],
    price: Annotated[float, typer.Option("--price", min=0)] = 0.0,
    category: Annotated[str, typer.Option("--category")] = "",
    description: Annotated[str, typer.Option("--description")] = "",
    product_id: Annotated[
        str | None, typer.Option("--id", help="product id (default: derived from the SKU)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Add a product to the catalogue."""
    body = {
        "sku": sku,
        "name": name,
        "price": price,
        "category": category,
        "description": description,
    }
    if product_id:
        body["id"] = product_id
    p = client(ctx).request("POST", "/api/v1/products", body=body)
    render.emit(p, as_json, render.product)


def update(
    ctx: typer.Context,
    ref: Ref,
    name: Annotated[str | None, typer.Option("--name")] = None,
    price: Annotated[float | None, typer.Option("--price", min=0)] = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive")] = None,
    as_json: Json = False,
) -> None:
    """Change a product's fields (only those given)."""
    body = {
        k: v
        for k, v in {
            "name": name,
            "price": price,
            "category": category,
            "description": description,
            "active": active,
        }.items()
        if v is not None
    }
    if not body:
        raise UsageError(
            "nothing to change: give --name, --price, --category, "
            "--description or --active/--inactive"
        )
    p = client(ctx).request("PATCH", f"/api/v1/products/{ref}", body=body)
    render.emit(p, as_json, render.product)


def list_(
    ctx: typer.Context,
    category: Annotated[str | None, typer.Option("--category")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="in SKU or name")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 1000,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """List products."""
    items = client(ctx).paged("/api/v1/products", limit, category=category, q=search)
    render.emit(items, as_json, partial(render.products, wide=wide))


def show(ctx: typer.Context, ref: Ref, as_json: Json = False) -> None:
    """Show one product."""
    render.emit(client(ctx).get(f"/api/v1/products/{ref}"), as_json, render.product)
