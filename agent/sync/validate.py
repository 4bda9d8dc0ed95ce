"""Checks a peer's event before it may touch the ledger.

Anything that fails is quarantined (kept, counted, listed), never applied and
never allowed to crash the consumer. An event of a newer schema than this
agent knows is held back the same way and applied after an upgrade.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from agent import hlc as hlc_mod
from agent.domain import (
    ANY_STORE,
    MAX_PRIORITY,
    MAX_QUANTITY,
    MAX_TRANSFER_LINES,
    SKU_RE,
    STORE_RE,
    AlertKind,
    MovementKind,
    ReservationStatus,
    TransferState,
)
from agent.ledger.engine import EVENT_TYPES, SCHEMA_VERSION, TYPE_SCHEMA
from agent.sync import subjects

log = structlog.get_logger("agent.sync")
MAX_INT = 2**62
# tuples, not sets: a hostile payload may put a list where a string belongs,
# and testing an unhashable value for membership in a set raises
MOVEMENT_KINDS = tuple(k.value for k in MovementKind if not k.startswith(("transfer", "damaged")))
TRANSFER_STATES = tuple(s.value for s in TransferState)
ALERT_KINDS = tuple(k.value for k in AlertKind)
RESERVATION_STATUSES = tuple(s.value for s in ReservationStatus)
CHANNELS = ("store", "online")  # agent.inputs.Channel


@dataclass
class Rejected:
    reason: str  # malformed | origin_mismatch | clock_skew | schema_too_new | not_owner
    detail: str
    event_id: str | None = None


def _int(v: Any, lo: int = 0, hi: int = MAX_INT) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _utf8(v: str) -> bool:
    """JSON may carry lone surrogates (``"\\ud800"``): SQLite can't store them."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _str(v: Any, pattern: Any = None, max_len: int = 2000, optional: bool = False) -> bool:
    if v is None:
        return optional
    return (
        isinstance(v, str)
        and len(v) <= max_len
        and (pattern is None or bool(pattern.match(v)))
        and _utf8(v)
    )


def _basis_ok(basis: Any) -> bool:
    """Absent, or per-origin watermarks: {origin: seq}."""
    return basis is None or (
        isinstance(basis, dict) and all(isinstance(k, str) and _int(v) for k, v in basis.items())
    )


def _movement_ok(m: Any) -> str | None:
    if not isinstance(m, dict):
        return "movement is not an object"
    if not _str(m.get("sku"), SKU_RE) or not _str(m.get("storeId"), STORE_RE):
        return "movement sku/storeId invalid"
    if m.get("kind") not in MOVEMENT_KINDS:
        return "movement kind invalid"
    lo = 0 if m["kind"] == MovementKind.COUNT else -MAX_QUANTITY
    if not _int(m.get("quantity"), lo, MAX_QUANTITY):
        return "movement quantity invalid"
    if not (_str(m.get("reason", "")) and _str(m.get("actor", ""))):
        return "movement reason/actor invalid"
    if not _basis_ok(m.get("basis")):
        return "movement basis invalid"
    return None


def _price_ok(price: Any) -> bool:
    return not isinstance(price, bool) and 0 <= price <= 1e12


def _product_ok(d: dict[str, Any]) -> str | None:
    if not _str(d.get("sku"), SKU_RE) or not isinstance(d.get("fields"), dict):
        return "product sku/fields invalid"
    f = d["fields"]
    kinds: dict[str, type | tuple[type, ...]] = {
        "id": str,
        "name": str,
        "description": str,
        "category": str,
        "price": (int, float),
        "active": bool,
    }
    for key, value in f.items():
        if key not in kinds or not isinstance(value, kinds[key]):
            return f"product field {key!r} invalid"
        if isinstance(value, str) and not _str(value):
            return f"product field {key!r} too long or not UTF-8"
        if key == "price" and not _price_ok(f[key]):
            return "product price invalid"
    if not _basis_ok(d.get("basis")):
        return "product basis invalid"
    return None


def _number(v: Any, lo: float, hi: float) -> bool:
    """A finite JSON number in [lo, hi] (Python's JSON reads NaN and Infinity)."""
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and lo <= v <= hi
    )


# a directory field's check; every field may be null (unset: the default applies)
STORE_FIELDS: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: _str(v, max_len=200),
    "address": lambda v: _str(v, max_len=200),
    "lat": lambda v: _number(v, -90, 90),
    "lon": lambda v: _number(v, -180, 180),
    "priority": lambda v: _int(v, 1, MAX_PRIORITY),
    "online": lambda v: isinstance(v, bool),
    "safetyStock": lambda v: _int(v, 0, MAX_QUANTITY),
}


def _store_id_ok(v: Any) -> bool:
    """A store's id, and never ``any`` (which asks for routing)."""
    return _str(v, STORE_RE) and v != ANY_STORE


def _fields_ok(what: str, fields: Any, checks: dict[str, Callable[[Any], bool]]) -> str | None:
    if not isinstance(fields, dict):
        return f"{what} fields invalid"
    for key, value in fields.items():
        if not isinstance(key, str) or key not in checks:
            return f"{what} field {key!r} unknown"
        if value is not None and not checks[key](value):
            return f"{what} field {key!r} invalid"
    return None


def _store_ok(d: dict[str, Any]) -> str | None:
    if not _store_id_ok(d.get("storeId")):
        return "store storeId invalid"
    problem = _fields_ok("store", d.get("fields"), STORE_FIELDS)
    if problem is None and not _basis_ok(d.get("basis")):
        problem = "store basis invalid"
    return problem


def _settings_ok(d: dict[str, Any]) -> str | None:
    if not _str(d.get("sku"), SKU_RE) or not _store_id_ok(d.get("storeId")):
        return "stock settings sku/storeId invalid"
    checks = {"safetyStock": STORE_FIELDS["safetyStock"]}
    problem = _fields_ok("stock settings", d.get("fields"), checks)
    if problem is None and not _basis_ok(d.get("basis")):
        problem = "stock settings basis invalid"
    return problem


REORDER_FIELDS: dict[str, Callable[[Any], bool]] = {
    "reorderPoint": lambda v: _int(v, 0, MAX_QUANTITY),
    "maxStock": lambda v: _int(v, 0, MAX_QUANTITY),
    "reorderQty": lambda v: _int(v, 1, MAX_QUANTITY),
}


def _reorder_ok(d: dict[str, Any]) -> str | None:
    if not _str(d.get("sku"), SKU_RE) or not _store_id_ok(d.get("storeId")):
        return "reorder settings sku/storeId invalid"
    problem = _fields_ok("reorder settings", d.get("fields"), REORDER_FIELDS)
    if problem is None and not _basis_ok(d.get("basis")):
        problem = "reorder settings basis invalid"
    return problem


def _lines_ok(lines: Any, check: Callable[[dict[str, Any]], bool]) -> bool:
    """1..MAX_TRANSFER_LINES objects, each SKU once, each passing ``check``."""
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_TRANSFER_LINES:
        return False
    skus: list[str] = []
    for line in lines:
        if not isinstance(line, dict) or not _str(line.get("sku"), SKU_RE) or not check(line):
            return False
        skus.append(line["sku"])
    return len(set(skus)) == len(skus)


def _transfer_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    t = d.get("transfer")
    if not isinstance(t, dict):
        return "transfer is not an object", "malformed"
    if not (
        _str(t.get("id"), max_len=128)
        and _store_id_ok(t.get("fromStoreId"))
        and _store_id_ok(t.get("toStoreId"))
        and t.get("fromStoreId") != t.get("toStoreId")
        and t.get("state") in TRANSFER_STATES
        and _str(t.get("note", ""), max_len=2000)
        and _str(t.get("actor", ""), max_len=200)
        and _int(t.get("createdAtMs"))
        and _int(t.get("updatedAtMs"))
        and all(_int(t.get(k)) or t.get(k) is None for k in ("shippedAtMs", "cancelledAtMs"))
        and _lines_ok(t.get("lines"), lambda ln: _int(ln.get("quantity"), 1, MAX_QUANTITY))
    ):
        return "transfer fields invalid", "malformed"
    claims = d.get("claims")
    if claims is not None and not (
        t["state"] == TransferState.CANCELLED
        and _lines_ok(claims, lambda ln: _int(ln.get("quantity"), 0, MAX_QUANTITY))
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
    if not (_int(got, 0, MAX_QUANTITY) and _int(broken, 0, MAX_QUANTITY)):
        return False
    return int(got or 0) + int(broken or 0) >= 1


def _receipt_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    r = d.get("receipt")
    if not isinstance(r, dict):
        return "receipt is not an object", "malformed"
    if not (
        _str(r.get("id"), max_len=128)
        and _str(r.get("transferId"), max_len=128)
        and _store_id_ok(r.get("fromStoreId"))
        and _store_id_ok(r.get("toStoreId"))
        and r.get("fromStoreId") != r.get("toStoreId")
        and _str(r.get("actor", ""), max_len=200)
        and _int(r.get("receivedAtMs"))
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
        and _str(a.get("sku"), SKU_RE)
        and _store_id_ok(a.get("storeId"))
        and _int(a.get("before"), -MAX_INT, MAX_INT)
        and _int(a.get("after"), -MAX_INT, MAX_INT)
        and (a.get("reorderPoint") is None or _int(a.get("reorderPoint"), 0, MAX_QUANTITY))
        and _str(a.get("cause"), optional=True, max_len=200)
        and _int(a.get("raisedAtMs"))
    ):
        return "alert fields invalid", "malformed"
    if a["storeId"] != origin:
        return (
            f"alert of store {a['storeId']!r} raised by {origin!r}: only the store "
            "that holds the stock raises its alerts"
        ), "not_owner"
    return None, ""


def _reservation_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    r = d.get("reservation")
    if not isinstance(r, dict):
        return "reservation is not an object", "malformed"
    if not (
        _str(r.get("id"), max_len=128)
        and _str(r.get("sku"), SKU_RE)
        and _str(r.get("storeId"), STORE_RE)
        and _int(r.get("quantity"), 1, MAX_QUANTITY)
        and r.get("status") in RESERVATION_STATUSES
        and all(_int(r.get(k)) for k in ("expiresAtMs", "createdAtMs", "updatedAtMs"))
        and _str(r.get("customerId"), optional=True, max_len=200)
        and _str(r.get("orderId"), optional=True, max_len=200)
        and r.get("channel", "store") in CHANNELS
    ):
        return "reservation fields invalid", "malformed"
    if r["storeId"] != origin:
        return (
            f"reservation of store {r['storeId']!r} written by {origin!r}: only the "
            "owning store may write it"
        ), "not_owner"
    if d.get("movement") is not None:
        problem = _movement_ok(d["movement"])
        if problem:
            return problem, "malformed"
    return None, ""


def _parse(payload: bytes) -> dict[str, Any] | Rejected:
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return Rejected("malformed", f"not JSON: {exc}")
    except RecursionError:
        return Rejected("malformed", "JSON nested too deeply")
    if not isinstance(event, dict):
        return Rejected("malformed", "event is not an object")
    return event


def _data_problem(kind: str, data: dict[str, Any], origin: str) -> tuple[str | None, str]:
    """What is wrong with an event's ``data`` for its type, and the reason to quarantine it."""
    if kind == "product.upserted":
        return _product_ok(data), "malformed"
    if kind == "stock.movement":
        return _movement_ok(data), "malformed"
    if kind == "store.upserted":
        return _store_ok(data), "malformed"
    if kind == "stock.settings":
        return _settings_ok(data), "malformed"
    if kind == "stock.reorder":
        return _reorder_ok(data), "malformed"
    if kind == "transfer.changed":
        return _transfer_ok(data, origin)
    if kind == "transfer.received":
        return _receipt_ok(data, origin)
    if kind == "alert.raised":
        return _alert_ok(data, origin)
    return _reservation_ok(data, origin)


def check(subject: str, payload: bytes, now_ms: int, max_skew_ms: int) -> dict[str, Any] | Rejected:
    event = _parse(payload)
    if isinstance(event, Rejected):
        return event
    eid = event.get("id") if isinstance(event.get("id"), str) else None
    origin, seq = event.get("origin"), event.get("seq")
    if not (
        _str(origin, STORE_RE)
        and _int(seq, 1)
        and _int(event.get("hlc"))
        and isinstance(event.get("type"), str)
        and _int(event.get("schemaVersion"), 1)
        and isinstance(event.get("data"), dict)
    ):
        return Rejected("malformed", "envelope fields missing or of the wrong type", eid)
    if eid != f"{origin}:{seq}":
        return Rejected("malformed", "id is not origin:seq", eid)
    if subjects.store_of(subject) != origin:
        return Rejected("origin_mismatch", f"event of {origin!r} arrived on {subject!r}", eid)
    if event["schemaVersion"] > SCHEMA_VERSION:
        return Rejected(
            "schema_too_new",
            f"schema {event['schemaVersion']} > {SCHEMA_VERSION}: upgrade this agent",
            eid,
        )
    ahead = hlc_mod.wall_ms(event["hlc"]) - now_ms
    if ahead > max_skew_ms:
        return Rejected("clock_skew", f"timestamp {ahead} ms ahead of this agent's clock", eid)
    kind = event["type"]
    if kind not in EVENT_TYPES:
        return Rejected("malformed", f"unknown event type {kind!r}", eid)
    if event["schemaVersion"] < TYPE_SCHEMA[kind]:
        # an agent of the older schema would call it unknown: its writer is broken
        return Rejected(
            "malformed", f"{kind} needs schemaVersion {TYPE_SCHEMA[kind]} or newer", eid
        )
    problem, reason = _data_problem(kind, event["data"], str(origin))
    if problem:
        return Rejected(reason or "malformed", problem, eid)
    return event


def sort(
    items: list[tuple[str, bytes]], now_ms: int, max_skew_ms: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check a batch of (subject, payload): the events that may be applied,
    and a quarantine record for each that may not (each logged)."""
    events: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for subject, payload in items:
        checked = check(subject, payload, now_ms, max_skew_ms)
        if isinstance(checked, Rejected):
            rejected.append(quarantine_record(checked, subject, payload))
        else:
            events.append(checked)
    return events, rejected


def quarantine_record(rejected: Rejected, subject: str, payload: bytes) -> dict[str, Any]:
    """What the ledger keeps of a rejected event (its body cut at 64 KiB)."""
    log.warning(
        "event quarantined",
        reason=rejected.reason,
        detail=rejected.detail,
        event_id=rejected.event_id,
        subject=subject,
    )
    return {
        "eventId": rejected.event_id,
        "subject": subject,
        "reason": rejected.reason,
        "body": payload[:65536].decode("utf-8", "replace"),
    }
