"""Reservations: hold stock, confirm (the sale) or cancel, read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from agent.api import responses as out
from agent.api import schemas
from agent.api.deps import Routing, Service, Who
from agent.api.responses import BODY, QUERY, WRITE, spec
from agent.api.routers.params import IdPrefix, Limit, StoreId
from agent.auth import Principal
from agent.domain import ANY_STORE
from agent.errors import InvalidInput
from agent.inputs import ReservationRequest, RoutingRequest

router = APIRouter(prefix="/api/v1/reservations", tags=["reservations"])
Status = Annotated[str | None, Query(pattern="^(PENDING|CONFIRMED|CANCELLED|EXPIRED)$")]


# 202: created; 200: that reservationId already exists with the same request
@router.post("", status_code=202, **spec(202, out.Reservation, *BODY, 404, *WRITE, also=(200,)))
async def create_reservation(
    body: schemas.ReservationCreate, service: Service, routing: Routing, principal: Who
) -> JSONResponse:
    if body.store_id == ANY_STORE:
        return await _routed(body, routing, principal)
    for name, value in (("stores", body.stores), ("strategy", body.strategy), ("near", body.near)):
        if value is not None:
            raise InvalidInput(f'{name}: only for a routed reservation (storeId "{ANY_STORE}")')
    store = body.store_id or service.store_id
    principal.require("clerk", store)
    request = ReservationRequest(
        ref=body.product_id,
        quantity=body.quantity,
        reservation_id=body.reservation_id,
        store_id=store,
        customer_id=body.customer_id,
        ttl=body.ttl,
        actor=principal.user,
    )
    status, view = await service.reserve(request)
    return JSONResponse(view, status_code=status)


async def _routed(
    body: schemas.ReservationCreate, routing: Routing, principal: Principal
) -> JSONResponse:
    """``storeId: "any"``: the router picks the store (agent.routing)."""
    principal.require("clerk")
    request = RoutingRequest(
        ref=body.product_id,
        quantity=body.quantity,
        request_id=body.reservation_id,
        customer_id=body.customer_id,
        ttl=body.ttl,
        strategy=body.strategy or "priority",
        stores=tuple(body.stores) if body.stores is not None else None,
        near=body.near,
        actor=principal.user,
    )
    status, view = await routing.reserve(request, allowed=principal.stores)
    return JSONResponse(view, status_code=status)


@router.get("", **spec(200, out.ReservationList, *QUERY, 404))
async def list_reservations(
    service: Service,
    principal: Who,
    status: Status = None,
    store_id: StoreId = None,
    sku: Annotated[str | None, Query(max_length=128)] = None,
    limit: Limit = 100,
    id_prefix: IdPrefix = None,
) -> dict[str, Any]:
    principal.require("viewer")
    return await service.list_reservations(status, store_id, sku, limit, id_prefix)


@router.get("/{rid}", **spec(200, out.Reservation, *QUERY, 404))
async def get_reservation(rid: str, service: Service, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return await service.get_reservation(rid)


@router.post("/{rid}/confirm", **spec(200, out.Reservation, *BODY, 404, *WRITE))
async def confirm_reservation(
    rid: str,
    service: Service,
    principal: Who,
    body: schemas.ReservationConfirm | None = None,
    store_id: StoreId = None,
) -> JSONResponse:
    owner = service.reservation_store(rid, store_id)
    principal.require("clerk", owner)
    order_id = body.order_id if body else None
    status, view = await service.confirm(rid, order_id, principal.user, owner)
    return JSONResponse(view, status_code=status)


@router.delete("/{rid}", status_code=204, **spec(204, None, *QUERY, 404, *WRITE))
async def cancel_reservation(
    rid: str, service: Service, principal: Who, store_id: StoreId = None
) -> Response:
    owner = service.reservation_store(rid, store_id)
    principal.require("clerk", owner)
    await service.cancel(rid, principal.user, owner)
    return Response(status_code=204)
