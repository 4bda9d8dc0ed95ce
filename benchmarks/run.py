"""``make bench``: every benchmark, each beside a floor measured in the same
run; prints the table and writes benchmarks/results.json.

    python -m benchmarks.run                 # everything (about 3 minutes on 2 cores)
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
    hq_ingest,
    hq_rebuild,
    imports,
    memory,
    propagation,
    reservations,
    routing,
)
from benchmarks.common import api, fleet, machine, wait_backlog_zero, wait_for

RESULTS = Path(__file__).with_name("results.json")
ALL = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9")


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
        wait_for(lambda: api(agent, "GET", "/api/v1/sync/status")["ready"], 30)
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
            wait_for(lambda ag=agent: api(ag, "GET", "/api/v1/sync/status")["ready"], 30)
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


def b5(quick: bool) -> dict[str, Any]:
    with fleet() as f:
        if quick:
            return catchup.catch_up(f, products=200, stores=49)
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


def b9(quick: bool) -> dict[str, Any]:
    return hq_ingest.ingest(per_store=1000 if quick else 10_000)


def b9_rebuild(quick: bool) -> dict[str, Any]:
    if quick:
        return hq_rebuild.run(events=100_000, applied=20_000)
    return hq_rebuild.run()


# ----------------------------------------------------------------- the table
def rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(
        bench: str, what: str, figure: str, floor: str, ratio: str, goal: str, ok: bool | None
    ) -> None:
        out.append(
            {
                "bench": bench,
                "what": what,
                "figure": figure,
                "floor": floor,
                "ratio": ratio,
                "goal": goal,
                "pass": ok,
            }
        )

    if "B1" in res:
        r = res["B1"]
        flo = r["floor"]["p50"]
        for key, what in (
            ("figure", "inv stock show, INV_AGENT set (whole process)"),
            ("defaultSocket", "inv stock show, default socket path (whole process)"),
        ):
            if key not in r:
                continue
            fig = r[key]["p50"]
            ratio = fig / flo
            r["ratio" if key == "figure" else "ratioDefaultSocket"] = ratio
            add(
                "B1",
                what,
                f"{fig:.0f} ms",
                f"{flo:.0f} ms (python -c pass)",
                f"{ratio:.1f}×",
                "≤ 6× floor",
                ratio <= 6,
            )
    for key, mode in (("B2", "standalone"), ("B2nats", "on NATS")):
        if key not in res:
            continue
        r = res[key]
        share = r["figure"] / r["floor"]
        r["ratio"] = share
        add(
            "B2",
            f"reserve + confirm, 16 clients, {mode}",
            f"{r['figure']:,.0f} req/s",
            f"{r['floor']:,.0f} req/s (/health)",
            f"{share:.0%}",
            "≥ 50 % and ≥ 1,000/s",
            share >= 0.5 and r["figure"] >= 1000 and r["errors"] == 0,
        )
    if "B3" in res:
        r = res["B3"]
        fig, flo = r["figure"]["p50"], r["floor"]["p50"]
        add(
            "B3",
            f"inv import, {r['rows']:,} rows",
            f"{fig:.2f} s",
            f"{flo:.2f} s (sqlite-utils insert)",
            f"{fig / flo:.2f}×",
            "≤ 1× floor",
            fig <= flo,
        )
        if "ledgerInsertsAlone" in r:
            bare = r["ledgerInsertsAlone"]["p50"]
            add(
                "B3",
                "reference: the ledger's inserts alone (in-process)",
                f"{bare:.2f} s",
                f"{flo:.2f} s (sqlite-utils insert)",
                f"{bare / flo:.2f}×",
                "—",
                None,
            )
    if "B4" in res:
        r = res["B4"]
        fig, flo = r["figure"], r["floor"]
        add(
            "B4",
            "write → readable at a peer",
            f"p50 {fig['p50']:.1f} / p99 {fig['p99']:.1f} ms",
            f"p50 {flo['p50']:.2f} / p99 {flo['p99']:.2f} ms (NATS one-way)",
            f"{fig['p50'] / flo['p50']:.0f}×",
            "p50 ≤ 10, p99 ≤ 50 ms",
            fig["p50"] <= 10 and fig["p99"] <= 50,
        )
    if "B5" in res:
        r = res["B5"]
        add(
            "B5",
            f"catch-up, {r['events']:,} events",
            f"{r['figure']:,.0f} ev/s",
            f"{r['floor']:,.0f} msg/s (bare pull consumer)",
            f"{r['figure'] / r['floor']:.0%}",
            "≥ 5,000 ev/s",
            r["figure"] >= 5000,
        )
    if "B6" in res:
        r = res["B6"]
        floor = r["idlePythonKb"]
        for when, kb in (
            ("restarted, reads", r["afterRestartKb"]),
            ("right after the imports", r["afterLoadKb"]),
        ):
            add(
                "B6",
                f"agent RSS, {r['stockRows']:,} stock rows, {when}",
                f"{kb / 1024:.0f} MB",
                f"{floor / 1024:.0f} MB (idle python)",
                f"{kb / floor:.1f}×",
                "≤ 150 MB",
                kb <= 150 * 1024,
            )
        c = r["cli"]
        add(
            "B6",
            "CLI peak RSS (inv stock show)",
            f"{c['figureKb'] / 1024:.0f} MB",
            f"{c['floorKb'] / 1024:.0f} MB (python -c pass)",
            f"{c['figureKb'] / c['floorKb']:.1f}×",
            "≤ 40 MB",
            c["figureKb"] <= 40 * 1024,
        )
    if "B7" in res:
        r = res["B7"]
        lat = r["latency"]
        add(
            "B7",
            f"{r['size']} concurrent reservations, {r['rounds']} bursts, on NATS",
            f"p99 {lat['p99']:.0f} ms, {r['errors']} errors",
            "—",
            "—",
            "all answered, 0 errors, p99 ≤ 200 ms",
            r["errors"] == 0 and r["answered"] == r["requests"] and lat["p99"] <= 200,
        )
    if "B8" in res:
        _b8_rows(res["B8"], add)
    if "B9" in res:
        r = res["B9"]
        share = r["figure"] / r["floor"]
        r["ratio"] = share
        add(
            "B9",
            f"HQ ingest NATS → PostgreSQL, {r['events']:,} events, {r['stores']} stores",
            f"{r['figure']:,.0f} ev/s",
            f"{r['floor']:,.0f} ev/s (fetch + COPY)",
            f"{share:.0%}",
            "≥ 20,000 ev/s and ≥ 50 %",
            r["figure"] >= 20_000 and share >= 0.5,
        )
        add(
            "B9",
            "reference: the same floor fetching with nats-py's PullSubscription.fetch",
            f"{r['floorNatsPyFetch']:,.0f} ev/s",
            "—",
            f"{r['figure'] / r['floorNatsPyFetch']:.0%}",
            "—",
            None,
        )
    if "B9rebuild" in res:
        r = res["B9rebuild"]
        scaled = r["seconds"] * 1_000_000 / r["events"]  # the goal is for 1,000,000
        add(
            "B9",
            f"inv-hq rebuild, {r['events']:,} events, 20 stores",
            f"{r['seconds']:.1f} s ({r['eventsPerSecond']:,.0f} ev/s)",
            "—",
            "—",
            "≤ 90 s for 1,000,000",
            scaled <= hq_rebuild.GOAL_S,
        )
        a = r["apply"]
        add(
            "B9",
            f"reference: Projector.apply, batches of {a['batch']:,} (on that model)",
            f"{a['eventsPerSecond']:,.0f} ev/s (p50 {a['batchP50Ms']:.0f} ms a batch)",
            "—",
            "—",
            "—",
            None,
        )
    for name, err in res.get("errors", {}).items():
        add(name, "FAILED TO RUN", err.splitlines()[-1][:60], "", "", "", False)
    return out


def _b8_rows(r: dict[str, Any], add: Callable[..., None]) -> None:
    fig, flo, rtt = r["figure"], r["floor"], r["natsRoundTrip"]
    r["ratio"] = fig["p50"] / flo["p50"]
    add(
        "B8",
        "routed reservation (storeId any) granted by a peer, 1 client",
        f"p50 {fig['p50']:.1f} / p99 {fig['p99']:.1f} ms",
        f"p50 {flo['p50']:.1f} / p99 {flo['p99']:.1f} ms (the same at the owner)",
        f"{r['ratio']:.1f}×",
        "p99 ≤ 20 ms",
        fig["p99"] <= 20,
    )
    r["rateRatio"] = r["rate"] / r["rateFloor"]
    add(
        "B8",
        f"routed reservations, {r['clients']} clients",
        f"{r['rate']:,.0f} req/s, {r['errors']} errors",
        f"{r['rateFloor']:,.0f} req/s (the same at the owner)",
        f"{r['rateRatio']:.0%}",
        "≥ 500/s",
        r["rate"] >= 500 and r["errors"] == 0,
    )
    add(
        "B8",
        "reference: bare NATS request/reply round trip",
        f"p50 {rtt['p50']:.2f} / p99 {rtt['p99']:.2f} ms",
        "—",
        "—",
        "—",
        None,
    )


def render(table: list[dict[str, Any]]) -> str:
    head = ["bench", "what", "figure", "floor", "ratio", "goal", "pass"]
    cells = [
        [r["bench"], r["what"], r["figure"], r["floor"], r["ratio"], r["goal"], _mark(r["pass"])]
        for r in table
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join([line, sep, *body])


def _mark(ok: bool | None) -> str:
    return "PASS" if ok else ("—" if ok is None else "FAIL")


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
    for name, fn in (("B4", b4), ("B3", b3), ("B5", b5), ("B6", b6), ("B8", b8), ("B9", b9)):
        if name in only:
            step(name, lambda fn=fn: fn(args.quick))  # type: ignore[misc]
    if "B9" in only:
        step("B9rebuild", lambda: b9_rebuild(args.quick))
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
