"""How routed reservations (``--store any``) look: the attempts table, a
routing record, a list of them. Beside ``render``, whose helpers it uses."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import fields, message, reservation, table, when
from inventory_cli.tables import Col

ATTEMPTS = (
    Col("Store", "code"),
    Col("Outcome", "code"),
    Col("Online avail.", "number", 2),
    Col("Reservation", "id", 3),
    Col("Cleanup", "text", 2, min_width=10),
    Col("Note", "prose", min_width=24),
)
RECORDS = (
    Col("Request", "id"),
    Col("Status", "code"),
    Col("SKU", "sku"),
    Col("Qty", "number"),
    Col("Store", "code", 2),
    Col("Reservation", "id", 4),
    Col("Pending cleanups", "number", 2),
    Col("Created", "time", 3),
)


def _cleanup(a: dict[str, Any]) -> str:
    c = a.get("cleanup")
    if not c:
        return ""
    if c["state"] == "pending":
        return f"pending (tries {c['tries']}, next {when(c.get('nextAt'))})"
    return str(c["state"])


def attempts(routing: dict[str, Any], *, wide: bool = False, to_stderr: bool = False) -> None:
    """The stores asked (or skipped), in the order of the ranking."""
    table(
        f"Routing {routing['requestId']} ({routing['strategy']})",
        ATTEMPTS,
        [
            (
                a["storeId"],
                a["outcome"],
                a["availableOnline"],
                a.get("reservationId"),
                _cleanup(a),
                a.get("error"),
            )
            for a in routing["attempts"]
        ],
        wide=wide,
        to_stderr=to_stderr,
    )


def routed(r: dict[str, Any], *, wide: bool = False) -> None:
    """A reservation's answer; a routed one's attempts under it."""
    reservation(r)
    if r.get("routing"):
        attempts(r["routing"], wide=wide)


def record(r: dict[str, Any], *, wide: bool = False) -> None:
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
    attempts(r, wide=wide)


def records(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    if not items:
        message("No routed reservations.")
        return
    table(
        "Routed reservations",
        RECORDS,
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
        wide=wide,
    )
