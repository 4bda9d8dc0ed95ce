"""The FastAPI application: one app serves the Unix socket and TCP.

Who may call what is decided per route (``deps.get_principal``); the routes
live in ``routers``, one module per resource.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import __version__
from agent.api import routers, schemas
from agent.api.deps import Backend
from agent.api.middleware import Front
from agent.errors import InventoryError


def _field_name(loc: tuple[Any, ...], body: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    if len(loc) >= 3 and loc[1] == "rows" and isinstance(loc[2], int):
        try:
            line = body["rows"][loc[2]]["line"]
            rest = ".".join(str(p) for p in loc[3:]) or "row"
            return f"line {line}: {rest}"
        except (KeyError, IndexError, TypeError):
            pass
    return ".".join(parts) or "body"


def create_app(backend: Backend) -> FastAPI:
    """The whole app for ``backend``: routes, error handlers, middleware, and a
    lifespan that starts and stops the backend's background tasks."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        try:
            yield
        finally:
            await backend.stop()

    app = FastAPI(
        title="inv-agent",
        version=__version__,
        description="One store's inventory agent: local SQLite ledger, REST API, replication.",
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.add_exception_handler(InventoryError, _inventory_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    for router in routers.ALL:
        app.include_router(router)
    limits = backend.limits
    app.add_middleware(
        Front,
        metrics=backend.metrics,
        max_body_bytes=limits.max_body_bytes,
        rate_per_minute=limits.rate_per_minute,
        rate_burst=limits.rate_burst,
    )
    openapi = app.openapi

    def openapi_with_raw_bodies() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = schemas.publish_raw_bodies(openapi())
        return app.openapi_schema

    app.openapi = openapi_with_raw_bodies  # type: ignore[method-assign]
    return app


async def _inventory_error(request: Request, exc: InventoryError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers() or None)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    body = getattr(exc, "body", None)
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return JSONResponse({"error": "request body is not valid JSON"}, 400)
        errors.append({"field": _field_name(tuple(err["loc"]), body), "error": err["msg"]})
    first = errors[0] if errors else {"field": "body", "error": "invalid"}
    message = f"{first['field']}: {first['error']}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return JSONResponse({"error": message, "errors": errors[:100]}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return JSONResponse(
        {"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )
