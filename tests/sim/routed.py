"""The online channel in the simulation: routed reservations and the store
directory they are ranked by.

Drawn from a random stream of its own (the seed's other draws are those of
before it existed): each store describes itself at the start (priority,
coordinates for most: ``inv store set``), routed reservations from any store
with random strategies and candidates, retries of them with the same id at
the same router, confirms and cancels of the granted ids from any store
(without naming the owner), and, as time goes on, safety stock set at any
store for any store (``inv stock safety``, a store's default with ``inv
store set --safety-stock``) and stores that stop or start fulfilling online
orders. Directory writes are events like any other: they replicate, late.
"""

from __future__ import annotations

import random
import sqlite3
from typing import Any

from agent.domain import ROUTING_STRATEGIES
from tests.sim.workload import Op


def draw(rng: random.Random, stores: list[str], skus: list[str], duration_ms: int) -> list[Op]:
    ops = [
        Op(
            0,
            s,
            "store",
            {
                "store": s,
                "fields": {
                    "priority": rng.randint(1, 5),
                    "lat": rng.uniform(40, 52) if rng.random() < 0.8 else None,
                    "lon": rng.uniform(-5, 10),
                },
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
    for _ in range(rng.randint(0, 8)):  # an admin at any store, for any store
        at, admin, store = rng.randint(0, duration_ms), rng.choice(stores), rng.choice(stores)
        qty = rng.randint(0, 8) if rng.random() < 0.85 else None
        if rng.random() < 0.7:
            ops.append(
                Op(at, admin, "safety", {"sku": rng.choice(skus), "store": store, "qty": qty})
            )
        else:
            ops.append(Op(at, admin, "store", {"store": store, "fields": {"safetyStock": qty}}))
    for _ in range(rng.randint(0, 2)):
        at, admin, store = rng.randint(0, duration_ms), rng.choice(stores), rng.choice(stores)
        ops.append(
            Op(at, admin, "store", {"store": store, "fields": {"online": rng.random() < 0.5}})
        )
    return ops


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
