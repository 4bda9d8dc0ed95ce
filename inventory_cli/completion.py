"""Shell completion's candidates that only the agent knows: SKUs, store ids,
reservation, transfer and routing ids.

Commands and options complete by click itself (``inv --install-completion``
installs typer's script for bash, zsh or fish). The functions here are the
``autocompletion`` of the arguments and options in ``commands.options``; the
shell runs ``inv`` on every Tab press, so they are quick and quiet: one or
two small requests, all within ``TIMEOUT``; anything wrong (no agent, a slow
one, a refused token, an answer of another shape) completes nothing, with
no message and no wait (the shell then offers what it offers by default).

Ids complete whole: the shell puts the candidate on the command line, and
only a whole id is sure to stay unique (zsh and fish show each one's SKU,
store and status beside it). Reservations waiting to be confirmed or
cancelled (PENDING) come first.

They cost a command's start-up nothing: typer builds every command's
parameters at each start, and reads the signature of each completion function
it is given (~2 ms for the ~35 parameters here, most of ``inv stock show``'s
own work). So each is handed to typer as a ``_WhenCompleting``, false unless
the shell is asking (``COMPLETE_VAR`` set), which typer then leaves out; and
the client is imported only when a completion runs.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

import typer  # typer evaluates these functions' annotations

from inventory_cli.context import Context

__all__ = [
    "COMPLETE_VAR",
    "reservations",
    "routings",
    "skus",
    "stores",
    "stores_or_any",
    "transfers",
]

COMPLETE_VAR = "_INV_COMPLETE"  # click's: set by the shell's script when it asks
TIMEOUT = 0.5  # seconds for all of one completion's requests
LIMIT = 50  # candidates asked for (a screenful; type more to narrow)
Candidates = list[tuple[str, str]]  # (value, what it is)
OPEN_TRANSFERS = ("DRAFT", "SHIPPED", "PARTIALLY_RECEIVED")


class _WhenCompleting:
    """A completion function that is false, so that typer (``if not
    callback``) attaches nothing, unless the shell is asking for completions.
    If typer ever stops testing it that way, completion still works and only
    the start-up pays the ~2 ms again."""

    def __init__(self, fn: Callable[[typer.Context, str], Candidates]) -> None:
        functools.update_wrapper(self, fn)  # typer reads fn's signature through it
        self._fn = fn

    def __bool__(self) -> bool:
        return COMPLETE_VAR in os.environ

    def __call__(self, ctx: typer.Context, incomplete: str) -> Candidates:
        return self._fn(ctx, incomplete)


class _Agent:
    """The agent the command line names (``--agent``/``--token`` or their
    variables: parsed already when a completion runs), asked within one deadline."""

    def __init__(self, ctx: typer.Context) -> None:
        root = ctx.find_root().params
        given = ctx.find_object(Context)  # a test's transport, else none
        # the token as any command's: --token / INV_TOKEN, else the stored login
        where = Context(
            agent=root.get("agent"),
            token=root.get("token"),
            transport=given.transport if given is not None else None,
        )
        self._client = where.client_within(TIMEOUT)
        self._deadline = time.monotonic() + TIMEOUT

    def rows(self, path: str, **params: Any) -> list[dict[str, Any]]:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no time left for another request")
        query = {k: v for k, v in params.items() if v}
        data: list[dict[str, Any]] = self._client.request("GET", path, params=query, timeout=left)[
            "data"
        ]
        return data


def _quietly(
    ctx: typer.Context, incomplete: str, ask: Callable[[_Agent], Candidates]
) -> Candidates:
    """What ``ask`` finds that starts with ``incomplete``; on any failure, nothing."""
    try:
        found = ask(_Agent(ctx))
        return [(str(v), str(h)) for v, h in found if str(v).startswith(incomplete)]
    except Exception:  # a completion never shows an error: it has nothing to offer
        return []


@_WhenCompleting
def skus(ctx: typer.Context, incomplete: str) -> Candidates:
    def ask(agent: _Agent) -> Candidates:
        found = agent.rows("/api/v1/products", skuPrefix=incomplete, limit=LIMIT)
        return [(p["sku"], p["name"]) for p in found]

    return _quietly(ctx, incomplete, ask)


def _stores(agent: _Agent) -> Candidates:
    return [(s["storeId"], s.get("name") or "") for s in agent.rows("/api/v1/stores")]


@_WhenCompleting
def stores(ctx: typer.Context, incomplete: str) -> Candidates:
    return _quietly(ctx, incomplete, _stores)


@_WhenCompleting
def stores_or_any(ctx: typer.Context, incomplete: str) -> Candidates:
    """``reserve --store``: a store, or ``any`` (the store that can)."""
    return _quietly(ctx, incomplete, lambda agent: [*_stores(agent), ("any", "the store that can")])


def _describe_reservation(r: dict[str, Any]) -> str:
    return f"{r['sku']} ×{r['quantity']} {r['storeId']} {r['status']}"


@_WhenCompleting
def reservations(ctx: typer.Context, incomplete: str) -> Candidates:
    def ask(agent: _Agent) -> Candidates:
        path = "/api/v1/reservations"
        found = agent.rows(path, status="PENDING", idPrefix=incomplete, limit=LIMIT)
        if len(found) < LIMIT:  # then the others, newest first (or in id order)
            seen = {r["reservationId"] for r in found}
            rest = agent.rows(path, idPrefix=incomplete, limit=LIMIT)
            found += [r for r in rest if r["reservationId"] not in seen][: LIMIT - len(found)]
        return [(r["reservationId"], _describe_reservation(r)) for r in found]

    return _quietly(ctx, incomplete, ask)


@_WhenCompleting
def transfers(ctx: typer.Context, incomplete: str) -> Candidates:
    def ask(agent: _Agent) -> Candidates:
        found = agent.rows("/api/v1/transfers", idPrefix=incomplete, limit=LIMIT)
        found.sort(key=lambda t: t["status"] not in OPEN_TRANSFERS)  # stable: open ones first
        return [
            (t["transferId"], f"{t['fromStoreId']} → {t['toStoreId']} {t['status']}") for t in found
        ]

    return _quietly(ctx, incomplete, ask)


@_WhenCompleting
def routings(ctx: typer.Context, incomplete: str) -> Candidates:
    def ask(agent: _Agent) -> Candidates:
        found = agent.rows("/api/v1/routings", idPrefix=incomplete, limit=LIMIT)
        return [(r["requestId"], f"{r['sku']} ×{r['quantity']} {r['status']}") for r in found]

    return _quietly(ctx, incomplete, ask)
