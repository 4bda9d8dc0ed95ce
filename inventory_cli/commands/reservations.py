"""``inv reserve|confirm|cancel`` and ``inv reservation show|list``."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import typer

from inventory_cli import completion, render, render_routing
from inventory_cli.commands.options import Json, Limit, Ref, ReservationId, Sku, Store, Wide
from inventory_cli.context import client
from inventory_cli.errors import CliError, UsageError

STATUSES = ("PENDING", "CONFIRMED", "CANCELLED", "EXPIRED")


ANY = "any"
STRATEGIES = ("priority", "most-available", "nearest")


def reserve(
    ctx: typer.Context,
    ref: Ref,
    quantity: Annotated[int, typer.Argument(min=1)],
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            "-s",
            help="store id (default: the agent's own store); 'any': the store that can",
            autocompletion=completion.stores_or_any,
        ),
    ] = None,
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    ttl: Annotated[int | None, typer.Option("--ttl", min=1, help="seconds (default 600)")] = None,
    rid: Annotated[
        str | None,
        typer.Option("--id", help="reservation id (default: new; reusing one is idempotent)"),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="with --store any: priority, most-available or nearest"),
    ] = None,
    near: Annotated[
        str | None,
        typer.Option(
            "--near",
            help="with --strategy nearest: STORE or LAT,LON",
            autocompletion=completion.stores,
        ),
    ] = None,
    candidates: Annotated[
        str | None,
        typer.Option("--candidates", help="with --store any: the stores to ask, a,b,c in order"),
    ] = None,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Reserve stock (in another store: asks that store's agent; --store any:
    the first store that can, by --strategy)."""
    import uuid

    body: dict[str, Any] = {
        "reservationId": rid or str(uuid.uuid4()),
        "productId": ref,
        "quantity": quantity,
    }
    body.update(_routing_options(store, strategy, near, candidates))
    for k, v in (("storeId", store), ("customerId", customer), ("ttl", ttl)):
        if v is not None:
            body[k] = v
    rid = body["reservationId"]
    unknown = (
        f"the reservation may have been made as {rid}: check with `inv reservation "
        f"{'routing' if store == ANY else 'show'} {rid}`, or run the same command again "
        f"with --id {rid} (the same id never reserves twice)"
    )
    try:
        r = client(ctx).request("POST", "/api/v1/reservations", body=body, unknown=unknown)
    except CliError as exc:
        if isinstance(exc.body.get("routing"), dict) and not as_json:
            render_routing.attempts(exc.body["routing"], wide=wide, to_stderr=True)
        raise
    render.emit(r, as_json, partial(render_routing.routed, wide=wide))


def _routing_options(
    store: str | None, strategy: str | None, near: str | None, candidates: str | None
) -> dict[str, Any]:
    """The routing fields of the request, refused before anything is sent
    when they do not go together."""
    given = [
        f
        for f, v in (("--strategy", strategy), ("--near", near), ("--candidates", candidates))
        if v
    ]
    if store != ANY:
        if given:
            raise UsageError(f"{given[0]}: only with --store {ANY}")
        return {}
    out: dict[str, Any] = {}
    if strategy is not None:
        if strategy not in STRATEGIES:
            raise UsageError(f"--strategy: {strategy!r} must be one of {', '.join(STRATEGIES)}")
        out["strategy"] = strategy
    if near is not None:
        if strategy != "nearest":
            raise UsageError("--near: only with --strategy nearest")
        out["near"] = near
    if candidates is not None:
        stores = [s.strip() for s in candidates.split(",") if s.strip()]
        if not stores:
            raise UsageError("--candidates: name at least one store (a,b,c)")
        out["stores"] = stores
    return out


def confirm(
    ctx: typer.Context,
    rid: ReservationId,
    order: Annotated[str | None, typer.Option("--order", help="order id")] = None,
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Confirm a reservation: records the sale."""
    from inventory_cli import ids

    rid = ids.resolve(client(ctx), ids.RESERVATION, rid, elsewhere=store is not None)
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


def cancel(
    ctx: typer.Context, rid: ReservationId, store: Store = None, as_json: Json = False
) -> None:
    """Cancel a reservation: frees the stock."""
    from inventory_cli import ids

    rid = ids.resolve(client(ctx), ids.RESERVATION, rid, elsewhere=store is not None)
    client(ctx).request(
        "DELETE", f"/api/v1/reservations/{rid}", params={"storeId": store}, retry=True
    )
    if as_json:
        render.print_json({"reservationId": rid, "status": "CANCELLED"})
    else:
        render.message(f"Reservation {rid} cancelled.")


def show(ctx: typer.Context, rid: ReservationId, as_json: Json = False) -> None:
    """Show one reservation."""
    from inventory_cli import ids

    rid = ids.resolve(client(ctx), ids.RESERVATION, rid)
    render.emit(client(ctx).get(f"/api/v1/reservations/{rid}"), as_json, render.reservation)


def routing(
    ctx: typer.Context,
    request_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="the reservationId sent with --store any, or its first characters (at least 4)",
            autocompletion=completion.routings,
        ),
    ],
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Show how a routed reservation went: each store asked, and the cleanup
    of any that did not answer (at the agent that routed it)."""
    from inventory_cli import ids

    request_id = ids.resolve(client(ctx), ids.ROUTING, request_id)
    render.emit(
        client(ctx).get(f"/api/v1/routings/{request_id}"),
        as_json,
        partial(render_routing.record, wide=wide),
    )


def routings(
    ctx: typer.Context,
    cleanup: Annotated[
        str | None,
        typer.Option("--cleanup", help="only those with a cleanup in this state, e.g. pending"),
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="routing, granted, refused or unreachable")
    ] = None,
    limit: Limit = 100,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """List routed reservations this agent routed, newest first."""
    data = client(ctx).get("/api/v1/routings", cleanup=cleanup, status=status, limit=limit)
    render.emit(data["data"], as_json, partial(render_routing.records, wide=wide))


def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="PENDING, CONFIRMED, CANCELLED or EXPIRED")
    ] = None,
    store: Store = None,
    sku: Sku = None,
    limit: Limit = 100,
    wide: Wide = False,
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
    render.emit(data["data"], as_json, partial(render.reservations, wide=wide))
