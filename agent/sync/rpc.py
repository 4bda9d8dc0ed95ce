"""Request/reply between agents: forwarding a reservation to the store that
owns the stock (and a transfer's step to the store whose side it is:
``transfer_rpc``), and serving our own events to a peer repairing a gap (or to
HQ's projector), and our digests to ``inv-hq verify``.

Wire format: the request is JSON; the reply is ``{"status": int, "body": ...}``
with the HTTP status the owner's API would have answered.

A request carries ``budgetMs``: how long its asker waits for the answer. The
owner turns it into a deadline on its own monotonic clock when the request
arrives (a relative time means nothing to the clocks' skew between the two
machines), and the ledger command checks it on the writer thread, so a
command held up behind a long import is refused instead of applied after the
asker gave up. ``deadlineMs`` (absolute wall ms, sent by older agents) is
still accepted, turned into a budget against our wall clock.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from agent.clocks import SYSTEM, Clocks
from agent.errors import InvalidInput, InventoryError, RemoteError, Unavailable
from agent.inputs import Channel, Deadline, ReservationRequest
from agent.replica import Replica
from agent.service import InventoryService
from agent.sync import transfer_rpc

log = structlog.get_logger("agent.rpc")
# what the reply's trip back to the asker may take: the owner stops that much
# short of the asker's budget (at most half of it)
REPLY_MARGIN_MS = 50


def reply_bytes(status: int, body: Any) -> bytes:
    return json.dumps({"status": status, "body": body}).encode()


async def handle(
    service: InventoryService,
    replica: Replica,
    op: str,
    payload: bytes,
    *,
    clocks: Clocks = SYSTEM,
) -> bytes:
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
        deadline = _deadline(service, req, clocks)
        status, body = await _serve(service, replica, op, req, deadline)
        return reply_bytes(status, body)
    except InventoryError as exc:
        if exc.extra.get("outcome") == "refused":
            # an answer, not a fault; but a writer too busy to serve peers in
            # time is worth an operator's look
            log.warning("forwarded request refused past its deadline", op=op, error=exc.message)
        return reply_bytes(exc.status, exc.body())
    except Exception:  # never let a bad request kill the responder
        log.exception("rpc request failed", op=op)
        return reply_bytes(500, {"error": "internal error"})


def _deadline(service: InventoryService, req: dict[str, Any], clocks: Clocks) -> Deadline | None:
    """The request's deadline on this agent's monotonic clock, from now (its
    arrival); None for a request that sets none."""
    budget = req.get("budgetMs")
    if budget is None and isinstance(req.get("deadlineMs"), int):
        # an older agent's absolute wall time: only as good as the two
        # clocks agree, but the best it sent
        budget = int(req["deadlineMs"] - clocks.wall_ms())
    if budget is None:
        return None
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise InvalidInput("budgetMs: must be an integer")
    margin = min(REPLY_MARGIN_MS, max(budget, 0) // 2)
    if budget - margin <= 0:
        # the asker has given up already: not even queued for the writer
        raise Unavailable("request arrived after its deadline; not applied")
    return service.deadline(budget, margin)


async def _serve(
    service: InventoryService,
    replica: Replica,
    op: str,
    req: dict[str, Any],
    deadline: Deadline | None,
) -> tuple[int, Any]:
    if op == "reserve":
        request = ReservationRequest(
            ref=_s(req, "productId"),
            quantity=_i(req, "quantity"),
            reservation_id=_s(req, "reservationId"),
            store_id=service.store_id,
            customer_id=req.get("customerId"),
            ttl=req.get("ttl"),
            channel=_channel(req),
            actor=_actor(req),
        )
        return await service.reserve(request, deadline)
    if op == "confirm":
        return await service.confirm(
            _s(req, "reservationId"), req.get("orderId"), _actor(req), deadline=deadline
        )
    if op == "cancel":
        return await service.cancel(_s(req, "reservationId"), _actor(req), deadline=deadline)
    if op.startswith("transfer_"):
        return await transfer_rpc.serve(service, op, req, deadline)
    if op == "events":
        bodies = await replica.own_events(_i(req, "from"), _i(req, "to"))
        return 200, {"events": [json.loads(b) for b in bodies]}
    if op == "origins":
        # what this store has applied of each origin (its own: how far it has
        # numbered): a store catching up learns from it what it lacks
        origins = await replica.origins()
        return 200, {"origins": {o: [v["appliedSeq"], v["maxSeq"]] for o, v in origins.items()}}
    if op == "digests":
        # for ``inv-hq verify``: this replica's digests, and how far it has
        # applied each origin (equal digests only mean something at equal marks)
        origins = await replica.origins()
        applied = {o: v["appliedSeq"] for o, v in origins.items()}
        return 200, {"digests": await service.digests(), "origins": applied}
    if op == "ping":
        return 200, {"storeId": service.store_id}
    raise InvalidInput(f"unknown operation {op!r}")


def _actor(req: dict[str, Any]) -> str:
    """Who asked, as the forwarding store named them (``NAME@STORE``); an
    agent of before that sends none."""
    actor = req.get("actor")
    if actor is None:
        return "forwarded"
    if not isinstance(actor, str) or len(actor) > 200:
        raise InvalidInput("actor: must be a string of at most 200 characters")
    return actor


def _s(req: dict[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key}: required")
    return value


def _channel(req: dict[str, Any]) -> Channel:
    """A routed order comes ``online`` (it may not take safety stock); an
    older asker sends no channel: a store's own request."""
    value = req.get("channel", "store")
    if value not in ("store", "online"):
        raise InvalidInput("channel: must be 'store' or 'online'")
    return "online" if value == "online" else "store"


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
