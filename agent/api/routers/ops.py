"""Operations: health, metrics, and who this agent is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from agent import __version__
from agent.api import responses as out
from agent.api.deps import Runtime, Service, Who
from agent.api.responses import AUTH, spec

router = APIRouter(tags=["operations"])


@router.get("/health", **spec(200, out.Health, also=(503,)))
async def health(runtime: Runtime) -> JSONResponse:
    report = await runtime.health()
    return JSONResponse(report, status_code=200 if report["status"] == "healthy" else 503)


@router.get("/metrics", response_class=PlainTextResponse, **spec(200, None, 429))
async def metrics(runtime: Runtime) -> Response:
    body, content_type = await runtime.render_metrics()
    return Response(body, media_type=content_type)


@router.get("/api/v1/agent", **spec(200, out.AgentInfo, *AUTH))
async def agent_info(service: Service, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return {"storeId": service.store_id, "version": __version__}
