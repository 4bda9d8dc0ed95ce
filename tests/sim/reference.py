"""The state the merge rules promise, folded independently of the engine.

From the set of every event the stores committed (each origin's own copy),
this computes what every converged replica must show: product fields by
per-field last-writer-wins on ``(hlc, origin)``; a stock row's on_hand as its
latest count plus the deltas ordered after it; each reservation's newest
state from its single writer; reserved as the sum of PENDING reservations.
It also names the writes that lost a merge to a write that had not seen
them, which every replica must list as conflicts. Comparing replicas only
with each other would miss a rule that is wrong everywhere alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.sim.reference_transfers import TransferRef, fold_transfers

Stamp = tuple[int, str]


def _covered(basis: dict[str, int] | None, event_id: str) -> bool:
    """``event_id``: an event's, or one of its movements' (``origin:seq/sku``,
    ``origin:seq/i`` of a batch)."""
    origin, _, rest = event_id.rpartition(":")
    return bool(basis) and basis.get(origin, 0) >= int(rest.split("/")[0])  # type: ignore[union-attr]


@dataclass
class Reference:
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    stock: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # on_hand, reserved
    reservations: dict[str, tuple[str, str, int, str]] = field(default_factory=dict)
    must_conflict: set[str] = field(default_factory=set)  # event ids of concurrent losers
    transfers: dict[str, TransferRef] = field(default_factory=dict)


def fold(events: list[dict[str, Any]]) -> Reference:
    ref = Reference()
    fields: dict[tuple[str, str], list[tuple[Stamp, str, Any, dict[str, int] | None]]] = (
        defaultdict(list)
    )
    movements: dict[tuple[str, str], list[tuple[Stamp, str, dict[str, Any]]]] = defaultdict(list)
    res_states: dict[str, tuple[int, dict[str, Any]]] = {}
    for e in events:
        stamp: Stamp = (e["hlc"], e["origin"])
        data = e["data"]
        if e["type"] == "product.upserted":
            for name, value in data["fields"].items():
                fields[(data["sku"], name)].append((stamp, e["id"], value, data.get("basis")))
        elif e["type"] == "stock.movement":
            movements[(data["sku"], data["storeId"])].append((stamp, e["id"], data))
        elif e["type"] == "stock.batch":  # each row a movement of the event's stamp
            for i, mv in enumerate(data["movements"]):
                movements[(mv["sku"], mv["storeId"])].append((stamp, f"{e['id']}/{i}", mv))
        elif e["type"] == "reservation.changed":
            r = data["reservation"]
            if r["id"] not in res_states or res_states[r["id"]][0] < e["hlc"]:
                res_states[r["id"]] = (e["hlc"], r)
            if data.get("movement"):
                mv = data["movement"]
                movements[(mv["sku"], mv["storeId"])].append((stamp, e["id"], mv))
    ref.transfers, moved = fold_transfers(events)
    for key, mvs in moved.items():
        movements[key] += mvs
    for (sku, name), writes in fields.items():
        writes.sort(key=lambda w: w[0])
        ref.products.setdefault(sku, {})[name] = writes[-1][2]
        ref.must_conflict |= _lost(
            [(s, eid, basis) for s, eid, _, basis in writes],
            lambda _: True,
            lambda i, j, w=writes, n=name: _norm(n, w[i][2]) == _norm(n, w[j][2]),
        )
    for key, mvs in movements.items():
        mvs.sort(key=lambda m: m[0])
        counts = [(s, eid, d) for s, eid, d in mvs if d["kind"] == "count"]
        on_hand = 0
        last_count = counts[-1] if counts else None
        for s, _, d in mvs:
            if last_count is None or s > last_count[0]:
                on_hand += int(d["quantity"]) if d["kind"] != "count" else 0
        if last_count is not None:
            on_hand += int(last_count[2]["quantity"])
            ref.must_conflict |= _lost(
                [(s, eid, d.get("basis")) for s, eid, d in mvs],
                lambda i, m=mvs: m[i][2]["kind"] == "count",
                lambda i, j, m=mvs: (
                    m[i][2]["kind"] == "count"
                    and int(m[i][2]["quantity"]) == int(m[j][2]["quantity"])
                ),
            )
        ref.stock[key] = (on_hand, 0)
    for rid, (_, r) in res_states.items():
        ref.reservations[rid] = (r["storeId"], r["sku"], int(r["quantity"]), r["status"])
        if r["status"] == "PENDING":
            k = (r["sku"], r["storeId"])
            on_hand, reserved = ref.stock.get(k, (0, 0))
            ref.stock[k] = (on_hand, reserved + int(r["quantity"]))
    return ref


def _norm(field: str, value: Any) -> Any:
    if field == "active":
        return bool(value)
    if field == "price":
        return float(value)
    return value


def _lost(
    writes: list[tuple[Stamp, str, dict[str, int] | None]], supersedes: Any, same: Any
) -> set[str]:
    """Writes (sorted by stamp) that a later superseding write replaced while
    no superseding write between them and the last one had seen them, and
    whose value no such write repeated (two writes that agree lose nothing)."""
    last = max((i for i in range(len(writes)) if supersedes(i)), default=None)
    if last is None:
        return set()
    lost = set()
    for i in range(last):
        eid = writes[i][1]
        if writes[i][0][1] == writes[last][0][1]:
            continue  # an origin always knows its own earlier writes
        later = [j for j in range(i + 1, last + 1) if supersedes(j)]
        seen = any(_covered(writes[j][2], eid) for j in later)
        if not seen and not any(same(i, j) for j in later):
            lost.add(eid)
    return lost
