"""Checks a peer's event before it may touch the ledger.

Anything that fails is quarantined (kept, counted, listed), never applied and
never allowed to crash the consumer. An event of a newer schema than this
agent knows is held back the same way and applied after an upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from agent import hlc as hlc_mod
from agent.domain import (
    MAX_BATCH_ROWS,
    MAX_PRIORITY,
    MAX_QUANTITY,
    SKU_RE,
    STORE_RE,
    MovementKind,
    ReservationStatus,
)
from agent.ledger.engine import EVENT_TYPES, SCHEMA_VERSION, TYPE_SCHEMA
from agent.sync import subjects, validate_moves
from agent.sync.shapes import (
    basis_ok,
    fields_ok,
    is_int,
    is_str,
    number_ok,
    store_id_ok,
)

log = structlog.get_logger("agent.sync")
# tuples, not sets: a hostile payload may put a list where a string belongs,
# and testing an unhashable value for membership in a set raises
MOVEMENT_KINDS = tuple(k.value for k in MovementKind if not k.startswith(("transfer", "damaged")))
RESERVATION_STATUSES = tuple(s.value for s in ReservationStatus)
CHANNELS = ("store", "online")  # agent.inputs.Channel


@dataclass
class Rejected:
    reason: str  # malformed | origin_mismatch | clock_skew | schema_too_new | not_owner
    detail: str
    event_id: str | None = None


def _movement_ok(m: Any) -> str | None:
    if not isinstance(m, dict):
        return "movement is not an object"
    if not is_str(m.get("sku"), SKU_RE) or not is_str(m.get("storeId"), STORE_RE):
        return "movement sku/storeId invalid"
    if m.get("kind") not in MOVEMENT_KINDS:
        return "movement kind invalid"
    lo = 0 if m["kind"] == MovementKind.COUNT else -MAX_QUANTITY
    if not is_int(m.get("quantity"), lo, MAX_QUANTITY):
        return "movement quantity invalid"
    if not (is_str(m.get("reason", "")) and is_str(m.get("actor", ""))):
        return "movement reason/actor invalid"
    if not basis_ok(m.get("basis")):
        return "movement basis invalid"
    return None


def _batch_ok(d: dict[str, Any]) -> str | None:
    """1..MAX_BATCH_ROWS movements, each one a ``stock.movement``'s data could
    be, each (sku, storeId) once: one bad row refuses the whole event (it is
    one write)."""
    rows = d.get("movements")
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_BATCH_ROWS:
        return f"batch movements: not a list of 1 to {MAX_BATCH_ROWS}"
    keys: set[tuple[str, str]] = set()
    for i, m in enumerate(rows):
        problem = _movement_ok(m)
        if problem:
            return f"batch movement {i}: {problem}"
        keys.add((m["sku"], m["storeId"]))
        if len(keys) <= i:
            return f"batch movement {i}: moves ({m['sku']}, {m['storeId']}) a second time"
    return None


def _price_ok(price: Any) -> bool:
    return not isinstance(price, bool) and 0 <= price <= 1e12


def _product_ok(d: dict[str, Any]) -> str | None:
    if not is_str(d.get("sku"), SKU_RE) or not isinstance(d.get("fields"), dict):
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
        if isinstance(value, str) and not is_str(value):
            return f"product field {key!r} too long or not UTF-8"
        if key == "price" and not _price_ok(f[key]):
            return "product price invalid"
    if not basis_ok(d.get("basis")):
        return "product basis invalid"
    return None


# a directory field's check; every field may be null (unset: the default applies)
STORE_FIELDS: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: is_str(v, max_len=200),
    "address": lambda v: is_str(v, max_len=200),
    "lat": lambda v: number_ok(v, -90, 90),
    "lon": lambda v: number_ok(v, -180, 180),
    "priority": lambda v: is_int(v, 1, MAX_PRIORITY),
    "online": lambda v: isinstance(v, bool),
    "safetyStock": lambda v: is_int(v, 0, MAX_QUANTITY),
}


def _store_ok(d: dict[str, Any]) -> str | None:
    if not store_id_ok(d.get("storeId")):
        return "store storeId invalid"
    problem = fields_ok("store", d.get("fields"), STORE_FIELDS)
    if problem is None and not basis_ok(d.get("basis")):
        problem = "store basis invalid"
    return problem


def _settings_ok(d: dict[str, Any]) -> str | None:
    if not is_str(d.get("sku"), SKU_RE) or not store_id_ok(d.get("storeId")):
        return "stock settings sku/storeId invalid"
    checks = {"safetyStock": STORE_FIELDS["safetyStock"]}
    problem = fields_ok("stock settings", d.get("fields"), checks)
    if problem is None and not basis_ok(d.get("basis")):
        problem = "stock settings basis invalid"
    return problem


def _reservation_ok(d: dict[str, Any], origin: str) -> tuple[str | None, str]:
    r = d.get("reservation")
    if not isinstance(r, dict):
        return "reservation is not an object", "malformed"
    if not (
        is_str(r.get("id"), max_len=128)
        and is_str(r.get("sku"), SKU_RE)
        and is_str(r.get("storeId"), STORE_RE)
        and is_int(r.get("quantity"), 1, MAX_QUANTITY)
        and r.get("status") in RESERVATION_STATUSES
        and all(is_int(r.get(k)) for k in ("expiresAtMs", "createdAtMs", "updatedAtMs"))
        and is_str(r.get("customerId"), optional=True, max_len=200)
        and is_str(r.get("orderId"), optional=True, max_len=200)
        and r.get("channel", "store") in CHANNELS
        and is_str(r.get("createdBy"), optional=True, max_len=200)
        and is_str(r.get("updatedBy"), optional=True, max_len=200)
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
    if kind == "stock.batch":
        return _batch_ok(data), "malformed"
    if kind == "store.upserted":
        return _store_ok(data), "malformed"
    if kind == "stock.settings":
        return _settings_ok(data), "malformed"
    if kind in validate_moves.CHECKS:
        return validate_moves.CHECKS[kind](data, origin)
    return _reservation_ok(data, origin)


def check(subject: str, payload: bytes, now_ms: int, max_skew_ms: int) -> dict[str, Any] | Rejected:
    event = _parse(payload)
    if isinstance(event, Rejected):
        return event
    # kept with a rejected event, so only an id SQLite can store (no lone surrogates)
    eid = event.get("id") if is_str(event.get("id"), max_len=300) else None
    origin, seq = event.get("origin"), event.get("seq")
    if not (
        is_str(origin, STORE_RE)
        and is_int(seq, 1)
        and is_int(event.get("hlc"))
        and isinstance(event.get("type"), str)
        and is_int(event.get("schemaVersion"), 1)
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
