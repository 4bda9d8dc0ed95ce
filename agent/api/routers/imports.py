"""Bulk imports of stock levels and of the catalogue (all or nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from agent import memtrim
from agent.api import import_csv, schemas
from agent.api import responses as out
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


def _stock_body() -> dict[str, Any]:
    """OpenAPI: a JSON body, or the CSV file itself."""
    extra = schemas.raw_body("StockImport")
    extra["requestBody"]["content"][import_csv.CONTENT_TYPE] = {"schema": {"type": "string"}}
    return extra


@router.post("/stock", openapi_extra=_stock_body(), **spec(200, out.ImportResult, *BODY, *WRITE))
async def import_stock(
    request: Request,
    service: Service,
    principal: Who,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
    force: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    """A JSON body carries its rows and flags; a CSV body (``text/csv``) is
    the file, its flags in the query (``?dryRun=true&force=true``). For a JSON
    body a flag in the query turns it on too, so that no dry run is ever
    applied for real because the flag went in the query."""
    principal.require("admin")
    if import_csv.is_csv(request.headers.get("content-type")):
        raw = await request.body()  # BodyLimit has refused it already if too large
        # a thread: reading 100,000 rows must not stall the event loop's other requests
        body = await asyncio.to_thread(import_csv.stock_import, raw, dry_run, force)
    else:
        body = await schemas.validated(request, schemas.STOCK_IMPORT)
        body["dryRun"] = body.get("dryRun", False) or dry_run
        body["force"] = body.get("force", False) or force
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
