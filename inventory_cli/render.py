"""All output goes through here: rich tables for people, JSON for scripts.

Data goes to stdout; messages and progress to stderr. Colour follows the
terminal (rich) and NO_COLOR (no escape codes at all). Where rich would
write plain text (a pipe, a file, NO_COLOR) tables, lines and messages are
written by ``inventory_cli.plain`` instead, the same bytes without importing
rich (a fifth of a short command's run).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal

from inventory_cli import plain
from inventory_cli.tables import BOXED, Col, Style

_out = None
_err = None


def _color_system() -> Literal["auto"] | None:
    """NO_COLOR (https://no-color.org) turns off every escape code, not only
    colours: rich alone would still print bold and italic to a terminal."""
    return None if os.environ.get("NO_COLOR") else "auto"


def reset() -> None:
    """Forget the consoles: the next output builds them again, for the streams
    and environment of then (a test running commands in one process)."""
    global _out, _err
    _out = _err = None


def out() -> Any:
    global _out
    if _out is None:
        from rich.console import Console

        # emoji=False: ":x:" in a user's text (SKU:QTY arguments, notes) stays as typed
        _out = Console(highlight=False, soft_wrap=False, emoji=False, color_system=_color_system())
    return _out


def err() -> Any:
    global _err
    if _err is None:
        from rich.console import Console

        # soft_wrap: a message is one line, never cut at 80 columns in a log or
        # pipe (that would split the command it suggests, and grep)
        _err = Console(
            stderr=True,
            highlight=False,
            soft_wrap=True,
            emoji=False,
            color_system=_color_system(),
        )
    return _err


def _plain_width(stream: Any) -> int | None:
    """The width of ``stream`` if what rich would write there is plain text
    (``inventory_cli.plain``), else None."""
    return plain.width(stream, no_color=_color_system() is None)


def _write(stream: Any, text: str) -> None:
    stream.write(text)
    stream.flush()  # as rich does after each print: stdout and stderr stay in order


def say(text: str, *, markup: bool = True) -> None:
    """A line of output on stdout, as ``out().print(text)`` writes it (without
    rich when it is plain text that fits)."""
    screen = _plain_width(sys.stdout)
    written = None if screen is None else plain.line(text, screen, markup=markup)
    if written is None:
        out().print(text, markup=markup)
    else:
        _write(sys.stdout, written)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def emit(obj: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    """A command's result: its JSON (``--json``), else ``show`` for people."""
    if as_json:
        print_json(obj)
    else:
        show(obj)


def message(text: str, style: str = "") -> None:
    _note(text, style)


def error(text: str) -> None:
    _note(f"Error: {text}", "bold red")


def _note(text: str, style: str) -> None:
    """A line on stderr, never wrapped (``err``'s soft_wrap): as it is where
    rich would write no styles, else through rich."""
    if _plain_width(sys.stderr) is not None and plain.simple(text):
        _write(sys.stderr, text + "\n")
    else:
        err().print(text, style=style or None, markup=False)


def when(iso: str | None) -> str:
    """An API timestamp, short enough for a table: the time alone when it is
    today (UTC), else date and time."""
    if not iso:
        return ""
    import time

    today = time.strftime("%Y-%m-%d", time.gmtime())
    return iso[11:19] if iso.startswith(today) else iso[:19].replace("T", " ")


def table(
    title: str | None,
    columns: Sequence[Col],
    rows: Sequence[Sequence[Any]],
    *,
    wide: bool = False,
    style: Style = BOXED,
    to_stderr: bool = False,
) -> None:
    """Every table: laid out for the console's width (``tables.fit``), data on
    stdout; what was left out to fit, said on stderr. Drawn without rich
    where rich would draw plain text (``inventory_cli.plain``)."""
    from inventory_cli.tables import cells, draw, fit

    shown = cells(columns, rows, wide)
    stream = sys.stderr if to_stderr else sys.stdout
    screen = _plain_width(stream)
    text = None
    if screen is not None:
        layout = fit(columns, shown, screen, style, wide)
        text = plain.draw(title, columns, shown, layout, style)
    if text is None:
        console = err() if to_stderr else out()
        layout = fit(columns, shown, console.width, style, wide)
        # crop=False: a table whose must-show columns are wider than the terminal
        # keeps its ids whole (the terminal wraps the line, a pipe keeps it)
        console.print(draw(title, columns, shown, layout, style), crop=False, soft_wrap=False)
    else:
        _write(stream, text)
    if layout.dropped:
        message(f"(not shown: {', '.join(layout.dropped)}; --wide shows every column)", "dim")


def fields(title: str, obj: dict[str, Any], keys: Sequence[str] | None = None) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    for key in keys or list(obj):
        value = obj.get(key)
        if isinstance(value, dict | list):
            value = json.dumps(value)
        t.add_row(key, "" if value is None else str(value))
    out().print(t)


# ----------------------------------------------------------- per object kind
PRODUCTS = (
    Col("SKU", "sku"),
    Col("Name", "text"),
    Col("Category", "text", 3, min_width=8),
    Col("Price", "number", 2),
    Col("Active", "code", 5),
    Col("ID", "id", 4),
)


def products(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    table(
        "Products",
        PRODUCTS,
        [
            (
                p["sku"],
                p["name"],
                p["category"],
                f"{p['price']:.2f}",
                "yes" if p["active"] else "no",
                p["id"],
            )
            for p in items
        ],
        wide=wide,
    )


def product(p: dict[str, Any]) -> None:
    fields(
        f"Product {p['sku']}",
        p,
        [
            "sku",
            "id",
            "name",
            "description",
            "category",
            "price",
            "active",
            "createdAt",
            "updatedAt",
        ],
    )


def stock_result(r: dict[str, Any]) -> None:
    replay = " (replayed: already applied)" if r.get("replayed") else ""
    say(
        f"{r['sku']} @ {r['storeId']}: on hand {r['quantity']}, reserved "
        f"{r['reserved']}, available {r['available']} (version {r['version']}){replay}"
    )


RESERVATIONS = (
    Col("ID", "id"),
    Col("SKU", "sku"),
    Col("Store", "code", 2),
    Col("Qty", "number"),
    Col("Status", "code"),
    Col("Customer", "code", 4),
    Col("Order", "code", 5),
    Col("Expires", "time", 3),
)


def reservations(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    table(
        "Reservations",
        RESERVATIONS,
        [
            (
                r["reservationId"],
                r["sku"],
                r["storeId"],
                r["quantity"],
                r["status"],
                r.get("customerId"),
                r.get("orderId"),
                when(r["expiresAt"]),
            )
            for r in items
        ],
        wide=wide,
    )


def reservation(r: dict[str, Any]) -> None:
    fields(
        f"Reservation {r['reservationId']}",
        r,
        [
            "reservationId",
            "sku",
            "productId",
            "storeId",
            "quantity",
            "status",
            "customerId",
            "orderId",
            "createdBy",
            "createdAt",
            "updatedBy",
            "updatedAt",
            "expiresAt",
            "remainingSeconds",
        ],
    )


HISTORY = (
    Col("When", "time"),
    Col("Store", "code", 3),
    Col("Kind", "code"),
    Col("Qty", "number"),
    Col("Reason", "text", 2, min_width=10),
    Col("By", "code", 2),
    Col("Origin", "code", 5),
    Col("Note", "prose", 4),
)


def history(h: dict[str, Any], *, wide: bool = False) -> None:
    table(
        f"History of {h['sku']}",
        HISTORY,
        [
            (
                when(m["at"]),
                m["storeId"],
                m["kind"],
                m["quantity"],
                m["reason"],
                m["actor"],
                m["origin"],
                "superseded by a later count" if m["superseded"] else "",
            )
            for m in h["data"]
        ],
        wide=wide,
    )


CHECKS = (Col("Check", "code"), Col("OK", "code"), Col("Detail", "prose"))


def health(h: dict[str, Any], *, wide: bool = False) -> None:
    out().print(
        f"Agent {h['storeId']} ({h['mode']}, v{h['version']}): {h['status']}, "
        f"up {h['uptimeSeconds']} s"
    )
    table(
        None,
        CHECKS,
        [
            (
                name,
                "yes" if c.get("ok") else "NO",
                ", ".join(f"{k}={v}" for k, v in c.items() if k != "ok"),
            )
            for name, c in h["checks"].items()
        ],
        wide=wide,
    )


PEERS = (
    Col("Store", "code"),
    Col("Last event", "time", 3),
    Col("Applied seq", "number", 2),
    Col("Last heartbeat", "time", 4),
    Col("Lag (s)", "number"),
    Col("State", "code"),
)
DIGESTS = (Col("Scope", "code"), Col("Digest", "code"))


def sync_status(s: dict[str, Any], *, wide: bool = False) -> None:
    state = "connected" if s.get("connected") else "not connected"
    out().print(
        f"Store {s['storeId']}: {s['mode']}, {state}"
        + (f" to {s['server']}" if s.get("server") else "")
        + f"; outbox backlog {s['outboxBacklog']}; quarantined {s.get('quarantined', 0)}"
    )
    if s.get("publishBlocked"):
        out().print(f"NOT PUBLISHING: {s['publishBlocked']}", style="bold red", markup=False)
    elif s.get("lastError") and not s.get("connected"):
        out().print(f"Last error: {s['lastError']}", markup=False)
    if s.get("peers"):
        table(
            "Peers",
            PEERS,
            [
                (
                    p["storeId"],
                    when(p.get("lastEventAt")),
                    p.get("appliedSeq"),
                    when(p.get("lastHeartbeatAt")),
                    p.get("lagSeconds"),
                    p.get("state"),
                )
                for p in s["peers"]
            ],
            wide=wide,
        )
    table("State digests", DIGESTS, sorted(s.get("digests", {}).items()), wide=wide)
