"""Request/reply between agents: forwarding a reservation to the store that
owns the stock, and serving our own events to a peer repairing a gap.

Wire format: the request is JSON; the reply is ``{"status": int, "body": ...}``
with the HTTP status the owner's API would have answered.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog

from agent.errors import InvalidInput, InventoryError, RemoteError, Unavailable
from agent.inputs import ReservationRequest
from agent.replica import Replica
from agent.service import InventoryService

log = structlog.get_logger("agent.rpc")


def reply_bytes(status: int, body: Any) -> bytes:
    return json.dumps({"status": status, "body": body}).encode()


async def handle(service: InventoryService, replica: Replica, op: str, payload: bytes) -> bytes:
    """Serve one request addressed to this store."""
    try:
        req = json.loads(payload or b"{}")
    except (ValueError, RecursionError):
        # as the owner's HTTP API answers a body that is not JSON: the
        # asker's fault, not an internal error
        return reply_bytes(400, {"error": "request is not valid JSON"})
    try:
        if not isinstance(req, dict):
            raise InvalidInput("request must be a JSON object")
        deadline = req.get("deadlineMs")
        if isinstance(deadline, int) and time.time() * 1000 > deadline:
            # the caller has given up and told its user nothing was done
            raise Unavailable("request arrived after its deadline; not applied")
        status, body = await _serve(service, replica, op, req)
        return reply_bytes(status, body)
    except InventoryError as exc:
        return reply_bytes(exc.status, exc.body())
    except Exception:  # never let a bad request kill the responder
        log.exception("rpc request failed", op=op)
        return reply_bytes(500, {"error": "internal error"})


async def _serve(
    service: InventoryService, replica: Replica, op: str, req: dict[str, Any]
) -> tuple[int, Any]:
    if op == "reserve":
        request = ReservationRequest(
            ref=_s(req, "productId"),
            quantity=_i(req, "quantity"),
            reservation_id=_s(req, "reservationId"),
            store_id=service.store_id,
            customer_id=req.get("customerId"),
            ttl=req.get("ttl"),
        )
        return await service.reserve(request)
    if op == "confirm":
        return await service.confirm(
            _s(req, "reservationId"), req.get("orderId"), str(req.get("actor") or "forwarded")
        )
    if op == "cancel":
        return await service.cancel(_s(req, "reservationId"))
    if op == "events":
        bodies = await replica.own_events(_i(req, "from"), _i(req, "to"))
        return 200, {"events": [json.loads(b) for b in bodies]}
    if op == "origins":
        # what this store has applied of each origin (its own: how far it has
        # numbered): a store catching up learns from it what it lacks
        origins = await replica.origins()
        return 200, {"origins": {o: [v["appliedSeq"], v["maxSeq"]] for o, v in origins.items()}}
    if op == "ping":
        return 200, {"storeId": service.store_id}
    raise InvalidInput(f"unknown operation {op!r}")


def _s(req: dict[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key}: required")
    return value


def _i(req: dict[str, Any], key: str) -> int:
    value = req.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{key}: must be an integer")
    return value


def parse_reply(data: bytes) -> tuple[int, Any]:
    try:
        reply = json.loads(data)
        status = int(reply["status"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unavailable(f"the owning store sent an unreadable reply: {exc}") from exc
    body = reply.get("body")
    if status >= 400:
        raise RemoteError(status, body if isinstance(body, dict) else {"error": str(body)})
    return status, body
