"""``inv conflicts``: writes that lost a merge, one line each for people
(``--json`` has the full detail; ``render`` does the rest)."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import table, when
from inventory_cli.tables import Col

CONFLICTS = (
    Col("Detected", "time", 2),
    Col("Kind", "code"),
    Col("SKU", "sku"),
    Col("Store", "code", 3),
    Col("Kept", "code", 4),
    Col("Lost", "code", 4),
    Col("Detail", "prose", min_width=24),
)


def conflicts(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    table(
        "Conflicts",
        CONFLICTS,
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
        wide=wide,
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
