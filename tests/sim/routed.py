"""The online channel in the simulation: routed reservations and the store
directory they are ranked by.

Drawn from a random stream of its own (the seed's other draws are those of
before it existed): a directory entry per store at the start (priority,
coordinates for most), routed reservations from any store with random
strategies and candidates, retries of them with the same id at the same
router, confirms and cancels of the granted ids from any store (without
naming the owner), and, as time goes on, safety-stock settings and stores
that stop or start fulfilling online orders.

The directory and the settings are written into every store's ledger at
once, as a replicated directory would read once converged (its own commands
and events are another branch's work; when they land these become ops of
``workload``).
"""

from __future__ import annotations

import random
import sqlite3
from typing import Any

from agent.domain import ROUTING_STRATEGIES
from tests.sim.workload import Op

SETTINGS = ("directory", "safety", "online")  # ops the simulation applies itself


def draw(rng: random.Random, stores: list[str], skus: list[str], duration_ms: int) -> list[Op]:
    ops = [
        Op(
            0,
            s,
            "directory",
            {
                "store": s,
                "priority": rng.randint(1, 5),
                "lat": rng.uniform(40, 52) if rng.random() < 0.8 else None,
                "lon": rng.uniform(-5, 10),
            },
        )
        for s in stores
    ]
    for i in range(rng.randint(3, 12)):
        at = rng.randint(0, duration_ms)
        router = rng.choice(stores)
        strategy = rng.choice(ROUTING_STRATEGIES)
        args: dict[str, Any] = {
            "rid": f"o{i}",
            "sku": rng.choice(skus),
            "qty": rng.randint(1, 4),
            "ttl": rng.choice([5, 30, 60]),
            "strategy": strategy,
        }
        if rng.random() < 0.3:
            args["stores"] = rng.sample(stores, rng.randint(1, len(stores)))
        if strategy == "nearest" and rng.random() < 0.7:
            args["near"] = rng.choice([rng.choice(stores), "47.5,3.25"])
        ops.append(Op(at, router, "route", args))
        for _ in range(rng.choice([0, 0, 1, 2])):  # the client retries, same id, same agent
            ops.append(Op(min(duration_ms, at + rng.randint(1, 20_000)), router, "route", args))
        if rng.random() < 0.4:
            kind = "routed-confirm" if rng.random() < 0.6 else "routed-cancel"
            later = min(duration_ms, at + rng.randint(100, 15_000))
            ops.append(Op(later, rng.choice(stores), kind, {"rid": args["rid"], "router": router}))
    for _ in range(rng.randint(0, 8)):
        store = rng.choice(stores)
        sku = rng.choice(skus) if rng.random() < 0.7 else None
        qty = rng.randint(0, 8) if rng.random() < 0.85 else None
        ops.append(
            Op(
                rng.randint(0, duration_ms),
                store,
                "safety",
                {"store": store, "sku": sku, "qty": qty},
            )
        )
    for _ in range(rng.randint(0, 2)):
        store = rng.choice(stores)
        ops.append(
            Op(
                rng.randint(0, duration_ms),
                store,
                "online",
                {"store": store, "online": rng.random() < 0.5},
            )
        )
    return ops


def apply_setting(conn: sqlite3.Connection, op: Op) -> None:
    """One directory or settings op, in one ledger (its caller commits)."""
    a = op.args
    conn.execute("INSERT OR IGNORE INTO stores (store_id) VALUES (?)", (a["store"],))
    if op.kind == "directory":
        conn.execute(
            "UPDATE stores SET priority = ?, lat = ?, lon = ? WHERE store_id = ?",
            (a["priority"], a["lat"], a["lon"] if a["lat"] is not None else None, a["store"]),
        )
    elif op.kind == "online":
        conn.execute(
            "UPDATE stores SET online = ? WHERE store_id = ?", (int(a["online"]), a["store"])
        )
    elif a["sku"] is None:  # the store's default
        conn.execute(
            "UPDATE stores SET safety_stock = ? WHERE store_id = ?", (a["qty"], a["store"])
        )
    else:
        conn.execute(
            "INSERT INTO stock_settings (sku, store_id, safety_stock) VALUES (?,?,?) "
            "ON CONFLICT(sku, store_id) DO UPDATE SET safety_stock = excluded.safety_stock",
            (a["sku"], a["store"], a["qty"]),
        )


def safety_of(conn: sqlite3.Connection, sku: str, store: str) -> tuple[int, bool]:
    """(safety stock, fulfils online orders) of (sku, store), read from the
    tables with the rule spelt out again here (not the agent's code)."""
    own = conn.execute(
        "SELECT safety_stock FROM stock_settings WHERE sku = ? AND store_id = ?", (sku, store)
    ).fetchone()
    entry = conn.execute(
        "SELECT safety_stock, online FROM stores WHERE store_id = ?", (store,)
    ).fetchone()
    if own is not None and own[0] is not None:
        safety = int(own[0])
    elif entry is not None and entry[0] is not None:
        safety = int(entry[0])
    else:
        safety = 0
    online = entry is None or entry[1] is None or bool(entry[1])
    return safety, online
