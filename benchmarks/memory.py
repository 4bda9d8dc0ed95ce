"""B6: the agent's resident memory with 1,000,000 stock rows (10,000 products
× 100 stores, loaded through API imports of 100,000 rows), measured after the
load and again after a restart and a read workload; and the CLI's peak memory
for ``inv stock show``. Floor: an idle interpreter."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from benchmarks import cli
from benchmarks.common import Fleet, api, rss_kb
from benchmarks.imports import load_products, load_stock, sku


def idle_python_kb() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        return rss_kb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def read_workload(agent: Any, products: int) -> None:
    for i in range(0, products, max(1, products // 200)):
        api(agent, "GET", f"/api/v1/products/{sku(i)}/availability")
    api(agent, "GET", "/api/v1/products?limit=1000")
    api(agent, "GET", f"/api/v1/products/{sku(0)}/history")
    agent.client().get("/health")  # 503 once a standalone outbox passes outbox_alert
    agent.client().get("/metrics")


def agent_memory(fleet: Fleet, products: int = 10_000, stores: int = 100) -> dict[str, Any]:
    agent = fleet.agent("store-b6", demo=True)
    assert agent.proc is not None
    load_products(agent, products)
    load_seconds = load_stock(agent, products, stores)
    rows = api(agent, "GET", f"/api/v1/products/{sku(0)}/availability")["stores"]
    assert len(rows) == stores, len(rows)
    read_workload(agent, products)
    after_load = rss_kb(agent.proc.pid)
    peak_load = rss_kb(agent.proc.pid, "VmHWM")
    agent.stop()
    agent.start()
    assert agent.proc is not None
    read_workload(agent, products)
    after_restart = rss_kb(agent.proc.pid)
    cli_mem = cli.peak_memory(agent)
    return {
        "stockRows": products * stores + 4,  # + the seed's four
        "loadSeconds": round(load_seconds, 1),
        "afterLoadKb": after_load,
        "peakDuringLoadKb": peak_load,
        "afterRestartKb": after_restart,
        "ledgerBytes": agent.data_dir.joinpath("ledger.db").stat().st_size,
        "idlePythonKb": idle_python_kb(),
        "cli": cli_mem,
    }
