"""Transfers in the reference state (``reference``): each transfer's lines and
the movements its steps make, folded from the events of its two single
writers, independently of the engine. From the origin's ``transfer.changed``
events: its newest state by stamp, each line's quantity, what was shipped
(every state from shipping on carries the lines as shipped) and the cancel's
claims. From the destination's ``transfer.received`` events: every receipt,
counted once by its id at its store, summed per line; a transfer no origin has
written takes its sides from its earliest receipt by (hlc, store, receipt id).
The movements: shipping takes each line from the origin's row at the ship
event's stamp; a receipt puts received + damaged into the destination's row
and takes the damaged out again; a cancel gives back to the origin, at its own
stamp, what is left of its claim once every receipt is counted: min(claim,
max(0, shipped − received − damaged)). A receipt beats a cancel of the same
units, whatever order they were written or arrive in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Stamp = tuple[int, str]
Moved = dict[tuple[str, str], list[tuple[Stamp, str, dict[str, Any]]]]


@dataclass
class LineRef:
    quantity: int = 0  # asked for (0: a SKU only the receipts name)
    shipped: int = 0
    claim: int = 0
    received: int = 0
    damaged: int = 0

    @property
    def open(self) -> int:
        """Shipped and neither received nor damaged (yet)."""
        return max(0, self.shipped - self.received - self.damaged)

    @property
    def cancelled(self) -> int:
        return min(self.claim, self.open)

    @property
    def pending(self) -> int:
        return self.open - self.cancelled


@dataclass
class TransferRef:
    origin: str
    dest: str
    state: str | None = None  # the origin's newest (None: only receipts seen)
    stamp: Stamp | None = None
    lines: dict[str, LineRef] = field(default_factory=dict)
    cancel: tuple[Stamp, str] | None = None  # the cancel event's stamp and id
    # (receiving store, receipt id) -> its event's id: an id is unique per store
    receipts: dict[tuple[str, str], str] = field(default_factory=dict)
    doubled: list[str] = field(default_factory=list)  # receipt ids two events carry
    known_from: bool = False  # the origin's word on its sides (else the earliest receipt's)
    earliest: tuple[int, str, str] | None = None  # (hlc, store, receipt id) of the earliest receipt


def fold_transfers(events: list[dict[str, Any]]) -> tuple[dict[str, TransferRef], Moved]:
    refs: dict[str, TransferRef] = {}
    moved: Moved = defaultdict(list)
    for e in events:
        stamp: Stamp = (e["hlc"], e["origin"])
        if e["type"] == "transfer.changed":
            _origin_state(refs, moved, e["data"], stamp, e["id"])
        elif e["type"] == "transfer.received":
            _receipt(refs, moved, e["data"]["receipt"], stamp, e["id"])
    for ref in refs.values():
        if ref.cancel is None:
            continue
        stamp, eid = ref.cancel
        for sku, line in ref.lines.items():
            if line.claim:
                mv = _mv(sku, ref.origin, "transfer_return", line.cancelled)
                moved[(sku, ref.origin)].append((stamp, f"{eid}/{sku}", mv))
    return refs, moved


def _origin_state(
    refs: dict[str, TransferRef], moved: Moved, data: dict[str, Any], stamp: Stamp, eid: str
) -> None:
    t = data["transfer"]
    ref = refs.setdefault(t["id"], TransferRef(t["fromStoreId"], t["toStoreId"]))
    ref.origin, ref.dest = t["fromStoreId"], t["toStoreId"]  # the origin's word over a slip's
    ref.known_from = True
    if ref.stamp is None or stamp > ref.stamp:
        ref.state, ref.stamp = t["state"], stamp
    for line in t["lines"]:
        ln = ref.lines.setdefault(line["sku"], LineRef())
        ln.quantity = int(line["quantity"])
        if t.get("shippedAtMs") is not None:
            ln.shipped = ln.quantity
        if t["state"] == "SHIPPED":
            mv = _mv(line["sku"], ref.origin, "transfer_out", -ln.quantity)
            moved[(line["sku"], ref.origin)].append((stamp, f"{eid}/{line['sku']}", mv))
    for claim in data.get("claims") or []:
        ref.lines.setdefault(claim["sku"], LineRef()).claim = int(claim["quantity"])
        ref.cancel = (stamp, eid)


def _receipt(
    refs: dict[str, TransferRef], moved: Moved, r: dict[str, Any], stamp: Stamp, eid: str
) -> None:
    ref = refs.setdefault(r["transferId"], TransferRef(r["fromStoreId"], r["toStoreId"]))
    first = ref.receipts.setdefault((r["toStoreId"], r["id"]), eid)
    if first != eid:
        ref.doubled.append(r["id"])
        return
    mark = (stamp[0], r["toStoreId"], r["id"])
    if not ref.known_from and (ref.earliest is None or mark < ref.earliest):
        # known from receipts only: its sides are the earliest receipt's
        ref.earliest = mark
        ref.origin, ref.dest = r["fromStoreId"], r["toStoreId"]
    for line in r["lines"]:
        sku, got, broken = line["sku"], int(line["received"]), int(line["damaged"])
        ln = ref.lines.setdefault(sku, LineRef())
        ln.received += got
        ln.damaged += broken
        store = r["toStoreId"]
        moved[(sku, store)].append(
            (stamp, f"{eid}/{sku}", _mv(sku, store, "transfer_in", got + broken))
        )
        if broken:
            mv = _mv(sku, store, "damaged", -broken)
            moved[(sku, store)].append((stamp, f"{eid}/{sku}#damaged", mv))


def _mv(sku: str, store: str, kind: str, quantity: int) -> dict[str, Any]:
    return {"sku": sku, "storeId": store, "kind": kind, "quantity": quantity}
