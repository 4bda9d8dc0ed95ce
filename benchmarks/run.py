"""``make bench``: every benchmark, each beside a floor measured in the same
run; prints the table and writes benchmarks/results.json.

    python -m benchmarks.run                 # everything (at most 10 minutes on 2 cores)
    python -m benchmarks.run --only B1,B3    # some
    python -m benchmarks.run --quick         # smaller data sets, fewer runs (a smoke test)
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    catchup,
    cli,
    consumers,
    hq_ingest,
    hq_rebuild,
    imports,
    memory,
    propagation,
    reads,
    reservations,
    routing,
)
from benchmarks import (
    fleet as chain,
)
from benchmarks.common import (
    api,
    fleet,
    machine,
    wait_backlog_zero,
    wait_for,
    wait_ready_on_nats,
)
from benchmarks.table import render, rows

RESULTS = Path(__file__).with_name("results.json")
ALL = ("B1", "B2", "B3", "B3B", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12")


def b1_b2_b7(only: set[str], quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seconds = 1.5 if quick else 3.0
    with fleet() as f:
        # standalone: the local path alone (the CLI, the API and the ledger)
        agent = f.agent("store-001", demo=True)
        if "B1" in only:
            out["B1"] = cli.startup(agent, runs=7 if quick else 31)
        if "B2" in only:
            reservations.prepare(agent)
            out["B2"] = reservations.throughput(agent, seconds=seconds)
        agent.stop()
    if not only & {"B2", "B7"}:
        return out
    with fleet() as f:
        # as deployed, on NATS: every write is also published (and read back by
        # the agent's own consumer); the outbox drains before each round, since
        # /health counts it
        server = f.nats()
        agent = f.agent("store-001", demo=True, nats_url=server.url)
        wait_ready_on_nats(agent)
        reservations.prepare(agent)
        if "B2" in only:
            out["B2nats"] = reservations.throughput(
                agent, seconds=seconds, settle=lambda: wait_backlog_zero(agent)
            )
        if "B7" in only:
            out["B7"] = reservations.burst(agent, rounds=2 if quick else 5)
    return out


def b4(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        server = f.nats()
        a = f.agent("store-001", nats_url=server.url, demo=True)
        b = f.agent("store-002", nats_url=server.url, demo=True)
        for agent in (a, b):
            wait_ready_on_nats(agent)
        # B has seen A's demo data: the product the benchmark writes exists there
        wait_for(
            lambda: api(b, "GET", "/api/v1/products/PROD-002/availability?storeId=store-001"),
            30,
        )
        return propagation.run(server.url, str(a.socket), str(b.socket), 100 if quick else 300)


def b3(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        if quick:
            return imports.import_csv(f, products=200, stores=50, runs=1)
        return imports.import_csv(f)


def b3b(quick: bool) -> dict[str, Any]:
    """B3's import → readable at a running peer (``imports.import_to_peer``)."""
    with fleet() as f:
        if quick:
            return imports.import_to_peer(f, products=200, stores=50, runs=1)
        return imports.import_to_peer(f)


def b5(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        if quick:
            return catchup.catch_up(f, events=10_000)
        return catchup.catch_up(f)


def b6(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        if quick:
            return memory.agent_memory(f, products=1000, stores=20)
        return memory.agent_memory(f)


def b8(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        if quick:
            return routing.run(f, n=100, seconds=1.0, rounds=1)
        return routing.run(f)


def b10(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        # --quick: the same 20 agents, for 15 s instead of 2 minutes
        return chain.run(f, agents=20, seconds=15 if quick else 120)


def b11(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        if quick:
            return reads.run(f, rounds=2, samples=300)
        return reads.run(f, rounds=3, samples=2000)


def b9(quick: bool) -> dict[str, Any]:
    return hq_ingest.ingest(per_store=1000 if quick else 10_000)


def b9_rebuild(quick: bool) -> dict[str, Any]:
    if quick:
        return hq_rebuild.run(events=100_000, applied=20_000)
    return hq_rebuild.run()


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    p.add_argument("--only", default=",".join(ALL), help="comma-separated: B1,B2,...")
    p.add_argument("--quick", action="store_true", help="small data, few runs (smoke test)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    only = {x.strip().upper() for x in args.only.split(",") if x.strip()}
    started = time.time()
    res: dict[str, Any] = {"machine": machine(), "quick": args.quick, "errors": {}}
    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[[], dict[str, Any]], merge: bool = False) -> None:
        t0 = time.perf_counter()
        print(f"running {name} ...", flush=True)
        try:
            out = fn()
            if merge:
                res.update(out)
            else:
                res[name] = out
        except Exception:
            res["errors"][name] = traceback.format_exc()
            print(res["errors"][name], flush=True)
        timings[name] = round(time.perf_counter() - t0, 1)

    if only & {"B1", "B2", "B7"}:
        step("B1/B2/B7", lambda: b1_b2_b7(only, args.quick), merge=True)
    parts: tuple[tuple[str, Callable[[bool], dict[str, Any]]], ...] = (
        ("B4", b4),
        ("B3", b3),
        ("B3b", b3b),
        ("B5", b5),
        ("B6", b6),
        ("B8", b8),
        ("B9", b9),
        ("B9rebuild", b9_rebuild),
        ("B11", b11),
        ("B10", b10),
        ("B12", consumers.run),
    )
    for name, fn in parts:
        if name.removesuffix("rebuild").upper() in only:
            step(name, lambda fn=fn: fn(args.quick))  # type: ignore[misc]
    res["seconds"] = timings
    res["totalSeconds"] = round(time.time() - started, 1)
    res["finishedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    table = rows(res)
    res["table"] = table
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    print()
    print(render(table))
    print(
        f"\n{m['nproc']} × {m['cpu']}, Python {m['python']}; load average at start "
        f"{m['loadavg']}; took {res['totalSeconds']} s; wrote {args.out}"
    )
    print("seconds per part: " + ", ".join(f"{k} {v:g}" for k, v in timings.items()))
    for key in ("B2", "B2nats"):
        if key in res:
            r = res[key]
            print(
                f"{key} load generator: drove /health at {r['floor']:,.0f} req/s using "
                f"{r['generatorCpuHealth']:.0%} of one core (reservations: "
                f"{r['generatorCpuReserve']:.0%})"
            )
    return 0 if all(r["pass"] is not False for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(main())
