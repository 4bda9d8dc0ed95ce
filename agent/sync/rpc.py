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

from agent.errors import InvalidInput, InventoryError, Unavailable
from agent.ledger import replication
from agent.service import InventoryService

log = structlog.get_logger("agent.rpc")
OPS = ("reserve", "confirm", "cancel", "events", "ping")


class RemoteError(InventoryError):
    """An error answered by another store's agent, passed on as it was."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(
            str(body.get("error", f"HTTP {status}")),
            **{k: v for k, v in body.items() if k != "error"},
        )
        self.status = status


def reply_bytes(status: int, body: Any) -> bytes:
    return json.dumps({"status": status, "body": body}).encode()


async def handle(service: InventoryService, op: str, payload: bytes) -> bytes:
    """Serve one request addressed to this store."""
    try:
        req = json.loads(payload or b"{}")
        if not isinstance(req, dict):
            raise InvalidInput("request must be a JSON object")
        deadline = req.get("deadlineMs")
        if isinstance(deadline, int) and time.time() * 1000 > deadline:
            # the caller has given up and told its user nothing was done
            raise Unavailable("request arrived after its deadline; not applied")
        if op == "reserve":
            status, body = await service.reserve(
                _s(req, "reservationId"),
                _s(req, "productId"),
                service.store_id,
                _i(req, "quantity"),
                req.get("customerId"),
                req.get("ttl"),
            )
            return reply_bytes(status, body)
        if op == "confirm":
            status, body = await service.confirm(
                _s(req, "reservationId"), req.get("orderId"), str(req.get("actor") or "forwarded")
            )
            return reply_bytes(status, body)
        if op == "cancel":
            status, body = await service.cancel(_s(req, "reservationId"))
            return reply_bytes(status, body)
        if op == "events":
            first, last = _i(req, "from"), _i(req, "to")
            bodies = await service.store.read(replication.own_events, service.store_id, first, last)
            return reply_bytes(200, {"events": [json.loads(b) for b in bodies]})
        if op == "ping":
            return reply_bytes(200, {"storeId": service.store_id})
        raise InvalidInput(f"unknown operation {op!r}")
    except InventoryError as exc:
        return reply_bytes(exc.status, exc.body())
    except Exception as exc:  # never let a bad request kill the responder
        log.error("rpc request failed", op=op, error=str(exc))
        return reply_bytes(500, {"error": "internal error"})


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
