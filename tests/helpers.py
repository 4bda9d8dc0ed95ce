"""Test helpers: real agent processes and real nats-servers on free ports and
short socket paths, with polling (never blind sleeps)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 15.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last error on timeout
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc}")


def short_tmpdir() -> Path:
    """Unix socket paths are limited to ~107 bytes: keep them short."""
    return Path(tempfile.mkdtemp(prefix="inv", dir="/tmp"))


def bin_path(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found on PATH")
    return found


@dataclass
class Agent:
    store_id: str
    home: Path
    port: int | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _client: httpx.Client | None = None

    @property
    def socket(self) -> Path:
        return self.home / "s"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "agent.log"

    @property
    def url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        args = [
            bin_path("inv-agent"),
            "--store-id",
            self.store_id,
            "--data-dir",
            str(self.data_dir),
            "--socket",
            str(self.socket),
            "--log-format",
            "json",
        ]
        if self.port:
            args += ["--listen", f"127.0.0.1:{self.port}"]
        return args + self.extra_args

    def start(self, wait: bool = True) -> Agent:
        env = {**os.environ, **self.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.log()}")
            return self.client().get("/health").status_code in (200, 503)

        wait_for(ready, timeout, what=f"agent {self.store_id} to be ready")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                transport=httpx.HTTPTransport(uds=str(self.socket)),
                base_url="http://agent",
                timeout=30,
            )
        return self._client

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def token(self, user: str = "tester", role: str = "admin", *extra: str) -> str:
        out = subprocess.run(
            [
                bin_path("inv-agent"),
                "token",
                "--data-dir",
                str(self.data_dir),
                "--user",
                user,
                "--role",
                role,
                *extra,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def cli_env(self) -> dict[str, str]:
        env = {**os.environ, "INV_AGENT": str(self.socket), "NO_COLOR": "1", "COLUMNS": "200"}
        env.pop("INV_TOKEN", None)
        return env


def run_cli(
    agent: Agent | None,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``inv`` console script."""
    full_env = agent.cli_env() if agent else {**os.environ, "NO_COLOR": "1"}
    full_env.update(env or {})
    return subprocess.run(
        [bin_path("inv"), *args],
        capture_output=True,
        text=True,
        input=input,
        env=full_env,
        timeout=timeout,
    )


# ------------------------------------------------------- API read helpers
def stock(client: httpx.Client, sku: str = "PROD-001", store: str = "store-001") -> dict[str, Any]:
    """One stock row (sku, store) from the availability endpoint."""
    r = client.get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    assert r.status_code == 200, r.text
    [row] = r.json()["stores"]
    return row  # type: ignore[no-any-return]


def movements(client: httpx.Client, sku: str = "PROD-001", **params: Any) -> list[dict[str, Any]]:
    """A product's movement history (newest first)."""
    r = client.get(f"/api/v1/products/{sku}/history", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def token_command(data_dir: Path, user: str = "tester", role: str = "admin", *extra: str) -> str:
    """Run the real ``inv-agent token`` for ``data_dir`` (no agent process
    needed: it reads, or makes, the data dir's secret)."""
    args = ["token", "--data-dir", str(data_dir), "--user", user, "--role", role, *extra]
    out = subprocess.run(
        [bin_path("inv-agent"), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()
