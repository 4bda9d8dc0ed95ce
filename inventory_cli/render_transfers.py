"""How transfers look: one transfer (its lines, discrepancies, receipts),
a list of them, and the packing slip that travels with the goods. Beside
``render``, whose helpers it uses."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import fields, message, out, table, when
from inventory_cli.tables import PLAIN, Col

SLIP_WIDTH = 80  # printed on paper, or read on any terminal
# what each discrepancy means, for people (the API's ``kind`` stays in --json)
DISCREPANCY = {
    "received_before_shipped": "received before this store saw it shipped "
    "(reconciled when the shipment's events arrive)",
    "not_on_transfer": "received, but not a line of the transfer",
    "over_received": "received (or damaged) beyond what was shipped",
    "cancel_corrected": "the origin's cancel had returned units that were received: "
    "the return was corrected (inv conflicts)",
}
# field: column; damaged and cancelled units are rare: their columns give way
# first, unless some line has them
LINE_COLUMNS = {
    "quantity": Col("Qty", "number"),
    "shipped": Col("Shipped", "number", 2),
    "received": Col("Received", "number"),
    "damaged": Col("Damaged", "number", 4),
    "cancelled": Col("Cancelled", "number", 4),
    "pending": Col("Pending", "number"),
}
RARE = ("damaged", "cancelled")
DISCREPANCIES = (
    Col("SKU", "sku"),
    Col("Units", "number"),
    Col("Kind", "code", 2),
    Col("What it means", "prose", min_width=24),
)
RECEIPTS = (
    Col("Receipt", "id"),
    Col("Received", "time", 2),
    Col("By", "code", 3),
    Col("Lines", "prose"),
)
# ids and statuses are long: without vertical rules a row fits 80 columns
TRANSFERS = (
    Col("ID", "id"),
    Col("From", "code"),
    Col("To", "code"),
    Col("Status", "code"),
    Col("Qty", "number", 2),
    Col("Pending", "number"),
    Col("Updated", "time", 3),
    Col("!", "number"),  # discrepancies: the line under the table says so
)


def _origin_said(t: dict[str, Any]) -> str:
    state = t.get("originState")
    return str(state) if state else "not heard from yet"


def line_columns(lines: list[dict[str, Any]]) -> list[Col]:
    """The columns of a transfer's lines, each field's; a rare one (damaged,
    cancelled) keeps the priority of the others when some line has it."""
    return [
        c._replace(priority=2) if f in RARE and any(ln.get(f) for ln in lines) else c
        for f, c in LINE_COLUMNS.items()
    ]


def transfer(t: dict[str, Any], *, wide: bool = False) -> None:
    """``inv transfer show``: the header, the lines, then what does not add up."""
    shown = {
        **t,
        "route": f"{t['fromStoreId']} -> {t['toStoreId']}",
        "originState": _origin_said(t),
        **{k: when(t.get(k)) for k in ("createdAt", "shippedAt", "cancelledAt", "updatedAt")},
    }
    keys = ["transferId", "status", "route", "originState"]
    keys += [k for k in ("note", "actor") if t.get(k)]
    keys += [k for k in ("createdAt", "shippedAt", "cancelledAt") if t.get(k)] + ["updatedAt"]
    fields(f"Transfer {t['transferId']}", shown, keys)
    totals = t["totals"]
    table(
        "Lines",
        [Col("SKU", "sku"), Col("Product", "text", 3, min_width=12), *line_columns(t["lines"])],
        [(ln["sku"], ln.get("name"), *(ln[f] for f in LINE_COLUMNS)) for ln in t["lines"]]
        + [("Total", "", *(totals[f] for f in LINE_COLUMNS))],
        wide=wide,
    )
    discrepancies(t, wide=wide)
    receipts(t.get("receipts") or [], wide=wide)


def discrepancies(t: dict[str, Any], *, wide: bool = False) -> None:
    if not t["discrepancies"]:
        return
    table(
        f"Discrepancies ({len(t['discrepancies'])})",
        DISCREPANCIES,
        [
            (d["sku"], d["quantity"], d["kind"], DISCREPANCY.get(d["kind"], ""))
            for d in t["discrepancies"]
        ],
        wide=wide,
    )


def _receipt_lines(lines: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{ln['sku']} {ln['received']}" + (f" (+{ln['damaged']} damaged)" if ln["damaged"] else "")
        for ln in lines
    )


def receipts(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    if not items:
        return
    table(
        "Receipts",
        RECEIPTS,
        [
            (r["receiptId"], when(r.get("receivedAt")), r["actor"], _receipt_lines(r["lines"]))
            for r in items
        ],
        wide=wide,
    )


def _issues(t: dict[str, Any]) -> str:
    """How many discrepancies (blank: none)."""
    return str(len(t.get("discrepancies") or [])) if t.get("discrepancies") else ""


def _short(iso: str | None) -> str:
    """A list's timestamp: the time alone when today (``when``), else month,
    day and minute."""
    shown = when(iso)
    return f"{shown[5:16]}" if len(shown) > 8 else shown


def transfers(items: list[dict[str, Any]], *, wide: bool = False) -> None:
    """``inv transfer list``: one row each, discrepancies flagged (``show``
    has them)."""
    if not items:
        message("No transfers.")
        return
    table(
        "Transfers",
        TRANSFERS,
        [
            (
                tr["transferId"],
                tr["fromStoreId"],
                tr["toStoreId"],
                tr["status"],
                tr["totals"]["quantity"],
                tr["totals"]["pending"],
                _short(tr.get("updatedAt")),
                _issues(tr),
            )
            for tr in items
        ],
        wide=wide,
        style=PLAIN,
    )
    flagged = [tr["transferId"] for tr in items if tr.get("discrepancies")]
    if flagged:
        message(
            f"! = discrepancies, in {len(flagged)} of these: see inv transfer show {flagged[0]}"
        )


def slip(t: dict[str, Any]) -> None:
    """The packing slip: what was sent, with blank Received / Damaged boxes
    to tick at the door; fits 80 columns whatever the terminal."""
    from rich import box
    from rich.table import Table

    lines = [ln for ln in t["lines"] if ln["quantity"]]  # the origin's, not receipts' extras
    dated = t.get("shippedAt") or t.get("createdAt")
    day = f"{dated[:10]} {dated[11:16]} UTC" if dated else "not yet written by the origin"
    head = [
        f"PACKING SLIP   transfer {t['transferId']}",
        f"From: {t['fromStoreId']}    To: {t['toStoreId']}    Status: {t['status']}",
        f"Date: {day}" + (" (shipped)" if t.get("shippedAt") else ""),
    ]
    if t.get("note"):
        head.append(f"Note: {t['note']}")
    body = Table(box=box.SQUARE, show_lines=True, header_style="bold", width=SLIP_WIDTH)
    body.add_column("SKU", no_wrap=True)  # as wide as the longest: never broken
    body.add_column("Product", overflow="fold", ratio=1)  # the rest of the line
    body.add_column("Qty", justify="right", no_wrap=True)
    body.add_column("Received", width=9, no_wrap=True)
    body.add_column("Damaged", width=9, no_wrap=True)
    for ln in lines:
        body.add_row(ln["sku"], ln.get("name") or "", str(ln["quantity"]), "", "")
    foot = [
        f"{len(lines)} line{'s' if len(lines) != 1 else ''}, "
        f"{sum(ln['quantity'] for ln in lines)} units",
        "",
        "Received by: ______________________   Date: ____________",
        "",
        f"To record it at {t['toStoreId']}:",
        f"  inv transfer receive {t['transferId']} --from {t['fromStoreId']}",
        "  (everything as shipped; name each line that differs: SKU:RECEIVED[:DAMAGED])",
    ]
    console = out()
    for text in head:
        console.print(text, markup=False, width=SLIP_WIDTH)
    if lines:
        console.print(body, width=SLIP_WIDTH)
    else:
        console.print("(no lines from the origin yet)", width=SLIP_WIDTH)
    for text in foot:
        console.print(text, markup=False, width=SLIP_WIDTH)
