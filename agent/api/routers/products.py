"""The catalogue: list, create, read, update products."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from agent.api import responses as out
from agent.api import schemas
from agent.api.deps import Service, Who
from agent.api.responses import BODY, QUERY, WRITE, spec
from agent.api.routers.params import Limit, SkuPrefix

router = APIRouter(prefix="/api/v1/products", tags=["products"])


@router.get("", **spec(200, out.ProductList, *QUERY))
async def list_products(
    service: Service,
    principal: Who,
    page: Annotated[int, Query(ge=1, le=10**6)] = 1,
    limit: Limit = 20,
    category: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    sku_prefix: SkuPrefix = None,
) -> dict[str, Any]:
    principal.require("viewer")
    return await service.list_products(page, limit, category, q, sku_prefix)


@router.post("", status_code=201, **spec(201, out.Product, *BODY, *WRITE))
async def create_product(
    body: schemas.ProductCreate, service: Service, principal: Who
) -> dict[str, Any]:
    principal.require("admin")
    return await service.create_product(body.model_dump())


@router.get("/{ref}", **spec(200, out.Product, *QUERY, 404))
async def get_product(ref: str, service: Service, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return await service.get_product(ref)


@router.patch("/{ref}", **spec(200, out.Product, *BODY, 404, *WRITE))
async def update_product(
    ref: str, body: schemas.ProductUpdate, service: Service, principal: Who
) -> dict[str, Any]:
    principal.require("admin")
    return await service.update_product(ref, body.model_dump(exclude_none=True))
