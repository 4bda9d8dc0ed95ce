"""Stock levels across the stores (availability, what online orders may take,
what is in transit between them), the store directory and safety stock, for
people (``render`` does the rest)."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import fields, say, table, when
from inventory_cli.tables import Col


def _location(s: dict[str, Any]) -> str:
    if s.get("lat") is None or s.get("lon") is None:
        return ""
    return f"{s['lat']:g}, {s['lon']:g}"


STORES = (
    Col("Store", "code"),
    Col("Name", "text"),
    Col("Priority", "number", 2),
    Col("Online", "code", 2),
    Col("Safety", "number", 3),
    Col("Location", "code", 4),
)


def stores(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    table(
        "Stores",
        STORES,
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
        wide=wide,
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
    say(f"{r['sku']} @ {r['storeId']}: safety stock {r['safetyStock']} ({source})", markup=False)


STORE = Col("Store", "code")
ON_HAND = (Col("On hand", "number"), Col("Reserved", "number", 2), Col("Available", "number"))
# shown only while something is on its way (``transit``)
TRANSIT_COLUMNS = {
    "inTransit": Col("In transit", "number", 2),
    "incoming": Col("Incoming", "number", 2),
}
STOCK_LEVELS_TAIL = (
    Col("Safety", "number", 3),
    Col("For online", "number", 2),
    Col("Version", "number", 3),
)
AVAILABILITY_TAIL = (
    Col("Version", "number", 3),
    Col("Last updated", "time", 3),
    Col("As of", "time", 2),
)


def stock_levels(a: dict[str, Any], *, wide: bool = False) -> None:
    """``inv stock show``: each store's figures, with what online orders may take."""
    extra = transit(a["stores"])
    table(
        f"Stock of {a['sku']}",
        [STORE, *ON_HAND, *(TRANSIT_COLUMNS[k] for k in extra), *STOCK_LEVELS_TAIL],
        [
            (
                s["storeId"],
                s["quantity"],
                s["reserved"],
                s["available"],
                *(s[k] for k in extra),
                s.get("safetyStock"),
                s.get("availableOnline"),
                s["version"],
            )
            for s in a["stores"]
        ],
        wide=wide,
    )
    totals(a)


def transit(stores: list[dict[str, Any]]) -> list[str]:
    """The transfer fields worth a column: those non-zero in some store, so a
    table without transfers stays as narrow as before."""
    return [k for k in TRANSIT_COLUMNS if any(s.get(k) for s in stores)]


def availability(a: dict[str, Any], *, wide: bool = False) -> None:
    """``inv availability``: each store's figures and how fresh they are."""
    extra = transit(a["stores"])
    table(
        f"Stock of {a['sku']}",
        [STORE, *ON_HAND, *(TRANSIT_COLUMNS[k] for k in extra), *AVAILABILITY_TAIL],
        [
            (
                s["storeId"],
                s["quantity"],
                s["reserved"],
                s["available"],
                *(s[k] for k in extra),
                s["version"],
                when(s["lastUpdated"]),
                when(s["asOf"]),
            )
            for s in a["stores"]
        ],
        wide=wide,
    )
    totals(a)


def totals(a: dict[str, Any]) -> None:
    online = a.get("totalAvailableOnline")  # an agent before the chain has none
    moving = a.get("totalInTransit")  # nor one before transfers
    say(
        f"Total available: {a['totalAvailable']}"
        + (f" (for online orders: {online})" if online is not None else "")
        + (f"; in transit between stores: {moving}" if moving else "")
    )
