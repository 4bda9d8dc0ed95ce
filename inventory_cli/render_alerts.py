"""Reorder settings, low stock, alerts and their deliveries, for people
(``render`` does the rest)."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import health, message, out, table, when


def _unset(value: Any) -> Any:
    return "-" if value is None else value


def reorder_settings(r: dict[str, Any]) -> None:
    state = f"LOW: suggested order {r['suggested']}" if r["low"] else "not low"
    out().print(
        f"{r['sku']} @ {r['storeId']}: reorder point {_unset(r['reorderPoint'])}, "
        f"max {_unset(r['maxStock'])}, qty {_unset(r['reorderQty'])}; available "
        f"{r['available']}, incoming {r['incoming']}: {state}",
        markup=False,
    )


def low_stock(d: dict[str, Any]) -> None:
    where = "every store" if d["storeId"] == "all" else d["storeId"]
    if not d["data"]:
        message(f"Nothing is at or below its reorder point at {where}.")
        return
    table(
        f"Low stock at {where}",
        ["Store", "SKU", "Name", "Available", "Incoming", "Point", "Max", "Qty", "Suggested"],
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
        numeric=["Available", "Incoming", "Point", "Max", "Qty", "Suggested"],
    )


def alerts(items: list[dict[str, Any]]) -> None:
    table(
        "Alerts",
        ["Raised", "Kind", "SKU", "Store", "Before", "After", "Point", "Cause", "ID"],
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
        numeric=["Before", "After", "Point"],
    )


def deliveries(items: list[dict[str, Any]]) -> None:
    table(
        "Alert deliveries",
        ["Target", "Delivered", "Given up", "Pending", "Tries", "Next attempt", "Last error"],
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
        numeric=["Delivered", "Given up", "Pending", "Tries"],
    )


def agent_health(h: dict[str, Any]) -> None:
    """``inv agent status``: the checks, then each alert target's deliveries."""
    health(h)
    if h.get("alertDeliveries"):
        deliveries(h["alertDeliveries"])
