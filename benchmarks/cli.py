"""B1: ``inv stock show PROD-001``, the whole process, against a running agent,
beside the floor of starting the same interpreter (``python -c pass``): once
with ``INV_AGENT`` set, once without it (the agent found on its default
socket, under a temporary ``XDG_RUNTIME_DIR``). Runs alternate (floor,
figure, default socket, floor, ...) so noise hits all alike.

The CLI is timed as installed: its modules byte-compiled first, as pip does
for a wheel. A checkout run with ``PYTHONDONTWRITEBYTECODE`` set (or whose
sources changed since their last run) would otherwise compile every module
it imports from source on every run (~20 ms of ``inv stock show``)."""

from __future__ import annotations

import compileall
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Agent,
    inv_bin,
    inv_env,
    median,
    peak_rss_kb,
    short_tmpdir,
    summary,
    wall,
)


def default_socket_env(agent: Agent, runtime: Path) -> dict[str, str]:
    """The CLI's environment without INV_AGENT, its default socket (under
    ``runtime`` as XDG_RUNTIME_DIR) leading to ``agent``'s."""
    (runtime / "inv-agent").mkdir(exist_ok=True)
    link = runtime / "inv-agent" / "agent.sock"
    if not link.exists():
        link.symlink_to(agent.socket)
    env = {**inv_env(agent), "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("INV_AGENT")
    return env


def byte_compile_cli() -> None:
    """``inventory_cli``'s modules compiled to ``__pycache__``, as an install
    leaves them (what is fresh already is left as it is)."""
    import inventory_cli

    compileall.compile_dir(Path(inventory_cli.__file__).parent, quiet=1)


def startup(agent: Agent, runs: int = 21) -> dict[str, Any]:
    byte_compile_cli()
    env = inv_env(agent)
    runtime = short_tmpdir()
    try:
        default_env = default_socket_env(agent, runtime)
        floor_cmd = [sys.executable, "-c", "pass"]
        cmd = [inv_bin(), "stock", "show", "PROD-001"]
        for _ in range(3):  # warm the page cache and the agent
            wall(floor_cmd, env)
            wall(cmd, env)
            wall(cmd, default_env)
        floor, figure, default = [], [], []
        for _ in range(runs):
            floor.append(wall(floor_cmd, env) * 1000)
            figure.append(wall(cmd, env) * 1000)
            default.append(wall(cmd, default_env) * 1000)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    return {"figure": summary(figure), "defaultSocket": summary(default), "floor": summary(floor)}


def peak_memory(agent: Agent, runs: int = 3) -> dict[str, Any]:
    """B6 (CLI side): peak RSS of an ``inv stock show`` child, beside an idle
    interpreter's."""
    env = inv_env(agent)
    figure = [peak_rss_kb([inv_bin(), "stock", "show", "PROD-001"], env) for _ in range(runs)]
    floor = [peak_rss_kb([sys.executable, "-c", "pass"], env) for _ in range(runs)]
    return {"figureKb": median(figure), "floorKb": median(floor)}
