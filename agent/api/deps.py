"""Who is calling, and what a route is given: typed FastAPI dependencies.

A request that came over the Unix socket (uvicorn reports no TCP port for it)
is local admin, named by the OS user of the process that connected
(``peercred``): the socket's file mode (0600) is its access control. Over TCP
every ``/api/v1`` call needs a bearer JWT.

Dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in a
worker thread, two thread hops per request for what is an attribute lookup
and, over TCP, an HMAC check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from agent.api.peercred import scope_peer
from agent.auth import LOCAL_ADMIN, Principal, verify
from agent.config import LimitsConfig
from agent.metrics import Metrics
from agent.routing.router import Router
from agent.service import InventoryService


class Backend(Protocol):
    """What the API serves, beyond the service: built by ``agent.runtime``."""

    @property
    def service(self) -> InventoryService: ...

    @property
    def router(self) -> Router: ...  # routes reservations for store "any"

    @property
    def jwt_secret(self) -> str: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def limits(self) -> LimitsConfig: ...

    async def start(self) -> None:
        """Start the background tasks (expiry, replication)."""

    async def stop(self) -> None:
        """Stop them, in the reverse order."""

    async def health(self) -> dict[str, Any]: ...

    async def sync_status(self) -> dict[str, Any]: ...

    async def render_metrics(self) -> tuple[bytes, str]: ...


def is_local(scope: Mapping[str, Any]) -> bool:
    """Did this request come over the Unix socket?"""
    server = scope.get("server")
    return server is None or server[1] is None


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def get_backend(request: Request) -> Backend:
    return backend_of(request)


async def get_service(request: Request) -> InventoryService:
    return backend_of(request).service


async def get_router(request: Request) -> Router:
    return backend_of(request).router


def socket_principal(scope: Mapping[str, Any]) -> Principal:
    """The OS user who connected to the socket, as admin; "local" where the
    kernel did not say (an in-process client, a system without SO_PEERCRED)."""
    peer = scope_peer(scope)
    return LOCAL_ADMIN if peer is None else Principal(user=peer.user, role="admin")


async def get_principal(request: Request) -> Principal:
    if is_local(request.scope):
        return socket_principal(request.scope)
    return verify(backend_of(request).jwt_secret, request.headers.get("authorization"))


Service = Annotated[InventoryService, Depends(get_service)]
Routing = Annotated[Router, Depends(get_router)]
Who = Annotated[Principal, Depends(get_principal)]
Runtime = Annotated[Backend, Depends(get_backend)]
