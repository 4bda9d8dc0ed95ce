"""ASGI middleware: request ids and access logs, metrics, body size limit,
rate limit, a JSON content type by default: one layer (``Front``).

Pure ASGI (no BaseHTTPMiddleware) so streaming and lifespan are untouched.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from typing import Any

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from agent.api.deps import is_local
from agent.metrics import Metrics

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


class Front:
    """Everything every request passes through before the router, in one
    layer (each ASGI layer costs a coroutine call and, for the ones that
    watch the response, a wrapped ``send``; this was five layers, and HTTP
    plumbing was most of the agent's CPU under load), outermost first:

    - a request id (``X-Request-Id``, taken from the client if it sent a
      sane one), bound to every log line of the request, and one access line
      when the response is done;
    - request counts and latency by route template (``metrics``);
    - the body size limit (``BodyLimit``);
    - the rate limit over TCP (``RateLimit``; the local socket is exempt);
    - an /api body with no content type, or a form type, read as JSON (curl's
      ``-d`` sends a form unless told otherwise; JSON is the only body this
      API takes). The scope is changed in place, not copied: the router
      records the matched route in it, and the metrics read it from there.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        *,
        max_body_bytes: int,
        rate_per_minute: int,
        rate_burst: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.rate_limit = RateLimit(app, rate_per_minute, rate_burst)
        self.body_limit = BodyLimit(self.rate_limit, max_body_bytes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        given = b""
        length: bytes | None = None
        ctype: bytes | None = None
        for k, v in headers:
            if k == b"x-request-id":
                given = v
            elif k == b"content-length":
                length = v
            elif k == b"content-type":
                ctype = v
        rid_given = given.decode("latin-1")
        rid = rid_given if 0 < len(rid_given) <= 64 and rid_given.isprintable() else _new_id()
        if scope["path"].startswith("/api/") and (
            not ctype or ctype.startswith(b"application/x-www-form-urlencoded")
        ):
            scope["headers"] = [
                *((k, v) for k, v in headers if k != b"content-type"),
                (b"content-type", b"application/json"),
            ]
        status = 500
        start = time.perf_counter()
        rid_header = (b"x-request-id", rid.encode())

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        local = is_local(scope)
        structlog.contextvars.bind_contextvars(request_id=rid)
        fits = length is not None and length.isdigit() and int(length) <= self.max_body_bytes
        inner: ASGIApp
        if not fits:
            inner = self.body_limit  # refuses it, or reads a chunked body first
        elif local or scope["path"] == "/health":
            inner = self.app  # the common case: nothing more to check
        else:
            inner = self.rate_limit
        try:
            await inner(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route: Any = scope.get("route")
            name = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            self.metrics.http_requests.labels(method, name, str(status)).inc()
            self.metrics.http_latency.labels(method, name).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope.get("path"),
                status=status,
                ms=round(elapsed * 1000, 2),
                via="socket" if local else "tcp",
            )
            structlog.contextvars.unbind_contextvars("request_id")


# A request id: this process's random prefix and a counter, 16 hex digits.
# Unique within a run, and across runs but for a 1 in 2**32 chance; no
# syscall per request (uuid4 reads os.urandom: a syscall that hands the GIL
# to the ledger's writer in the middle of a request, 5 % of the agent's CPU
# under load).
_ID_PREFIX = os.urandom(4).hex()
_ids = itertools.count(1)


def _new_id() -> str:
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFFFFFF:08x}"


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
