"""The FastAPI application: one app serves the Unix socket and TCP.

A request that came over the Unix socket (uvicorn reports no TCP port for it)
is local admin; over TCP every ``/api/v1`` call needs a bearer JWT.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent import __version__
from agent.api import routes, schemas
from agent.auth import LOCAL_ADMIN, Principal, verify
from agent.errors import InventoryError
from agent.service import InventoryService


def is_local(request: Request) -> bool:
    server = request.scope.get("server")
    return server is None or server[1] is None


def principal_for(request: Request) -> Principal:
    if is_local(request):
        return LOCAL_ADMIN
    return verify(request.app.state.jwt_secret, request.headers.get("authorization"))


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


class DefaultJsonContentType:
    """curl's ``-d`` sends a JSON body as a form unless told otherwise (the
    seed plan's own examples do this). An /api/v1 body with no content type,
    or a form type, is read as JSON, which is the only body this API takes.

    The scope is changed in place, not copied: the router records the matched
    route in it, and the metrics middleware outside reads it from there."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            current = dict(scope["headers"]).get(b"content-type", b"")
            if not current or current.startswith(b"application/x-www-form-urlencoded"):
                scope["headers"] = [*headers, (b"content-type", b"application/json")]
        await self.app(scope, receive, send)


def create_app(
    service: InventoryService,
    jwt_secret: str,
    lifespan_hooks: list[Callable[[], Any]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stoppers = []
        for hook in lifespan_hooks or []:
            stoppers.append(await hook())
        try:
            yield
        finally:
            for stop in reversed(stoppers):
                if stop is not None:
                    await stop()

    app = FastAPI(
        title="inv-agent",
        version=__version__,
        description="One store's inventory agent: local SQLite ledger, REST API, replication.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.jwt_secret = jwt_secret

    @app.exception_handler(InventoryError)
    async def inventory_error(request: Request, exc: InventoryError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse(
            {"error": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    routes.register(app)
    app.add_middleware(DefaultJsonContentType)
    openapi = app.openapi

    def openapi_with_raw_bodies() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = schemas.publish_raw_bodies(openapi())
        return app.openapi_schema

    app.openapi = openapi_with_raw_bodies  # type: ignore[method-assign]
    return app
