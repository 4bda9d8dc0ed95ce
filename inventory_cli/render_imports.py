"""What an import would change (``--dry-run``) and what it did, for people
(``render`` does the rest)."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import message, table
from inventory_cli.tables import Col

PRODUCT_CHANGES = (
    Col("Line", "number"),
    Col("SKU", "sku"),
    Col("Action", "code"),
    Col("Fields", "prose", 2),
)


def import_result(r: dict[str, Any], what: str, *, wide: bool = False) -> None:
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
                stock_changes(changes, wide=wide)
            else:
                table(
                    "Changes (dry run)",
                    PRODUCT_CHANGES,
                    [(c["line"], c["sku"], c["action"], ", ".join(c["fields"])) for c in changes],
                    wide=wide,
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


STOCK_CHANGES = (
    Col("Line", "number"),
    Col("SKU", "sku"),
    Col("Store", "code", 2),
    Col("Mode", "code", 2),
    Col("From", "number"),
    Col("To", "number"),
)


def stock_changes(changes: list[dict[str, Any]], *, wide: bool = False) -> None:
    """A stock import's changes; a column for each setting it changes
    (``-``: unset; for safety stock, the store's default applies)."""
    given = [k for k in SETTING_COLUMNS if any(k in c for c in changes)]
    table(
        "Changes (dry run)",
        [*STOCK_CHANGES, *(Col(SETTING_COLUMNS[k], "code", 3) for k in given)],
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
        wide=wide,
    )


def _setting_change(s: dict[str, Any] | None) -> str:
    if s is None:
        return ""
    return " -> ".join("-" if v is None else str(v) for v in (s["from"], s["to"]))
