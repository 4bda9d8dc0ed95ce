"""Flags and arguments shared by several commands, written once.

Those naming a SKU, a store or an id complete in the shell from the agent
(``inventory_cli.completion``); a reservation's, transfer's or routing's id
may be given by its first characters (``inventory_cli.ids``: the command
resolves it)."""

from __future__ import annotations

from typing import Annotated

import typer

from inventory_cli import completion

Json = Annotated[bool, typer.Option("--json", help="print the API's JSON objects")]
Wide = Annotated[
    bool,
    typer.Option(
        "--wide", help="every column, ids in full (the lines may be wider than the terminal)"
    ),
]
Store = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        help="store id (default: the agent's own store)",
        autocompletion=completion.stores,
    ),
]
Ref = Annotated[str, typer.Argument(help="SKU or product id", autocompletion=completion.skus)]
Sku = Annotated[
    str | None, typer.Option("--sku", help="SKU or product id", autocompletion=completion.skus)
]
StoreArg = Annotated[str, typer.Argument(help="store id", autocompletion=completion.stores)]
ReservationId = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="reservation id, or its first characters (at least 4)",
        autocompletion=completion.reservations,
    ),
]
TransferId = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="transfer id, or its first characters (at least 4)",
        autocompletion=completion.transfers,
    ),
]
Since = Annotated[str | None, typer.Option("--since", help="ISO time or 30m, 24h, 7d")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=1000)]
Reason = Annotated[str, typer.Option("--reason", "-r", help="why (kept in the history)")]
ExpectedVersion = Annotated[
    int | None,
    typer.Option("--expected-version", help="only apply if the stock row is still at this version"),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key", help="idempotency key (default: a new one; the same key never applies twice)"
    ),
]
Qty = Annotated[int, typer.Argument(min=0, help="quantity")]
Format = Annotated[
    str | None,
    typer.Option("--format", help="csv, json or yaml (default: from the file extension)"),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="show the changes, apply nothing")]
Force = Annotated[
    bool, typer.Option("--force", help="apply even if this exact file was imported before")
]
