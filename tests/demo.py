"""``make demo``: three stores and a nats-server in a temporary folder,
narrated with the real ``inv`` CLI. Cleans up after itself.

Run: make demo   (or: python -m tests.demo with the venv's bin on PATH)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import psycopg

from tests.helpers import Agent, bin_path, run_cli, short_tmpdir, wait_for
from tests.natsfix import NatsServer
from tests.netproxy import TcpProxy
from tests.pgfix import start_server

BOLD, DIM, RESET = ("", "", "") if os.environ.get("NO_COLOR") else ("\033[1m", "\033[2m", "\033[0m")
STEP = 0


def say(text: str) -> None:
    global STEP
    STEP += 1
    print(f"\n{BOLD}{STEP}. {text}{RESET}", flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


def inv(agent: Agent, *args: str, show: bool = True) -> Any:
    print(f"{DIM}[{agent.store_id}]${RESET} inv {' '.join(args)}", flush=True)
    result = run_cli(agent, *args, env={"COLUMNS": "100"})
    if show:
        sys.stdout.write(result.stdout)
        sys.stdout.write(result.stderr)
    if result.returncode != 0:
        print(f"   (exit code {result.returncode})")
    return result


def digests(agent: Agent) -> dict[str, str]:
    return agent.client().get("/api/v1/sync/status").json()["digests"]  # type: ignore[no-any-return]


def on_hand(agent: Agent, sku: str, store: str) -> int | None:
    r = agent.client().get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    return r.json()["stores"][0]["quantity"] if r.status_code == 200 else None


def converged(agents: list[Agent]) -> bool:
    first = digests(agents[0])
    return all(digests(a) == first for a in agents[1:])


def hq(*args: str, dsn: str, nats_url: str) -> subprocess.CompletedProcess[str]:
    print(f"{DIM}[hq]${RESET} inv-hq {' '.join(args)}", flush=True)
    result = subprocess.run(
        [bin_path("inv-hq"), *args, "--dsn", dsn, "--nats", nats_url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if result.returncode != 0:
        print(f"   (exit code {result.returncode})")
    return result


def cut_off(agent: Agent, link: TcpProxy) -> None:
    """Cut ``agent``'s link to NATS and wait until it knows it is offline."""
    link.cut()
    wait_for(
        lambda: not agent.client().get("/api/v1/sync/status").json()["connected"],
        20,
        what=f"{agent.store_id} to notice",
    )


def chain_scenes(agents: list[Agent], proxy1: TcpProxy) -> None:
    """The chain: a store directory, online orders routed to the store that
    has the stock, and what happens when that store is cut off."""
    s1, s2 = agents[0], agents[1]
    say("The chain: describe the stores (a replicated directory)")
    inv(s1, "store", "set", "store-001", "--name", "Centro", "--priority", "1", show=False)
    inv(s1, "store", "set", "store-002", "--name", "Norte", "--priority", "2", show=False)
    inv(s1, "store", "set", "store-003", "--name", "Sur", "--priority", "3", show=False)
    note("store-001 keeps 2 units of PROD-001 back from online orders (safety stock)")
    inv(s1, "stock", "safety", "PROD-001", "2", show=False)
    wait_for(lambda: converged(agents), 30, what="the directory to reach every store")
    inv(s2, "store", "list")

    say("An online order (storeId any) goes to the first store that can fill it")
    inv(s2, "reserve", "PROD-001", "3", "--store", "any", "--id", "web-1001", "--customer", "c-7")
    note("store-002 ranked the stores by priority from its replica and asked store-001, which")
    note("decided itself (it holds the stock), keeping its safety stock out of reach.")

    say("store-001 is cut off: the next online order goes to the next store")
    cut_off(s1, proxy1)
    inv(s2, "reserve", "PROD-001", "2", "--store", "any", "--id", "web-1002")
    note("store-001 could not be asked, so nothing was held there; store-002 granted it.")
    proxy1.heal()
    wait_for(lambda: converged(agents), 60, what="all stores to converge again")


def transfer_scenes(agents: list[Agent], proxy: TcpProxy) -> None:
    """Stock sent from one store to another, received while the network is
    down and cancelled meanwhile at the origin; then a reorder point."""
    s1, s3 = agents[0], agents[2]
    say("Stock moves between stores: store-001 ships 3 units to store-003")
    inv(
        s1,
        "transfer",
        "create",
        "PROD-001:3",
        "--to",
        "store-003",
        "--ship",
        "--id",
        "T-DEMO-1",
        "--note",
        "weekly top-up",
        show=False,
    )
    wait_for(
        lambda: s3.client().get("/api/v1/transfers/T-DEMO-1").status_code == 200,
        20,
        what="the shipment to reach store-003",
    )
    inv(s3, "availability", "PROD-001")
    note("The 3 units are in nobody's available while they travel (in transit / incoming).")

    say("The truck arrives while store-003 is offline; store-001 cancels, not knowing")
    cut_off(s3, proxy)
    inv(s1, "transfer", "cancel", "T-DEMO-1", show=False)
    inv(s3, "transfer", "receive", "T-DEMO-1", "PROD-001:2:1")
    note("store-003 received 2 good units and 1 damaged, offline: its clerk was not stopped.")
    proxy.heal()
    wait_for(lambda: converged(agents), 60, what="all stores to converge")
    inv(s1, "transfer", "show", "T-DEMO-1")
    note("The receipt beat the cancel: the goods are at store-003, so the cancel returned")
    note("nothing to store-001 (corrected, and listed in inv conflicts as cancel_vs_receipt).")

    say("A reorder point: store-001 wants at least 5 of PROD-001 available")
    inv(s1, "stock", "reorder", "PROD-001", "--min", "5", "--max", "12", show=False)
    inv(s1, "stock", "low")
    inv(s1, "alerts")
    note("The alert was raised the moment the point was set (the row was already below it);")
    note("webhooks configured under alerts.webhooks get it signed, from a queue in the ledger.")


def hq_scenes(agents: list[Agent], dsn: str, nats_url: str) -> None:
    say("HQ: every store's events in PostgreSQL, checked against the stores")
    wait_for(
        lambda: hq("verify", "--timeout", "5", dsn=dsn, nats_url=nats_url).returncode == 0,
        60,
        interval=1,
        what="HQ to agree with every store",
    )
    note("inv-hq verify: each store's digest computed from PostgreSQL equals its agent's.")
    hq("status", dsn=dsn, nats_url=nats_url)
    note("HQ's users query the read model's tables and views, e.g. chain_availability:")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT sku, total_on_hand, total_available, stores "
            "FROM inv_hq.chain_availability ORDER BY sku"
        ).fetchall()
    print(f"   {'sku':<10} {'on hand':>8} {'available':>10}  per store")
    for sku, on_hand_total, available, stores in rows:
        print(f"   {sku:<10} {on_hand_total:>8} {available:>10}  {json.dumps(stores)}")


def main() -> int:
    home = short_tmpdir()
    nats = NatsServer(home=home / "nats", name="hub")
    nats.home.mkdir()
    agents: list[Agent] = []
    proxy: TcpProxy | None = None
    proxy1: TcpProxy | None = None
    pg: Any = None
    projector: subprocess.Popen[bytes] | None = None
    env = {"INV_NATS_HEARTBEAT_INTERVAL": "0.5", "INV_NATS_PING_INTERVAL": "1"}
    try:
        say("Start a nats-server (JetStream) and three store agents")
        nats.start()
        note(f"nats-server on {nats.url}, everything under {home}")
        proxy = TcpProxy(nats.port)  # store-003 reaches NATS through a link we can cut
        proxy1 = TcpProxy(nats.port)  # and store-001 through another
        for store, url in (
            ("store-001", proxy1.url),
            ("store-002", nats.url),
            ("store-003", proxy.url),
        ):
            agent = Agent(
                store,
                home / store,
                port=None,
                extra_args=["--nats", url] + (["--demo-data"] if store == "store-001" else []),
                env=env,
            )
            agent.home.mkdir()
            agents.append(agent.start())
        s1, s2, s3 = agents
        (home / "hq").mkdir()
        pg, dsn = start_server(home / "hq")
        with (home / "hq.log").open("wb") as hq_log:
            projector = subprocess.Popen(
                [bin_path("inv-hq"), "run", "--dsn", dsn, "--nats", nats.url],
                stdout=hq_log,
                stderr=subprocess.STDOUT,
            )
        note(f"and HQ: inv-hq run projecting into PostgreSQL ({dsn})")
        wait_for(lambda: converged(agents), 30, what="the seed data to reach every store")
        inv(s3, "stock", "show", "PROD-001")

        say("A sale in store-001 shows up in store-002")
        before = on_hand(s2, "PROD-001", "store-001")
        r = inv(s1, "reserve", "PROD-001", "1", "--id", "sale-1", "--json", show=False)
        rid = json.loads(r.stdout)["reservationId"]
        start = time.perf_counter()
        inv(s1, "confirm", rid, "--order", "order-1", show=False)
        acked = time.perf_counter()
        wait_for(
            lambda: on_hand(s2, "PROD-001", "store-001") == (before or 0) - 1,
            10,
            interval=0.001,
            what="the sale at store-002",
        )
        seen = time.perf_counter()
        note(
            f"confirmed at store-001; store-002 saw on hand {before} -> {before - 1} "
            f"{(seen - acked) * 1000:.1f} ms after the confirm was acknowledged "
            f"(confirm itself took {(acked - start) * 1000:.0f} ms, CLI start-up included)"
        )
        inv(s2, "availability", "PROD-001")

        say("Cut store-003 off the network; both sides keep selling")
        cut_off(s3, proxy)
        note("store-003 is offline. It still answers its clerks:")
        inv(s3, "stock", "add", "PROD-002", "10", "--store", "store-003", "--reason", "delivery")
        inv(s3, "stock", "remove", "PROD-002", "2", "--store", "store-003", "--reason", "sale")
        inv(s1, "stock", "remove", "PROD-002", "5", "--reason", "sale")
        note("store-003 counts store-001's PROD-002 shelf (a count it was asked to do)")
        inv(s3, "stock", "set", "PROD-002", "40", "--store", "store-001", "--reason", "recount")
        inv(s1, "stock", "remove", "PROD-002", "1", "--reason", "sale (before the count arrives)")
        inv(s3, "product", "update", "PROD-003", "--price", "79.99")
        inv(s1, "product", "update", "PROD-003", "--price", "84.99")
        inv(s3, "sync", "status")

        say("store-003 comes back")
        proxy.heal()
        wait_for(lambda: converged(agents), 60, what="all stores to converge")
        for a in agents:
            note(f"{a.store_id} digests: {json.dumps(digests(a), sort_keys=True)}")
        note("All digests are equal: every store holds the same state.")
        inv(s2, "stock", "show", "PROD-002")
        inv(s2, "product", "show", "PROD-003")

        say("The conflicts, explained")
        r = inv(s1, "conflicts", "--json", show=False)
        for c in json.loads(r.stdout):
            if c["kind"] == "product_field":
                d = c["detail"]
                note(
                    f"{c['sku']} {d['field']}: two stores changed it while apart; the later "
                    f"write ({c['winner']}) kept {d['kept']}, the other ({c['loser']}) lost "
                    f"{d['lost']}."
                )
            elif c["kind"] == "superseded_delta":
                note(
                    f"{c['sku']}@{c['storeId']}: the movement {c['loser']} happened before "
                    f"the physical count {c['winner']} it did not know about; the count "
                    "stands, the movement is kept in the history as superseded."
                )
            else:
                note(f"{c['kind']}: {c['sku']}@{c['storeId']} {json.dumps(c['detail'])}")
        inv(s1, "conflicts")

        chain_scenes(agents, proxy1)
        transfer_scenes(agents, proxy)
        hq_scenes(agents, dsn, nats.url)

        say("A reservation of another store's stock is forwarded to its owner")
        r = inv(s2, "reserve", "PROD-001", "2", "--store", "store-001", "--customer", "c-42")
        note("store-002 asked store-001's agent; store-001 decided (it holds the stock).")
        say("...and refused while the owner is down")
        s1.stop()
        r = inv(s2, "reserve", "PROD-001", "1", "--store", "store-001")
        note(f"exit code {r.returncode}: nothing was reserved anywhere.")
        print(f"\n{BOLD}Demo finished.{RESET}")
        return 0
    except Exception as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        for a in agents:
            print(f"--- {a.store_id} log ---\n{a.log()}", file=sys.stderr)
        return 1
    finally:
        for a in agents:
            a.stop()
        if projector is not None:
            projector.terminate()
            projector.wait(10)
        if pg is not None:
            pg.cleanup()
        for p in (proxy, proxy1):
            if p:
                p.close()
        nats.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
