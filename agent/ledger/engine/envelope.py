"""What an event looks like on the wire, and the sources a ledger draws on.

Envelope: ``{id: "origin:seq", origin, seq, hlc, type, schemaVersion, data}``.

Types, and the schema version each carries (``TYPE_SCHEMA``):
- ``product.upserted``    1  data: {sku, fields: {...}, basis}
- ``stock.movement``      1  data: {sku, storeId, kind, quantity, reason, actor, basis?}
- ``reservation.changed`` 1  data: {reservation: {...}, movement?: {...}}
- ``store.upserted``      2  data: {storeId, fields: {name?, address?, lat?, lon?,
                                    priority?, online?, safetyStock?}, basis}
- ``stock.settings``      2  data: {sku, storeId, fields: {safetyStock}, basis}
- ``stock.reorder``       3  data: {sku, storeId, fields: {reorderPoint?, maxStock?,
                                    reorderQty?}, basis}
- ``transfer.changed``    3  data: {transfer: {id, fromStoreId, toStoreId, note, state,
                                    lines: [{sku, quantity}], actor, createdAtMs,
                                    shippedAtMs?, cancelledAtMs?, updatedAtMs},
                                    claims?: [{sku, quantity}]}   (origin only)
- ``transfer.received``   3  data: {receipt: {id, transferId, fromStoreId, toStoreId,
                                    lines: [{sku, received, damaged}], actor,
                                    receivedAtMs}}                (destination only)
- ``alert.raised``        3  data: {alert: {kind, sku, storeId, before, after,
                                    reorderPoint, cause, raisedAtMs}} (the stock's store)
- ``stock.batch``         4  data: {movements: [{sku, storeId, kind, quantity, reason,
                                    actor, basis?}, ...]}  (1..MAX_BATCH_ROWS, each
                                    (sku, storeId) once; the i-th is movement
                                    ``origin:seq/i``: an import's chunk)

An event carries the version of its type, not the newest: an agent of schema 1
applies the first three from an agent of schema 2 and holds the others back
(``schema_too_new``) until it is upgraded. So an agent of schema 3 holds back
an import's ``stock.batch`` and applies it once upgraded, and an agent of
schema 4 applies the ``stock.movement`` events of an older one as ever.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from agent.hlc import now_ms

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "TYPE_SCHEMA",
    "dumps",
    "envelope",
    "new_uuid",
    "now_ms",
]

# the schema version each event type came with: what its events carry
TYPE_SCHEMA = {
    "product.upserted": 1,
    "stock.movement": 1,
    "reservation.changed": 1,
    "store.upserted": 2,
    "stock.settings": 2,
    "stock.reorder": 3,
    "transfer.changed": 3,
    "transfer.received": 3,
    "alert.raised": 3,
    "stock.batch": 4,
}
SCHEMA_VERSION = max(TYPE_SCHEMA.values())  # the newest this agent knows
EVENT_TYPES = tuple(TYPE_SCHEMA)

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
        "schemaVersion": TYPE_SCHEMA[type_],
        "data": data,
    }
