"""What an event looks like on the wire, and the sources a ledger draws on.

Envelope: ``{id: "origin:seq", origin, seq, hlc, type, schemaVersion, data}``.

Types (schemaVersion 1):
- ``product.upserted``    data: {sku, fields: {...}, basis}
- ``stock.movement``      data: {sku, storeId, kind, quantity, reason, actor, basis?}
- ``reservation.changed`` data: {reservation: {...}, movement?: {...}}
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from agent.hlc import now_ms

__all__ = ["EVENT_TYPES", "SCHEMA_VERSION", "dumps", "envelope", "new_uuid", "now_ms"]

SCHEMA_VERSION = 1
EVENT_TYPES = ("product.upserted", "stock.movement", "reservation.changed")

# one encoder, made once: ``json.dumps`` with options builds a new one per call
dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def new_uuid() -> str:
    """The default source of new ids: a random UUID."""
    return str(uuid.uuid4())


def envelope(origin: str, seq: int, hlc: int, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{origin}:{seq}",
        "origin": origin,
        "seq": seq,
        "hlc": hlc,
        "type": type_,
        "schemaVersion": SCHEMA_VERSION,
        "data": data,
    }
