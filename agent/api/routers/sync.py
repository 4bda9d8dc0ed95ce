"""Replication status and the conflicts log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agent.api import responses as out
from agent.api.deps import Runtime, Service, Who
from agent.api.responses import AUTH, QUERY, spec
from agent.api.routers.params import Limit, Since, parse_since

router = APIRouter(prefix="/api/v1", tags=["sync"])


@router.get("/sync/status", **spec(200, out.SyncStatus, *AUTH))
async def sync_status(runtime: Runtime, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return await runtime.sync_status()


@router.get("/conflicts", **spec(200, out.Conflicts, *QUERY))
async def conflicts(
    service: Service, principal: Who, since: Since = None, limit: Limit = 100
) -> dict[str, Any]:
    principal.require("viewer")
    return await service.conflicts(parse_since(since), limit)
