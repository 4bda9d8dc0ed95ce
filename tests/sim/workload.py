"""What the clerks, the tills and the cron jobs do: drawn from the seed.

Every operation goes to one store's agent through its real service, as the
API would call it: product edits, stock add / subtract / count (at the store
itself or for another store's row: movements are anyone's), small imports,
reservations with a TTL (for this store's stock, or forwarded to another's),
confirm and cancel (at the owner or forwarded), and expiry as time passes.
Each is done by one of a few clerks (``CLERKS``): who did what is checked
too (``actor_checks``). ``Op`` is plain data, so a failing run can be cut
down to fewer of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from agent.errors import InventoryError
from agent.inputs import ReservationRequest, RoutingRequest, StockChange

# Taken by the op's position, not drawn: a seed's workload stays the one it
# was before the clerks had names (the regression seeds keep their meaning).
CLERKS = ("ana", "ben", "chloe")


@dataclass(frozen=True)
class Op:
    at_ms: int
    store: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a client was told."""

    op: Op
    ok: bool
    status: int | None = None
    body: Any = None
    error: str | None = None


def draw(rng: random.Random, stores: list[str], skus: list[str], duration_ms: int) -> list[Op]:
    n = rng.randint(40, 140)
    ops = []
    rids: list[tuple[str, str]] = []  # (reservation id, owner)
    for i in range(n):
        at = rng.randint(0, duration_ms)
        store = rng.choice(stores)
        clerk = CLERKS[i % len(CLERKS)]
        roll = rng.random()
        sku = rng.choice(skus)
        if roll < 0.08:
            fields = {"name": f"{sku} {rng.choice(['red', 'blue', 'big'])}"}
            if rng.random() < 0.5:
                fields["price"] = rng.choice([1.5, 2.0, 9.99])
            ops.append(Op(at, store, "product", {"sku": sku, "fields": fields}))
        elif roll < 0.45:
            row_store = store if rng.random() < 0.7 else rng.choice(stores)
            operation = rng.choice(["add", "add", "subtract", "set"])
            if operation == "subtract" and i % 2:
                operation = "sell"  # inv sell: a subtraction of its own kind
            qty = rng.randint(0 if operation == "set" else 1, 12)
            ops.append(
                Op(
                    at,
                    store,
                    "stock",
                    {"sku": sku, "store": row_store, "op": operation, "qty": qty, "actor": clerk},
                )
            )
        elif roll < 0.5:
            rows = [
                {"line": j + 2, "sku": rng.choice(skus), "quantity": rng.randint(0, 20)}
                for j in range(rng.randint(1, 3))
            ]
            ops.append(Op(at, store, "import", {"rows": rows}))
        elif roll < 0.78:
            owner = store if rng.random() < 0.6 else rng.choice(stores)
            rid = f"r{i}"
            rids.append((rid, owner))
            ops.append(
                Op(
                    at,
                    store,
                    "reserve",
                    {
                        "rid": rid,
                        "sku": sku,
                        "store": owner,
                        "qty": rng.randint(1, 4),
                        "ttl": rng.choice([5, 30, 60]),
                        "actor": clerk,
                    },
                )
            )
        elif rids:
            rid, owner = rng.choice(rids)
            asker = owner if rng.random() < 0.7 else rng.choice(stores)
            kind = "confirm" if rng.random() < 0.6 else "cancel"
            ops.append(Op(at, asker, kind, {"rid": rid, "owner": owner, "actor": clerk}))
    ops.sort(key=lambda o: o.at_ms)
    return ops


def products_first(stores: list[str], skus: list[str]) -> list[Op]:
    """The catalogue and opening stock, so reservations have something to take."""
    ops = [
        Op(0, stores[0], "product", {"sku": s, "fields": {"name": s, "price": 1.0}}) for s in skus
    ]
    ops += [
        Op(1, st, "stock", {"sku": s, "store": st, "op": "set", "qty": 10})
        for st in stores
        for s in skus
    ]
    return ops


def routing_request(a: dict[str, Any]) -> RoutingRequest:
    return RoutingRequest(
        ref=a["sku"],
        quantity=a["qty"],
        request_id=a["rid"],
        ttl=a["ttl"],
        strategy=a["strategy"],
        stores=tuple(a["stores"]) if a.get("stores") else None,
        near=a.get("near"),
    )


async def execute(service: Any, op: Op, router: Any = None) -> Outcome:
    """Run ``op`` against a store's service (``router``: its router), as its
    API would."""
    a = op.args
    try:
        if op.kind == "product":
            try:
                body = await service.update_product(a["sku"], dict(a["fields"]))
            except InventoryError as exc:
                if exc.status != 404:
                    raise
                body = await service.create_product({"sku": a["sku"], **a["fields"]})
            return Outcome(op, True, 200, body)
        if op.kind == "stock":
            change = StockChange(
                ref=a["sku"],
                store_id=a["store"],
                operation=a["op"],
                quantity=a["qty"],
                reason="sim",
                actor=a.get("actor", "sim"),
                idempotency_key=f"{op.store}-{op.at_ms}-{a['sku']}",
            )
            return Outcome(op, True, 202, await service.update_stock(change))
        if op.kind == "import":
            rows = [dict(r) for r in a["rows"]]
            return Outcome(op, True, 200, await service.import_stock(rows, False, False, "sim"))
        if op.kind == "reserve":
            req = ReservationRequest(
                ref=a["sku"],
                quantity=a["qty"],
                reservation_id=a["rid"],
                store_id=a["store"],
                ttl=a["ttl"],
                actor=a.get("actor", "sim"),
            )
            status, body = await service.reserve(req)
            return Outcome(op, True, status, body)
        if op.kind == "store":  # the directory: inv store set
            return Outcome(op, True, 200, await service.set_store(a["store"], dict(a["fields"])))
        if op.kind == "safety":  # inv stock safety
            body = await service.set_safety_stock(a["sku"], a["store"], a["qty"])
            return Outcome(op, True, 200, body)
        if op.kind == "route":
            status, body = await router.reserve(routing_request(a))
            return Outcome(op, True, status, body)
        # a routed id is confirmed or cancelled without naming its owner:
        # the agent finds it (its replica, or the id itself)
        owner = a["owner"] if a.get("hint", True) else None
        if op.kind == "confirm":
            status, body = await service.confirm(a["rid"], None, a.get("actor", "sim"), owner)
            return Outcome(op, True, status, body)
        if op.kind == "cancel":
            status, body = await service.cancel(a["rid"], a.get("actor", "sim"), owner)
            return Outcome(op, True, status, body)
        raise ValueError(op.kind)
    except InventoryError as exc:
        return Outcome(op, False, exc.status, exc.body(), exc.message)
