"""B1: ``inv stock show PROD-001``, the whole process, against a running agent,
beside the floor of starting the same interpreter (``python -c pass``).
Runs alternate (floor, figure, floor, ...) so noise hits both alike."""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.common import Agent, inv_bin, inv_env, median, peak_rss_kb, summary, wall


def startup(agent: Agent, runs: int = 21) -> dict[str, Any]:
    env = inv_env(agent)
    floor_cmd = [sys.executable, "-c", "pass"]
    cmd = [inv_bin(), "stock", "show", "PROD-001"]
    for _ in range(3):  # warm the page cache and the agent
        wall(floor_cmd, env)
        wall(cmd, env)
    floor, figure = [], []
    for _ in range(runs):
        floor.append(wall(floor_cmd, env) * 1000)
        figure.append(wall(cmd, env) * 1000)
    return {"figure": summary(figure), "floor": summary(floor)}


def peak_memory(agent: Agent, runs: int = 3) -> dict[str, Any]:
    """B6 (CLI side): peak RSS of an ``inv stock show`` child, beside an idle
    interpreter's."""
    env = inv_env(agent)
    figure = [peak_rss_kb([inv_bin(), "stock", "show", "PROD-001"], env) for _ in range(runs)]
    floor = [peak_rss_kb([sys.executable, "-c", "pass"], env) for _ in range(runs)]
    return {"figureKb": median(figure), "floorKb": median(floor)}
