"""A small typed client for the agent's REST API (over its Unix socket or HTTP).

The socket, the common case, is spoken directly (a command is one short
process: importing httpx and building its TLS context, or even importing
``http.client``, would cost more than the whole request). An ``http(s)://``
agent goes through httpx, imported only then.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from inventory_cli.errors import CliError, UnreachableError, UsageError, from_status

RETRIES = 3
# characters left as they are in a request path (RFC 3986 pchar and "/")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def default_target() -> str:
    """INV_AGENT, else the agent's default socket path (same rule as the agent)."""
    env = os.environ.get("INV_AGENT")
    if env:
        return env
    from agent.config import default_socket

    return str(default_socket())


class _Response:
    def __init__(self, status: int, content: bytes) -> None:
        self.status_code = status
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _Unreachable(Exception):
    """The agent could not be reached at all (nothing was sent)."""


class _Timeout(Exception):
    pass


class _Transport(Exception):
    """The connection broke: the request may or may not have been applied."""


class _BadResponse(Exception):
    pass


class _SocketTransport:
    """HTTP/1.1 over the agent's Unix socket, one keep-alive connection.

    Written on the socket directly: ``http.client`` imports ``ssl`` and the
    ``email`` package, which alone cost a large share of a short command's
    run. The other end is always our agent; still, any valid HTTP/1.1
    response framing is read (Content-Length, chunked, or until close)."""

    def __init__(self, path: str, headers: dict[str, str], timeout: float) -> None:
        self.path = path
        self.headers = {"Host": "agent", "Accept": "application/json", **headers}
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: Any = None

    def _connect(self, timeout: float) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            sock.close()
            raise _Unreachable(str(exc)) from exc
        except BaseException:
            sock.close()
            raise
        self._sock, self._file = sock, sock.makefile("rb")

    def request(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> _Response:
        body = content or b""
        fields = {**self.headers, **headers, "Content-Length": str(len(body))}
        for name, value in fields.items():
            if "\r" in value or "\n" in value:
                raise UsageError(f"{name}: a header value cannot contain a line break")
        head = f"{method} {url} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        message = (head + "\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            reused = self._sock is not None
            if self._sock is None:
                self._connect(timeout)
            assert self._sock is not None
            self._sock.settimeout(timeout)
            try:
                self._sock.sendall(message)
                status, data, close = self._read_response(method)
            except TimeoutError as exc:
                self.close()
                raise _Timeout(exc.__class__.__name__) from exc
            except (OSError, ValueError, _BadResponse) as exc:
                self.close()
                # a kept-alive connection the agent had closed: open a new one once
                if reused and attempt == 1:
                    continue
                raise _Transport(str(exc) or exc.__class__.__name__) from exc
            if close:
                self.close()
            return _Response(status, data)
        raise AssertionError("unreachable")

    def _read_response(self, method: str) -> tuple[int, bytes, bool]:
        f = self._file
        line = f.readline(65537)
        if not line:
            raise _BadResponse("the agent closed the connection")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise _BadResponse(f"not an HTTP response: {line[:80]!r}")
        version, status = parts[0], int(parts[1])
        fields: dict[str, str] = {}
        while True:
            h = f.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        close = fields.get("connection", "").lower() == "close" or version == b"HTTP/1.0"
        if method == "HEAD" or status in (204, 304) or status < 200:
            return status, b"", close
        if "chunked" in fields.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(f.readline(65537).split(b";")[0], 16)
                if size == 0:
                    while f.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields
                    break
                chunks.append(self._exactly(size))
                f.readline(65537)
            return status, b"".join(chunks), close
        if "content-length" in fields:
            return status, self._exactly(int(fields["content-length"])), close
        return status, f.read(), True

    def _exactly(self, n: int) -> bytes:
        data = self._file.read(n)
        if len(data) < n:
            raise _BadResponse("the agent closed the connection mid-response")
        return bytes(data)

    def close(self) -> None:
        if self._sock is not None:
            self._file.close()
            self._sock.close()
            self._sock = self._file = None


class _HttpxTransport:
    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        import httpx

        self._httpx = httpx
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def request(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> Any:
        httpx = self._httpx
        try:
            return self._http.request(
                method, url, content=content, headers=headers, timeout=timeout
            )
        except httpx.ConnectError as exc:
            raise _Unreachable(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise _Timeout(exc.__class__.__name__) from exc
        except httpx.TransportError as exc:
            raise _Transport(str(exc)) from exc

    def close(self) -> None:
        self._http.close()


class AgentClient:
    def __init__(
        self, target: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.target = target or default_target()
        self.timeout = timeout
        token = token if token is not None else os.environ.get("INV_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._transport: _SocketTransport | _HttpxTransport
        if self.target.startswith(("http://", "https://")):
            self._transport = _HttpxTransport(self.target.rstrip("/"), headers, timeout)
        else:
            self._transport = _SocketTransport(self.target, headers, timeout)

    def _unreachable(self, exc: Exception) -> UnreachableError:
        where = self.target
        hint = (
            "start it with: inv-agent --store-id STORE (or make run), "
            "or point INV_AGENT / --agent at it"
        )
        if not where.startswith("http") and not Path(where).exists():
            return UnreachableError(f"no agent is running at {where}: {hint}")
        return UnreachableError(f"cannot reach the agent at {where} ({exc}): {hint}")

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
    ) -> Any:
        query = {
            k: (str(v).lower() if isinstance(v, bool) else v)
            for k, v in (params or {}).items()
            if v is not None
        }
        url = quote(path, safe=_PATH_SAFE) + (f"?{urlencode(query)}" if query else "")
        content = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if content is not None else {}
        hdrs.update(headers or {})
        attempts = RETRIES if retry else 1
        for attempt in range(attempts):
            try:
                resp = self._transport.request(method, url, content, hdrs, timeout or self.timeout)
                break
            except _Unreachable as exc:
                raise self._unreachable(exc) from exc
            except _Timeout as exc:
                if attempt + 1 < attempts:
                    continue
                raise UnreachableError(
                    f"the agent at {self.target} did not answer in time ({exc})"
                ) from exc
            except _Transport as exc:
                # the request may or may not have been applied: retrying is safe
                # only because every write we retry carries an idempotency key
                if attempt + 1 < attempts:
                    continue
                raise self._unreachable(exc) from exc
        if resp.status_code == 204:
            return None
        try:
            data = resp.json()
        except ValueError:
            data = {"error": resp.text.strip() or f"HTTP {resp.status_code}"}
        if resp.status_code >= 400:
            if not isinstance(data, dict):
                data = {"error": str(data)}
            if resp.status_code == 401:
                data["error"] = f"{data.get('error')} (set INV_TOKEN)"
            raise from_status(resp.status_code, data)
        return data

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


__all__ = ["AgentClient", "CliError"]
