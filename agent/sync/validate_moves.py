"""Validation of the events that move stock between stores and watch it run
low: reorder settings, a transfer's two sides, alerts. Each check answers
(problem, reason) like ``validate``'s, with ``not_owner`` for an event
written by a store that does not own what it writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.domain import MAX_QUANTITY, MAX_TRANSFER_LINES, SKU_RE, AlertKind, TransferState
from agent.sync.shapes import MAX_INT, basis_ok, fields_ok, is_int, is_str, store_id_ok

TRANSFER_STATES = tuple(s.value for s in TransferState)
ALERT_KINDS = tuple(k.value for k in AlertKind)


REORDER_FIELDS: dict[str, Callable[[Any], bool]] = {
    "reorderPoint": lambda v: is_int(v, 0, MAX_QUANTITY),
    "maxStock": lambda v: is_int(v, 0, MAX_QUANTITY),
    "reorderQty": lambda v: is_int(v, 1, MAX_QUANTITY),
}


def _reorder_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    """Any store may write any store's settings (admins do): no owner to check."""
    if not is_str(d.get("sku"), SKU_RE) or not store_id_ok(d.get("storeId")):
        return "reorder settings sku/storeId invalid", "malformed"
    problem = fields_ok("reorder settings", d.get("fields"), REORDER_FIELDS)
    if problem is None and not basis_ok(d.get("basis")):
        problem = "reorder settings basis invalid"
    return problem, "malformed"


def _lines_ok(lines: Any, check: Callable[[dict[str, Any]], bool]) -> bool:
    """1..MAX_TRANSFER_LINES objects, each SKU once, each passing ``check``."""
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_TRANSFER_LINES:
        return False
    skus: list[str] = []
    for line in lines:
        if not isinstance(line, dict) or not is_str(line.get("sku"), SKU_RE) or not check(line):
            return False
        skus.append(line["sku"])
    return len(set(skus)) == len(skus)


def _transfer_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    t = d.get("transfer")
    if not isinstance(t, dict):
        return "transfer is not an object", "malformed"
    if not (
        is_str(t.get("id"), max_len=128)
        and store_id_ok(t.get("fromStoreId"))
        and store_id_ok(t.get("toStoreId"))
        and t.get("fromStoreId") != t.get("toStoreId")
        and t.get("state") in TRANSFER_STATES
        and is_str(t.get("note", ""), max_len=2000)
        and is_str(t.get("actor", ""), max_len=200)
        and is_int(t.get("createdAtMs"))
        and is_int(t.get("updatedAtMs"))
        and all(is_int(t.get(k)) or t.get(k) is None for k in ("shippedAtMs", "cancelledAtMs"))
        and _lines_ok(t.get("lines"), lambda ln: is_int(ln.get("quantity"), 1, MAX_QUANTITY))
    ):
        return "transfer fields invalid", "malformed"
    claims = d.get("claims")
    if claims is not None and not (
        t["state"] == TransferState.CANCELLED
        and _lines_ok(claims, lambda ln: is_int(ln.get("quantity"), 0, MAX_QUANTITY))
    ):
        return "transfer claims invalid", "malformed"
    if t["fromStoreId"] != origin:
        return (
            f"transfer from store {t['fromStoreId']!r} written by {origin!r}: only its "
            "origin may write it"
        ), "not_owner"
    return None, ""


def _receipt_line_ok(line: dict[str, Any]) -> bool:
    got, broken = line.get("received"), line.get("damaged")
    if not (is_int(got, 0, MAX_QUANTITY) and is_int(broken, 0, MAX_QUANTITY)):
        return False
    return int(got or 0) + int(broken or 0) >= 1


def _receipt_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    r = d.get("receipt")
    if not isinstance(r, dict):
        return "receipt is not an object", "malformed"
    if not (
        is_str(r.get("id"), max_len=128)
        and is_str(r.get("transferId"), max_len=128)
        and store_id_ok(r.get("fromStoreId"))
        and store_id_ok(r.get("toStoreId"))
        and r.get("fromStoreId") != r.get("toStoreId")
        and is_str(r.get("actor", ""), max_len=200)
        and is_int(r.get("receivedAtMs"))
        and _lines_ok(r.get("lines"), _receipt_line_ok)
    ):
        return "receipt fields invalid", "malformed"
    if r["toStoreId"] != origin:
        return (
            f"receipt at store {r['toStoreId']!r} written by {origin!r}: only the "
            "receiving store may write it"
        ), "not_owner"
    return None, ""


def _alert_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    a = d.get("alert")
    if not isinstance(a, dict):
        return "alert is not an object", "malformed"
    if not (
        a.get("kind") in ALERT_KINDS
        and is_str(a.get("sku"), SKU_RE)
        and store_id_ok(a.get("storeId"))
        and is_int(a.get("before"), -MAX_INT, MAX_INT)
        and is_int(a.get("after"), -MAX_INT, MAX_INT)
        and (a.get("reorderPoint") is None or is_int(a.get("reorderPoint"), 0, MAX_QUANTITY))
        and is_str(a.get("cause"), optional=True, max_len=200)
        and is_int(a.get("raisedAtMs"))
    ):
        return "alert fields invalid", "malformed"
    if a["storeId"] != origin:
        return (
            f"alert of store {a['storeId']!r} raised by {origin!r}: only the store "
            "that holds the stock raises its alerts"
        ), "not_owner"
    return None, ""


CHECKS: dict[str, Callable[[dict[str, Any], str], tuple[str | None, str]]] = {
    "stock.reorder": _reorder_ok,
    "transfer.changed": _transfer_ok,
    "transfer.received": _receipt_ok,
    "alert.raised": _alert_ok,
}
