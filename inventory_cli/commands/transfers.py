"""``inv transfer create|ship|receive|cancel|show|list``: stock sent from one
store to another. The store it comes from creates, ships and cancels; the
store it goes to receives (the agent forwards a step to that store).

Every write is safe to run again: ``create`` sends a transfer id and
``receive`` a receipt id that this command draws (``--id``,
``--receipt-id`` to give your own); the agent never applies the same id
twice, and shipping or cancelling twice changes nothing. The client sends
no POST twice by itself (``inventory_cli.client``): after a lost answer the
message says which command to run again.
"""

from __future__ import annotations

import secrets
from functools import partial
from typing import Annotated, Any

import typer

from inventory_cli import completion, render, render_transfers
from inventory_cli.commands.options import Json, Limit, Store, TransferId, Wide
from inventory_cli.context import client
from inventory_cli.errors import UsageError

STATUSES = ("DRAFT", "SHIPPED", "PARTIALLY_RECEIVED", "RECEIVED", "CANCELLED")
MAX_UNITS = 1_000_000_000
# Crockford's base32: no I, L, O, U to misread when an id is typed off a slip
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TRANSFERS = "/api/v1/transfers"


def new_id(prefix: str) -> str:
    """A short id a person can read off a packing slip and type, e.g.
    ``T-7K3M-9XQ2-P8RA``: 60 random bits, so after a million transfers the
    chance that any two share an id is under one in two million (and a clash
    is refused at the origin, or listed as a conflict, never merged)."""
    bits = secrets.randbits(60)
    chars = "".join(_ALPHABET[(bits >> (5 * i)) & 31] for i in range(12))
    return f"{prefix}-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def _units(arg: str, text: str, what: str, least: int) -> int:
    if not (text.isascii() and text.isdigit()) or not least <= int(text) <= MAX_UNITS:
        raise UsageError(f"{arg!r}: {what} must be a whole number from {least}")
    return int(text)


def _sku_of(arg: str, sku: str, seen: dict[str, str]) -> str:
    if not sku:
        raise UsageError(f"{arg!r}: the SKU is missing")
    if sku in seen:
        raise UsageError(f"{arg!r}: {sku} is named twice (also {seen[sku]!r}); give each SKU once")
    seen[sku] = arg
    return sku


def transfer_lines(args: list[str]) -> list[dict[str, Any]]:
    """``SKU:QTY`` arguments as the API's lines."""
    seen: dict[str, str] = {}
    out = []
    for arg in args:
        parts = arg.split(":")
        if len(parts) != 2:
            raise UsageError(f"{arg!r}: give each line as SKU:QTY, e.g. PROD-001:5")
        sku = _sku_of(arg, parts[0].strip(), seen)
        out.append({"productId": sku, "quantity": _units(arg, parts[1].strip(), "QTY", 1)})
    return out


def receipt_lines(args: list[str]) -> list[dict[str, Any]]:
    """``SKU:RECEIVED[:DAMAGED]`` arguments as the API's receipt lines."""
    seen: dict[str, str] = {}
    out = []
    for arg in args:
        parts = arg.split(":")
        if len(parts) not in (2, 3):
            raise UsageError(
                f"{arg!r}: give each line as SKU:RECEIVED or SKU:RECEIVED:DAMAGED, "
                "e.g. PROD-001:4:1"
            )
        sku = _sku_of(arg, parts[0].strip(), seen)
        received = _units(arg, parts[1].strip(), "RECEIVED", 0)
        damaged = _units(arg, parts[2].strip(), "DAMAGED", 0) if len(parts) == 3 else 0
        if received + damaged < 1:
            raise UsageError(f"{arg!r}: a line receives at least one unit (received or damaged)")
        out.append({"productId": sku, "received": received, "damaged": damaged})
    return out


def create(
    ctx: typer.Context,
    lines: Annotated[
        list[str], typer.Argument(metavar="SKU:QTY...", help="what to send, e.g. PROD-001:5")
    ],
    destination: Annotated[
        str,
        typer.Option("--to", help="the store it goes to", autocompletion=completion.stores),
    ],
    origin: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="the store it comes from (default: the agent's own)",
            autocompletion=completion.stores,
        ),
    ] = None,
    ship: Annotated[
        bool, typer.Option("--ship", help="ship at once (else a DRAFT to ship later)")
    ] = False,
    note: Annotated[str | None, typer.Option("--note", help="printed on the slip")] = None,
    tid: Annotated[
        str | None,
        typer.Option("--id", help="transfer id (default: a new one; reusing one is idempotent)"),
    ] = None,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Create a transfer to another store; --ship ships it at once (its stock
    leaves the origin's available now)."""
    body: dict[str, Any] = {
        "transferId": tid or new_id("T"),
        "toStoreId": destination,
        "lines": transfer_lines(lines),
        "ship": ship,
    }
    if origin:
        body["fromStoreId"] = origin
    if note is not None:
        body["note"] = note
    tid = body["transferId"]
    unknown = (
        f"transfer {tid} may have been created: check with `inv transfer show {tid}`, or run "
        f"the same command again with --id {tid} (the same id never creates twice)"
    )
    r = client(ctx).request("POST", TRANSFERS, body=body, unknown=unknown)
    render.emit(r, as_json, partial(render_transfers.transfer, wide=wide))


def _step(ctx: typer.Context, tid: str, step: str, done: str, wide: bool, as_json: bool) -> None:
    from inventory_cli import ids

    tid = ids.resolve(client(ctx), ids.TRANSFER, tid)
    unknown = (
        f"transfer {tid} may have been {done}: check with `inv transfer show {tid}`, or "
        f"{step} it again ({step} twice changes nothing)"
    )
    r = client(ctx).request("POST", f"{TRANSFERS}/{tid}/{step}", unknown=unknown)
    render.emit(r, as_json, partial(render_transfers.transfer, wide=wide))


def ship(ctx: typer.Context, tid: TransferId, wide: Wide = False, as_json: Json = False) -> None:
    """Ship a DRAFT transfer: the stock leaves the store it comes from."""
    _step(ctx, tid, "ship", "shipped", wide, as_json)


def cancel(ctx: typer.Context, tid: TransferId, wide: Wide = False, as_json: Json = False) -> None:
    """Cancel a transfer: a shipped one returns what is still pending to the
    store it came from."""
    _step(ctx, tid, "cancel", "cancelled", wide, as_json)


def receive(
    ctx: typer.Context,
    tid: TransferId,
    lines: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SKU:RECEIVED[:DAMAGED]]...",
            help="what arrived (default: everything still pending, as shipped)",
        ),
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="the store it comes from, for a transfer not heard of here yet",
            autocompletion=completion.stores,
        ),
    ] = None,
    receipt_id: Annotated[
        str | None,
        typer.Option(
            "--receipt-id",
            help="receipt id (default: a new one; the same id is never counted twice)",
        ),
    ] = None,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Receive a transfer at the store it goes to: all that is pending, or the
    lines given (more than shipped, or damaged units, are listed as discrepancies)."""
    rid = receipt_id or new_id("R")
    body: dict[str, Any] = {"receiptId": rid}
    if lines:
        body["lines"] = receipt_lines(lines)
    from inventory_cli import ids

    tid = ids.resolve(
        client(ctx),
        ids.TRANSFER,
        tid,
        elsewhere=origin is not None,
        hint=" (one not heard of here yet: its whole id, with --from and the lines)",
    )
    if origin:
        body["fromStoreId"] = origin
    unknown = (
        f"the receipt may have been recorded as {rid}: check with `inv transfer show {tid}`, "
        f"or run the same command again with --receipt-id {rid} (it is never counted twice)"
    )
    r = client(ctx).request("POST", f"{TRANSFERS}/{tid}/receive", body=body, unknown=unknown)
    render.emit(r, as_json, partial(render_transfers.transfer, wide=wide))


def show(
    ctx: typer.Context,
    tid: TransferId,
    slip: Annotated[
        bool, typer.Option("--slip", help="the packing slip, to print and send with the goods")
    ] = False,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Show a transfer: its lines, receipts and discrepancies (--slip: the
    packing slip)."""
    from inventory_cli import ids

    tid = ids.resolve(client(ctx), ids.TRANSFER, tid)
    t = client(ctx).get(f"{TRANSFERS}/{tid}")
    render.emit(
        t, as_json, render_transfers.slip if slip else partial(render_transfers.transfer, wide=wide)
    )


def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="DRAFT, SHIPPED, PARTIALLY_RECEIVED, RECEIVED or CANCELLED"),
    ] = None,
    incoming: Annotated[
        bool, typer.Option("--incoming", help="only those coming to the store")
    ] = False,
    outgoing: Annotated[
        bool, typer.Option("--outgoing", help="only those leaving the store")
    ] = False,
    store: Store = None,
    limit: Limit = 100,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """List transfers from or to a store (default: every one known here;
    with --incoming or --outgoing: the agent's own store's), newest first."""
    if incoming and outgoing:
        raise UsageError("--incoming, --outgoing: give one of the two (neither: both ways)")
    if status and status.upper() not in STATUSES:
        raise UsageError(f"--status: {status!r} must be one of {', '.join(STATUSES)}")
    direction = "incoming" if incoming else "outgoing" if outgoing else None
    data = client(ctx).get(
        TRANSFERS,
        status=status.upper() if status else None,
        storeId=store,
        direction=direction,
        limit=limit,
    )
    render.emit(data["data"], as_json, partial(render_transfers.transfers, wide=wide))
