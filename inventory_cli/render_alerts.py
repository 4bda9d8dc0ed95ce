"""Reorder settings, low stock, alerts and their deliveries, for people
(``render`` does the rest)."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import health, message, say, table, when
from inventory_cli.tables import Col


def _unset(value: Any) -> Any:
    return "-" if value is None else value


def reorder_settings(r: dict[str, Any]) -> None:
    state = f"LOW: suggested order {r['suggested']}" if r["low"] else "not low"
    say(
        f"{r['sku']} @ {r['storeId']}: reorder point {_unset(r['reorderPoint'])}, "
        f"max {_unset(r['maxStock'])}, qty {_unset(r['reorderQty'])}; available "
        f"{r['available']}, incoming {r['incoming']}: {state}",
        markup=False,
    )


LOW_STOCK = (
    Col("Store", "code", 2),
    Col("SKU", "sku"),
    Col("Name", "text", 2, min_width=12),
    Col("Available", "number"),
    Col("Incoming", "number", 3),
    Col("Point", "number", 2),
    Col("Max", "number", 4),
    Col("Qty", "number", 4),
    Col("Suggested", "number"),
)


def low_stock(d: dict[str, Any], *, wide: bool = False) -> None:
    where = "every store" if d["storeId"] == "all" else d["storeId"]
    if not d["data"]:
        message(f"Nothing is at or below its reorder point at {where}.")
        return
    table(
        f"Low stock at {where}",
        LOW_STOCK,
        [
            (
                r["storeId"],
                r["sku"],
                r.get("name"),
                r["available"],
                r["incoming"],
                r["reorderPoint"],
                _unset(r["maxStock"]),
                _unset(r["reorderQty"]),
                r["suggested"],
            )
            for r in d["data"]
        ],
        wide=wide,
    )


ALERTS = (
    Col("Raised", "time", 2),
    Col("Kind", "code"),
    Col("SKU", "sku"),
    Col("Store", "code"),
    Col("Before", "number", 3),
    Col("After", "number"),
    Col("Point", "number", 2),
    Col("Cause", "code", 4),
    Col("ID", "id", 5),
)


def alerts(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    table(
        "Alerts",
        ALERTS,
        [
            (
                when(a["raisedAt"]),
                a["kind"],
                a["sku"],
                a["storeId"],
                a["before"],
                a["after"],
                _unset(a["reorderPoint"]),
                a["cause"],
                a["id"],
            )
            for a in items
        ],
        wide=wide,
    )


DELIVERIES = (
    Col("Target", "prose", min_width=24),
    Col("Delivered", "number"),
    Col("Given up", "number"),
    Col("Pending", "number"),
    Col("Tries", "number", 3),
    Col("Next attempt", "time", 3),
    Col("Last error", "prose", 2),
)


def deliveries(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    table(
        "Alert deliveries",
        DELIVERIES,
        [
            (
                d["target"],
                d["delivered"],
                d["givenUp"],
                d["pending"],
                d["tries"],
                when(d.get("nextAttemptAt")),
                d.get("lastError"),
            )
            for d in items
        ],
        wide=wide,
    )


def agent_health(h: dict[str, Any], *, wide: bool = False) -> None:
    """``inv agent status``: the checks, then each alert target's deliveries."""
    health(h, wide=wide)
    if h.get("alertDeliveries"):
        deliveries(h["alertDeliveries"], wide=wide)
