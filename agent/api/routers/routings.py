"""Routed reservations as their router recorded them: the plan, each attempt,
the outcome, and the cleanup of what an unanswered store may have reserved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from agent.api import responses as out
from agent.api.deps import Routing, Who
from agent.api.responses import QUERY, spec
from agent.api.routers.params import IdPrefix, Limit

router = APIRouter(prefix="/api/v1/routings", tags=["reservations"])
Status = Annotated[str | None, Query(pattern="^(routing|granted|refused|unreachable)$")]
Cleanup = Annotated[
    str | None, Query(pattern="^(pending|cancelled|never-granted|expired|confirmed)$")
]


@router.get("", **spec(200, out.RoutingList, *QUERY))
async def list_routings(
    routing: Routing,
    principal: Who,
    status: Status = None,
    cleanup: Cleanup = None,
    limit: Limit = 100,
    id_prefix: IdPrefix = None,
) -> dict[str, Any]:
    principal.require("viewer")
    return await routing.list_routings(status, cleanup, limit, id_prefix)


@router.get("/{request_id}", **spec(200, out.Routing, *QUERY, 404))
async def get_routing(request_id: str, routing: Routing, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return await routing.get(request_id)
