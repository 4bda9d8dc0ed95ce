"""B11: one availability read (``GET /api/v1/products/{ref}/availability``),
one client, one request at a time, over the agent's Unix socket and over TCP
with a token, beside the floor a cache in front of reads would cost: a Redis
``GET`` of the same bytes on loopback (``redis-server``, a bench-only
dependency). Also a bare HTTP round trip on loopback (a fixed answer from a
few lines of asyncio in another process): what HTTP framing alone costs here,
and the floor when no redis-server is installed.

Rounds alternate between the four (socket, TCP, Redis, bare HTTP) so that a
noisy neighbour slows them all alike; the samples of all rounds are pooled."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import Fleet, TcpHttp, UdsHttp, api, run_async, summary
from tests.helpers import free_port, short_tmpdir, wait_for

SKU = "PROD-001"
PATH = f"/api/v1/products/{SKU}/availability"
KEY = b"availability:" + SKU.encode()

# The bare server: answers every request on a connection with the same bytes.
BARE_SERVER = r"""
import asyncio, sys
body = sys.stdin.buffer.read()
head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
reply = head % len(body) + body
async def serve(reader, writer):
    buf = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        buf += data
        while b"\r\n\r\n" in buf:
            _, buf = buf.split(b"\r\n\r\n", 1)
            writer.write(reply)
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class Resp:
    """A Redis connection speaking just enough RESP for ``SET`` and ``GET``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> Resp:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def command(self, *args: bytes) -> bytes | None:
        assert self.reader and self.writer
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        self.writer.write(b"".join(parts))
        line = await self.reader.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            return (await self.reader.readexactly(size + 2))[:-2]
        if kind in (b"+", b":"):
            return rest
        raise RuntimeError(f"redis answered {line!r}")

    async def close(self) -> None:
        if self.writer:
            self.writer.close()


@contextmanager
def redis_server() -> Iterator[int | None]:
    """A throwaway redis-server on a free loopback port (no persistence), or
    None when none is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port, home = free_port(), short_tmpdir()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(home)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: run_async(_ping(port)), 10, interval=0.05, what="redis-server")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(home, ignore_errors=True)


async def _ping(port: int) -> bool:
    conn = await Resp(port).connect()
    try:
        return await conn.command(b"PING") == b"PONG"
    finally:
        await conn.close()


@contextmanager
def bare_http(body: bytes) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(body)
    proc.stdin.close()
    try:
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the bare HTTP server did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# One token reading as fast as it can would meet the TCP rate limit (1,200 a
# minute) within a second: the limits are raised, in the deployed shape (a
# minute's window and a burst window of 15 s), so the limiter still runs on
# every request. Its windows then hold every hit of the last minute (tens of
# thousands, not 1,200): ~10 µs more per request, about 1 % of a read.
UNTHROTTLED = {"INV_LIMITS_RATE_PER_MINUTE": "1000000", "INV_LIMITS_RATE_BURST": "250000"}

Probe = Callable[[], Awaitable[None]]


async def _timed(probe: Probe, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        await probe()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def _measure(
    sock: str,
    tcp_port: int,
    token: str,
    redis_port: int | None,
    bare_port: int,
    body: bytes,
    rounds: int,
    samples: int,
) -> dict[str, list[float]]:
    uds = await UdsHttp(sock).connect()
    tcp = await TcpHttp("127.0.0.1", tcp_port).connect()
    bare = await TcpHttp("127.0.0.1", bare_port).connect()
    auth = {"Authorization": f"Bearer {token}"}

    async def read(conn: UdsHttp, headers: dict[str, str] | None = None) -> None:
        status, got = await conn.request("GET", PATH, headers=headers)
        if status != 200:
            raise RuntimeError(f"GET {PATH} answered {status}: {got[:200]!r}")

    probes: dict[str, Probe] = {
        "socket": lambda: read(uds),
        "tcp": lambda: read(tcp, auth),
        "bareHttp": lambda: read(bare),
    }
    redis = await Resp(redis_port).connect() if redis_port is not None else None
    if redis is not None:
        await redis.command(b"SET", KEY, body)

        async def get() -> None:
            assert redis is not None
            if await redis.command(b"GET", KEY) != body:
                raise RuntimeError("redis GET returned other bytes")

        probes["redis"] = get
    try:
        return await _rounds(probes, rounds, samples)
    finally:
        for conn in (uds, tcp, bare, redis):
            if conn is not None:
                await conn.close()


async def _rounds(probes: dict[str, Probe], rounds: int, samples: int) -> dict[str, list[float]]:
    pooled: dict[str, list[float]] = {name: [] for name in probes}
    for probe in probes.values():
        await _timed(probe, 200)  # warm-up: connections, the agent's first calls
    for _ in range(rounds):
        for name, probe in probes.items():
            await probe()  # untimed: reopens a connection the server closed while idle
            pooled[name] += await _timed(probe, samples)
    return pooled


def _redis_version() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())


def run(f: Fleet, rounds: int = 5, samples: int = 2000) -> dict[str, Any]:
    """p50/p99 of each kind of read (ms), the body's size, and which Redis."""
    agent = f.agent("store-001", demo=True, tcp=True, env=UNTHROTTLED)
    assert agent.port is not None
    token = agent.token("bench", "viewer")
    body = agent.client().get(PATH).content
    api(agent, "GET", PATH)  # the route answers before anything is timed
    with redis_server() as redis_port, bare_http(body) as bare_port:
        pooled = run_async(
            _measure(
                str(agent.socket), agent.port, token, redis_port, bare_port, body, rounds, samples
            )
        )
    out: dict[str, Any] = {name: summary(values) for name, values in pooled.items()}
    out["bodyBytes"] = len(body)
    out["rounds"], out["samples"] = rounds, samples
    out["redisVersion"] = _redis_version() if "redis" in out else None
    return out


if __name__ == "__main__":
    import json

    from benchmarks.common import fleet

    with fleet() as fl:
        print(json.dumps(run(fl, rounds=2, samples=500), indent=2))
