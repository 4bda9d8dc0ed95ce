"""Shared pieces of the benchmarks: statistics, the machine description, real
agents and nats-servers (the test helpers), a minimal keep-alive HTTP client
over the agent's Unix socket (h11) and a closed-loop load generator built on it
(cheap enough not to be the bottleneck: each benchmark reports the rate it
drives against /health)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11

# re-exported: the benchmarks take the test helpers from here
from tests.helpers import Agent as Agent
from tests.helpers import bin_path, free_port
from tests.helpers import short_tmpdir as short_tmpdir
from tests.helpers import wait_for as wait_for
from tests.natsfix import NatsServer


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p99": pct(values, 99),
        "min": min(values),
        "max": max(values),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    """Resident memory of a process (VmRSS, or VmHWM for its peak; kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def peak_rss_kb(cmd: list[str], env: dict[str, str] | None = None) -> int:
    """Peak resident memory of one child process (ru_maxrss of RUSAGE_CHILDREN,
    read in a fresh wrapper whose only child is ``cmd``)."""
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "assert r.returncode == 0, r.returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env, check=True
    )
    return int(out.stdout.strip())


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (utime + stime of /proc/PID/stat), s."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # fields after the command name (which may hold spaces) start at the state
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def wall(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> float:
    """Wall time of a whole process, seconds (Python's own clock)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} exited {proc.returncode}: {proc.stderr[-2000:]!r}")
    return elapsed


# ------------------------------------------------------------------ fleet
@dataclass
class Fleet:
    """Agents and nats-servers started for one benchmark; all stopped at the end."""

    homes: list[Path] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)
    servers: list[NatsServer] = field(default_factory=list)

    def nats(self) -> NatsServer:
        server = NatsServer().start()
        self.servers.append(server)
        return server

    def agent(
        self,
        store_id: str,
        *,
        nats_url: str | None = None,
        demo: bool = False,
        start: bool = True,
        env: dict[str, str] | None = None,
        tcp: bool = False,
    ) -> Agent:
        """An agent on a fresh data dir; ``tcp`` adds a loopback TCP listener
        on a free port (JWT required there, as deployed)."""
        home = short_tmpdir()
        self.homes.append(home)
        extra: list[str] = []
        if demo:
            extra.append("--demo-data")
        if nats_url:
            extra += ["--nats", nats_url]
        port = free_port() if tcp else None
        agent = Agent(store_id, home, port=port, extra_args=extra, env=env or {})
        self.agents.append(agent)
        return agent.start() if start else agent

    def close(self) -> None:
        for agent in self.agents:
            agent.stop()
        for server in self.servers:
            server.cleanup()
        for home in self.homes:
            shutil.rmtree(home, ignore_errors=True)


@contextmanager
def fleet() -> Iterator[Fleet]:
    f = Fleet()
    try:
        yield f
    finally:
        f.close()


def api(agent: Agent, method: str, path: str, body: Any = None, timeout: float = 600) -> Any:
    """A harness call (not measured): raises on an error status."""
    resp = agent.client().request(method, path, json=body, timeout=timeout)
    if resp.status_code >= 400:
        raise RuntimeError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:500]}")
    return resp.json() if resp.content else None


def inv_env(agent: Agent) -> dict[str, str]:
    env = {**os.environ, "INV_AGENT": str(agent.socket), "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("INV_TOKEN", None)
    return env


def inv_bin() -> str:
    return bin_path("inv")


def wait_ready_on_nats(agent: Agent, timeout: float = 30) -> None:
    """Until the agent reports its replication ready (stream and consumer)."""
    wait_for(
        lambda: api(agent, "GET", "/api/v1/sync/status")["ready"],
        timeout,
        what=f"{agent.store_id} to be ready on NATS",
    )


def wait_backlog_zero(agent: Agent, timeout: float = 300) -> None:
    wait_for(
        lambda: api(agent, "GET", "/api/v1/sync/status")["outboxBacklog"] == 0,
        timeout,
        interval=0.2,
        what=f"{agent.store_id}'s outbox to drain",
    )


# ----------------------------------------------------------- HTTP client
class UdsHttp:
    """One HTTP/1.1 keep-alive connection over a Unix socket (asyncio streams,
    framed by h11 as the CLI's own transport is)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.http = h11.Connection(h11.CLIENT)

    async def connect(self) -> UdsHttp:
        self.reader, self.writer = await asyncio.open_unix_connection(self.path)
        return self

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        try:
            return await self._exchange(method, path, body, headers)
        except ConnectionError:
            # the server closed a connection left idle past its keep-alive
            # (uvicorn: 5 s): a read is sent again on a new one, as HTTP
            # clients do; a write is not (it may have been applied)
            if method not in ("GET", "HEAD"):
                raise
            await self.close()
            await self.connect()
            self.http = h11.Connection(h11.CLIENT)
            return await self._exchange(method, path, body, headers)

    async def _exchange(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None
    ) -> tuple[int, bytes]:
        assert self.reader and self.writer
        data = json.dumps(body).encode() if body is not None else b""
        fields = {"Host": "agent", "Content-Length": str(len(data))}
        if body is not None:
            fields["Content-Type"] = "application/json"
        fields.update(headers or {})
        http = self.http
        events: list[h11.Event] = [
            h11.Request(method=method, target=path, headers=list(fields.items())),
            *([h11.Data(data=data)] if data else []),
            h11.EndOfMessage(),
        ]
        self.writer.write(b"".join(http.send(event) or b"" for event in events))
        status, chunks = 0, []
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                received = await self.reader.read(65536)
                if not received and http.their_state is h11.SEND_RESPONSE:
                    raise ConnectionError("the agent closed the connection")
                http.receive_data(received)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the agent closed the connection")
        if http.our_state is h11.MUST_CLOSE or http.their_state is h11.MUST_CLOSE:
            await self.close()
            await self.connect()
            self.http = h11.Connection(h11.CLIENT)
        else:
            http.start_next_cycle()
        return status, b"".join(chunks)

    async def close(self) -> None:
        if self.writer:
            self.writer.close()


class TcpHttp(UdsHttp):
    """The same client over TCP (the agent's ``--listen``; asyncio's and
    uvloop's TCP transports turn Nagle off, as HTTP clients do)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"{host}:{port}")
        self.host, self.port = host, port

    async def connect(self) -> TcpHttp:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self


def run_async(coro: Awaitable[Any]) -> Any:
    """Run the load generator on uvloop when installed (as the agent does)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the speed extra is optional
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


# One unit of work for a client: returns the number of requests it made.
Work = Callable[[UdsHttp, int, int], Awaitable[int]]


async def drive(sock: str, clients: int, seconds: float, work: Work) -> dict[str, Any]:
    """Closed loop: ``clients`` connections, each running ``work`` back to back
    for ``seconds``. Reports requests/s, errors, and the generator's own CPU
    use (CPU seconds per wall second: near 1.0 would mean it is the bottleneck)."""
    conns = [await UdsHttp(sock).connect() for _ in range(clients)]
    done = [0] * clients
    errors: list[str] = []
    stop_at = 0.0

    async def client(i: int) -> None:
        n = 0
        while time.perf_counter() < stop_at:
            try:
                done[i] += await work(conns[i], i, n)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                if len(errors) > 100:
                    return
            n += 1

    cpu0 = time.process_time()
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    for c in conns:
        await c.close()
    total = sum(done)
    return {
        "requests": total,
        "seconds": round(elapsed, 3),
        "rate": total / elapsed,
        "errors": len(errors),
        "firstError": errors[0] if errors else None,
        "generatorCpu": round(cpu / elapsed, 3),
    }


async def health_work(conn: UdsHttp, i: int, n: int) -> int:
    status, body = await conn.request("GET", "/health")
    # 503 is the same work: a standalone agent reports its outbox backlog
    # (which never drains without NATS) as unhealthy past limits.outbox_alert
    if status not in (200, 503):
        raise RuntimeError(f"/health answered {status}: {body[:200]!r}")
    return 1
