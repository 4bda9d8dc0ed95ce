"""How transfers look: one transfer (its lines, discrepancies, receipts),
a list of them, and the packing slip that travels with the goods. Beside
``render``, whose helpers it uses."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import fields, message, out, table, when

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
LINE_COLUMNS = ("Qty", "Shipped", "Received", "Damaged", "Cancelled", "Pending")
LINE_FIELDS = ("quantity", "shipped", "received", "damaged", "cancelled", "pending")


def _origin_said(t: dict[str, Any]) -> str:
    state = t.get("originState")
    return str(state) if state else "not heard from yet"


def transfer(t: dict[str, Any]) -> None:
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
        ["SKU", "Product", *LINE_COLUMNS],
        [(ln["sku"], ln.get("name") or "", *(ln[f] for f in LINE_FIELDS)) for ln in t["lines"]]
        + [("Total", "", *(totals[f] for f in LINE_FIELDS))],
        numeric=LINE_COLUMNS,
    )
    discrepancies(t)
    receipts(t.get("receipts") or [])


def discrepancies(t: dict[str, Any]) -> None:
    if not t["discrepancies"]:
        return
    table(
        f"Discrepancies ({len(t['discrepancies'])})",
        ["SKU", "Units", "Kind", "What it means"],
        [
            (d["sku"], d["quantity"], d["kind"], DISCREPANCY.get(d["kind"], ""))
            for d in t["discrepancies"]
        ],
        numeric=["Units"],
    )


def _receipt_lines(lines: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{ln['sku']} {ln['received']}" + (f" (+{ln['damaged']} damaged)" if ln["damaged"] else "")
        for ln in lines
    )


def receipts(items: list[dict[str, Any]]) -> None:
    if not items:
        return
    table(
        "Receipts",
        ["Receipt", "Received", "By", "Lines"],
        [
            (r["receiptId"], when(r.get("receivedAt")), r["actor"], _receipt_lines(r["lines"]))
            for r in items
        ],
    )


def _issues(t: dict[str, Any]) -> str:
    """How many discrepancies (blank: none)."""
    return str(len(t.get("discrepancies") or [])) if t.get("discrepancies") else ""


def _short(iso: str | None) -> str:
    """A list's timestamp: the time alone when today (``when``), else month,
    day and minute."""
    shown = when(iso)
    return f"{shown[5:16]}" if len(shown) > 8 else shown


def transfers(items: list[dict[str, Any]]) -> None:
    """``inv transfer list``: one row each, discrepancies flagged (``show``
    has them). Without vertical rules: ids and statuses are long, and a row
    should fit 80 columns."""
    from rich import box
    from rich.table import Table

    if not items:
        message("No transfers.")
        return
    t = Table(
        title="Transfers",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    t.add_column("ID", no_wrap=True)
    t.add_column("From", overflow="fold")
    t.add_column("To", overflow="fold")
    # folds PARTIALLY_RECEIVED at its underscore when short of room
    t.add_column("Status", min_width=10, overflow="fold")
    for col in ("Qty", "Pending"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("Updated", overflow="fold")
    t.add_column("!", justify="right", no_wrap=True)  # discrepancies: the footer says so
    for tr in items:
        t.add_row(
            tr["transferId"],
            tr["fromStoreId"],
            tr["toStoreId"],
            tr["status"],
            str(tr["totals"]["quantity"]),
            str(tr["totals"]["pending"]),
            _short(tr.get("updatedAt")),
            _issues(tr),
        )
    out().print(t)
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
    body.add_column("SKU", overflow="fold", ratio=2)
    body.add_column("Product", overflow="fold", ratio=4)
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
