"""What is low, and the low-stock alerts log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from agent.api import alert_responses as out
from agent.api.deps import Service, Who
from agent.api.responses import QUERY, spec
from agent.api.routers.params import Limit, Since, StoreId, parse_since

router = APIRouter(prefix="/api/v1", tags=["alerts"])
Sku = Annotated[str | None, Query(max_length=128)]


@router.get("/stock/low", **spec(200, out.LowStock, *QUERY, 404))
async def low_stock(service: Service, principal: Who, store_id: StoreId = None) -> dict[str, Any]:
    """SKUs at or below their reorder point at a store (default: this one;
    ``all``: every store), with what to order."""
    principal.require("viewer")
    return await service.low_stock(store_id)


@router.get("/alerts", **spec(200, out.AlertList, *QUERY, 404))
async def alerts(
    service: Service,
    principal: Who,
    since: Since = None,
    store_id: StoreId = None,
    sku: Sku = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Low-stock alerts of every store (or one), newest first."""
    principal.require("viewer")
    return await service.list_alerts(parse_since(since), store_id, sku, limit)
