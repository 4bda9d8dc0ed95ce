"""What a routing answers: the fingerprint a retry must match, what an ask
that raised counts as, and the messages of a routing that ended without a
grant. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json

from agent.errors import InventoryError, RemoteError, Unavailable
from agent.inputs import RoutingRequest


def fingerprint(sku: str, request: RoutingRequest) -> str:
    """What a retry with the same id must repeat (the TTL as resolved)."""
    parts = [
        sku,
        request.quantity,
        request.customer_id,
        request.ttl,
        request.strategy,
        list(request.stores) if request.stores is not None else None,
        request.near,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def outcome_of(exc: InventoryError) -> str:
    """An ask that raised: ``timeout`` when it may have been applied (no
    answer in time, or an owner failing in an unknown way), ``unreachable``
    when it certainly was not (not connected, no responder, the owner
    refusing past its deadline or unable to write), else ``insufficient``
    (the owner refused: not enough for an online order, product unknown
    there, ...; its words are kept in the attempt's ``error``)."""
    if isinstance(exc, Unavailable):
        return "timeout" if exc.extra.get("outcome") == "unknown" else "unreachable"
    if isinstance(exc, RemoteError) and exc.status >= 500:
        return "unreachable" if exc.status == 503 else "timeout"
    return "insufficient"


def refusal(
    request: RoutingRequest, sku: str, planned_count: int, asked: list[tuple[str, str]]
) -> str:
    """The 409's message: who was asked and what each said, how many were
    skipped (``planned_count``: the whole ranking)."""
    skipped = planned_count - len(asked)
    if planned_count == 0:
        why = "no candidate store (none fulfils online orders, or none was named)"
    else:
        parts = []
        if asked:
            parts.append("asked " + ", ".join(f"{s} ({o})" for s, o in asked))
        if skipped:
            parts.append(
                f"{skipped} skipped (less than {request.quantity} available for online orders here)"
            )
        why = "; ".join(parts)
    unsure = any(o == "timeout" for _, o in asked)
    return f"no store can reserve {request.quantity} of {sku}: {why}" + (
        "; what an unanswered store may have reserved is cancelled automatically" if unsure else ""
    )


def unreachable(request: RoutingRequest, sku: str, asked: list[tuple[str, str]]) -> str:
    """The 503's message: every store asked was out of reach or silent."""
    stores = ", ".join(f"{s} ({o})" for s, o in asked)
    unsure = any(o == "timeout" for _, o in asked)
    return f"no store could be reached to reserve {request.quantity} of {sku}: {stores}; " + (
        "what an unanswered store may have reserved is cancelled automatically"
        if unsure
        else "nothing was reserved"
    )
