"""ASGI middleware: request ids and access logs, body size limit, rate limit.

Pure ASGI (no BaseHTTPMiddleware) so streaming and lifespan are untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from typing import Any

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from agent.api.deps import is_local

log = structlog.get_logger("agent.http")
ASGIApp = Any


async def _json_response(
    send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestContext:
    """Gives every request an id (``X-Request-Id``, taken from the client if it
    sent a sane one), binds it to every log line of the request, and writes one
    access line when the response is done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex[:16]
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                ms=round((time.perf_counter() - start) * 1000, 2),
                via="socket" if is_local(scope) else "tcp",
            )
            structlog.contextvars.unbind_contextvars("request_id")


class BodyLimit:
    """Refuses bodies over ``max_bytes`` with 413: by Content-Length up front
    (the server never delivers more than declared), or, for a chunked body
    without one, by reading it here first (at most ``max_bytes`` are held)
    and handing it on only when it fits. Raising from inside the app's
    ``receive`` would not do: FastAPI turns any error while reading a body
    into a 400."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        too_big = {
            "error": f"request body larger than {self.max_bytes} bytes (limits.max_body_bytes)"
        }
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                await _json_response(send, 413, too_big)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await _json_response(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class RateLimit:
    """Per token (or per client address without one) over TCP; the local
    socket is exempt. ``per_minute`` sustained with bursts of ``burst``: two
    moving windows, ``per_minute``/min and ``burst`` per burst/rate seconds."""

    def __init__(self, app: ASGIApp, per_minute: int, burst: int) -> None:
        self.app = app
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.items: list[RateLimitItem] = [RateLimitItemPerMinute(per_minute)]
        if 0 < burst < per_minute:
            seconds = max(1, math.ceil(burst * 60 / per_minute))
            self.items.append(RateLimitItemPerSecond(burst, seconds))

    def _key(self, scope: dict[str, Any]) -> str:
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if auth:
            return "t:" + hashlib.sha256(auth).hexdigest()[:24]
        client = scope.get("client") or ("?", 0)
        return f"a:{client[0]}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or is_local(scope) or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        for item in self.items:
            if not self.limiter.hit(item, key):
                reset, _ = self.limiter.get_window_stats(item, key)
                retry = max(1, math.ceil(reset - time.time()))
                await _json_response(
                    send,
                    429,
                    {"error": f"rate limit exceeded ({item}); retry in {retry} s"},
                    [(b"retry-after", str(retry).encode())],
                )
                return
        await self.app(scope, receive, send)
