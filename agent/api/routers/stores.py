"""The store directory: list and read stores, describe one (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from agent.api import responses as out
from agent.api import schemas
from agent.api.deps import Service, Who
from agent.api.responses import BODY, QUERY, WRITE, spec

router = APIRouter(prefix="/api/v1/stores", tags=["stores"])
StorePath = Annotated[str, Path(alias="storeId", max_length=64)]


@router.get("", **spec(200, out.StoreList, *QUERY))
async def list_stores(service: Service, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return await service.list_stores()


@router.get("/{storeId}", **spec(200, out.Store, *QUERY, 404))
async def get_store(store_id: StorePath, service: Service, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return await service.get_store(store_id)


@router.patch("/{storeId}", **spec(200, out.Store, *BODY, 404, *WRITE))
async def update_store(
    store_id: StorePath, body: schemas.StoreUpdate, service: Service, principal: Who
) -> dict[str, Any]:
    """Only the fields given change; a new store id gets a directory entry."""
    principal.require("admin")
    return await service.set_store(store_id, body.model_dump(by_alias=True, exclude_unset=True))
