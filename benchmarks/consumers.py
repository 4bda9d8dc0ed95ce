"""B12: 100 stores' consumers of the agents' stream, in three designs
(``consumer_client``): today's durable pull consumer per store, nats-py's
ordered consumer, and an ephemeral AckNone pull consumer; the last two
restart from a checkpoint the client keeps, so the server holds nothing per
store that outlives its link. Each on one nats-server (JetStream, file
storage); durable and AckNone also on a 3-server cluster with the stream at
3 replicas (the hub as deployed; quick mode leaves the cluster out).

Each design has its own servers and its own client process (100
connections, one per store), so /proc gives each one's CPU and memory apart.
Measured: the time to create the 100 consumers (one design at a time); server
and client CPU over an idle window with no traffic (all designs at once: an
idle process costs the others nothing); then, one design at a time, CPU while
``RATE`` stock.movement events a second (the agent's real body, measured by
``event_sizes``) are published on 100 store subjects, every consumer
following every store as an agent does, how long after the last publish
every store had every message, and the server's CPU per delivered message
over the whole of it (the fair figure: a pull consumer whose client lags is
delivered to later, a push consumer at once); server-side state (consumers,
files in the JetStream stores, open descriptors, RSS).

There is no floor: the row compares designs measured in the same run,
beside a server with no consumer at all (``bare``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from benchmarks import event_sizes
from benchmarks.common import rss_kb
from benchmarks.consumer_client import CONTROL, DESIGNS, NETWORK, STREAM, stream_config
from tests.helpers import wait_for
from tests.natsfix import NatsServer, cluster, port_open

ROOT = Path(__file__).resolve().parent.parent
CONSUMERS = 100
RATE = 500  # events a second, all stores together
# after the last publish, how long the stores may take to have it all (full, quick)
DRAIN_S = (4.0, 2.0)
TICK = os.sysconf("SC_CLK_TCK")
ROW = (
    "100 consumers of one stream: durable pull per store (today) vs ordered / AckNone "
    "ephemeral from a checkpoint, 1 server and R3: server CPU idle and per delivery at "
    "500 ev/s, RSS, files, create time"
)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Cpu:
    """CPU used by groups of processes since this was made (a group: the
    servers of a cluster, or one process)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = groups
        self._t0 = time.perf_counter()
        self._cpu0 = self._now()

    def _now(self) -> dict[str, float]:
        return {k: sum(cpu_seconds(p) for p in pids) for k, pids in self._groups.items()}

    def seconds(self) -> dict[str, float]:
        now = self._now()
        return {k: now[k] - self._cpu0[k] for k in now}

    def shares(self) -> dict[str, float]:
        """Percent of one core, on average."""
        elapsed = time.perf_counter() - self._t0
        return {k: round(100 * v / elapsed, 2) for k, v in self.seconds().items()}


@dataclass
class Setup:
    """One design on its own servers (one, or a 3-node cluster with the
    stream at 3 replicas), with its own client process."""

    design: str
    servers: list[NatsServer]
    replicas: int = 1
    proc: subprocess.Popen[bytes] | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.servers[0].url

    @property
    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.servers if s.proc]

    def spawn(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        urls = ",".join(s.url for s in self.servers)
        cmd = [sys.executable, "-m", "benchmarks.consumer_client", self.design, urls]
        cmd += [str(CONSUMERS), str(self.replicas)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env)

    def close(self) -> None:
        if self.proc is not None:
            asyncio.run(_control(self.url, self.design, b"stop", tries=1))
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for server in self.servers:
            server.cleanup()


async def _control(url: str, design: str, data: bytes, tries: int = 100) -> dict[str, Any] | None:
    """Ask a client (``go``, ``stop``, or its counts); None if it does not answer."""
    nc = await nats.connect(url)
    try:
        for _ in range(tries):
            try:
                msg = await nc.request(f"{CONTROL}.{design}", data, timeout=0.5)
                return json.loads(msg.data)  # type: ignore[no-any-return]
            except nats.errors.Error:
                await asyncio.sleep(0.1)
        return None
    finally:
        await nc.close()


def create(setup: Setup, timeout: float = 90) -> float:
    """Tell the client to create its consumers; seconds it took."""
    if asyncio.run(_control(setup.url, setup.design, b"go")) is None:
        raise RuntimeError(f"the {setup.design} client did not start")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert setup.proc is not None
        if setup.proc.poll() is not None:
            raise RuntimeError(f"the {setup.design} client exited {setup.proc.returncode}")
        stats = asyncio.run(_control(setup.url, setup.design, b""))
        if stats and stats["created"] is not None:
            return float(stats["created"])
        time.sleep(0.2)
    raise TimeoutError(f"the {setup.design} client did not create its consumers in {timeout}s")


async def _stream(url: str) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        s = (await nc.jetstream().stream_info(STREAM)).state
        return {"consumers": s.consumer_count, "messages": s.messages, "bytes": s.bytes}
    finally:
        await nc.close()


def server_state(setup: Setup) -> dict[str, Any]:
    """What the servers keep, as they report it and on disk (every file of
    their JetStream stores: the stream, consumers' state, raft logs)."""
    sizes = [_size(p) for s in setup.servers for p in (s.home / "js").rglob("*") if p.is_file()]
    return {
        **asyncio.run(_stream(setup.url)),
        "storeFiles": len(sizes),
        "storeBytes": sum(sizes),
        "openFds": sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in setup.pids),
        "rssKb": sum(rss_kb(pid) for pid in setup.pids),
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # a raft log compacted meanwhile
        return 0


async def _publish(js: Any, body: bytes, total: int) -> None:
    """Publish ``total`` events paced at ``RATE`` on 100 store subjects, each
    with its Msg-Id, as the agents' publishers do."""
    futures, sent = [], 0
    start = time.perf_counter()
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * RATE) + 1)
        while sent < due:
            store = f"store-{sent % CONSUMERS + 1:03d}"
            headers = {"Nats-Msg-Id": f"{store}:{sent}"}
            futures.append(
                await js.publish_async(f"inv.{NETWORK}.ev.{store}", body, headers=headers)
            )
            sent += 1
        await asyncio.sleep(0.01)
    await asyncio.gather(*futures)


async def _traffic(setup: Setup, body: bytes, seconds: float, drain_s: float) -> dict[str, Any]:
    assert setup.proc is not None
    total = int(RATE * seconds)
    nc = await nats.connect(setup.url)
    cpu = Cpu({"server": setup.pids, "client": [setup.proc.pid]})
    await _publish(nc.jetstream(), body, total)
    during = cpu.shares()
    published = time.perf_counter()
    received: list[int] = []
    while time.perf_counter() - published < drain_s:
        try:  # a client busy with deliveries answers late
            msg = await nc.request(f"{CONTROL}.{setup.design}", b"", timeout=2)
        except nats.errors.TimeoutError:
            continue
        received = json.loads(msg.data)["received"]
        if min(received) >= total:
            break
        await asyncio.sleep(0.2)
    drained = time.perf_counter() - published
    used = cpu.seconds()
    await nc.close()
    deliveries = max(1, sum(received))
    return {
        "published": total,
        "serverCpuPct": during["server"],
        "clientCpuPct": during["client"],
        # None: some store still lacked messages drain_s after the last publish
        "allReceivedAfterS": round(drained, 2) if received and min(received) >= total else None,
        "leastReceived": min(received, default=0),
        # over publishing and draining, per message a store received
        "serverUsPerDelivery": round(used["server"] * 1e6 / deliveries, 2),
        "clientUsPerDelivery": round(used["client"] * 1e6 / deliveries, 2),
        "serverRssKb": sum(rss_kb(pid) for pid in setup.pids),
        "clientRssKb": rss_kb(setup.proc.pid),
    }


def _setups(quick: bool) -> list[Setup]:
    single = [Setup(d, [NatsServer()]) for d in DESIGNS]
    if quick:
        return single
    # the hub as deployed: the stream at 3 replicas; a durable consumer
    # inherits them (a raft group of its own), the ephemeral ones are R1
    return single + [Setup(d, cluster(3), replicas=3) for d in ("durable", "acknone")]


def _start(setup: Setup) -> None:
    for server in setup.servers:
        server.start(wait=False)
    for server in setup.servers:
        port = server.port
        wait_for(lambda: port_open(port), 15, what=f"nats-server on {port}")  # noqa: B023


def run(quick: bool) -> dict[str, Any]:
    idle_s, traffic_s = (1.5, 0.5) if quick else (12.0, 1.5)
    sizes = event_sizes.measure(growth=0 if quick else event_sizes.GROWTH_MOVEMENTS)
    body = sizes["sampleStockMovement"].encode()
    setups = _setups(quick)
    out: dict[str, Any] = {
        "consumers": CONSUMERS,
        "rate": RATE,
        "idleSeconds": idle_s,
        "trafficSeconds": traffic_s,
        "eventBytes": {k: v for k, v in sizes.items() if k != "sampleStockMovement"},
        "designs": {},
    }
    phases: dict[str, float] = {}
    out["phaseSeconds"] = phases
    t0 = time.perf_counter()
    with ExitStack() as stack:
        bare = Setup("bare", [NatsServer()])
        stack.callback(bare.close)
        _start(bare)
        for setup in setups:
            stack.callback(setup.close)
            _start(setup)
            setup.spawn()
        asyncio.run(_make_stream(bare.url))
        for setup in setups:  # one at a time: each creation alone on the machine
            setup.result["createSeconds"] = round(create(setup), 3)
        phases["startAndCreate"] = round(time.perf_counter() - t0, 1)
        pids = {"bare": bare.pids}
        for i, setup in enumerate(setups):
            assert setup.proc is not None
            pids |= {f"{i}": setup.pids, f"{i}-client": [setup.proc.pid]}
        cpu = Cpu(pids)
        time.sleep(idle_s)
        idle = cpu.shares()
        out["bare"] = {"idleServerCpuPct": idle["bare"], **server_state(bare)}
        for i, setup in enumerate(setups):
            setup.result["idle"] = {
                "serverCpuPct": idle[f"{i}"],
                "clientCpuPct": idle[f"{i}-client"],
                **server_state(setup),
            }
        t1 = time.perf_counter()
        for setup in setups:
            setup.result["traffic"] = asyncio.run(_traffic(setup, body, traffic_s, DRAIN_S[quick]))
            state = server_state(setup)
            setup.result["storedBytesPerEvent"] = round(state["bytes"] / max(1, state["messages"]))
            key = setup.design if setup.replicas == 1 else f"{setup.design}-R{setup.replicas}"
            out["designs"][key] = setup.result
        phases["traffic"] = round(time.perf_counter() - t1, 1)
    phases["total"] = round(time.perf_counter() - t0, 1)
    return out


async def _make_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(stream_config())
    finally:
        await nc.close()


def rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, figure) for the table: one line per design."""
    lines = []
    for d, v in r["designs"].items():
        i, t = v["idle"], v["traffic"]
        lines.append(
            (
                f"{r['consumers']} {d} consumers",
                f"create {v['createSeconds']:.2f} s; server idle {i['serverCpuPct']:.1f} % CPU, "
                f"{i['rssKb'] / 1024:.0f} MB, {i['consumers']} consumers, "
                f"{i['storeFiles']} files; at {r['rate']} ev/s {t['serverCpuPct']:.0f} % "
                f"({t['serverUsPerDelivery']:.1f} µs a delivery; "
                f"client {t['clientCpuPct']:.0f} %), "
                f"all received +{t['allReceivedAfterS']} s",
            )
        )
    return lines


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.consumers", description=__doc__)
    p.add_argument("--quick", action="store_true")
    res = run(p.parse_args().quick)
    print(json.dumps(res, indent=2))
    for what, figure in rows(res):
        print(f"{what}: {figure}")
