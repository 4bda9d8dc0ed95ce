"""The CLI's HTTP/1.1 client over the agent's Unix socket (inventory_cli.client),
against a canned server: every response framing (Content-Length, chunked,
read-until-close), keep-alive, and a kept-alive connection the server closed."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inventory_cli.client import AgentClient
from inventory_cli.errors import NotFoundError, UnreachableError, UsageError
from tests.helpers import short_tmpdir


class CannedServer:
    """Answers each request on a connection with the next canned reply; a
    reply of None closes the connection instead (without answering)."""

    def __init__(self, path: Path, replies: list[bytes | None]) -> None:
        self.path = path
        self.replies = list(replies)
        self.requests: list[bytes] = []
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
            with conn, conn.makefile("rb") as reader:
                while self.replies:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    self.requests.append(head + reader.read(length))
                    reply = self.replies.pop(0)
                    if reply is None:
                        break
                    conn.sendall(reply)
                    if b"Connection: close" in reply:
                        break

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
    first = server.requests[0].decode()
    assert first.startswith("GET /x?q=a+b&flag=true HTTP/1.1\r\n") and "Host: agent" in first
    post = server.requests[3].decode()
    assert "Content-Type: application/json" in post and post.endswith('{"k": "v"}')


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
