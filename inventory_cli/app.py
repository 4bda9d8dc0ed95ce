"""``inv``: the command line for a store's inventory agent.

This module is the app (``inventory_cli.main`` runs it): its global options,
the command table (the commands themselves are in ``inventory_cli.commands``,
one module per area) and the one place where an error becomes an exit code
(``EXIT_CODES``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer

from inventory_cli.command_tree import Cmd, Group, LazyGroup
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


class _App(LazyGroup):
    """The root command: its commands are ``COMMANDS`` (typer builds the root
    from the app, which has none registered: each is built when named); a
    CliError from any command is one ``Error: ...`` line on stderr (no
    traceback) and its exit code."""

    def __init__(self, *, commands: object = None, **attrs: Any) -> None:
        # ``commands``: those registered with the app, so none
        super().__init__(table=COMMANDS, **attrs)

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            from inventory_cli import render

            render.error(exc.message)
            ctx.exit(exit_code(exc))


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
        from inventory_cli.commands import overview

        overview.overview(ctx)


def _commands(module: str, *names: str) -> dict[str, Cmd]:
    """``names`` of ``inventory_cli.commands.<module>``, each "command" or
    "command=function"."""
    pairs = (name.partition("=")[::2] for name in names)
    return {cmd: Cmd(f"inventory_cli.commands.{module}", fn or cmd) for cmd, fn in pairs}


# The command table, as text: a command's module is imported when it is named
# (inventory_cli.command_tree). Order matters: it is the order of ``inv --help``.
COMMANDS: dict[str, Cmd | Group] = {
    **_commands("stock", "sell", "receive", "availability", "history"),
    **_commands("reservations", "reserve", "confirm", "cancel"),
    **_commands("imports", "import=import_stock"),
    **_commands("operations", "conflicts"),
    **_commands("alerts", "alerts"),
    **_commands("auth", "login", "logout", "whoami"),
    "product": Group(
        "The catalogue: add, update, list, show, import.",
        {
            **_commands("products", "add", "update", "list=list_", "show"),
            **_commands("imports", "import=import_products"),
        },
    ),
    "stock": Group(
        "Stock levels: show, add, remove, set; safety stock, reorder points, low.",
        {
            **_commands("stock", "show", "add", "remove", "set=set_", "safety"),
            **_commands("alerts", "reorder", "low"),
        },
    ),
    "reservation": Group(
        "Reservations: show, list; how routed ones went.",
        _commands("reservations", "show", "list=list_", "routing", "routings"),
    ),
    "store": Group(
        "The store directory: set, list, show.",
        _commands("stores", "set=set_", "list=list_", "show"),
    ),
    "transfer": Group(
        "Transfers of stock between stores: create, ship, receive, cancel, show, list.",
        _commands("transfers", "create", "ship", "receive", "cancel", "show", "list=list_"),
    ),
    "agent": Group("The local agent.", _commands("operations", "status=agent_status")),
    "sync": Group(
        "Replication with the other stores.", _commands("operations", "status=sync_status")
    ),
}
