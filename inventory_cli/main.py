"""``inv``: the command line for a store's inventory agent.

This module is the app: its global options, the command table (the commands
themselves are in ``inventory_cli.commands``, one module per area) and the
one place where an error becomes an exit code (``EXIT_CODES``).
"""

from __future__ import annotations

import dataclasses
import gc
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from inventory_cli import render
from inventory_cli.commands import (
    alerts,
    auth,
    imports,
    operations,
    overview,
    products,
    reservations,
    stock,
    stores,
    transfers,
)
from inventory_cli.context import Context
from inventory_cli.errors import (
    CliError,
    ConflictError,
    NotFoundError,
    UnreachableError,
    UsageError,
)

if TYPE_CHECKING:
    from typer._click import Context as ClickContext  # typer's own copy of click

# Each error's exit code (the first of its classes found here, most specific
# first: see the tree in inventory_cli.errors); CliError and anything else: 1.
EXIT_OTHER = 1
EXIT_CODES: tuple[tuple[type[CliError], int], ...] = (
    (UsageError, 2),
    (NotFoundError, 3),
    (ConflictError, 4),
    (UnreachableError, 5),
)
EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 other error, 2 usage or invalid input, 3 not found, "
    "4 conflict (insufficient stock, version mismatch, id reused), "
    "5 agent or owning store unreachable."
)

HELP = (
    "Inventory of this store (and what the others have), through the local agent. "
    "Targets the agent with --agent or INV_AGENT (socket path or http URL); acts as "
    "the user of 'inv login', or of --token / INV_TOKEN. " + EXIT_CODES_HELP
)


def exit_code(exc: CliError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_OTHER


class _App(TyperGroup):
    """The root command: a CliError from any command is one ``Error: ...``
    line on stderr (no traceback) and its exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            render.error(exc.message)
            ctx.exit(exit_code(exc))


def _group(help: str) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True)


# add_completion: typer's --install-completion / --show-completion (bash, zsh,
# fish). It costs a command's start-up nothing measurable: typer imports its
# completion machinery either way, and the shell's requests (the
# _INV_COMPLETE variable) are answered before any command runs; the
# candidates that need the agent are inventory_cli.completion's.
app = typer.Typer(
    cls=_App,
    help=HELP,
    invoke_without_command=True,  # ``inv`` alone: the one-screen overview
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _global(
    ctx: typer.Context,
    agent: Annotated[
        str | None,
        typer.Option("--agent", envvar="INV_AGENT", help="agent socket path or http(s) URL"),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="INV_TOKEN", help="bearer token for a TCP agent")
    ] = None,
) -> None:
    # a caller (a test) may pass obj=Context(transport=...): keep what it gave
    given = ctx.obj if isinstance(ctx.obj, Context) else Context()
    ctx.obj = dataclasses.replace(given, agent=agent, token=token)
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        overview.overview(ctx)


# The command table. Order matters: it is the order of ``inv --help``.
app.command("sell")(stock.sell)
app.command("receive")(stock.receive)
app.command("availability")(stock.availability)
app.command("history")(stock.history)
app.command("reserve")(reservations.reserve)
app.command("confirm")(reservations.confirm)
app.command("cancel")(reservations.cancel)
app.command("import")(imports.import_stock)
app.command("conflicts")(operations.conflicts)
app.command("alerts")(alerts.alerts)
app.command("login")(auth.login)
app.command("logout")(auth.logout)
app.command("whoami")(auth.whoami)

product_app = _group("The catalogue: add, update, list, show, import.")
product_app.command("add")(products.add)
product_app.command("update")(products.update)
product_app.command("list")(products.list_)
product_app.command("show")(products.show)
product_app.command("import")(imports.import_products)

stock_app = _group("Stock levels: show, add, remove, set; safety stock, reorder points, low.")
stock_app.command("show")(stock.show)
stock_app.command("add")(stock.add)
stock_app.command("remove")(stock.remove)
stock_app.command("set")(stock.set_)
stock_app.command("safety")(stock.safety)
stock_app.command("reorder")(alerts.reorder)
stock_app.command("low")(alerts.low)

store_app = _group("The store directory: set, list, show.")
store_app.command("set")(stores.set_)
store_app.command("list")(stores.list_)
store_app.command("show")(stores.show)

reservation_app = _group("Reservations: show, list; how routed ones went.")
reservation_app.command("show")(reservations.show)
reservation_app.command("list")(reservations.list_)
reservation_app.command("routing")(reservations.routing)
reservation_app.command("routings")(reservations.routings)

transfer_app = _group(
    "Transfers of stock between stores: create, ship, receive, cancel, show, list."
)
transfer_app.command("create")(transfers.create)
transfer_app.command("ship")(transfers.ship)
transfer_app.command("receive")(transfers.receive)
transfer_app.command("cancel")(transfers.cancel)
transfer_app.command("show")(transfers.show)
transfer_app.command("list")(transfers.list_)

agent_app = _group("The local agent.")
agent_app.command("status")(operations.agent_status)

sync_app = _group("Replication with the other stores.")
sync_app.command("status")(operations.sync_status)

app.add_typer(product_app, name="product")
app.add_typer(stock_app, name="stock")
app.add_typer(reservation_app, name="reservation")
app.add_typer(store_app, name="store")
app.add_typer(transfer_app, name="transfer")
app.add_typer(agent_app, name="agent")
app.add_typer(sync_app, name="sync")


def main() -> None:
    try:
        # standalone mode: typer/click print usage errors and exit 2 themselves
        app()
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
