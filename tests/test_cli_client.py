"""The CLI's HTTP/1.1 transport over the agent's Unix socket (h11, in
inventory_cli.transport), against a canned server: every response framing
(Content-Length, chunked, read-until-close), keep-alive, a kept-alive
connection the server closed, and no blind resend of a write."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h11
import pytest

from inventory_cli.client import AgentClient
from inventory_cli.errors import NotFoundError, UnreachableError, UsageError
from tests.helpers import short_tmpdir


@dataclass
class Received:
    head: h11.Request
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return dict(self.head.headers).get(name)


class CannedServer:
    """Answers each request on a connection with the next canned reply; a
    reply of None closes the connection instead (without answering)."""

    def __init__(self, path: Path, replies: list[bytes | None]) -> None:
        self.path = path
        self.replies = list(replies)
        self.requests: list[Received] = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        """Read requests with h11 (the replies are written by hand: their
        framing is what is tested). One parser per request: the reply was
        not sent through it, and the client sends one request at a time."""
        while self.replies:
            parser = h11.Connection(h11.SERVER)
            head: h11.Request | None = None
            body = b""
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    data = conn.recv(65536)
                    if not data:
                        return
                    parser.receive_data(data)
                elif isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert head is not None
            self.requests.append(Received(head, body))
            reply = self.replies.pop(0)
            if reply is None:
                return
            conn.sendall(reply)
            if b"Connection: close" in reply:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def home() -> Iterator[Path]:
    path = short_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def test_framings_and_keep_alive(home: Path) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\n[1, 2\r\n3;ext=1\r\n, 3\r\n1\r\n]\r\n0\r\n\r\n"
    )
    until_close = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"closed": true}'
    server = CannedServer(
        home / "s",
        [ok(b'{"a": 1}'), chunked, b"HTTP/1.1 204 No Content\r\n\r\n", until_close, ok(b"{}")],
    )
    client = AgentClient(str(home / "s"))
    try:
        assert client.get("/x", q="a b", flag=True) == {"a": 1}
        assert client.get("/y") == [1, 2, 3]
        assert client.request("DELETE", "/z") is None
        assert client.request("POST", "/w", body={"k": "v"}) == {"closed": True}
        assert client.get("/v") == {}
    finally:
        client.close()
        server.close()
    assert server.connections == 2  # one kept alive for four requests, then a new one
    first = server.requests[0]
    assert (first.head.method, first.head.target) == (b"GET", b"/x?q=a+b&flag=true")
    assert first.head.http_version == b"1.1" and first.header(b"host") == b"agent"
    post = server.requests[3]
    assert post.header(b"content-type") == b"application/json" and post.body == b'{"k": "v"}'


def test_a_write_is_not_sent_again_on_a_new_connection_unless_it_may_be(home: Path) -> None:
    server = CannedServer(home / "s", [ok(b"1"), None, ok(b"2"), None, None, ok(b"3")])
    client = AgentClient(str(home / "s"))
    try:
        assert client.get("/a") == 1
        with pytest.raises(UnreachableError):  # it may have been applied: not resent
            client.request("POST", "/b", body={})
        assert client.get("/c") == 2
        # not even when its caller says it is safe to (retry=True): never a POST
        with pytest.raises(UnreachableError, match="the request may have been applied"):
            client.request("POST", "/d", body={}, retry=True)
        # an idempotent method, with retry=True, the client sends again itself
        assert client.request("DELETE", "/e", retry=True) == 3
    finally:
        client.close()
        server.close()
    assert [r.head.target for r in server.requests] == [b"/a", b"/b", b"/c", b"/d", b"/e", b"/e"]


def test_a_kept_alive_connection_the_agent_closed_is_reopened_once(home: Path) -> None:
    server = CannedServer(home / "s", [ok(b"1"), None, ok(b"2")])
    client = AgentClient(str(home / "s"))
    try:
        assert client.get("/a") == 1
        assert client.get("/b") == 2
    finally:
        client.close()
        server.close()
    assert server.connections == 2


def test_errors(home: Path) -> None:
    with pytest.raises(UnreachableError, match="no agent is running"):
        AgentClient(str(home / "missing")).get("/x")
    not_found = b'{"error": "product \'X\' not found"}'
    server = CannedServer(
        home / "s",
        [
            b"HTTP/1.1 404 Not Found\r\n"
            + f"content-length: {len(not_found)}\r\n\r\n".encode()
            + not_found
        ],
    )
    client = AgentClient(str(home / "s"))
    try:
        with pytest.raises(NotFoundError, match="not found"):
            client.get("/api/v1/products/X")
        with pytest.raises(UsageError, match="line break"):
            client.request("POST", "/x", headers={"X-Idempotency-Key": "a\r\nEvil: 1"})
    finally:
        client.close()
        server.close()
