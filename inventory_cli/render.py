"""All output goes through here: rich tables for people, JSON for scripts.

Data goes to stdout; messages and progress to stderr. Colour follows the
terminal (rich) and NO_COLOR (no escape codes at all).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal

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


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def emit(obj: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    """A command's result: its JSON (``--json``), else ``show`` for people."""
    if as_json:
        print_json(obj)
    else:
        show(obj)


def message(text: str, style: str = "") -> None:
    err().print(text, style=style or None, markup=False)


def error(text: str) -> None:
    err().print(f"Error: {text}", style="bold red", markup=False)


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
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    numeric: Sequence[str] = (),
) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col, justify="right" if col in numeric else "left", overflow="fold")
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    out().print(t)


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
def products(items: list[dict[str, Any]]) -> None:
    table(
        "Products",
        ["SKU", "Name", "Category", "Price", "Active", "ID"],
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
        numeric=["Price"],
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
    out().print(
        f"{r['sku']} @ {r['storeId']}: on hand {r['quantity']}, reserved "
        f"{r['reserved']}, available {r['available']} (version {r['version']}){replay}"
    )


def reservations(items: list[dict[str, Any]]) -> None:
    table(
        "Reservations",
        ["ID", "SKU", "Store", "Qty", "Status", "Customer", "Order", "Expires"],
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
        numeric=["Qty"],
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


def history(h: dict[str, Any]) -> None:
    table(
        f"History of {h['sku']}",
        ["When", "Store", "Kind", "Qty", "Reason", "By", "Origin", "Note"],
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
        numeric=["Qty"],
    )


def conflicts(items: list[dict[str, Any]]) -> None:
    table(
        "Conflicts",
        ["Detected", "Kind", "SKU", "Store", "Kept", "Lost", "Detail"],
        [
            (
                when(c["detectedAt"]),
                c["kind"],
                c["sku"],
                c["storeId"],
                c["winner"],
                c["loser"],
                conflict_detail(c),
            )
            for c in items
        ],
    )


def conflict_detail(c: dict[str, Any]) -> str:
    """One line a person can read; ``--json`` has the full detail."""
    d = c.get("detail") or {}
    kind = c["kind"]
    if kind in ("product_field", "store_field", "stock_setting"):
        return f"{d.get('field')}: kept {d.get('kept')!r}, lost {d.get('lost')!r}"
    if kind == "superseded_delta":
        if "delta" in d:
            return f"delta {d['delta']:+d} made before count {d.get('count')} it did not know"
        return f"delta {d.get('lost')} ordered before count {d.get('count')}"
    if kind == "concurrent_count":
        return f"count {d.get('lost')} lost to a later count {d.get('kept')}"
    if kind == "negative_available":
        return f"on hand {d.get('onHand')}, reserved {d.get('reserved')}"
    if kind == "cancel_vs_receipt":
        arrived = int(d.get("received") or 0) + int(d.get("damaged") or 0)
        return (
            f"transfer {d.get('transferId')}: its cancel took back {d.get('claimed')}, but "
            f"{arrived} of {d.get('shipped')} arrived: it returns {d.get('cancelled')}"
        )
    return ", ".join(f"{k}={v}" for k, v in d.items())


def import_result(r: dict[str, Any], what: str) -> None:
    if r.get("alreadyImported"):
        message(
            f"This file was already imported at {r.get('importedAt')}: nothing applied "
            "(use --force to apply it again)."
        )
        return
    changes = r.get("changes", [])
    if r.get("dryRun"):
        if changes:
            if "from" in (changes[0] if changes else {}):
                stock_changes(changes)
            else:
                table(
                    "Changes (dry run)",
                    ["Line", "SKU", "Action", "Fields"],
                    [(c["line"], c["sku"], c["action"], ", ".join(c["fields"])) for c in changes],
                    numeric=["Line"],
                )
        message(f"Dry run: {len(changes)} of {r['rows']} {what} would change; nothing applied.")
        return
    message(f"Imported {r['rows']} {what}: {r['applied']} changed, {r['unchanged']} unchanged.")


SETTING_COLUMNS = {
    "safetyStock": "Safety",
    "reorderPoint": "Point",
    "maxStock": "Max",
    "reorderQty": "Qty",
}


def stock_changes(changes: list[dict[str, Any]]) -> None:
    """A stock import's changes; a column for each setting it changes
    (``-``: unset; for safety stock, the store's default applies)."""
    given = [k for k in SETTING_COLUMNS if any(k in c for c in changes)]
    table(
        "Changes (dry run)",
        ["Line", "SKU", "Store", "Mode", "From", "To", *(SETTING_COLUMNS[k] for k in given)],
        [
            (
                c["line"],
                c["sku"],
                c["storeId"],
                c["mode"],
                c["from"],
                c["to"],
                *(_setting_change(c.get(k)) for k in given),
            )
            for c in changes
        ],
        numeric=["Line", "From", "To"],
    )


def _setting_change(s: dict[str, Any] | None) -> str:
    if s is None:
        return ""
    return " -> ".join("-" if v is None else str(v) for v in (s["from"], s["to"]))


def health(h: dict[str, Any]) -> None:
    out().print(
        f"Agent {h['storeId']} ({h['mode']}, v{h['version']}): {h['status']}, "
        f"up {h['uptimeSeconds']} s"
    )
    table(
        None,
        ["Check", "OK", "Detail"],
        [
            (
                name,
                "yes" if c.get("ok") else "NO",
                ", ".join(f"{k}={v}" for k, v in c.items() if k != "ok"),
            )
            for name, c in h["checks"].items()
        ],
    )


def sync_status(s: dict[str, Any]) -> None:
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
            ["Store", "Last event", "Applied seq", "Last heartbeat", "Lag (s)", "State"],
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
            numeric=["Applied seq", "Lag (s)"],
        )
    table("State digests", ["Scope", "Digest"], sorted(s.get("digests", {}).items()))
