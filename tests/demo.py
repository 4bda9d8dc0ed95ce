"""``make demo``: three stores and a nats-server in a temporary folder,
narrated with the real ``inv`` CLI. Cleans up after itself.

Run: make demo   (or: python -m tests.demo with the venv's bin on PATH)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any

from tests.helpers import Agent, run_cli, short_tmpdir, wait_for
from tests.natsfix import NatsServer
from tests.netproxy import TcpProxy

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


def main() -> int:
    home = short_tmpdir()
    nats = NatsServer(home=home / "nats", name="hub")
    nats.home.mkdir()
    agents: list[Agent] = []
    proxy: TcpProxy | None = None
    env = {"INV_NATS_HEARTBEAT_INTERVAL": "0.5", "INV_NATS_PING_INTERVAL": "1"}
    try:
        say("Start a nats-server (JetStream) and three store agents")
        nats.start()
        note(f"nats-server on {nats.url}, everything under {home}")
        proxy = TcpProxy(nats.port)  # store-003 reaches NATS through a link we can cut
        for store, url in (
            ("store-001", nats.url),
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
        proxy.cut()
        wait_for(
            lambda: not s3.client().get("/api/v1/sync/status").json()["connected"],
            20,
            what="store-003 to notice",
        )
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
        if proxy:
            proxy.close()
        nats.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
