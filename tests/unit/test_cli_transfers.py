"""``inv transfer create|ship|receive|cancel|show|list`` and the transit
columns of ``inv availability`` / ``inv stock show``, in process against a
fake agent: the request each sends, what it prints (the packing slip in 80
columns), the exit code of each error, and the ids that make a rerun after a
lost answer harmless."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from inventory_cli.transport import ConnectionBroken, TimedOut
from tests.cli_support import (
    FakeAgent,
    availability_obj,
    error_of,
    run,
    run_json,
    stock_obj,
    table_lines,
    table_rows,
)

TRANSFERS = "/api/v1/transfers"
# whole ids (the shape this CLI draws): a command runs with them, no lookup first
TID = "T-0000-0000-0001"
TX = "T-XXXX-XXXX-XXXX"
DRAWN = re.compile(r"^[TR]-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


def line(
    sku: str = "PROD-001", quantity: int = 3, name: str | None = None, **counts: int
) -> dict[str, Any]:
    counts = dict.fromkeys(("shipped", "received", "damaged", "cancelled", "pending"), 0) | counts
    return {
        "sku": sku,
        "productId": f"id-{sku}",
        "name": name or f"Name of {sku}",
        "quantity": quantity,
        **counts,
    }


def transfer_obj(tid: str = "T-1", status: str = "DRAFT", **fields: Any) -> dict[str, Any]:
    lines = fields.pop("lines", [line("PROD-001", 3), line("PROD-002", 5)])
    names = ("quantity", "shipped", "received", "damaged", "cancelled", "pending")
    return {
        "transferId": tid,
        "fromStoreId": "store-001",
        "toStoreId": "store-002",
        "status": status,
        "originState": "DRAFT",
        "note": "weekly top-up",
        "actor": "ana",
        "lines": lines,
        "totals": {n: sum(ln[n] for ln in lines) for n in names},
        "discrepancies": [],
        "receipts": [],
        "createdAt": "2026-11-28T08:00:00.000Z",
        "shippedAt": None,
        "cancelledAt": None,
        "updatedAt": "2026-11-28T08:00:00.000Z",
        **fields,
    }


# ----------------------------------------------------------------- create
def test_create_sends_a_drawn_id_and_the_lines_and_shows_the_transfer() -> None:
    fake = FakeAgent().on("POST", TRANSFERS, transfer_obj(), status=201)
    r = run(fake, "transfer", "create", "--to", "store-002", "PROD-001:3", "PROD-002:5")
    body = fake.last.body
    assert DRAWN.match(body.pop("transferId"))
    lines = [{"productId": "PROD-001", "quantity": 3}, {"productId": "PROD-002", "quantity": 5}]
    assert body == {"toStoreId": "store-002", "lines": lines, "ship": False}
    assert r.stderr == "" and r.stdout.startswith("Transfer T-1")
    rows = table_rows(r.stdout)
    assert rows["SKU"] == ["SKU", "Product", "Qty", "Shipped", "Received", "Damaged",
                           "Cancelled", "Pending"]  # fmt: skip
    assert rows["PROD-002"][:3] == ["PROD-002", "Name of PROD-002", "5"]
    assert rows["Total"][2] == "8"
    run(fake, "transfer", "create", "--to", "store-002", "--from", "store-003", "--ship",
        "--note", "for the sale", "--id", "T-9", "PROD-001:1")  # fmt: skip
    assert fake.last.body == {
        "transferId": "T-9", "toStoreId": "store-002", "fromStoreId": "store-003",
        "lines": [{"productId": "PROD-001", "quantity": 1}], "ship": True, "note": "for the sale",
    }  # fmt: skip
    assert run_json(fake, "transfer", "create", "--to", "store-002", "X:1") == transfer_obj()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["PROD-001"], "'PROD-001': give each line as SKU:QTY, e.g. PROD-001:5"),
        (["PROD-001:3:1"], "'PROD-001:3:1': give each line as SKU:QTY"),
        (["PROD-001:0"], "'PROD-001:0': QTY must be a whole number from 1"),
        (["PROD-001:x"], "'PROD-001:x': QTY must be a whole number from 1"),
        (["PROD-001:-2"], "'PROD-001:-2': QTY must be a whole number from 1"),
        (["PROD-001:2000000000"], "QTY must be a whole number from 1"),
        ([":3"], "':3': the SKU is missing"),
        (["A:1", "B:1", "A:2"], "'A:2': A is named twice (also 'A:1'); give each SKU once"),
    ],
)
def test_bad_lines_are_exit_2_naming_the_argument_and_send_nothing(
    args: list[str], expected: str
) -> None:
    fake = FakeAgent()
    r = run(fake, "transfer", "create", "--to", "store-002", *args, code=2)
    assert error_of(r).startswith("Error: ") and expected in error_of(r)
    assert fake.sent == []


def test_create_needs_to_and_a_line() -> None:
    assert "Missing option '--to'" in run(None, "transfer", "create", "P:1", code=2).stderr
    assert "Missing argument" in run(None, "transfer", "create", "--to", "s", code=2).stderr


@pytest.mark.parametrize("failure", [TimedOut("read"), ConnectionBroken("reset")])
def test_a_lost_answer_says_how_to_rerun_with_the_same_id(failure: Exception) -> None:
    fake = FakeAgent(fail=[failure])
    r = run(fake, "transfer", "create", "--to", "store-002", "PROD-001:3", code=5)
    [sent] = fake.sent  # a POST is never sent twice by the client itself
    tid = sent.body["transferId"]
    assert f"transfer {tid} may have been created: check with `inv transfer show {tid}`" in (
        error_of(r)
    )
    assert f"--id {tid} (the same id never creates twice)" in error_of(r)


# ------------------------------------------------------- ship and cancel
def test_ship_and_cancel_post_to_the_transfer() -> None:
    fake = (
        FakeAgent()
        .on("POST", f"{TRANSFERS}/{TID}/ship", transfer_obj(status="SHIPPED"))
        .on("POST", f"{TRANSFERS}/{TID}/cancel", transfer_obj(status="CANCELLED"))
    )
    assert "SHIPPED" in run(fake, "transfer", "ship", TID).stdout
    assert (fake.last.method, fake.last.path, fake.last.body) == (
        "POST",
        f"{TRANSFERS}/{TID}/ship",
        None,
    )
    assert run_json(fake, "transfer", "cancel", TID)["status"] == "CANCELLED"
    fake.fail.append(TimedOut("read"))
    r = run(fake, "transfer", "ship", TID, code=5)
    assert f"transfer {TID} may have been shipped" in error_of(r)
    assert "ship it again (ship twice changes nothing)" in error_of(r)


@pytest.mark.parametrize(
    ("status", "code", "args"),
    [
        (404, 3, ["transfer", "show", TX]),
        (404, 3, ["transfer", "ship", TX]),
        (409, 4, ["transfer", "ship", TX]),  # cancelled, short of stock
        (409, 4, ["transfer", "cancel", TX]),  # received in full
        (409, 4, ["transfer", "receive", TX]),  # nothing pending; standalone
        (422, 2, ["transfer", "receive", TX]),  # unknown here: --from and the lines
        (404, 3, ["transfer", "create", "--to", "store-404", "P:1"]),
        (503, 5, ["transfer", "receive", TX]),  # the destination out of reach
        (403, 1, ["transfer", "cancel", TX]),
    ],
)
def test_errors_map_to_exit_codes(status: int, code: int, args: list[str]) -> None:
    message = f"the agent's own words ({status})"
    fake = FakeAgent()
    for method, path in (
        ("GET", f"{TRANSFERS}/{TX}"),
        ("POST", f"{TRANSFERS}/{TX}/ship"),
        ("POST", f"{TRANSFERS}/{TX}/cancel"),
        ("POST", f"{TRANSFERS}/{TX}/receive"),
        ("POST", TRANSFERS),
    ):
        fake.on(method, path, {"error": message}, status=status)
    assert error_of(run(fake, *args, code=code)) == f"Error: {message}"


# ---------------------------------------------------------------- receive
def test_receive_sends_a_drawn_receipt_id_and_the_lines_given() -> None:
    path = f"{TRANSFERS}/{TID}/receive"
    fake = FakeAgent().on("POST", path, transfer_obj(status="RECEIVED"), status=201)
    run(fake, "transfer", "receive", TID)  # everything pending: no lines at all
    body = fake.last.body
    assert DRAWN.match(body.pop("receiptId")) and body == {}
    run(fake, "transfer", "receive", TID, "PROD-001:4:1", "PROD-002:0:2", "PROD-003:6",
        "--from", "store-003", "--receipt-id", "rc-1")  # fmt: skip
    assert fake.last.body == {
        "receiptId": "rc-1",
        "fromStoreId": "store-003",
        "lines": [
            {"productId": "PROD-001", "received": 4, "damaged": 1},
            {"productId": "PROD-002", "received": 0, "damaged": 2},
            {"productId": "PROD-003", "received": 6, "damaged": 0},
        ],
    }
    assert run_json(fake, "transfer", "receive", TID)["status"] == "RECEIVED"
    run(fake, "transfer", "receive", TID)
    first, second = (sent.body["receiptId"] for sent in fake.sent[-2:])
    assert first != second  # each command is a receipt of its own; a rerun needs --receipt-id


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("PROD-001", "give each line as SKU:RECEIVED or SKU:RECEIVED:DAMAGED"),
        ("PROD-001:1:2:3", "give each line as SKU:RECEIVED or SKU:RECEIVED:DAMAGED"),
        ("PROD-001:0", "a line receives at least one unit (received or damaged)"),
        ("PROD-001:0:0", "a line receives at least one unit"),
        ("PROD-001:x:1", "RECEIVED must be a whole number from 0"),
        ("PROD-001:1:-1", "DAMAGED must be a whole number from 0"),
    ],
)
def test_bad_receipt_lines_are_exit_2_naming_the_argument(arg: str, expected: str) -> None:
    fake = FakeAgent()
    r = run(fake, "transfer", "receive", TID, arg, code=2)
    assert error_of(r).startswith(f"Error: {arg!r}: ") and expected in error_of(r)
    assert fake.sent == []


def test_a_lost_receipt_answer_names_the_receipt_id_to_rerun_with() -> None:
    fake = FakeAgent(fail=[ConnectionBroken("reset")])
    r = run(fake, "transfer", "receive", TID, "PROD-001:2", code=5)
    [sent] = fake.sent
    rid = sent.body["receiptId"]
    assert f"the receipt may have been recorded as {rid}" in error_of(r)
    assert f"--receipt-id {rid} (it is never counted twice)" in error_of(r)


# ------------------------------------------------------------ show, slip
def test_show_lists_lines_discrepancies_and_receipts() -> None:
    obj = transfer_obj(
        status="RECEIVED",
        originState="SHIPPED",
        shippedAt="2026-11-28T08:05:00.000Z",
        lines=[line("PROD-001", 3, shipped=3, received=4), line("PROD-002", 5, shipped=5,
               received=3, damaged=1, cancelled=1)],
        discrepancies=[{"sku": "PROD-001", "kind": "over_received", "quantity": 1},
                       {"sku": "PROD-002", "kind": "cancel_corrected", "quantity": 1}],
        receipts=[{"receiptId": "rc-1", "storeId": "store-002", "actor": "bo",
                   "receivedAt": "2026-11-28T09:00:00.000Z",
                   "lines": [{"sku": "PROD-001", "received": 4, "damaged": 0},
                             {"sku": "PROD-002", "received": 3, "damaged": 1}]}],
    )  # fmt: skip
    fake = FakeAgent().on("GET", f"{TRANSFERS}/{TID}", obj)
    r = run(fake, "transfer", "show", TID)
    assert "store-001 -> store-002" in r.stdout and "weekly top-up" in r.stdout
    rows = {cells[0]: cells for cells in reversed(table_lines(r.stdout))}  # the first table's
    assert rows["PROD-002"][2:] == ["5", "5", "3", "1", "1", "0"]
    assert "Discrepancies (2)" in r.stdout
    over = next(
        cells for cells in map(str.split, r.stdout.splitlines()) if "over_received" in cells
    )
    assert over[1:4] == ["PROD-001", "│", "1"]
    assert "received (or damaged) beyond what was shipped" in r.stdout
    assert "the return was corrected" in " ".join(r.stdout.split())
    assert rows["rc-1"][2:] == ["bo", "PROD-001 4, PROD-002 3 (+1 damaged)"]
    assert run_json(fake, "transfer", "show", TID) == obj
    clean = run(
        FakeAgent().on("GET", f"{TRANSFERS}/{TID}", transfer_obj()), "transfer", "show", TID
    )
    assert "Discrepancies" not in clean.stdout and "Receipts" not in clean.stdout


def test_the_packing_slip_fits_80_columns_with_boxes_to_tick() -> None:
    long_name = "Teclado Mecánico RGB con reposamuñecas y switches Cherry MX Blue, edición 2026"
    obj = transfer_obj(
        "T-7K3M-9XQ2-P8RA",
        "SHIPPED",
        shippedAt="2026-11-28T08:05:00.000Z",
        lines=[line("PROD-001", 3), line("PROD-LONG-SKU-000123/XL", 12, name=long_name)]
        + [line(f"SKU-{n}", n) for n in range(1, 30)]
        + [line("EXTRA", 0, received=2)],  # received, not on the transfer: not on the slip
    )
    fake = FakeAgent().on("GET", f"{TRANSFERS}/T-7K3M-9XQ2-P8RA", obj)
    r = run(fake, "transfer", "show", "T-7K3M-9XQ2-P8RA", "--slip", env={"COLUMNS": "200"})
    lines = r.stdout.splitlines()
    assert max(len(text) for text in lines) <= 80
    assert lines[0] == "PACKING SLIP   transfer T-7K3M-9XQ2-P8RA"
    assert lines[1] == "From: store-001    To: store-002    Status: SHIPPED"
    assert lines[2] == "Date: 2026-11-28 08:05 UTC (shipped)"
    assert lines[3] == "Note: weekly top-up"
    rows = table_rows(r.stdout)
    assert rows["SKU"] == ["SKU", "Product", "Qty", "Received", "Damaged"]
    assert rows["PROD-001"] == ["PROD-001", "Name of PROD-001", "3", "", ""]  # blank: to tick
    assert "EXTRA" not in rows and "SKU-29" in rows
    # the SKU whole on its line; the long name folded over the lines under it, all of it
    body = table_lines(r.stdout)
    at = next(n for n, cells in enumerate(body) if cells[0] == "PROD-LONG-SKU-000123/XL")
    name = [body[at][1]] + [c[1] for c in itertools.takewhile(lambda c: c[0] == "", body[at + 1 :])]
    assert " ".join(name) == long_name
    assert "31 lines, 450 units" in r.stdout
    assert "inv transfer receive T-7K3M-9XQ2-P8RA --from store-001" in r.stdout


def test_a_slip_of_a_transfer_known_only_from_receipts_says_so() -> None:
    obj = transfer_obj(originState=None, createdAt=None, lines=[line("EXTRA", 0, received=2)])
    r = run(FakeAgent().on("GET", f"{TRANSFERS}/{TID}", obj), "transfer", "show", TID, "--slip")
    assert "Date: not yet written by the origin" in r.stdout
    assert "(no lines from the origin yet)" in r.stdout


# ------------------------------------------------------------------- list
def test_list_sends_the_filters_and_flags_discrepancies() -> None:
    over = {"sku": "PROD-001", "kind": "over_received", "quantity": 1}
    flagged = transfer_obj("T-2", "PARTIALLY_RECEIVED", discrepancies=[over, over])
    items = [flagged, transfer_obj("T-1", updatedAt="2026-11-28T08:00:00.000Z")]
    fake = FakeAgent().on("GET", TRANSFERS, {"data": items})
    r = run(fake, "transfer", "list")
    assert fake.last.query == {"limit": "100"}
    rows = {cells[0]: cells for cells in map(str.split, r.stdout.splitlines()) if cells}
    assert rows["ID"] == ["ID", "From", "To", "Status", "Qty", "Pending", "Updated", "!"]
    assert rows["T-2"][1:6] == ["store-001", "store-002", "PARTIALLY_RECEIVED", "8", "0"]
    assert rows["T-2"][-1] == "2" and rows["T-1"][-1] == "08:00"  # not flagged
    assert r.stderr == "! = discrepancies, in 1 of these: see inv transfer show T-2\n"
    # at 80 columns: every id and flag still whole
    narrow = run(fake, "transfer", "list", env={"COLUMNS": "80"}).stdout.splitlines()
    assert max(map(len, narrow)) <= 80
    assert any(text.split()[:1] == ["T-2"] and text.split()[-1] == "2" for text in narrow)
    assert run_json(fake, "transfer", "list", "--status", "received", "--incoming") == items
    assert fake.last.query == {"status": "RECEIVED", "direction": "incoming", "limit": "100"}
    run(fake, "transfer", "list", "--outgoing", "--store", "store-002", "--limit", "5")
    assert fake.last.query == {"storeId": "store-002", "direction": "outgoing", "limit": "5"}
    empty = run(FakeAgent().on("GET", TRANSFERS, {"data": []}), "transfer", "list")
    assert (empty.stdout, empty.stderr) == ("", "No transfers.\n")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--incoming", "--outgoing"], "--incoming, --outgoing: give one of the two"),
        (["--status", "LOST"], "--status: 'LOST' must be one of DRAFT, SHIPPED"),
        (["--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_bad_list_flags_are_exit_2_and_send_nothing(args: list[str], expected: str) -> None:
    fake = FakeAgent()
    r = run(fake, "transfer", "list", *args, code=2)
    assert expected in " ".join(r.stderr.split())
    assert fake.sent == []


# ---------------------------------------------------- availability columns
@pytest.mark.parametrize("command", ["availability", "stock show"])
def test_stock_tables_show_transit_columns_only_when_some_store_has_any(command: str) -> None:
    quiet = availability_obj(stock_obj("store-001", 10, inTransit=0, incoming=0))
    r = run(FakeAgent().on("GET", "/api/v1/products/PROD-001/availability", quiet),
            *command.split(), "PROD-001")  # fmt: skip
    assert "In transit" not in r.stdout and "Incoming" not in r.stdout
    assert "in transit between stores" not in r.stdout
    moving = availability_obj(
        stock_obj("store-001", 7, inTransit=3, incoming=0),
        stock_obj("store-002", 5, inTransit=0, incoming=3),
    )
    moving["totalInTransit"] = 3
    r = run(FakeAgent().on("GET", "/api/v1/products/PROD-001/availability", moving),
            *command.split(), "PROD-001")  # fmt: skip
    rows = table_rows(r.stdout)
    header = rows["Store"]
    at = header.index("In transit")
    assert header[at + 1] == "Incoming" and header[at - 1] == "Available"
    assert (rows["store-001"][at], rows["store-001"][at + 1]) == ("3", "0")
    assert (rows["store-002"][at], rows["store-002"][at + 1]) == ("0", "3")
    assert "; in transit between stores: 3" in r.stdout
