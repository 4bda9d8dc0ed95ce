"""Bulk imports of stock levels and of the catalogue (all or nothing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from agent import memtrim
from agent.api import responses as out
from agent.api import schemas
from agent.api.deps import Service, Who
from agent.api.responses import BODY, WRITE, spec

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])


async def _run(
    run: Callable[..., Awaitable[dict[str, Any]]], body: Any, *extra: Any
) -> dict[str, Any]:
    """One import request: its rows to ``run`` (a service method), then the
    memory they took back to the OS once the answer is out."""
    try:
        return await run(body["rows"], body.get("dryRun", False), body.get("force", False), *extra)
    finally:
        memtrim.trim_soon()


@router.post(
    "/stock",
    openapi_extra=schemas.raw_body("StockImport"),
    **spec(200, out.ImportResult, *BODY, *WRITE),
)
async def import_stock(request: Request, service: Service, principal: Who) -> dict[str, Any]:
    principal.require("admin")
    body = await schemas.validated(request, schemas.STOCK_IMPORT)
    return await _run(service.import_stock, body, principal.user)


@router.post(
    "/products",
    openapi_extra=schemas.raw_body("ProductImport"),
    **spec(200, out.ImportResult, *BODY, *WRITE),
)
async def import_products(request: Request, service: Service, principal: Who) -> dict[str, Any]:
    principal.require("admin")
    body = await schemas.validated(request, schemas.PRODUCT_IMPORT)
    return await _run(service.import_products, body)
