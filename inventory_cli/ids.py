"""Ids as people type them: any unique start of at least ``MIN_PREFIX`` characters.

A table shows an id's first characters (like git); a clerk types those back,
``inv confirm ca65956e``. A command that takes a reservation, transfer or
routing id resolves what it was given (``resolve``) and runs with the whole id:

- a whole id of the shape this CLI draws (a UUID, a ``T-XXXX-XXXX-XXXX``
  transfer id) goes as it is, with no round trip (scripts pay nothing);
- anything else is looked up at the agent (``idPrefix``: one probe of the
  ledger's primary key; the ledger holds the other stores' reservations and
  transfers too, replicated, so the lookup is local even when the action is
  then forwarded to the owner). An id that is exactly what was typed wins
  (ids chosen by a client, ``rsv-123``, may be short or the start of others);
  else one id starting with it is the one; several are a usage error that
  lists them; none is "not found" (or, when the id may belong to a store this
  agent has not heard from, ``elsewhere``, it goes as typed, for that store
  to answer).

Typed in the other case (``T-7k3m``, ``CA65``) and matching nothing, it is
looked up once more in the case this CLI's ids have.

The commands that take an id import this module when they run (~1 ms: a
dataclass and three patterns), so that the start-up of the others does not pay
for it (``inv stock show``, B1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inventory_cli.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from inventory_cli.client import AgentClient

__all__ = ["MIN_PREFIX", "RESERVATION", "ROUTING", "TRANSFER", "Kind", "resolve"]

MIN_PREFIX = 4
SHOWN = 10  # candidates listed for an ambiguous prefix
ASK = 51  # asked for: SHOWN, and enough beyond to say how many more there are
# the characters of an id (the agent's schemas.Ident, and "@" of a routed
# reservation's id at its owner, "REQUEST@STORE")
_ID_CHARS = re.compile(r"[A-Za-z0-9._:@\-]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# commands.transfers.new_id: Crockford's base32, no I, L, O, U
_TRANSFER = re.compile(r"T(?:-[0-9A-HJKMNP-TV-Z]{4}){3}")


@dataclass(frozen=True)
class Kind:
    """One kind of id: where its list is and how to tell its items apart."""

    noun: str
    path: str  # the list route, which takes ``idPrefix``
    key: str  # the id's field in the list's items
    whole: re.Pattern[str]  # the shape of the ids this CLI draws: no lookup
    fold: Callable[[str], str]  # the case those ids have
    listing: str  # the command that lists them
    describe: Callable[[dict[str, Any]], str]  # a candidate, for a clerk to pick


def _reservation(r: dict[str, Any]) -> str:
    return f"{r.get('sku')} ×{r.get('quantity')}  {r.get('storeId')}  {r.get('status')}"


def _transfer(t: dict[str, Any]) -> str:
    return f"{t.get('fromStoreId')} → {t.get('toStoreId')}  {t.get('status')}"


def _routing(r: dict[str, Any]) -> str:
    return f"{r.get('sku')} ×{r.get('quantity')}  {r.get('status')}  {r.get('storeId') or ''}"


RESERVATION = Kind(
    "reservation",
    "/api/v1/reservations",
    "reservationId",
    _UUID,
    str.lower,
    "inv reservation list",
    _reservation,
)
TRANSFER = Kind(
    "transfer",
    "/api/v1/transfers",
    "transferId",
    _TRANSFER,
    str.upper,
    "inv transfer list",
    _transfer,
)
ROUTING = Kind(
    "routed reservation",
    "/api/v1/routings",
    "requestId",
    _UUID,
    str.lower,
    "inv reservation routings",
    _routing,
)


def resolve(
    client: AgentClient, kind: Kind, given: str, *, elsewhere: bool = False, hint: str = ""
) -> str:
    """The whole id that ``given`` stands for (see the module's docstring).
    ``elsewhere``: the id may be another store's that this agent has not
    heard of (the command names that store): matching nothing here, it goes
    as typed. ``hint``: how to go on when nothing matches, after the listing."""
    if kind.whole.fullmatch(given):
        return given
    if not _ID_CHARS.fullmatch(given):
        raise UsageError(
            f"{given!r}: not a {kind.noun} id (letters, digits and . _ : - @ only); "
            f"list them with: {kind.listing}"
        )
    typed, rows = given, _starting_with(client, kind, given)
    if not rows and kind.fold(given) != given:
        typed, rows = kind.fold(given), _starting_with(client, kind, kind.fold(given))
    ids = [str(r[kind.key]) for r in rows]
    if typed in ids:  # in id order, a whole id comes before the longer ones it starts
        return typed
    if len(given) < MIN_PREFIX:
        raise UsageError(
            f"{given!r}: give at least {MIN_PREFIX} characters of the {kind.noun} id "
            f"(or the whole id); list them with: {kind.listing}"
        )
    if not ids:
        if elsewhere:
            return given
        raise NotFoundError(
            f"no {kind.noun} id here starts with {given!r}; list them with: {kind.listing}{hint}"
        )
    if len(ids) == 1:
        return ids[0]
    raise UsageError(ambiguous(kind, given, rows))


def _starting_with(client: AgentClient, kind: Kind, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.get(kind.path, idPrefix=prefix, limit=ASK)["data"]
    return rows


def ambiguous(kind: Kind, given: str, rows: list[dict[str, Any]]) -> str:
    """The message for a prefix several ids start with: the first ``SHOWN``,
    shortened as a table shortens them (``tables.short_id``), with what each is."""
    from inventory_cli import tables

    whole = [str(r[kind.key]) for r in rows[:SHOWN]]
    length = tables.id_length(whole)
    shown = [tables.short_id(i, length) for i in whole]
    pad = max(len(i) for i in shown)
    lines = [f"{given!r} is the start of {_count(len(rows))} {kind.noun} ids; type more of it:"]
    lines += [f"  {i:<{pad}}  {kind.describe(r)}" for i, r in zip(shown, rows, strict=False)]
    if len(rows) > SHOWN:
        more = len(rows) - SHOWN
        lines.append(f"  …and {'at least ' if len(rows) >= ASK else ''}{more} more")
    return "\n".join(lines)


def _count(n: int) -> str:
    return f"at least {n}" if n >= ASK else str(n)
