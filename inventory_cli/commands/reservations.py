"""``inv reserve|confirm|cancel`` and ``inv reservation show|list``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from inventory_cli import render
from inventory_cli.commands.options import Json, Limit, Ref, Store
from inventory_cli.context import client
from inventory_cli.errors import UsageError

Rid = Annotated[str, typer.Argument(help="reservation id")]
STATUSES = ("PENDING", "CONFIRMED", "CANCELLED", "EXPIRED")


def reserve(
    ctx: typer.Context,
    ref: Ref,
    quantity: Annotated[int, typer.Argument(min=1)],
    store: Store = None,
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    ttl: Annotated[int | None, typer.Option("--ttl", min=1, help="seconds (default 600)")] = None,
    rid: Annotated[
        str | None,
        typer.Option("--id", help="reservation id (default: new; reusing one is idempotent)"),
    ] = None,
    as_json: Json = False,
) -> None:
    """Reserve stock (in another store: asks that store's agent)."""
    import uuid

    body: dict[str, Any] = {
        "reservationId": rid or str(uuid.uuid4()),
        "productId": ref,
        "quantity": quantity,
    }
    for k, v in (("storeId", store), ("customerId", customer), ("ttl", ttl)):
        if v is not None:
            body[k] = v
    rid = body["reservationId"]
    unknown = (
        f"the reservation may have been made as {rid}: check with `inv reservation show "
        f"{rid}`, or run the same command again with --id {rid} (the same id never "
        "reserves twice)"
    )
    r = client(ctx).request("POST", "/api/v1/reservations", body=body, unknown=unknown)
    render.emit(r, as_json, render.reservation)


def confirm(
    ctx: typer.Context,
    rid: Rid,
    order: Annotated[str | None, typer.Option("--order", help="order id")] = None,
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Confirm a reservation: records the sale."""
    body = {"orderId": order} if order else {}
    r = client(ctx).request(
        "POST",
        f"/api/v1/reservations/{rid}/confirm",
        body=body,
        params={"storeId": store},
        unknown=f"reservation {rid} may have been confirmed: check with `inv reservation "
        f"show {rid}`, or confirm it again (confirming twice is harmless)",
    )
    render.emit(r, as_json, render.reservation)


def cancel(ctx: typer.Context, rid: Rid, store: Store = None, as_json: Json = False) -> None:
    """Cancel a reservation: frees the stock."""
    client(ctx).request(
        "DELETE", f"/api/v1/reservations/{rid}", params={"storeId": store}, retry=True
    )
    if as_json:
        render.print_json({"reservationId": rid, "status": "CANCELLED"})
    else:
        render.message(f"Reservation {rid} cancelled.")


def show(ctx: typer.Context, rid: str, as_json: Json = False) -> None:
    """Show one reservation."""
    render.emit(client(ctx).get(f"/api/v1/reservations/{rid}"), as_json, render.reservation)


def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="PENDING, CONFIRMED, CANCELLED or EXPIRED")
    ] = None,
    store: Store = None,
    sku: Annotated[str | None, typer.Option("--sku")] = None,
    limit: Limit = 100,
    as_json: Json = False,
) -> None:
    """List reservations, newest first."""
    if status and status.upper() not in STATUSES:
        raise UsageError(f"--status: {status!r} must be PENDING, CONFIRMED, CANCELLED or EXPIRED")
    data = client(ctx).get(
        "/api/v1/reservations",
        status=status.upper() if status else None,
        storeId=store,
        sku=sku,
        limit=limit,
    )
    render.emit(data["data"], as_json, render.reservations)
