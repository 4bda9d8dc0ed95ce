"""What the clients of the transfer workload were told: the record its
invariants are judged against, built from the answers (``Outcome``s), never
from the ledger's movements.

Each step's answer is ``ok``; ``unknown`` (a forwarded step that timed out:
it may have been applied); ``unavailable`` (a 503 that says nothing was
done: the owner unreachable, not connected, past its deadline) or
``refused`` (a 4xx), both certainly not applied; or ``not asked`` (the agent
was down, or the step was never sent). An unknown outcome that no later
answer settles is settled at quiescence the way its client would settle it,
by looking the transfer up (``inv transfer show``): ``Resolver``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.sim.workload import Outcome

Lines = list[tuple[str, int, int]]  # (sku, received, damaged)
# A receipt is its receiving store's, as the ledger keys it: the same receipt
# id sent to two stores that had not heard of each other's is two receipts
# (each store's clerk was told theirs was recorded, and each store's stock
# moved), so the record keys receipts by (store, receipt id).
ReceiptKey = tuple[str, str]


def verdict(o: Outcome) -> str:
    if o.ok:
        return "ok"
    if o.status is None:
        return "not asked"
    if o.status == 503:
        unknown = isinstance(o.body, dict) and o.body.get("outcome") == "unknown"
        return "unknown" if unknown else "unavailable"
    return "refused"


@dataclass
class Receipt:
    told: Lines | None = None  # the lines an acknowledged answer showed
    maybe: bool = False  # an attempt's outcome is unknown


@dataclass
class Transfer:
    origin: str
    dest: str
    lines: dict[str, int]
    created: bool = False  # an answer said it exists at its origin
    create_maybe: bool = False
    shipped: bool = False  # an answer of the origin's showed it shipped
    ship_maybe: bool = False
    receipts: dict[ReceiptKey, Receipt] = field(default_factory=dict)
    maybe: set[str] = field(default_factory=set)  # receipt ids an attempt left unknown
    asked: set[str] = field(default_factory=set)  # every receipt id a client sent


@dataclass
class Record:
    transfers: dict[str, Transfer] = field(default_factory=dict)
    openings: dict[tuple[str, str], int] = field(default_factory=dict)  # acknowledged counts
    deltas: Counter[str] = field(default_factory=Counter)  # sku -> supplier receipts - sales
    # every reorder point written for a row, in the order the answers came
    points: dict[tuple[str, str], list[int | None]] = field(default_factory=dict)
    tally: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # answers that contradict each other

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Record:
        rec = cls()
        for o in outcomes:
            rec._add(o)
        return rec

    def _add(self, o: Outcome) -> None:
        a, kind, v = o.op.args, o.op.kind, verdict(o)
        if kind == "tstock" and v == "ok":
            if a["op"] == "set":
                self.openings[(a["sku"], o.op.store)] = a["qty"]
            else:
                self.deltas[a["sku"]] += a["qty"] if a["op"] == "add" else -a["qty"]
        elif kind == "sale" and v == "ok":
            self.deltas[a["sku"]] -= a["qty"]
        elif kind == "reorder" and v == "ok":
            self.points.setdefault((a["sku"], a["store"]), []).append(a["point"])
        if kind not in ("tcreate", "tship", "tcancel", "treceive"):
            return
        self.tally[f"step {v}"] += 1
        t = self.transfers.setdefault(a["tid"], Transfer(a["from"], a["to"], {}))
        if kind == "tcreate":
            t.lines = dict(a["lines"])
            t.created |= v == "ok"
            t.create_maybe |= v == "unknown"
        if kind == "tship" or (kind == "tcreate" and a["ship"]):
            t.ship_maybe |= v == "unknown"
        if v == "ok" and kind != "treceive" and o.body.get("shippedAt") is not None:
            t.shipped = True
        if kind == "treceive":
            self._receipt(t, o, v)

    def _receipt(self, t: Transfer, o: Outcome, v: str) -> None:
        rid = o.op.args["rid"]
        if v == "not asked" and o.error == "not known here (yet)":
            return
        t.asked.add(rid)
        if v == "unknown":
            t.maybe.add(rid)
        if v != "ok":
            return
        if o.status == 201 and o.body.get("shippedAt") is None:
            self.tally["receipts before the shipment"] += 1
        shown = [x for x in o.body.get("receipts", []) if x["receiptId"] == rid]
        if not shown:
            self.problems.append(f"receipt {rid} acknowledged, but not in its answer")
            return
        # the answering store's own receipt under the id when it shows several
        # (another store's, replicated, beside it)
        mine = [x for x in shown if x["storeId"] == o.op.store] or shown[:1]
        told = [(ln["sku"], ln["received"], ln["damaged"]) for ln in mine[0]["lines"]]
        asked = o.op.args["lines"]
        if asked is not None and sorted(told) != sorted(tuple(x) for x in asked):
            self.problems.append(f"receipt {rid} asked for {asked}, recorded {told}")
        r = t.receipts.setdefault((mine[0]["storeId"], rid), Receipt())
        if r.told is not None and r.told != told:
            self.problems.append(f"receipt {rid} answered {r.told}, then {told}")
        r.told = told


Lookup = Callable[[str], dict[str, Any] | None]  # transfer id -> its view at one side


class Resolver:
    """Settles what the answers left open, as a client would: by looking the
    transfer up at the side that knows (the origin for shipping, the
    destination for its receipts), everything healed and replicated."""

    def __init__(self, record: Record, at_origin: Lookup, at_dest: Lookup) -> None:
        self.record = record
        self.at_origin, self.at_dest = at_origin, at_dest

    def shipped(self, tid: str) -> bool:
        t = self.record.transfers[tid]
        if t.shipped or not t.ship_maybe:
            return t.shipped
        view = self.at_origin(tid)
        return view is not None and view["shippedAt"] is not None

    def receipts(self, tid: str) -> dict[ReceiptKey, Lines]:
        """Every receipt of the transfer that was recorded, by (store, id),
        with its lines."""
        t = self.record.transfers[tid]
        out = {key: r.told for key, r in t.receipts.items() if r.told is not None}
        if t.maybe:
            view = self.at_dest(tid) or {"receipts": []}
            for shown in view["receipts"]:
                key = (shown["storeId"], shown["receiptId"])
                if shown["receiptId"] in t.maybe and key not in out:
                    lines = shown["lines"]
                    out[key] = [(x["sku"], x["received"], x["damaged"]) for x in lines]
        return out


def summary(t: Counter[str]) -> str:
    """What the transfer workload exercised, over the seeds that passed."""
    steps = sum(v for k, v in t.items() if k.startswith("step "))
    told = ", ".join(f"{t[f'step {v}']} {v}" for v in ("ok", "refused", "unavailable", "unknown"))
    return (
        f"transfers: {steps} steps ({told}), {t['receipts']} receipts "
        f"({t['receipts before the shipment']} before the shipment), "
        f"{t['over-receipts']} over-receipts, {t['cancel-vs-receipt']} cancels cut by a "
        f"receipt, {t['alerts']} alerts"
    )
