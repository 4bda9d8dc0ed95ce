"""The store directory, safety stock and what online orders may take, for
people (``render`` does the rest)."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import fields, out, table, totals, when


def _location(s: dict[str, Any]) -> str:
    if s.get("lat") is None or s.get("lon") is None:
        return ""
    return f"{s['lat']:g}, {s['lon']:g}"


def stores(items: list[dict[str, Any]]) -> None:
    table(
        "Stores",
        ["Store", "Name", "Priority", "Online", "Safety", "Location"],
        [
            (
                s["storeId"],
                s.get("name") or ("" if s["listed"] else "(not in the directory)"),
                s["priority"],
                "yes" if s["online"] else "no",
                s["safetyStock"],
                _location(s),
            )
            for s in items
        ],
        numeric=["Priority", "Safety"],
    )


def store(s: dict[str, Any]) -> None:
    shown = {
        **s,
        "online": "yes" if s["online"] else "no",
        "listed": "yes" if s["listed"] else "no (known from its events only)",
        "defaults": ", ".join(s.get("defaults") or []) or "none",
        "updatedAt": when(s.get("updatedAt")),
    }
    fields(
        f"Store {s['storeId']}",
        shown,
        [
            "storeId",
            "name",
            "address",
            "lat",
            "lon",
            "priority",
            "online",
            "safetyStock",
            "defaults",
            "listed",
            "updatedAt",
        ],
    )


def safety_stock(r: dict[str, Any]) -> None:
    source = "its own setting" if r.get("skuSetting") is not None else "the store's default"
    out().print(
        f"{r['sku']} @ {r['storeId']}: safety stock {r['safetyStock']} ({source})", markup=False
    )


def stock_levels(a: dict[str, Any]) -> None:
    """``inv stock show``: each store's figures, with what online orders may take."""
    table(
        f"Stock of {a['sku']}",
        ["Store", "On hand", "Reserved", "Available", "Safety", "For online", "Version"],
        [
            (
                s["storeId"],
                s["quantity"],
                s["reserved"],
                s["available"],
                s.get("safetyStock"),
                s.get("availableOnline"),
                s["version"],
            )
            for s in a["stores"]
        ],
        numeric=["On hand", "Reserved", "Available", "Safety", "For online", "Version"],
    )
    totals(a)
