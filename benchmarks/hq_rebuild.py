"""B9 (rebuild): ``Projector.rebuild`` of 1,000,000 recorded events from 20
stores, on an embedded PostgreSQL of its own (a temporary directory); goal
≤ 90 s. Then ``Projector.apply`` of further events in batches of 5,000 on
top of that model (the projector's steady state), reported as events/s.

The events are a chain's ordinary day: mostly sales and receipts, some
counts (with a basis naming the row's writers, as agents send them),
reservations going PENDING then CONFIRMED (with the sale), CANCELLED or
EXPIRED, now and then a product edit (with the whole network's basis). They
are COPY'd straight into ``events`` (recorded as the projector records
them), so the figure is the rebuild alone.

    python -m benchmarks.hq_rebuild [--events N] [--apply N] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from agent.domain import product_id_for
from agent.hq.projector import Projector
from agent.hq.schema import migrate
from agent.ledger.engine.envelope import envelope
from tests.pgfix import running_postgres

BASE_MS = 1_790_000_000_000
SCHEMA = "inv_hq"
GOAL_S = 90.0


class ChainDay:
    """A seeded stream of envelopes from ``stores`` stores over ``skus`` SKUs."""

    def __init__(self, seed: int = 9, stores: int = 20, skus: int = 2000) -> None:
        self.rng = random.Random(seed)
        self.stores = [f"store-{i:03d}" for i in range(1, stores + 1)]
        self.skus = [f"SKU-{i:05d}" for i in range(skus)]
        self.seq = dict.fromkeys(self.stores, 0)
        self.last = dict.fromkeys(self.stores, 0)
        self.open: dict[str, list[dict[str, Any]]] = {s: [] for s in self.stores}
        self.made = 0
        self.wall = BASE_MS
        # the day opens with each store's stock of each SKU (an import's receipts)
        self.opening = [(store, sku) for sku in self.skus for store in self.stores]

    def _envelope(self, origin: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        self.seq[origin] += 1
        hlc = max(self.wall << 16, self.last[origin] + 1)
        self.last[origin] = hlc
        return envelope(origin, self.seq[origin], hlc, type_, data)

    def _movement(self, store: str, kind: str, qty: int) -> dict[str, Any]:
        mv: dict[str, Any] = {
            "sku": self.rng.choice(self.skus),
            "storeId": store,
            "kind": kind,
            "quantity": qty,
            "reason": "pos" if kind == "sell" else "delivery",
            "actor": "till-1",
        }
        if kind == "count":  # a count's basis: the row's writers (here: the store itself)
            mv["reason"] = "stock take"
            mv["basis"] = {store: self.seq[store]}
        return mv

    def _reservation(self, store: str) -> dict[str, Any]:
        rng = self.rng
        if self.open[store] and rng.random() < 0.5:
            r = self.open[store].pop(rng.randrange(len(self.open[store])))
            status = rng.choices(["CONFIRMED", "CANCELLED", "EXPIRED"], [6, 2, 2])[0]
            r = {**r, "status": status, "updatedAtMs": self.wall}
            data: dict[str, Any] = {"reservation": r}
            if status == "CONFIRMED":
                r["orderId"] = f"order-{self.made}"
                data["movement"] = {
                    "sku": r["sku"],
                    "storeId": store,
                    "kind": "sell",
                    "quantity": -r["quantity"],
                    "reason": "reservation",
                    "actor": "web",
                }
            return data
        self.made += 1
        r = {
            "id": f"res-{self.made:08d}",
            "sku": rng.choice(self.skus),
            "storeId": store,
            "quantity": rng.randint(1, 3),
            "customerId": f"cust-{rng.randint(1, 50_000)}",
            "status": "PENDING",
            "orderId": None,
            "expiresAtMs": self.wall + 900_000,
            "createdAtMs": self.wall,
            "updatedAtMs": self.wall,
            "channel": "online",
        }
        self.open[store].append(r)
        return {"reservation": r}

    def event(self) -> dict[str, Any]:
        rng = self.rng
        if self.opening:
            store, sku = self.opening.pop()
            mv = {**self._movement(store, "receive", rng.randint(20, 60)), "sku": sku}
            return self._envelope(store, "stock.movement", mv)
        store = rng.choice(self.stores)
        if rng.random() < 0.2:
            self.wall += 1
        pick = rng.random()
        if pick < 0.70:
            return self._envelope(
                store, "stock.movement", self._movement(store, "sell", -rng.randint(1, 3))
            )
        if pick < 0.84:
            return self._envelope(
                store, "stock.movement", self._movement(store, "receive", rng.randint(10, 50))
            )
        if pick < 0.86:
            return self._envelope(
                store, "stock.movement", self._movement(store, "count", rng.randint(0, 80))
            )
        if pick < 0.87:
            return self._envelope(
                store, "stock.movement", self._movement(store, "adjust", rng.randint(-3, 3))
            )
        if pick < 0.98:
            return self._envelope(store, "reservation.changed", self._reservation(store))
        sku = rng.choice(self.skus)
        fields: dict[str, Any] = {"price": round(rng.uniform(1, 100), 2)}
        if rng.random() < 0.3:
            fields.update(id=product_id_for(sku), name=f"Product {sku}", category="grocery")
        basis = {s: n for s, n in self.seq.items() if n}
        return self._envelope(
            store, "product.upserted", {"sku": sku, "fields": fields, "basis": basis}
        )

    def events(self, n: int) -> Iterator[dict[str, Any]]:
        for _ in range(n):
            yield self.event()


def record(conn: psycopg.Connection[Any], events: Iterator[dict[str, Any]]) -> int:
    """COPY events into ``events`` as the projector records them, and their
    origins' watermarks (every seq is there: contiguous)."""
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    n = 0
    top: dict[str, tuple[int, int]] = {}
    with conn.transaction():
        cur = conn.cursor()
        with cur.copy(
            f"COPY {SCHEMA}.events (origin, seq, hlc, type, body, received_at) FROM STDIN"
        ) as copy:
            for e in events:
                copy.write_row((e["origin"], e["seq"], e["hlc"], e["type"], dumps(e), "now"))
                top[e["origin"]] = (e["seq"], e["hlc"])
                n += 1
        cur.executemany(
            f"INSERT INTO {SCHEMA}.origins (origin, applied_seq, max_seq, last_hlc) "
            "VALUES (%s, %s, %s, %s)",
            [(o, s, s, h) for o, (s, h) in top.items()],
        )
    conn.execute(f"VACUUM ANALYZE {SCHEMA}.events")
    return n


def run(events: int = 1_000_000, applied: int = 100_000, batch: int = 5_000) -> dict[str, Any]:
    day = ChainDay()
    with running_postgres() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, SCHEMA)
        t0 = time.perf_counter()
        record(conn, day.events(events))
        loaded = time.perf_counter() - t0
        projector = Projector(conn, SCHEMA)
        t0 = time.perf_counter()
        replayed = projector.rebuild()
        seconds = time.perf_counter() - t0
        conn.execute(f"ANALYZE {SCHEMA}.movements, {SCHEMA}.stock")
        per_batch = []
        t0 = time.perf_counter()
        for _ in range(applied // batch):
            result = projector.apply(list(day.events(batch)))
            assert result.applied == batch
            per_batch.append(result.seconds)
        apply_wall = time.perf_counter() - t0
        sizes = conn.execute(
            "SELECT (SELECT count(*) FROM inv_hq.movements), (SELECT count(*) FROM inv_hq.stock),"
            " (SELECT count(*) FROM inv_hq.conflicts), pg_database_size(current_database())"
        ).fetchone()
    assert sizes is not None
    per_batch.sort()
    return {
        "events": replayed,
        "seconds": seconds,
        "eventsPerSecond": replayed / seconds,
        "goalSeconds": GOAL_S,
        "loadSeconds": loaded,
        "apply": {
            "batch": batch,
            "events": applied,
            "seconds": apply_wall,
            "eventsPerSecond": applied / apply_wall if apply_wall else 0.0,
            "batchP50Ms": per_batch[len(per_batch) // 2] * 1000 if per_batch else 0.0,
            "batchMaxMs": per_batch[-1] * 1000 if per_batch else 0.0,
        },
        "movements": sizes[0],
        "stockRows": sizes[1],
        "conflicts": sizes[2],
        "databaseMb": sizes[3] / 2**20,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hq_rebuild", description=__doc__)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--apply", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=5_000)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    res = run(args.events, args.apply, args.batch)
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
