"""Stock of one product: change it, read its availability and history, set
its safety stock and its reorder settings at a store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from agent.api import alert_responses, schemas
from agent.api import responses as out
from agent.api.deps import Service, Who
from agent.api.responses import BODY, QUERY, WRITE, spec
from agent.api.routers.params import Limit, Since, StoreId, parse_since
from agent.errors import InvalidInput
from agent.inputs import StockChange

router = APIRouter(prefix="/api/v1/products/{ref}", tags=["stock"])
IdempotencyKey = Annotated[str | None, Header(alias="X-Idempotency-Key", max_length=128)]


@router.post("/stock", status_code=202, **spec(202, out.StockUpdated, *BODY, 404, *WRITE))
async def update_stock(
    ref: str,
    body: schemas.StockUpdate,
    service: Service,
    principal: Who,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    store = body.store_id or service.store_id
    principal.require("clerk", store)
    if body.operation != "set" and body.quantity == 0:
        raise InvalidInput(f"quantity: must be at least 1 to {body.operation}")
    change = StockChange(
        ref=ref,
        store_id=store,
        operation=body.operation,
        quantity=body.quantity,
        reason=body.reason,
        actor=principal.user,
        expected_version=body.expected_version,
        idempotency_key=idempotency_key,
    )
    return await service.update_stock(change)


@router.put("/safety-stock", **spec(200, out.SafetyStock, *BODY, 404, *WRITE))
async def set_safety_stock(
    ref: str, body: schemas.SafetyStockSet, service: Service, principal: Who
) -> dict[str, Any]:
    """The units a routed (online) order may not take; null: the store's default."""
    principal.require("admin")
    return await service.set_safety_stock(ref, body.store_id, body.safety_stock)


@router.put("/reorder", **spec(200, alert_responses.ReorderSettings, *BODY, 404, *WRITE))
async def set_reorder(
    ref: str, body: schemas.ReorderSet, service: Service, principal: Who
) -> dict[str, Any]:
    """The reorder point (low at or below it), maximum stock and reorder quantity."""
    principal.require("admin")
    return await service.set_reorder(ref, body.store_id, body.changes())


@router.get("/availability", **spec(200, out.Availability, *QUERY, 404))
async def availability(
    ref: str, service: Service, principal: Who, store_id: StoreId = None
) -> dict[str, Any]:
    principal.require("viewer")
    return await service.availability(ref, store_id)


@router.get("/history", **spec(200, out.History, *QUERY, 404))
async def history(
    ref: str,
    service: Service,
    principal: Who,
    store_id: StoreId = None,
    since: Since = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    principal.require("viewer")
    return await service.history(ref, store_id, parse_since(since), limit)
