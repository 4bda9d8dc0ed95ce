"""``inv``: the command line for a store's inventory agent.

Commands are thin: parse flags, call the agent through AgentClient, render.
"""

from __future__ import annotations

import gc
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from inventory_cli import render
from inventory_cli.errors import EXIT_CODES_HELP, CliError, UsageError

HELP = (
    "Inventory of this store (and what the others have), through the local agent. "
    "Targets the agent with --agent or INV_AGENT (socket path or http URL) and "
    "INV_TOKEN for TCP. " + EXIT_CODES_HELP
)

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
product_app = typer.Typer(
    help="The catalogue: add, update, list, show, import.", no_args_is_help=True
)
stock_app = typer.Typer(help="Stock levels: show, add, remove, set.", no_args_is_help=True)
reservation_app = typer.Typer(help="Reservations: show, list.", no_args_is_help=True)
agent_app = typer.Typer(help="The local agent.", no_args_is_help=True)
sync_app = typer.Typer(help="Replication with the other stores.", no_args_is_help=True)
app.add_typer(product_app, name="product")
app.add_typer(stock_app, name="stock")
app.add_typer(reservation_app, name="reservation")
app.add_typer(agent_app, name="agent")
app.add_typer(sync_app, name="sync")


class State:
    agent: str | None = None
    token: str | None = None
    _client: Any = None

    @classmethod
    def client(cls) -> Any:
        if cls._client is None:
            from inventory_cli.client import AgentClient

            cls._client = AgentClient(cls.agent, cls.token)
        return cls._client


Json = Annotated[bool, typer.Option("--json", help="print the API's JSON objects")]
Store = Annotated[
    str | None, typer.Option("--store", "-s", help="store id (default: the agent's own store)")
]
Reason = Annotated[str, typer.Option("--reason", "-r", help="why (kept in the history)")]
ExpectedVersion = Annotated[
    int | None,
    typer.Option("--expected-version", help="only apply if the stock row is still at this version"),
]
Key = Annotated[
    str | None,
    typer.Option("--key", help="idempotency key (default: a new one; retried calls reuse it)"),
]
Format = Annotated[
    str | None,
    typer.Option("--format", help="csv, json or yaml (default: from the file extension)"),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="show the changes, apply nothing")]
Force = Annotated[
    bool, typer.Option("--force", help="apply even if this exact file was imported before")
]


@app.callback()
def _global(
    agent: Annotated[
        str | None,
        typer.Option("--agent", envvar="INV_AGENT", help="agent socket path or http(s) URL"),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="INV_TOKEN", help="bearer token for a TCP agent")
    ] = None,
) -> None:
    State.agent, State.token = agent, token


def _emit(obj: Any, as_json: bool, show: Any) -> None:
    if as_json:
        render.print_json(obj)
    else:
        show(obj)


# ------------------------------------------------------------------ product
@product_app.command("add")
def product_add(
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
    p = State.client().request("POST", "/api/v1/products", body=body, retry=True)
    _emit(p, as_json, render.product)


@product_app.command("update")
def product_update(
    ref: Annotated[str, typer.Argument(help="SKU or product id")],
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
    p = State.client().request("PATCH", f"/api/v1/products/{ref}", body=body, retry=True)
    _emit(p, as_json, render.product)


@product_app.command("list")
def product_list(
    category: Annotated[str | None, typer.Option("--category")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="in SKU or name")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 1000,
    as_json: Json = False,
) -> None:
    """List products."""
    items = State.client().paged("/api/v1/products", limit, category=category, q=search)
    _emit(items, as_json, render.products)


@product_app.command("show")
def product_show(
    ref: Annotated[str, typer.Argument(help="SKU or product id")], as_json: Json = False
) -> None:
    """Show one product."""
    _emit(State.client().get(f"/api/v1/products/{ref}"), as_json, render.product)


@product_app.command("import")
def product_import(
    file: Path,
    fmt: Format = None,
    dry_run: DryRun = False,
    force: Force = False,
    as_json: Json = False,
) -> None:
    """Import the catalogue from CSV, JSON or YAML (columns: sku, id, name,
    description, category, price, active). All rows or none."""
    from inventory_cli import importfile

    rows = _read_rows(file, fmt, importfile.product_rows)
    result = _send_import("/api/v1/imports/products", rows, dry_run, force)
    _emit(result, as_json, lambda r: render.import_result(r, "products"))


# -------------------------------------------------------------------- stock
@stock_app.command("show")
def stock_show(
    ref: Annotated[str, typer.Argument(help="SKU or product id")],
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Stock of a product in every store this agent knows (or one --store)."""
    a = State.client().get(f"/api/v1/products/{ref}/availability", storeId=store)
    _emit(a, as_json, render.availability)


def _stock_change(
    op: str,
    ref: str,
    qty: int,
    store: str | None,
    reason: str,
    expected: int | None,
    key: str | None,
    as_json: bool,
) -> None:
    body: dict[str, Any] = {"operation": op, "quantity": qty, "reason": reason}
    if store:
        body["storeId"] = store
    if expected is not None:
        body["expectedVersion"] = expected
    headers = {"X-Idempotency-Key": key or str(uuid.uuid4())}
    r = State.client().request(
        "POST", f"/api/v1/products/{ref}/stock", body=body, headers=headers, retry=True
    )
    _emit(r, as_json, render.stock_result)


Qty = Annotated[int, typer.Argument(min=0, help="quantity")]


@stock_app.command("add")
def stock_add(
    ref: str,
    quantity: Qty,
    store: Store = None,
    reason: Reason = "receive",
    expected_version: ExpectedVersion = None,
    key: Key = None,
    as_json: Json = False,
) -> None:
    """Receive stock: on hand += QUANTITY."""
    _stock_change("add", ref, quantity, store, reason, expected_version, key, as_json)


@stock_app.command("remove")
def stock_remove(
    ref: str,
    quantity: Qty,
    store: Store = None,
    reason: Reason = "adjust",
    expected_version: ExpectedVersion = None,
    key: Key = None,
    as_json: Json = False,
) -> None:
    """Take stock out: on hand -= QUANTITY (never below what is reserved)."""
    _stock_change("subtract", ref, quantity, store, reason, expected_version, key, as_json)


@stock_app.command("set")
def stock_set(
    ref: str,
    quantity: Qty,
    store: Store = None,
    reason: Reason = "count",
    expected_version: ExpectedVersion = None,
    key: Key = None,
    as_json: Json = False,
) -> None:
    """Record a physical count: on hand = QUANTITY."""
    _stock_change("set", ref, quantity, store, reason, expected_version, key, as_json)


@app.command("availability")
def availability(
    ref: Annotated[str, typer.Argument(help="SKU or product id")],
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Availability of a product in every store, with how fresh each view is."""
    a = State.client().get(f"/api/v1/products/{ref}/availability", storeId=store)
    _emit(a, as_json, render.availability)


@app.command("history")
def history(
    ref: Annotated[str, typer.Argument(help="SKU or product id")],
    store: Store = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time or 30m, 24h, 7d")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: Json = False,
) -> None:
    """Stock movements of a product, newest first."""
    h = State.client().get(
        f"/api/v1/products/{ref}/history", storeId=store, since=since, limit=limit
    )
    _emit(h, as_json, render.history)


# ------------------------------------------------------------- reservations
@app.command("reserve")
def reserve(
    ref: Annotated[str, typer.Argument(help="SKU or product id")],
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
    body: dict[str, Any] = {
        "reservationId": rid or str(uuid.uuid4()),
        "productId": ref,
        "quantity": quantity,
    }
    for k, v in (("storeId", store), ("customerId", customer), ("ttl", ttl)):
        if v is not None:
            body[k] = v
    r = State.client().request("POST", "/api/v1/reservations", body=body, retry=True)
    _emit(r, as_json, render.reservation)


@app.command("confirm")
def confirm(
    rid: Annotated[str, typer.Argument(help="reservation id")],
    order: Annotated[str | None, typer.Option("--order", help="order id")] = None,
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Confirm a reservation: records the sale."""
    body = {"orderId": order} if order else {}
    r = State.client().request(
        "POST",
        f"/api/v1/reservations/{rid}/confirm",
        body=body,
        params={"storeId": store},
        retry=True,
    )
    _emit(r, as_json, render.reservation)


@app.command("cancel")
def cancel(
    rid: Annotated[str, typer.Argument(help="reservation id")],
    store: Store = None,
    as_json: Json = False,
) -> None:
    """Cancel a reservation: frees the stock."""
    State.client().request(
        "DELETE", f"/api/v1/reservations/{rid}", params={"storeId": store}, retry=True
    )
    if as_json:
        render.print_json({"reservationId": rid, "status": "CANCELLED"})
    else:
        render.message(f"Reservation {rid} cancelled.")


@reservation_app.command("show")
def reservation_show(rid: str, as_json: Json = False) -> None:
    """Show one reservation."""
    _emit(State.client().get(f"/api/v1/reservations/{rid}"), as_json, render.reservation)


@reservation_app.command("list")
def reservation_list(
    status: Annotated[
        str | None, typer.Option("--status", help="PENDING, CONFIRMED, CANCELLED or EXPIRED")
    ] = None,
    store: Store = None,
    sku: Annotated[str | None, typer.Option("--sku")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: Json = False,
) -> None:
    """List reservations, newest first."""
    if status and status.upper() not in ("PENDING", "CONFIRMED", "CANCELLED", "EXPIRED"):
        raise UsageError(f"--status: {status!r} must be PENDING, CONFIRMED, CANCELLED or EXPIRED")
    data = State.client().get(
        "/api/v1/reservations",
        status=status.upper() if status else None,
        storeId=store,
        sku=sku,
        limit=limit,
    )
    _emit(data["data"], as_json, render.reservations)


# ------------------------------------------------------------------ imports
def _read_rows(file: Path, fmt: str | None, parse: Any) -> list[dict[str, Any]]:
    from inventory_cli import importfile

    try:
        records = importfile.read_records(file, importfile.detect_format(file, fmt))
    except importfile.ImportFileError as exc:
        raise UsageError(f"{file}: {exc}") from exc
    rows, errors = parse(records)
    if errors:
        for e in errors[:50]:
            render.message(f"{file}: {e}")
        if len(errors) > 50:
            render.message(f"... and {len(errors) - 50} more")
        raise UsageError(f"{len(errors)} invalid row(s) in {file}; nothing was imported")
    if not rows:
        raise UsageError(f"{file} has no rows to import")
    return rows


def _send_import(path: str, rows: list[dict[str, Any]], dry_run: bool, force: bool) -> Any:
    body = {"rows": rows, "dryRun": dry_run, "force": force}
    progress = None
    if len(rows) >= 5000 and sys.stderr.isatty():
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=render.err(),
            transient=True,
        )
        progress.start()
        progress.add_task(f"importing {len(rows)} rows", total=None)
    try:
        return State.client().request("POST", path, body=body, timeout=600.0, retry=True)
    except CliError as exc:
        for e in exc.body.get("errors", [])[:50]:
            where = f"line {e['line']}" if "line" in e else ""
            render.message(f"{where}: {e.get('field')}: {e.get('error')}".lstrip(": "))
        raise
    finally:
        if progress is not None:
            progress.stop()


@app.command("import")
def import_stock(
    file: Path,
    fmt: Format = None,
    dry_run: DryRun = False,
    force: Force = False,
    as_json: Json = False,
) -> None:
    """Import stock levels from CSV, JSON or YAML (columns: sku, storeId, quantity,
    mode set|add, reason). All rows or none; re-importing the same file is a no-op."""
    from inventory_cli import importfile

    rows = _read_rows(file, fmt, importfile.stock_rows)
    result = _send_import("/api/v1/imports/stock", rows, dry_run, force)
    _emit(result, as_json, lambda r: render.import_result(r, "rows"))


# --------------------------------------------------------------- operations
@agent_app.command("status")
def agent_status(as_json: Json = False) -> None:
    """The agent's health: ledger, expiry task, outbox, NATS."""
    from inventory_cli.errors import UnreachableError

    client = State.client()
    try:
        h = client.get("/health")
    except UnreachableError as exc:
        if "unhealthy" in exc.message or exc.body.get("status") == "unhealthy":
            h = exc.body
        else:
            raise
    _emit(h, as_json, render.health)
    if h.get("status") != "healthy":
        raise typer.Exit(1)


@sync_app.command("status")
def sync_status(as_json: Json = False) -> None:
    """Replication: connection, outbox backlog, peers, state digests."""
    _emit(State.client().get("/api/v1/sync/status"), as_json, render.sync_status)


@app.command("conflicts")
def conflicts(
    since: Annotated[str | None, typer.Option("--since", help="ISO time or 30m, 24h, 7d")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: Json = False,
) -> None:
    """Writes that lost a merge (last-write-wins) or oversold, newest first."""
    data = State.client().get("/api/v1/conflicts", since=since, limit=limit)
    _emit(data["data"], as_json, render.conflicts)


def main() -> None:
    try:
        # standalone mode: typer/click print usage errors and exit 2 themselves
        app()
    except CliError as exc:
        render.error(exc.message)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        # The process ends now: spare its final garbage collection a walk over
        # every object typer, pydantic and rich created (a fifth of a short
        # command's run). atexit handlers still run; what only that walk would
        # free (reference cycles), the end of the process frees.
        gc.freeze()


if __name__ == "__main__":
    main()
