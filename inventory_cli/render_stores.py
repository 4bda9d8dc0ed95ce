"""Stock levels across the stores (availability, what online orders may take,
what is in transit between them), the store directory and safety stock, for
people (``render`` does the rest)."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import fields, out, table, when


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
    extra = transit(a["stores"])
    columns = ["On hand", "Reserved", "Available", *extra, "Safety", "For online", "Version"]
    table(
        f"Stock of {a['sku']}",
        ["Store", *columns],
        [
            (
                s["storeId"],
                s["quantity"],
                s["reserved"],
                s["available"],
                *(s[k] for k in extra.values()),
                s.get("safetyStock"),
                s.get("availableOnline"),
                s["version"],
            )
            for s in a["stores"]
        ],
        numeric=columns,
    )
    totals(a)


TRANSIT = {"In transit": "inTransit", "Incoming": "incoming"}


def transit(stores: list[dict[str, Any]]) -> dict[str, str]:
    """The transfer columns worth a place (column: field): those non-zero in
    some store, so a table without transfers stays as narrow as before."""
    return {c: k for c, k in TRANSIT.items() if any(s.get(k) for s in stores)}


def availability(a: dict[str, Any]) -> None:
    """``inv availability``: each store's figures and how fresh they are."""
    extra = transit(a["stores"])
    table(
        f"Stock of {a['sku']}",
        ["Store", "On hand", "Reserved", "Available", *extra, "Version", "Last updated", "As of"],
        [
            (
                s["storeId"],
                s["quantity"],
                s["reserved"],
                s["available"],
                *(s[k] for k in extra.values()),
                s["version"],
                when(s["lastUpdated"]),
                when(s["asOf"]),
            )
            for s in a["stores"]
        ],
        numeric=["On hand", "Reserved", "Available", *extra, "Version"],
    )
    totals(a)


def totals(a: dict[str, Any]) -> None:
    online = a.get("totalAvailableOnline")  # an agent before the chain has none
    moving = a.get("totalInTransit")  # nor one before transfers
    out().print(
        f"Total available: {a['totalAvailable']}"
        + (f" (for online orders: {online})" if online is not None else "")
        + (f"; in transit between stores: {moving}" if moving else "")
    )
