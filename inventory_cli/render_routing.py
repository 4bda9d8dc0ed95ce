"""How routed reservations (``--store any``) look: the attempts table, a
routing record, a list of them. Beside ``render``, whose helpers it uses."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import err, fields, message, out, reservation, table, when


def _cleanup(a: dict[str, Any]) -> str:
    c = a.get("cleanup")
    if not c:
        return ""
    if c["state"] == "pending":
        return f"pending (tries {c['tries']}, next {when(c.get('nextAt'))})"
    return str(c["state"])


def attempts(routing: dict[str, Any], *, to_stderr: bool = False) -> None:
    """The stores asked (or skipped), in the order of the ranking."""
    from rich.table import Table

    t = Table(
        title=f"Routing {routing['requestId']} ({routing['strategy']})",
        title_justify="left",
        header_style="bold",
    )
    for col in ("Store", "Outcome", "Online avail.", "Reservation", "Cleanup", "Note"):
        t.add_column(col, justify="right" if col == "Online avail." else "left", overflow="fold")
    for a in routing["attempts"]:
        t.add_row(
            a["storeId"],
            a["outcome"],
            str(a["availableOnline"]),
            a.get("reservationId") or "",
            _cleanup(a),
            a.get("error") or "",
        )
    (err() if to_stderr else out()).print(t)


def routed(r: dict[str, Any]) -> None:
    """A reservation's answer; a routed one's attempts under it."""
    reservation(r)
    if r.get("routing"):
        attempts(r["routing"])


def record(r: dict[str, Any]) -> None:
    fields(
        f"Routed reservation {r['requestId']}",
        r,
        [
            "requestId",
            "status",
            "sku",
            "quantity",
            "customerId",
            "storeId",
            "reservationId",
            "error",
            "pendingCleanups",
            "createdAt",
            "updatedAt",
        ],
    )
    attempts(r)


def records(items: list[dict[str, Any]]) -> None:
    if not items:
        message("No routed reservations.")
        return
    table(
        "Routed reservations",
        ["Request", "Status", "SKU", "Qty", "Store", "Reservation", "Pending cleanups", "Created"],
        [
            (
                r["requestId"],
                r["status"],
                r["sku"],
                r["quantity"],
                r.get("storeId"),
                r.get("reservationId"),
                r["pendingCleanups"],
                when(r["createdAt"]),
            )
            for r in items
        ],
        numeric=["Qty", "Pending cleanups"],
    )
