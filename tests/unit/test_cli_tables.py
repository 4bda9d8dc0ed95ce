"""Every table of ``inv`` at 80 columns, in process against a fake agent,
with the data of a real chain: long names, 36-character UUIDs, 20-character
SKUs, five stores. At 80 no line is longer than 80, no id or SKU is broken
across lines (each shown whole, UUIDs as their first 8 characters), the
columns that matter most are there, the others are named on stderr and come
back with ``--wide``; at 200 every column is there without it; numbers are
right-aligned."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import pytest

from inventory_cli.tables import BOXED, PLAIN, Col, cells, fit, id_length, short_id
from tests.cli_support import FakeAgent, run, table_lines, table_rows

SKU1, SKU2 = "ELEC-LAPTOP-XPS13-01", "HOME-CHAIR-ERGO-0042"  # 20 characters each
NAME = "Portátil Dell XPS 13 9340 Platinum Silver, 32 GB RAM, 1 TB SSD"
STORES = ["store-001", "store-002", "store-003", "store-004", "store-madrid-05"]
UUIDS = [f"{n}a65956e-3b1f-4c2e-9a7d-5e8f1b2c3d4{n}" for n in range(1, 6)]
AT = "2024-03-14T09:26:53.589Z"  # not today: the long form of a time
TID = "T-7K3M-9XQ2-P8RA"  # a transfer id, made to be read: shown whole


def _stock(store: str, n: int) -> dict[str, Any]:
    return {
        "storeId": store,
        "quantity": 1000 + n,
        "reserved": 12,
        "available": 988 + n,
        "inTransit": 30 * n,
        "incoming": 7,
        "safetyStock": 3,
        "availableOnline": 985 + n,
        "version": 12345,
        "lastUpdated": AT,
        "asOf": AT,
    }


AVAILABILITY = {
    "sku": SKU1,
    "productId": UUIDS[0],
    "stores": [_stock(s, n) for n, s in enumerate(STORES)],
    "totalAvailable": 4950,
    "totalAvailableOnline": 4935,
    "totalInTransit": 300,
}
PRODUCTS = {
    "data": [
        {"id": UUIDS[n], "sku": sku, "name": NAME, "category": "ordenadores portátiles",
         "price": 1499.99, "active": True}
        for n, sku in enumerate([SKU1, SKU2])
    ]
}  # fmt: skip
RESERVATIONS = {
    "data": [
        {"reservationId": UUIDS[n], "sku": SKU1, "storeId": s, "quantity": 120,
         "status": "CONFIRMED", "customerId": "customer-0001234", "orderId": "web-order-98765",
         "expiresAt": AT}
        for n, s in enumerate(STORES)
    ]
}  # fmt: skip
HISTORY = {
    "sku": SKU1,
    "data": [
        {"at": AT, "storeId": s, "kind": "subtract", "quantity": -120,
         "reason": "sale at the counter, receipt 0001234", "actor": "alice.fernandez",
         "origin": s, "superseded": n == 0}
        for n, s in enumerate(STORES)
    ],
}  # fmt: skip
CONFLICTS = {
    "data": [
        {"detectedAt": AT, "kind": "superseded_delta", "sku": SKU1, "storeId": s,
         "winner": f"{s}:123456", "loser": f"store-002:{n}", "detail": {"delta": -5, "count": 40}}
        for n, s in enumerate(STORES)
    ]
}  # fmt: skip
STORE_LIST = {
    "data": [
        {"storeId": s, "name": f"Tienda {s} del Centro Comercial La Vaguada", "listed": True,
         "priority": 100, "online": True, "safetyStock": 2, "lat": 40.4203, "lon": -3.7058}
        for s in STORES
    ]
}  # fmt: skip
LOW = {
    "storeId": "all",
    "data": [
        {"storeId": s, "sku": SKU1, "name": NAME, "available": 10, "incoming": 30,
         "reorderPoint": 12, "maxStock": 300, "reorderQty": 24, "suggested": 260}
        for s in STORES
    ],
}  # fmt: skip
ALERTS = {
    "data": [
        {"raisedAt": AT, "kind": "restored", "sku": SKU1, "storeId": s, "before": 10,
         "after": 180, "reorderPoint": 12, "cause": f"{s}:123456", "id": UUIDS[n]}
        for n, s in enumerate(STORES)
    ]
}  # fmt: skip
HEALTH = {
    "status": "healthy", "storeId": "store-001", "mode": "replica", "version": "0.1.0",
    "uptimeSeconds": 12,
    "checks": {"ledger": {"ok": True, "latencyMs": 0.2}, "nats": {"ok": True, "server": "nats://hq.example.com:4222"}},
    "alertDeliveries": [
        {"target": "https://hooks.example.com/inventory/alerts/store-001", "delivered": 1200,
         "givenUp": 3, "pending": 12, "tries": 7, "nextAttemptAt": AT,
         "lastError": "HTTP 503 from https://hooks.example.com: Service Unavailable"}
    ],
}  # fmt: skip
SYNC = {
    "storeId": "store-001", "mode": "replica", "connected": True, "outboxBacklog": 0,
    "peers": [
        {"storeId": s, "lastEventAt": AT, "appliedSeq": 1234567, "lastHeartbeatAt": AT,
         "lagSeconds": 0.4, "state": "live"}
        for s in STORES
    ],
    "digests": {"catalog": "9f2c3c1e8a3b4e59", "stock": "0d0e5b1f4a7c2d10"},
}  # fmt: skip
ROUTING = {
    "requestId": UUIDS[0], "status": "granted", "sku": SKU1, "quantity": 3, "customerId": None,
    "storeId": "store-002", "reservationId": f"{UUIDS[0]}@store-002", "strategy": "priority",
    "pendingCleanups": 1, "createdAt": AT, "updatedAt": AT,
    "attempts": [
        {"storeId": s, "outcome": "unreachable", "availableOnline": 120,
         "reservationId": f"{UUIDS[0]}@{s}",
         "cleanup": {"state": "pending", "tries": 3, "nextAt": AT},
         "error": f"store '{s}' owns that stock and is unreachable (its agent is not connected)"}
        for s in STORES
    ],
}  # fmt: skip
_LINE = {"quantity": 120, "shipped": 120, "received": 100, "damaged": 2, "cancelled": 0}


def _transfer(tid: str) -> dict[str, Any]:
    lines = [
        {"sku": sku, "name": NAME, **_LINE, "pending": 18} for sku in (SKU1, SKU2)
    ]  # fmt: skip
    return {
        "transferId": tid, "status": "PARTIALLY_RECEIVED", "fromStoreId": "store-madrid-05",
        "toStoreId": "store-002", "originState": "SHIPPED", "updatedAt": AT,
        "lines": lines, "totals": {**_LINE, "quantity": 240, "pending": 36},
        "discrepancies": [{"sku": SKU1, "quantity": 2, "kind": "over_received"}],
        "receipts": [
            {"receiptId": f"R-0{n}K3-9XQ2-P8RA", "receivedAt": AT, "actor": "alice.fernandez",
             "lines": [{"sku": SKU1, "received": 100, "damaged": 2},
                       {"sku": SKU2, "received": 5, "damaged": 0}]}
            for n in range(5)
        ],
    }  # fmt: skip


STOCK_CHANGES = {
    "dryRun": True,
    "rows": 5,
    "changes": [
        {"line": n + 2, "sku": SKU1, "storeId": s, "mode": "set", "from": 10, "to": 1200,
         "safetyStock": {"from": None, "to": 3}, "reorderPoint": {"from": 5, "to": 12},
         "maxStock": {"from": None, "to": 300}}
        for n, s in enumerate(STORES)
    ],
}  # fmt: skip
PRODUCT_CHANGES = {
    "dryRun": True,
    "rows": 2,
    "changes": [
        {"line": n + 2, "sku": sku, "action": "update",
         "fields": ["name", "description", "category", "price", "active"]}
        for n, sku in enumerate([SKU1, SKU2])
    ],
}  # fmt: skip
# the files the import cases read (the agent's answer is the fake's)
FILES = {
    "stock.csv": "sku,storeId,quantity\n" + "".join(f"{SKU1},{s},1200\n" for s in STORES),
    "products.csv": f'sku,name\n{SKU1},"{NAME}"\n{SKU2},"{NAME}"\n',
}


@pytest.fixture(autouse=True)
def _import_files(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    path: str
    reply: Any
    shown: tuple[str, ...]  # headers always there at 80 columns
    left_out: tuple[str, ...]  # headers left out at 80, back with --wide
    number: str  # a right-aligned column, checked on every row
    ids: tuple[str, ...] = ()  # ids and SKUs of the data: each shown whole on a line
    method: str = "GET"


CASES = {
    "product list": Case(("product", "list"), "/api/v1/products", PRODUCTS,
        ("SKU", "Name", "Price", "ID"), ("Active",), "Price", (SKU1, SKU2, UUIDS[0])),
    "reservation list": Case(("reservation", "list"), "/api/v1/reservations", RESERVATIONS,
        ("ID", "SKU", "Qty", "Status"), ("Customer", "Order", "Expires"), "Qty", (*UUIDS, SKU1)),
    "history": Case(("history", SKU1), f"/api/v1/products/{SKU1}/history", HISTORY,
        ("When", "Kind", "Qty", "Reason"), ("Origin", "Note"), "Qty", ("alice.fernandez",)),
    "conflicts": Case(("conflicts",), "/api/v1/conflicts", CONFLICTS,
        ("Kind", "SKU", "Detail"), ("Kept", "Lost"), "", (SKU1,)),
    "store list": Case(("store", "list"), "/api/v1/stores", STORE_LIST,
        ("Store", "Name", "Priority"), ("Location",), "Priority", tuple(STORES)),
    "stock show": Case(("stock", "show", SKU1), f"/api/v1/products/{SKU1}/availability",
        AVAILABILITY, ("Store", "On hand", "Available", "In transit"), ("Version", "Safety"),
        "On hand", tuple(STORES)),
    "availability": Case(("availability", SKU1), f"/api/v1/products/{SKU1}/availability",
        AVAILABILITY, ("Store", "On hand", "Available"), ("Version", "Last updated"),
        "Available", tuple(STORES)),
    "stock low": Case(("stock", "low", "--all"), "/api/v1/stock/low", LOW,
        ("SKU", "Available", "Suggested"), ("Name", "Incoming"), "Suggested", (SKU1, *STORES)),
    "alerts": Case(("alerts",), "/api/v1/alerts", ALERTS,
        ("Kind", "SKU", "Store", "After"), ("ID", "Cause"), "After", (SKU1, *STORES)),
    "agent status": Case(("agent", "status"), "/health", HEALTH,
        ("Check", "Detail", "Target", "Pending"), ("Tries", "Next attempt"), "Delivered"),
    "sync status": Case(("sync", "status"), "/api/v1/sync/status", SYNC,
        ("Store", "Lag (s)", "State", "Digest"), ("Last heartbeat",), "Lag (s)",
        (*STORES, "9f2c3c1e8a3b4e59")),
    "routing": Case(("reservation", "routing", UUIDS[0]), f"/api/v1/routings/{UUIDS[0]}",
        ROUTING, ("Store", "Outcome", "Note"), ("Reservation",), "Online avail.", tuple(STORES)),
    "routings": Case(("reservation", "routings"), "/api/v1/routings", {"data": [ROUTING] * 3},
        ("Request", "Status", "SKU", "Qty"), ("Pending cleanups", "Created"), "Qty",
        (UUIDS[0], SKU1)),
    "stock import": Case(("import", "stock.csv", "--dry-run"), "/api/v1/imports/stock",
        STOCK_CHANGES, ("Line", "SKU", "From", "To"), ("Max",), "To", (SKU1, *STORES), "POST"),
    "product import": Case(("product", "import", "products.csv", "--dry-run"),
        "/api/v1/imports/products", PRODUCT_CHANGES, ("Line", "SKU", "Action", "Fields"), (),
        "Line", (SKU1, SKU2), "POST"),
    "transfer show": Case(("transfer", "show", TID), f"/api/v1/transfers/{TID}", _transfer(TID),
        ("SKU", "Qty", "Received", "Pending", "What it means", "Receipt", "Lines"),
        ("Cancelled",), "Pending", (SKU1, SKU2, TID, "R-04K3-9XQ2-P8RA")),
    "transfer list": Case(("transfer", "list"), "/api/v1/transfers",
        {"data": [_transfer(f"T-{n}K3M-9XQ2-P8RA") for n in range(5)]},
        ("ID", "From", "To", "Status", "Pending", "!"), ("Updated",), "Pending",
        (*(f"T-{n}K3M-9XQ2-P8RA" for n in range(5)), "store-madrid-05")),
}  # fmt: skip


def _render(case: Case, *flags: str, columns: int) -> tuple[list[str], str]:
    fake = FakeAgent().on(case.method, case.path, case.reply)
    r = run(fake, *case.args, *flags, env={"COLUMNS": str(columns)})
    return r.stdout.splitlines(), r.stderr


def _headers(lines: list[str]) -> str:
    """The header lines of every table shown (boxed: ┃ ... ┃; plain: above its ─ rule)."""
    heads = [ln for ln in lines if ln.startswith("┃")]
    heads += [lines[n - 1] for n, ln in enumerate(lines) if n and set(ln) <= {"─", " "} and ln]
    return "\n".join(heads)


def _has_header(lines: list[str], name: str) -> bool:
    return any(f" {name} " in f" {h} " for h in _headers(lines).splitlines())


@pytest.mark.parametrize("name", CASES)
def test_every_table_fits_80_columns_and_wide_brings_back_what_was_left_out(name: str) -> None:
    case = CASES[name]
    lines, stderr = _render(case, columns=80)
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    for header in case.shown:
        assert _has_header(lines, header), f"{header} missing:\n" + "\n".join(lines)
    for header in case.left_out:
        assert not _has_header(lines, header), f"{header} shown:\n" + "\n".join(lines)
        assert header in stderr and "--wide" in stderr
    for value in case.ids:  # whole on one line, never folded
        assert any(short_id(value) in line for line in lines), f"{value}:\n" + "\n".join(lines)
    rows = "\n".join(ln for ln in lines if ln.startswith("│"))  # not the one-object views
    assert not any(u in rows for u in UUIDS), "a full UUID in a table"
    wide, stderr = _render(case, "--wide", columns=80)
    for header in (*case.shown, *case.left_out):
        assert _has_header(wide, header), f"--wide: {header} missing:\n" + "\n".join(wide)
    assert "not shown" not in stderr


@pytest.mark.parametrize("name", CASES)
def test_a_wide_terminal_shows_every_column_without_wide(name: str) -> None:
    case = CASES[name]
    lines, stderr = _render(case, columns=200)
    for header in (*case.shown, *case.left_out):
        assert _has_header(lines, header), f"{header} missing:\n" + "\n".join(lines)
    assert "not shown" not in stderr and max(len(line) for line in lines) <= 200


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.number])
def test_numbers_are_right_aligned(name: str) -> None:
    """The column's cells end where its header ends, on every row."""
    case = CASES[name]
    lines, _ = _render(case, columns=80)
    head = next(h for h in _headers(lines).splitlines() if f" {case.number} " in f" {h} ")
    found = re.search(rf"(?:^|(?<=[ ┃])){re.escape(case.number)}(?=[ ┃]|$)", head)
    assert found, head
    end = found.end()
    rows = list(
        itertools.takewhile(lambda ln: ln.strip() and ln[0] != "└", lines[lines.index(head) + 2 :])
    )
    assert rows, "\n".join(lines)
    for row in rows:
        if row.startswith("│") and not row[row.rfind("│", 0, end) + 1 : end].strip():
            continue  # the next line of a row whose prose wraps: blank in this column
        assert row[end - 1].isdigit() and not row[end].isdigit(), f"{head!r}\n{row!r}"


# ------------------------------------------------------------- the layout
def test_text_shrinks_before_any_column_is_left_out() -> None:
    cols = [Col("SKU", "sku"), Col("Name", "text"), Col("Price", "number", 2)]
    rows = [[SKU1, NAME, "1499.99"]]
    layout = fit(cols, rows, 60, BOXED, wide=False)
    assert layout.shown == (0, 1, 2) and layout.width(BOXED) == 60
    assert layout.widths[0] == 20 and layout.widths[2] == 7  # SKU and price whole
    narrow = fit(cols, rows, 46, BOXED, wide=False)  # the name at its minimum (16) no longer fits
    assert narrow.shown == (0, 1) and narrow.dropped == ("Price",)


def test_the_least_useful_columns_go_first_and_an_empty_one_before_them() -> None:
    cols = [Col("A"), Col("B", priority=3), Col("C", priority=2), Col("D", priority=2)]
    rows = [["a" * 10, "b" * 10, "c" * 10, ""]]
    # boxed: 3 per column and 1; A and C take 27
    assert fit(cols, rows, 26, BOXED, wide=False).dropped == ("B", "C", "D")
    assert fit(cols, rows, 27, BOXED, wide=False).dropped == ("B", "D")
    assert fit(cols, rows, 40, BOXED, wide=False).dropped == ("D",)  # the empty one first
    assert fit(cols, rows, 22, PLAIN, wide=False).dropped == ("B", "D")  # 2 between columns
    assert fit(cols, rows, 5, BOXED, wide=False).shown == (0,)  # A must be shown: wider then
    assert fit(cols, rows, 5, BOXED, wide=True).dropped == ()
    full = [["a" * 10, "b" * 10, "c" * 10, "d" * 10]]
    assert fit(cols, full, 27, BOXED, wide=False).dropped == ("B", "D")  # the right-most of equals


def test_a_narrow_column_left_out_on_the_way_comes_back_but_never_squeezes_more_useful_text() -> (
    None
):
    cols = [Col("A"), Col("Wide", "text", 2, min_width=30), Col("N", "number", 3)]
    rows = [["a" * 10, "w" * 40, "1"]]
    # N goes first, then Wide (at 30 still too wide); then N fits again beside A
    assert fit(cols, rows, 30, BOXED, wide=False).shown == (0, 2)
    cols = [Col("A"), Col("Note", "text"), Col("B", priority=2), Col("N", "number", 3)]
    rows = [["a" * 10, "w" * 40, "b" * 20, "1"]]
    # N and B go; with Note at its floor (16) N would fit again, but Note is the more useful
    assert fit(cols, rows, 40, BOXED, wide=False).shown == (0, 1)


def test_only_ids_that_start_with_a_uuid_are_shortened_and_wide_keeps_them_whole() -> None:
    def shown(col: Col, *values: str, wide: bool = False) -> list[str]:
        return [row[0] for row in cells([col], [[v] for v in values], wide)]

    uid = Col("ID", "id")
    assert shown(uid, UUIDS[0], f"{UUIDS[1]}@store-002") == [UUIDS[0][:8], UUIDS[1][:8]]
    assert shown(uid, UUIDS[0].upper()) == [UUIDS[0][:8].upper()]
    assert shown(uid, UUIDS[0], UUIDS[0]) == [UUIDS[0][:8]] * 2  # the same id twice
    assert shown(uid, UUIDS[0], wide=True) == [UUIDS[0]]
    readable = ["web-1002@store-001", "store-001:14", TID, "ca65956e"]
    assert shown(uid, *readable) == readable
    assert shown(Col("SKU", "sku"), UUIDS[0]) == [UUIDS[0]]  # only ids
    assert shown(Col("Note", "prose"), "two\nlines") == ["two lines"]


def test_ids_that_share_their_first_8_characters_show_as_many_as_tell_them_apart() -> None:
    uid = Col("ID", "id")
    twins = ["ca65956e-3b1f-4c2e-9a7d-5e8f1b2c3d4e", "ca65956e-3b2a-4c2e-9a7d-5e8f1b2c3d4e"]
    assert id_length(twins) == 12 and cells([uid], [[t] for t in twins], False) == [
        ["ca65956e-3b1"],
        ["ca65956e-3b2"],
    ]
    apart_at_10 = ["ca65956e-3b1f-4c2e-9a7d-5e8f1b2c3d4e", "ca65956e-4b1f-4c2e-9a7d-5e8f1b2c3d4e"]
    assert id_length(apart_at_10) == 10  # "ca65956e-3": past the dash
    sequential = [f"550e8400-e29b-41d4-a716-44665544000{n}" for n in range(3)]  # the demo data's
    assert id_length(sequential) == 36
    assert (
        id_length([sequential[0], f"{sequential[0]}@store-002"]) == 37
    )  # one is the other's prefix


def test_a_cell_is_never_rich_markup() -> None:
    fake = FakeAgent().on(
        "GET", "/api/v1/products", {"data": [{**PRODUCTS["data"][0], "name": "[red]x[/red] [b]"}]}
    )
    assert "[red]x[/red] [b]" in run(fake, "product", "list").stdout


def test_prose_wraps_whole_and_a_name_ends_in_an_ellipsis() -> None:
    lines, _ = _render(CASES["conflicts"], columns=80)
    body = table_lines("\n".join(lines))
    first = next(n for n, cells in enumerate(body) if cells[0] == "superseded_delta")
    detail = [body[first][-1]]
    detail += [c[-1] for c in itertools.takewhile(lambda c: c[0] == "", body[first + 1 :])]
    assert " ".join(detail) == "delta -5 made before count 40 it did not know"
    lines, _ = _render(CASES["product list"], columns=80)
    name = table_rows("\n".join(lines))[SKU1][1]
    assert name.endswith("…") and NAME.startswith(name[:-1]) and len(name) >= 16
