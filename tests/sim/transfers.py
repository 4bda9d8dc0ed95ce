"""Stock that moves and stock that runs low, in the simulation: transfers
between stores, reorder points, and the everyday writes that cross them.

Drawn from a random stream of its own (the seed's other draws stay those of
before it existed). Its products (``T-1``, ``T-2``) are its own too: created
at every store at the start, opened with a count at each store by that store,
and after that moved only by their owner (receipts from suppliers, sales,
adjustments) and by transfers, never counted again. Their units are what the
conservation invariant adds up (``transfer_checks``); the catalogue's other
products go on transfers as well, among counts and reservations.

Each transfer follows one of a few stories:
- ``plain``: created (shipped at once or later), received in one to three
  parts (everything pending, part of it with damaged units, more than was
  shipped), now and then cancelled too;
- ``offline``: the destination is cut off as the truck leaves and receives it
  by id with the packing slip's lines before the shipment's events arrive;
- ``race``: one side is cut off, and the origin cancels while the destination
  receives;
- ``draft``: created, never shipped, maybe cancelled;
- ``misdelivered``: the truck stops at a third store, cut off, whose clerk
  receives it by the slip; the destination may receive it too.
Any step may be asked at another store than its side's (forwarded), and be
retried with the same transfer or receipt id. Partitions are ops here
(``cut``), so a shortened failing run keeps the ones it needs.

Reorder points are set (``inv stock reorder``) by any store, for any (SKU,
store) row: most rows get one point, a few a second one later.
"""

from __future__ import annotations

import random
from typing import Any

from agent.errors import InventoryError
from agent.inputs import (
    ReceiptLine,
    ReceiptRequest,
    ReservationRequest,
    StockChange,
    TransferLine,
    TransferRequest,
)
from tests.sim.workload import Op, Outcome

KINDS = frozenset({"tcreate", "tship", "tcancel", "treceive", "reorder", "tstock", "sale"})
STEPS = frozenset({"tcreate", "tship", "tcancel", "treceive"})
FIRST_MS = 4_000  # after every opening count has committed (a busy writer waits up to 3 s)
OFF = 0.25  # the share of seeds without this workload
STORIES = ("plain", "plain", "plain", "offline", "race", "race", "draft", "misdelivered")


def transfer_skus(rng: random.Random) -> list[str]:
    return [f"T-{k}" for k in range(1, rng.randint(1, 2) + 1)]


def draw(
    rng: random.Random, stores: list[str], skus: list[str], duration_ms: int
) -> tuple[list[Op], list[str]]:
    """The ops, and the products whose units are conserved. Swarm: off for
    a quarter of the seeds, which keep the other workloads' runs to themselves."""
    tskus = transfer_skus(rng)
    if rng.random() < OFF:
        return [], tskus
    ops = [
        Op(0, s, "product", {"sku": t, "fields": {"name": t, "price": 2.0}})
        for s in stores
        for t in tskus
    ]
    ops += [
        Op(1, s, "tstock", {"sku": t, "op": "set", "qty": rng.randint(5, 30), "key": f"o-{s}-{t}"})
        for s in stores
        for t in tskus
    ]
    last = max(FIRST_MS + 1, duration_ms * 3 // 4)
    for i in range(rng.randint(1, 5)):  # the owners' own writes on their rows
        at, store, sku = rng.randint(FIRST_MS, duration_ms), rng.choice(stores), rng.choice(tskus)
        if rng.random() < 0.35:
            ops.append(
                Op(at, store, "sale", {"sku": sku, "qty": rng.randint(1, 3), "rid": f"s{i}"})
            )
        else:
            move = rng.choice(["add", "subtract"])
            args = {"sku": sku, "op": move, "qty": rng.randint(1, 6), "key": f"k{i}"}
            ops.append(Op(at, store, "tstock", args))
    ops += _reorder_points(rng, stores, tskus + skus, duration_ms)
    pool = tskus * 3 + skus
    for i in range(rng.randint(1, 4)):
        ops += _story(rng, f"t{i}", stores, pool, rng.randint(FIRST_MS, last), duration_ms)
    ops.sort(key=lambda o: o.at_ms)
    return ops, tskus


def _reorder_points(
    rng: random.Random, stores: list[str], skus: list[str], duration_ms: int
) -> list[Op]:
    rows = [(sku, s) for sku in skus for s in stores]
    ops = []
    for sku, store in rng.sample(rows, min(len(rows), rng.randint(1, 4))):
        admin = store if rng.random() < 0.6 else rng.choice(stores)
        at = rng.randint(0, duration_ms // 2)
        ops.append(Op(at, admin, "reorder", {"sku": sku, "store": store, "point": _point(rng)}))
        if rng.random() < 0.2:  # changed (or taken away) later
            point = _point(rng) if rng.random() < 0.6 else None
            later = rng.randint(at + 1, duration_ms)
            ops.append(
                Op(
                    later,
                    rng.choice(stores),
                    "reorder",
                    {"sku": sku, "store": store, "point": point},
                )
            )
    return ops


def _point(rng: random.Random) -> int:
    return rng.randint(3, 14)


def _story(
    rng: random.Random, tid: str, stores: list[str], pool: list[str], at: int, end: int
) -> list[Op]:
    origin, dest = rng.sample(stores, 2)
    story = rng.choice(STORIES)
    lines = [(sku, rng.randint(1, 6)) for sku in sorted(set(rng.sample(pool, rng.randint(1, 2))))]
    ship_now = story in ("offline", "race", "misdelivered") or (
        story == "plain" and rng.random() < 0.5
    )
    create = {"tid": tid, "from": origin, "to": dest, "lines": lines, "ship": ship_now}
    ops = [Op(at, _asker(rng, stores, origin), "tcreate", create)]
    if rng.random() < 0.15:  # the client did not hear back, and asks again
        ops.append(Op(min(end, at + rng.randint(1, 5000)), ops[0].store, "tcreate", create))
    step = {"tid": tid, "from": origin, "to": dest, "slip": lines}
    shipped_at = at
    if not ship_now and story != "draft" and rng.random() < 0.9:
        shipped_at = min(end, at + rng.randint(200, 8000))
        ops.append(Op(shipped_at, _asker(rng, stores, origin), "tship", step))
    receipt = {**step, "slip": lines}
    if story == "plain":
        t = shipped_at
        for j in range(rng.randint(1, 3)):
            t = min(end, t + rng.randint(300, 12_000))
            ops += _receipt(rng, stores, {**receipt, "rid": f"{tid}-r{j}"}, t, end)
        if rng.random() < 0.25:
            later = min(end, shipped_at + rng.randint(500, 20_000))
            ops.append(Op(later, _asker(rng, stores, origin), "tcancel", step))
    elif story == "offline":  # the truck leaves as the destination drops off the network
        arrives = rng.randint(100, 2500)
        ops.append(_cut(at - 100, dest, arrives + rng.randint(500, 4000)))
        args = {**receipt, "rid": f"{tid}-r0", "lines": _lines(rng, lines, "slip")}
        ops.append(Op(min(end, at + arrives), dest, "treceive", args))
    elif story == "race":  # cancel and receipt, each side cut off from the other
        race = min(end, at + rng.randint(500, 6000))
        ops.append(_cut(race - 100, rng.choice([dest, origin]), rng.randint(1_700, 5_000)))
        ops.append(Op(min(end, race + rng.randint(0, 1500)), origin, "tcancel", step))
        kind = rng.choice(["slip", "part"])
        args = {**receipt, "rid": f"{tid}-r0", "lines": _lines(rng, lines, kind)}
        ops.append(Op(min(end, race + rng.randint(0, 1500)), dest, "treceive", args))
    elif story == "misdelivered":
        wrong = rng.choice([s for s in stores if s not in (origin, dest)] or [dest])
        arrives = rng.randint(100, 2500)
        ops.append(_cut(at - 100, wrong, arrives + rng.randint(500, 4000)))
        args = {**receipt, "rid": f"{tid}-w", "lines": _lines(rng, lines, "slip")}
        ops.append(Op(min(end, at + arrives), wrong, "treceive", args))
        if rng.random() < 0.5:
            args = {**receipt, "rid": f"{tid}-r0", "lines": _lines(rng, lines, "slip")}
            ops.append(Op(min(end, at + rng.randint(2000, 15_000)), dest, "treceive", args))
    elif rng.random() < 0.6:  # a draft, cancelled
        ops.append(
            Op(
                min(end, at + rng.randint(100, 10_000)),
                _asker(rng, stores, origin),
                "tcancel",
                step,
            )
        )
    return ops


def _receipt(
    rng: random.Random, stores: list[str], args: dict[str, Any], at: int, end: int
) -> list[Op]:
    kind = rng.choice(["all", "all", "part", "part", "damaged", "over"])
    args = {**args, "lines": _lines(rng, args["slip"], kind)}
    asker = _asker(rng, stores, args["to"])
    ops = [Op(at, asker, "treceive", args)]
    if rng.random() < 0.2:  # retried with the same receipt id, here or at the destination
        ops.append(
            Op(
                min(end, at + rng.randint(100, 10_000)),
                rng.choice([asker, args["to"]]),
                "treceive",
                args,
            )
        )
    return ops


def _lines(
    rng: random.Random, slip: list[tuple[str, int]], kind: str
) -> list[tuple[str, int, int]] | None:
    """(sku, received, damaged) of a receipt; None: everything pending."""
    if kind == "all":
        return None
    out = []
    for sku, qty in slip:
        if kind == "slip":
            damaged = rng.randint(0, 1) if qty > 1 else 0
            out.append((sku, qty - damaged, damaged))
        elif kind == "over":
            out.append((sku, qty + rng.randint(1, 3), 0))
        elif kind == "damaged":
            out.append((sku, rng.randint(0, qty - 1), rng.randint(1, 2)))
        elif rng.random() < 0.8:
            out.append((sku, rng.randint(1, qty), 0))
    return out or [(slip[0][0], 1, 0)]


def _asker(rng: random.Random, stores: list[str], side: str) -> str:
    """The side's store mostly; now and then another one (the step is forwarded)."""
    return side if rng.random() < 0.75 else rng.choice(stores)


def _cut(at: int, store: str, length: int) -> Op:
    return Op(max(0, at), store, "cut", {"way": "both", "ms": length})


# --------------------------------------------------------------- execution
async def execute(service: Any, op: Op) -> Outcome:
    """Run a transfer workload op against a store's service, as its API would."""
    a = op.args
    try:
        if op.kind == "tcreate":
            request = TransferRequest(
                to_store=a["to"],
                lines=tuple(TransferLine(sku, qty) for sku, qty in a["lines"]),
                transfer_id=a["tid"],
                from_store=a["from"],
                ship=a["ship"],
                actor="sim",
            )
            return Outcome(op, True, *await service.create_transfer(request))
        if op.kind == "tship":
            return Outcome(op, True, *await service.ship_transfer(a["tid"], "sim"))
        if op.kind == "tcancel":
            return Outcome(op, True, *await service.cancel_transfer(a["tid"], "sim"))
        if op.kind == "treceive":
            return await _receive(service, op)
        if op.kind == "reorder":  # inv stock reorder
            body = await service.set_reorder(a["sku"], a["store"], {"reorderPoint": a["point"]})
            return Outcome(op, True, 200, body)
        if op.kind == "tstock":
            change = StockChange(
                ref=a["sku"],
                store_id=op.store,
                operation=a["op"],
                quantity=a["qty"],
                reason="sim",
                actor="sim",
                idempotency_key=a["key"],
            )
            return Outcome(op, True, 202, await service.update_stock(change))
        if op.kind == "sale":
            hold = ReservationRequest(
                ref=a["sku"], quantity=a["qty"], reservation_id=a["rid"], store_id=op.store, ttl=60
            )
            await service.reserve(hold)
            return Outcome(op, True, *await service.confirm(a["rid"], None, "sim"))
        raise ValueError(op.kind)
    except InventoryError as exc:
        return Outcome(op, False, exc.status, exc.body(), exc.message)


async def _receive(service: Any, op: Op) -> Outcome:
    a = op.args
    lines = a["lines"]
    request = ReceiptRequest(
        transfer_id=a["tid"],
        lines=None if lines is None else tuple(ReceiptLine(s, r, d) for s, r, d in lines),
        receipt_id=a["rid"],
        from_store=a["from"],  # as the packing slip names it
        actor="sim",
    )
    return Outcome(op, True, *await service.receive_transfer(request))
