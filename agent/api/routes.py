"""The routes of DESIGN.md §4, with the seed plan's paths and status codes."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from agent import __version__, memtrim
from agent.api import responses as out
from agent.api import schemas
from agent.api.responses import AUTH, BODY, QUERY, WRITE, spec
from agent.auth import Principal
from agent.errors import InvalidInput
from agent.service import InventoryService

Limit = Annotated[int, Query(ge=1, le=1000)]
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | None) -> int | None:
    """``since`` as ISO-8601 (date or date-time, UTC if no zone) or relative
    (``90s``, ``30m``, ``24h``, ``7d``): milliseconds since the epoch."""
    if not text:
        return None
    m = _RELATIVE.match(text.strip())
    if m:
        return int((time.time() - int(m.group(1)) * _UNITS[m.group(2)]) * 1000)
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"since: {text!r} is not a time; use ISO-8601 (2026-11-28T10:00) or 30m, 24h, 7d"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


# Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in a
# worker thread, two thread hops per request for what is an attribute lookup
# and, over TCP, an HMAC check.
async def svc(request: Request) -> InventoryService:
    return request.app.state.service  # type: ignore[no-any-return]


async def who(request: Request) -> Principal:
    from agent.api.app import principal_for

    principal = principal_for(request)
    request.state.principal = principal
    return principal


async def _import(run: Any, body: dict[str, Any], *extra: Any) -> dict[str, Any]:
    """One import request: its rows to ``run`` (a service method), then the
    memory they took back to the OS once the answer is out."""
    try:
        result: dict[str, Any] = await run(
            body["rows"], body.get("dryRun", False), body.get("force", False), *extra
        )
        return result
    finally:
        memtrim.trim_soon()


Service = Annotated[InventoryService, Depends(svc)]
Who = Annotated[Principal, Depends(who)]


def register(app: FastAPI) -> None:
    @app.get("/health", tags=["operations"], **spec(200, out.Health, also=(503,)))
    async def health(request: Request, service: Service) -> JSONResponse:
        report = await request.app.state.health(service)
        return JSONResponse(report, status_code=200 if report["status"] == "healthy" else 503)

    @app.get(
        "/metrics", tags=["operations"], response_class=PlainTextResponse, **spec(200, None, 429)
    )
    async def metrics(request: Request) -> Response:
        body, content_type = await request.app.state.metrics()
        return Response(body, media_type=content_type)

    # -------------------------------------------------------------- products
    @app.get("/api/v1/products", tags=["products"], **spec(200, out.ProductList, *QUERY))
    async def list_products(
        service: Service,
        principal: Who,
        page: Annotated[int, Query(ge=1, le=10**6)] = 1,
        limit: Limit = 20,
        category: str | None = None,
        q: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        principal.require("viewer")
        return await service.list_products(page, limit, category, q)

    @app.post(
        "/api/v1/products",
        status_code=201,
        tags=["products"],
        **spec(201, out.Product, *BODY, *WRITE),
    )
    async def create_product(
        body: schemas.ProductCreate, service: Service, principal: Who
    ) -> dict[str, Any]:
        principal.require("admin")
        return await service.create_product(body.model_dump())

    @app.get("/api/v1/products/{ref}", tags=["products"], **spec(200, out.Product, *QUERY, 404))
    async def get_product(ref: str, service: Service, principal: Who) -> dict[str, Any]:
        principal.require("viewer")
        return await service.get_product(ref)

    @app.patch(
        "/api/v1/products/{ref}", tags=["products"], **spec(200, out.Product, *BODY, 404, *WRITE)
    )
    async def update_product(
        ref: str, body: schemas.ProductUpdate, service: Service, principal: Who
    ) -> dict[str, Any]:
        principal.require("admin")
        return await service.update_product(ref, body.model_dump(exclude_none=True))

    # ----------------------------------------------------------------- stock
    @app.post(
        "/api/v1/products/{ref}/stock",
        status_code=202,
        tags=["stock"],
        **spec(202, out.StockUpdated, *BODY, 404, *WRITE),
    )
    async def update_stock(
        ref: str,
        body: schemas.StockUpdate,
        service: Service,
        principal: Who,
        idempotency_key: Annotated[
            str | None, Header(alias="X-Idempotency-Key", max_length=128)
        ] = None,
    ) -> dict[str, Any]:
        store = body.store_id or service.store_id
        principal.require("clerk", store)
        if body.operation != "set" and body.quantity == 0:
            raise InvalidInput(f"quantity: must be at least 1 to {body.operation}")
        return await service.update_stock(
            ref,
            store,
            body.operation,
            body.quantity,
            body.reason,
            principal.user,
            body.expected_version,
            idempotency_key,
        )

    @app.get(
        "/api/v1/products/{ref}/availability",
        tags=["stock"],
        **spec(200, out.Availability, *QUERY, 404),
    )
    async def availability(
        ref: str,
        service: Service,
        principal: Who,
        store_id: Annotated[str | None, Query(alias="storeId", max_length=64)] = None,
    ) -> dict[str, Any]:
        principal.require("viewer")
        return await service.availability(ref, store_id)

    @app.get(
        "/api/v1/products/{ref}/history", tags=["stock"], **spec(200, out.History, *QUERY, 404)
    )
    async def history(
        ref: str,
        service: Service,
        principal: Who,
        store_id: Annotated[str | None, Query(alias="storeId", max_length=64)] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        principal.require("viewer")
        return await service.history(ref, store_id, parse_since(since), limit)

    # ---------------------------------------------------------- reservations
    @app.post(
        "/api/v1/reservations",
        status_code=202,
        tags=["reservations"],
        # 202: created; 200: that reservationId already exists with the same request
        **spec(202, out.Reservation, *BODY, 404, *WRITE, also=(200,)),
    )
    async def create_reservation(
        body: schemas.ReservationCreate, service: Service, principal: Who
    ) -> JSONResponse:
        store = body.store_id or service.store_id
        principal.require("clerk", store)
        status, view = await service.reserve(
            body.reservation_id, body.product_id, store, body.quantity, body.customer_id, body.ttl
        )
        return JSONResponse(view, status_code=status)

    @app.get(
        "/api/v1/reservations", tags=["reservations"], **spec(200, out.ReservationList, *QUERY, 404)
    )
    async def list_reservations(
        service: Service,
        principal: Who,
        status: Annotated[
            str | None, Query(pattern="^(PENDING|CONFIRMED|CANCELLED|EXPIRED)$")
        ] = None,
        store_id: Annotated[str | None, Query(alias="storeId", max_length=64)] = None,
        sku: Annotated[str | None, Query(max_length=128)] = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        principal.require("viewer")
        return await service.list_reservations(status, store_id, sku, limit)

    @app.get(
        "/api/v1/reservations/{rid}",
        tags=["reservations"],
        **spec(200, out.Reservation, *QUERY, 404),
    )
    async def get_reservation(rid: str, service: Service, principal: Who) -> dict[str, Any]:
        principal.require("viewer")
        return await service.get_reservation(rid)

    @app.post(
        "/api/v1/reservations/{rid}/confirm",
        tags=["reservations"],
        **spec(200, out.Reservation, *BODY, 404, *WRITE),
    )
    async def confirm_reservation(
        rid: str,
        service: Service,
        principal: Who,
        body: schemas.ReservationConfirm | None = None,
        store_id: Annotated[str | None, Query(alias="storeId", max_length=64)] = None,
    ) -> JSONResponse:
        owner = await service.reservation_store(rid, store_id)
        principal.require("clerk", owner)
        status, view = await service.confirm(
            rid, body.order_id if body else None, principal.user, owner, owner_known=True
        )
        return JSONResponse(view, status_code=status)

    @app.delete(
        "/api/v1/reservations/{rid}",
        status_code=204,
        tags=["reservations"],
        **spec(204, None, *QUERY, 404, *WRITE),
    )
    async def cancel_reservation(
        rid: str,
        service: Service,
        principal: Who,
        store_id: Annotated[str | None, Query(alias="storeId", max_length=64)] = None,
    ) -> Response:
        owner = await service.reservation_store(rid, store_id)
        principal.require("clerk", owner)
        await service.cancel(rid, owner, owner_known=True)
        return Response(status_code=204)

    # --------------------------------------------------------------- imports
    @app.post(
        "/api/v1/imports/stock",
        tags=["imports"],
        openapi_extra=schemas.raw_body("StockImport"),
        **spec(200, out.ImportResult, *BODY, *WRITE),
    )
    async def import_stock(request: Request, service: Service, principal: Who) -> dict[str, Any]:
        principal.require("admin")
        body = await schemas.validated(request, schemas.STOCK_IMPORT)
        return await _import(service.import_stock, body, principal.user)

    @app.post(
        "/api/v1/imports/products",
        tags=["imports"],
        openapi_extra=schemas.raw_body("ProductImport"),
        **spec(200, out.ImportResult, *BODY, *WRITE),
    )
    async def import_products(request: Request, service: Service, principal: Who) -> dict[str, Any]:
        principal.require("admin")
        body = await schemas.validated(request, schemas.PRODUCT_IMPORT)
        return await _import(service.import_products, body)

    # ------------------------------------------------------ sync & conflicts
    @app.get("/api/v1/sync/status", tags=["sync"], **spec(200, out.SyncStatus, *AUTH))
    async def sync_status(request: Request, service: Service, principal: Who) -> dict[str, Any]:
        principal.require("viewer")
        return await request.app.state.sync_status(service)  # type: ignore[no-any-return]

    @app.get("/api/v1/conflicts", tags=["sync"], **spec(200, out.Conflicts, *QUERY))
    async def conflicts(
        service: Service,
        principal: Who,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        principal.require("viewer")
        return await service.conflicts(parse_since(since), limit)

    @app.get("/api/v1/agent", tags=["operations"], **spec(200, out.AgentInfo, *AUTH))
    async def agent_info(service: Service, principal: Who) -> dict[str, Any]:
        principal.require("viewer")
        return {"storeId": service.store_id, "version": __version__}
