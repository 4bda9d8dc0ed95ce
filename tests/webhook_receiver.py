"""A real HTTP receiver for the webhook tests: a ``ThreadingHTTPServer`` on
loopback, in a thread, that checks each request the way a user's endpoint
would (its own HMAC-SHA256 of the body, compared with
``X-Inventory-Signature``) and answers what the test tells it to.

- ``statuses``: the answers to give, in order (then 200 for ever); a request
  whose signature is wrong always gets 401;
- ``hold()``: requests wait (unanswered) until ``release()``, for a test that
  kills the agent while its request is in flight;
- ``stop()`` / ``start()`` again on the same port: a receiver that was down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers import free_port, wait_for


@dataclass(frozen=True)
class Request:
    event_id: str
    body: dict[str, Any]
    signed: bool  # the signature matched the receiver's secret
    status: int  # what it was answered (0: never answered, held)


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self._released.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/inventory"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the http.server API names it
                receiver._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(0.05), daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length", 0)))
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(expected, h.headers.get("X-Inventory-Signature", ""))
        event_id = h.headers.get("X-Inventory-Event-Id", "")
        if signed and not self._released.is_set():
            with self._lock:
                self.requests.append(Request(event_id, json.loads(body), signed, 0))
            self._released.wait(30)
            return  # never answered: the client is gone by now
        with self._lock:
            status = 401 if not signed else (self.statuses.pop(0) if self.statuses else 200)
            self.requests.append(Request(event_id, json.loads(body), signed, status))
        try:
            h.send_response(status)
            h.send_header("Content-Length", "0")
            h.end_headers()
        except OSError:  # the agent hung up
            pass

    # ------------------------------------------------------------ reading
    def seen(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def delivered(self) -> list[str]:
        """Event ids answered 2xx, in the order they came."""
        return [r.event_id for r in self.seen() if 200 <= r.status < 300]

    def wait_delivered(self, ids: list[str], timeout: float = 15.0) -> list[str]:
        """Wait until each of ``ids`` has been delivered (at least once)."""
        return wait_for(  # type: ignore[no-any-return]
            lambda: set(ids) <= set(self.delivered()) and self.delivered(),
            timeout,
            what=f"deliveries of {ids} (got {self.delivered()})",
        )
