"""How a request reaches the agent: HTTP/1.1 over its Unix socket, or httpx.

The socket, the common case, is spoken with h11 on a plain socket (a command
is one short process: importing httpx and building its TLS context, or even
importing ``http.client``, would cost more than the whole request). An
``http(s)://`` agent goes through httpx, imported only then.

A transport raises only these (the client turns them into the CLI's errors)::

    TransportError
    ├── ConnectFailed      nothing was sent: the agent can't have applied it
    ├── TimedOut           no answer in time: the request may have been applied
    └── ConnectionBroken   the connection broke: the request may have been applied

Anything with the same two methods (``Transport``) can stand in for these,
e.g. a fake agent in the tests.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import h11

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ConnectFailed",
    "ConnectionBroken",
    "HttpxTransport",
    "Response",
    "SocketTransport",
    "TimedOut",
    "Transport",
    "TransportError",
]

# methods that mean the same when sent twice (RFC 9110 9.2.2)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class TransportError(Exception):
    pass


class ConnectFailed(TransportError):
    pass


class TimedOut(TransportError):
    pass


class ConnectionBroken(TransportError):
    pass


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Transport(Protocol):
    def request(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response: ...

    def close(self) -> None: ...


class _Closed(Exception):
    """The agent closed the connection before a whole response."""


class SocketTransport:
    """HTTP/1.1 (framed by h11) over the agent's Unix socket, one keep-alive
    connection. A request that broke on a kept-alive connection (the agent
    may have closed it meanwhile) is sent again on a new one only if no byte
    of an answer came back and its method is idempotent; anything else is
    the client's call (it retries only requests that carry an idempotency key)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.headers = {"Host": "agent", "Accept": "application/json"}
        self._sock: socket.socket | None = None
        self._h11: h11.Connection | None = None

    def _connect(self, timeout: float) -> tuple[socket.socket, h11.Connection]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            sock.close()
            raise ConnectFailed(str(exc)) from exc
        except BaseException:
            sock.close()
            raise
        self._sock, self._h11 = sock, h11.Connection(h11.CLIENT)
        return self._sock, self._h11

    def request(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        body = content or b""
        fields = {**self.headers, **headers, "Content-Length": str(len(body))}
        request = h11.Request(method=method, target=url, headers=list(fields.items()))
        for attempt in (1, 2):
            reused = self._sock is not None
            sock, conn = (self._sock, self._h11) if reused else self._connect(timeout)
            assert sock is not None and conn is not None
            sock.settimeout(timeout)
            answered: list[bool] = []
            try:
                for event in (request, h11.Data(data=body), h11.EndOfMessage()):
                    data = conn.send(event)
                    if data:
                        sock.sendall(data)
                response = self._receive(sock, conn, answered)
            except TimeoutError as exc:
                self.close()
                raise TimedOut(exc.__class__.__name__) from exc
            except (OSError, h11.ProtocolError, _Closed) as exc:
                self.close()
                if reused and attempt == 1 and not answered and method in IDEMPOTENT:
                    continue
                raise ConnectionBroken(str(exc) or exc.__class__.__name__) from exc
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                self.close()
            else:
                conn.start_next_cycle()
            return response
        raise AssertionError("unreachable")

    @staticmethod
    def _receive(sock: socket.socket, conn: h11.Connection, answered: list[bool]) -> Response:
        status = 0
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                if data:
                    answered.append(True)
                conn.receive_data(data)  # b"": the end of the stream
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return Response(status, b"".join(chunks))
            elif isinstance(event, h11.ConnectionClosed):
                raise _Closed("the agent closed the connection")
            # InformationalResponse (1xx): the answer is still to come

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._h11 = None


class HttpxTransport:
    """An ``http(s)://`` agent (TCP, maybe TLS), through httpx."""

    def __init__(self, base_url: str, timeout: float) -> None:
        import httpx

        self._httpx = httpx
        self._http: httpx.Client = httpx.Client(base_url=base_url, timeout=timeout)

    def request(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        httpx = self._httpx
        try:
            r = self._http.request(method, url, content=content, headers=headers, timeout=timeout)
        except httpx.ConnectError as exc:
            raise ConnectFailed(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise TimedOut(exc.__class__.__name__) from exc
        except httpx.TransportError as exc:
            raise ConnectionBroken(str(exc)) from exc
        return Response(r.status_code, r.content)

    def close(self) -> None:
        self._http.close()
