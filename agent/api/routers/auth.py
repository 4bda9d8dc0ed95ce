"""Logging in: a token for a user's name and password, and who a caller is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from agent.accounts.login import iso_utc
from agent.api import responses as out
from agent.api.deps import AccountBook, Who, client_address
from agent.api.responses import AUTH, spec
from agent.api.schemas import LoginRequest

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", **spec(200, out.LoginToken, 400, 401, 413, 422, 429))
async def login(body: LoginRequest, request: Request, accounts: AccountBook) -> dict[str, Any]:
    """No token needed, over TCP or the socket: this is where one comes from."""
    done = await accounts.login(body.username, body.password, client_address(request))
    return done.body()


@router.get("/whoami", **spec(200, out.WhoAmI, *AUTH))
async def whoami(request: Request, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return {
        "user": principal.user,
        "role": principal.role,
        "stores": list(principal.stores) if principal.stores is not None else None,
        "via": "token" if "authorization" in request.headers else "socket",
        "expiresAt": iso_utc(principal.expires_at) if principal.expires_at else None,
    }
