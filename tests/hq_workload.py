"""Seeded random event sets for the HQ differential tests: what a few stores
write while they see each other's events only now and then.

Each store has its own HLC (``observe`` on every peer event it learns, so a
write is stamped after what its writer had seen) and its basis (the
contiguous prefix of each origin's events it has learnt): concurrent writes,
and writes that knowingly replace others, both happen. Stores sometimes
share a millisecond, so ties are broken by origin. The mix: receipts, sales,
adjustments, counts (with a basis or none), imports' batches of them
(``stock.batch``), product edits from small pools
of values (two stores often write the same value: no conflict), reservations
by their owning store going PENDING and then CONFIRMED (with its sale),
CANCELLED or EXPIRED; with ``directory``, store entries and per-SKU safety
stock too; with ``moves``, transfers (``tests/hq_moves.py``; now and then
two stores give one id to theirs: ``clashes``), reorder settings and
alerts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from agent.domain import product_id_for
from agent.ledger.engine.envelope import envelope
from tests import hq_moves

BASE_MS = 1_790_000_000_000
TEXTS = ["", "plain", "é ü", "tab\there", "new\nline", "quote ' \" \\ back", "%s %(x)s"]


@dataclass
class Store:
    name: str
    skew: int  # its wall clock's offset, ms
    last_hlc: int = 0
    seen: dict[str, int] = field(default_factory=dict)  # origin -> contiguous prefix learnt
    open: list[dict[str, Any]] = field(default_factory=list)  # its PENDING reservations
    made: int = 0


class Workload:
    def __init__(
        self, seed: int, *, directory: bool = False, moves: bool = False, clashes: float = 0.3
    ) -> None:
        """``clashes``: with ``moves``, how often a new transfer takes the id of
        another store's it has not heard of, when there is one."""
        self.rng = random.Random(seed)
        rng = self.rng
        self.stores = [Store(f"s{i}", rng.choice([0, 0, 3, -2])) for i in range(rng.randint(2, 4))]
        self.skus = ["SKU-A", "SKU-B", "SKU-C"][: rng.randint(1, 3)]
        self.log: dict[str, list[dict[str, Any]]] = {s.name: [] for s in self.stores}
        self.wall = BASE_MS
        self.directory = directory
        self.moves = hq_moves.Moves(self, clash_rate=clashes) if moves else None

    # ------------------------------------------------------------- clocks
    def _learn(self, me: Store) -> None:
        """Learn a prefix of some peer's events (the HLC moves past them)."""
        peer = self.rng.choice(self.stores)
        events = self.log[peer.name]
        have = me.seen.get(peer.name, 0)
        upto = self.rng.randint(have, len(events))
        for event in events[have:upto]:
            me.last_hlc = max(me.last_hlc, event["hlc"])
        me.seen[peer.name] = upto

    def _stamp(self, me: Store) -> int:
        physical = (self.wall + me.skew) << 16
        me.last_hlc = max(physical, me.last_hlc + 1)
        return me.last_hlc

    def _basis(self, me: Store) -> dict[str, int]:
        return {o: n for o, n in me.seen.items() if n}

    # ------------------------------------------------------------- writes
    def _movement(self, me: Store, kind: str | None = None) -> dict[str, Any]:
        rng = self.rng
        kind = kind or rng.choices(["receive", "sell", "adjust", "count"], [3, 4, 1, 2])[0]
        qty = {
            "receive": rng.randint(1, 9),
            "sell": -rng.randint(1, 4),
            "adjust": rng.randint(-3, 3),
            "count": rng.randint(0, 12),
        }[kind]
        store = me.name if rng.random() < 0.7 else rng.choice(self.stores).name
        mv = {
            "sku": rng.choice(self.skus),
            "storeId": store,
            "kind": kind,
            "quantity": qty,
            "reason": rng.choice(TEXTS),
            "actor": rng.choice(["", "clerk"]),
        }
        if kind == "count" and rng.random() < 0.8:
            mv["basis"] = self._basis(me)
        return mv

    def _batch(self, me: Store) -> dict[str, Any]:
        """An import's chunk: 1..5 movements, each (sku, store) once."""
        movements: dict[tuple[str, str], dict[str, Any]] = {}
        for _ in range(self.rng.randint(1, 5)):
            mv = self._movement(me, self.rng.choice(["count", "count", "receive", "adjust"]))
            movements.setdefault((mv["sku"], mv["storeId"]), mv)
        return {"movements": list(movements.values())}

    def _product(self, me: Store) -> dict[str, Any]:
        rng = self.rng
        sku = rng.choice(self.skus)
        pools: dict[str, list[Any]] = {
            "id": [product_id_for(sku), product_id_for(sku), "custom-id"],
            "name": ["Widget", "Gadget", rng.choice(TEXTS)],
            "description": ["", "long"],
            "category": ["tools", "toys"],
            "price": [1, 2.5, 2.5, 19.99, 0.1 + 0.2],
            "active": [True, False],
        }
        names = rng.sample(sorted(pools), rng.randint(0, 3))
        fields = {n: rng.choice(pools[n]) for n in names}
        return {"sku": sku, "fields": fields, "basis": self._basis(me)}

    def _reservation(self, me: Store) -> dict[str, Any]:
        rng = self.rng
        if me.open and rng.random() < 0.6:
            r = me.open.pop(rng.randrange(len(me.open)))
            status = rng.choice(["CONFIRMED", "CONFIRMED", "CANCELLED", "EXPIRED"])
            r = {**r, "status": status, "updatedAtMs": self.wall}
            data: dict[str, Any] = {"reservation": r}
            if status == "CONFIRMED":
                r["orderId"] = rng.choice([None, "order-1"])
                data["movement"] = {
                    "sku": r["sku"],
                    "storeId": me.name,
                    "kind": "sell",
                    "quantity": -r["quantity"],
                    "reason": "reservation",
                    "actor": "",
                }
            return data
        me.made += 1
        r = {
            "id": f"{me.name}-r{me.made}",
            "sku": rng.choice(self.skus),
            "storeId": me.name,
            "quantity": rng.randint(1, 3),
            "customerId": rng.choice([None, "cust"]),
            "status": "PENDING",
            "orderId": None,
            "expiresAtMs": self.wall + 600_000,
            "createdAtMs": self.wall,
            "updatedAtMs": self.wall,
        }
        me.open.append(r)
        return {"reservation": r}

    def _directory(self, me: Store) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        store = rng.choice(self.stores).name
        if rng.random() < 0.5:
            safety = rng.choice([None, 0, 2, 5])
            data = {
                "sku": rng.choice(self.skus),
                "storeId": store,
                "fields": {"safetyStock": safety},
            }
            return "stock.settings", {**data, "basis": self._basis(me)}
        pools: dict[str, list[Any]] = {
            "name": ["North", "South", None],
            "address": ["1 Main St", None],
            "lat": [40.5, 41, None],
            "lon": [-3.25, 2.0],
            "priority": [1, 2, 100],
            "online": [True, False, None],
            "safetyStock": [0, 3, None],
        }
        names = rng.sample(sorted(pools), rng.randint(0, 3))
        fields = {n: rng.choice(pools[n]) for n in names}
        return "store.upserted", {"storeId": store, "fields": fields, "basis": self._basis(me)}

    def step(self) -> dict[str, Any]:
        rng = self.rng
        me = rng.choice(self.stores)
        self.wall += rng.choice([0, 0, 1, 7])
        while rng.random() < 0.5:
            self._learn(me)
        weights = [6, 2, 2, 3 if self.directory else 0, 6 if self.moves else 0, 2]
        kinds = ["movement", "product", "reservation", "directory", "moves", "batch"]
        what = rng.choices(kinds, weights)[0]
        if self.moves is not None and what == "moves":
            type_, data = self.moves.write(me)
        elif what == "movement":
            type_, data = "stock.movement", self._movement(me)
        elif what == "batch":
            type_, data = "stock.batch", self._batch(me)
        elif what == "product":
            type_, data = "product.upserted", self._product(me)
        elif what == "reservation":
            type_, data = "reservation.changed", self._reservation(me)
        else:
            type_, data = self._directory(me)
        seq = len(self.log[me.name]) + 1
        event = envelope(me.name, seq, self._stamp(me), type_, data)
        self.log[me.name].append(event)
        me.seen[me.name] = seq
        return event

    def events(self, n: int) -> list[dict[str, Any]]:
        return [self.step() for _ in range(n)]


def arrivals(
    rng: random.Random, events: list[dict[str, Any]], *, repeat: float = 0.2
) -> list[list[dict[str, Any]]]:
    """``events`` shuffled, some repeated, split into batches of random sizes."""
    stream = events + [rng.choice(events) for _ in range(int(len(events) * repeat))]
    rng.shuffle(stream)
    batches: list[list[dict[str, Any]]] = []
    while stream:
        size = rng.choice([1, 2, 5, 10, 25, 60])
        batches.append(stream[:size])
        stream = stream[size:]
    return batches
