"""A small typed client for the agent's REST API.

It builds the request (path, query, JSON body), sends it through a transport
(``inventory_cli.transport``: the agent's Unix socket, or httpx for an
``http(s)://`` agent; a test passes its own), retries what is safe to retry,
and turns an error status into the typed error of ``inventory_cli.errors``.

A write that was sent and not answered (a timeout, a connection broken after
sending) may have been applied. It is sent again only if its method is
idempotent (a DELETE); a POST or PATCH never is, whatever key it carries:
sent again blindly, a 10-minute import would hold the agent's writer for
another 10 minutes to find out it had nothing to do. The user is told the
outcome is unknown and how to find out (the command says how: ``unknown``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from inventory_cli.errors import (
    AgentUnreachableError,
    CliError,
    UsageError,
    from_status,
)
from inventory_cli.transport import (
    IDEMPOTENT,
    ConnectFailed,
    ConnectionBroken,
    HttpxTransport,
    Response,
    SocketTransport,
    TimedOut,
    Transport,
)

__all__ = ["AgentClient", "CliError", "default_target"]

RETRIES = 3
# characters left as they are in a request path (RFC 3986 pchar and "/")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
_HINT = (
    "start it with: inv-agent --store-id STORE (or make run), or point INV_AGENT / --agent at it"
)


def default_target() -> str:
    """INV_AGENT, else the agent's default socket path (same rule as the agent)."""
    env = os.environ.get("INV_AGENT")
    if env:
        return env
    from agent.paths import default_socket

    return str(default_socket())


def _is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


class AgentClient:
    """The agent at ``target`` (a socket path or an http(s) URL; default: INV_AGENT
    or the default socket). ``transport``: how to reach it (default: from the target)."""

    def __init__(
        self,
        target: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        transport: Transport | None = None,
    ) -> None:
        self.target = target or default_target()
        self.timeout = timeout
        token = token if token is not None else os.environ.get("INV_TOKEN")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._transport: Transport
        if transport is not None:
            self._transport = transport
        elif _is_url(self.target):
            self._transport = HttpxTransport(self.target.rstrip("/"), timeout)
        else:
            self._transport = SocketTransport(self.target)

    def _unreachable(self, exc: Exception) -> AgentUnreachableError:
        where = self.target
        if not _is_url(where) and not Path(where).exists():
            return AgentUnreachableError(f"no agent is running at {where}: {_HINT}")
        return AgentUnreachableError(f"cannot reach the agent at {where} ({exc}): {_HINT}")

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        retry: bool = False,
        unknown: str | None = None,
    ) -> Any:
        """The answer's JSON (None for 204). ``retry``: send it again after a
        timeout or a broken connection, where it may or may not have been
        applied; honoured only for an idempotent method. ``unknown``: what to
        tell the user when a write's outcome is unknown (default: "the request
        may have been applied")."""
        query = {
            k: (str(v).lower() if isinstance(v, bool) else v)
            for k, v in (params or {}).items()
            if v is not None
        }
        url = quote(path, safe=_PATH_SAFE) + (f"?{urlencode(query)}" if query else "")
        content = json.dumps(body).encode() if body is not None else None
        hdrs = dict(self._headers)
        if content is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        for name, value in hdrs.items():
            if "\r" in value or "\n" in value:
                raise UsageError(f"{name}: a header value cannot contain a line break")
        wait = timeout or self.timeout
        try:
            resp = self._send(method, url, content, hdrs, wait, retry and method in IDEMPOTENT)
        except (TimedOut, ConnectionBroken) as exc:
            raise self._no_answer(method, exc, wait, unknown) from exc
        if resp.status_code == 204:
            return None
        try:
            data = resp.json()
        except ValueError:
            data = {"error": resp.text.strip() or f"HTTP {resp.status_code}"}
        if resp.status_code >= 400:
            raise from_status(
                resp.status_code, data if isinstance(data, dict) else {"error": str(data)}
            )
        return data

    def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        timeout: float,
        resend: bool,
    ) -> Response:
        """The answer; ``resend``: try up to RETRIES times in all."""
        attempts = RETRIES if resend else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._transport.request(method, url, content, headers, timeout)
            except ConnectFailed as exc:  # nothing was sent
                raise self._unreachable(exc) from exc
            except (TimedOut, ConnectionBroken):
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _no_answer(
        self, method: str, exc: TimedOut | ConnectionBroken, timeout: float, unknown: str | None
    ) -> AgentUnreachableError:
        """A request sent and not answered: for a write, say it may have been applied."""
        if method not in READS:
            what = (
                f"the agent did not answer within {timeout:g} s"
                if isinstance(exc, TimedOut)
                else f"the connection to the agent broke ({exc})"
            )
            return AgentUnreachableError(
                f"{what}; {unknown or 'the request may have been applied'}"
            )
        if isinstance(exc, TimedOut):
            return AgentUnreachableError(
                f"the agent at {self.target} did not answer in time ({exc})"
            )
        return self._unreachable(exc)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def paged(self, path: str, limit: int, **params: Any) -> list[Any]:
        """All rows of a paginated list, up to ``limit``."""
        out: list[Any] = []
        page = 1
        while len(out) < limit:
            size = min(1000, limit - len(out))
            data = self.request("GET", path, params={**params, "page": page, "limit": size})
            out.extend(data["data"])
            if len(data["data"]) < size:
                break
            page += 1
        return out

    def close(self) -> None:
        self._transport.close()
