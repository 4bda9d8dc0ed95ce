"""The moving parts of a differential workload (``tests/hq_workload.py`` with
``moves=True``): transfers between the workload's stores, reorder settings
and low-stock alerts, written as the agents' commands write them
(``agent/ledger/commands/transfers.py``), each store from what it has seen.

- the origin creates a transfer (a DRAFT, or shipped at once), ships it,
  cancels it: a DRAFT simply, a shipped one with a claim per line it sees
  pending (the receipts it has learnt of), never one it sees received in
  full;
- the destination receives what has physically left the origin: what it
  sees pending once it has learnt of the shipment, else the packing slip
  (a receipt before the shipment's events); partly, in full, more than
  shipped, some of it damaged, now and then a SKU the transfer does not
  list. Skewed clocks put some receipts before their shipment in stamp
  order, and some cancels after a receipt they have not seen (a race);
- anyone writes reorder settings (per-field, like safety stock); a store
  raises alerts of its own stock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.hq_workload import Store, Workload

NOTES = ["", "weekly", "é ü"]


@dataclass
class Transfer:
    tid: str
    origin: str
    dest: str
    lines: dict[str, int]
    note: str
    created_ms: int
    state: str = "DRAFT"  # the origin's own
    shipped_ms: int | None = None
    cancelled_ms: int | None = None


@dataclass
class Moves:
    w: Workload
    transfers: dict[str, Transfer] = field(default_factory=dict)
    made: int = 0

    def write(self, me: Store) -> tuple[str, dict[str, Any]]:
        rng = self.w.rng
        what = rng.choices(["transfer", "receive", "reorder", "alert"], [5, 4, 1, 1])[0]
        if what == "receive":
            found = self._receive(me)
            if found is not None:
                return "transfer.received", found
        if what == "reorder":
            return "stock.reorder", self._reorder(me)
        if what == "alert":
            return "alert.raised", self._alert(me)
        return "transfer.changed", self._origin_step(me)

    # ----------------------------------------------------------- the origin
    def _origin_step(self, me: Store) -> dict[str, Any]:
        rng = self.w.rng
        mine = [
            t for t in self.transfers.values() if t.origin == me.name and t.state != "CANCELLED"
        ]
        if mine and rng.random() < 0.6:
            t = rng.choice(mine)
            if t.state == "DRAFT" and rng.random() < 0.8:
                t.state, t.shipped_ms = "SHIPPED", self.w.wall
                return {"transfer": self._state(t)}
            claims = self._claims(me, t) if t.state == "SHIPPED" else None
            if claims == []:  # received in full, as far as the origin knows: no cancel
                return self._create(me)
            t.state, t.cancelled_ms = "CANCELLED", self.w.wall
            data: dict[str, Any] = {"transfer": self._state(t)}
            if claims:
                data["claims"] = claims
            return data
        return self._create(me)

    def _create(self, me: Store) -> dict[str, Any]:
        rng, w = self.w.rng, self.w
        self.made += 1
        dest = rng.choice([s.name for s in w.stores if s.name != me.name])
        skus = rng.sample(w.skus, rng.randint(1, len(w.skus)))
        t = Transfer(
            f"{me.name}-t{self.made}",
            me.name,
            dest,
            {sku: rng.randint(1, 5) for sku in skus},
            rng.choice(NOTES),
            w.wall,
        )
        if rng.random() < 0.5:
            t.state, t.shipped_ms = "SHIPPED", w.wall
        self.transfers[t.tid] = t
        return {"transfer": self._state(t)}

    def _state(self, t: Transfer) -> dict[str, Any]:
        return {
            "id": t.tid,
            "fromStoreId": t.origin,
            "toStoreId": t.dest,
            "note": t.note,
            "state": t.state,
            "lines": [{"sku": sku, "quantity": q} for sku, q in t.lines.items()],
            "actor": self.w.rng.choice(["", "clerk"]),
            "createdAtMs": t.created_ms,
            "shippedAtMs": t.shipped_ms,
            "cancelledAtMs": t.cancelled_ms,
            "updatedAtMs": self.w.wall,
        }

    def _claims(self, me: Store, t: Transfer) -> list[dict[str, Any]]:
        """What the origin sees pending, line by line (the receipts it has learnt of)."""
        got = self._received(t, self.w.log[t.dest][: me.seen.get(t.dest, 0)])
        return [
            {"sku": sku, "quantity": q - got.get(sku, 0)}
            for sku, q in t.lines.items()
            if q - got.get(sku, 0) > 0
        ]

    @staticmethod
    def _received(t: Transfer, events: list[dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in events:
            r = e["data"].get("receipt")
            if e["type"] == "transfer.received" and r["transferId"] == t.tid:
                for line in r["lines"]:
                    out[line["sku"]] = out.get(line["sku"], 0) + line["received"] + line["damaged"]
        return out

    # ------------------------------------------------------ the destination
    def _receive(self, me: Store) -> dict[str, Any] | None:
        rng, w = self.w.rng, self.w
        gone = [
            t
            for t in self.transfers.values()
            if t.dest == me.name
            and t.shipped_ms is not None
            and sum(self._received(t, w.log[me.name]).values()) < sum(t.lines.values()) + 2
        ]
        if not gone:
            return None
        t = rng.choice(gone)
        known = any(
            e["type"] == "transfer.changed"
            and e["data"]["transfer"]["id"] == t.tid
            and e["data"]["transfer"]["shippedAtMs"] is not None
            for e in w.log[t.origin][: me.seen.get(t.origin, 0)]
        )
        mine = self._received(t, w.log[me.name]) if known else {}
        lines = []
        for sku in rng.sample(sorted(t.lines), rng.randint(1, len(t.lines))):
            base = t.lines[sku] - mine.get(sku, 0)
            lines.append(self._line(sku, base))
        stray = [s for s in w.skus if s not in t.lines]
        if stray and rng.random() < 0.1:
            lines.append(self._line(rng.choice(stray), 0))
        self.made += 1
        receipt = {
            "id": f"{me.name}-rc{self.made}",
            "transferId": t.tid,
            "fromStoreId": t.origin,
            "toStoreId": me.name,
            "lines": lines,
            "actor": rng.choice(["", "clerk"]),
            "receivedAtMs": w.wall,
        }
        return {"receipt": receipt}

    def _line(self, sku: str, pending: int) -> dict[str, Any]:
        rng = self.w.rng
        how = rng.choice(["all", "all", "part", "over"]) if pending > 0 else "over"
        total = {
            "all": pending,
            "part": rng.randint(1, max(1, pending - 1)),
            "over": max(pending, 0) + rng.randint(1, 2),
        }[how]
        damaged = rng.choice([0, 0, 0, min(total, rng.randint(1, 2))])
        return {"sku": sku, "received": total - damaged, "damaged": damaged}

    # ------------------------------------------------ reorder points, alerts
    def _reorder(self, me: Store) -> dict[str, Any]:
        rng, w = self.w.rng, self.w
        pools: dict[str, list[Any]] = {
            "reorderPoint": [None, 0, 2, 5],
            "maxStock": [None, 10, 20],
            "reorderQty": [None, 1, 6],
        }
        names = rng.sample(sorted(pools), rng.randint(0, 3))
        return {
            "sku": rng.choice(w.skus),
            "storeId": rng.choice(w.stores).name,
            "fields": {n: rng.choice(pools[n]) for n in names},
            "basis": w._basis(me),
        }

    def _alert(self, me: Store) -> dict[str, Any]:
        rng, w = self.w.rng, self.w
        before = rng.randint(-2, 9)
        alert = {
            "kind": rng.choice(["low", "restored"]),
            "sku": rng.choice(w.skus),
            "storeId": me.name,
            "before": before,
            "after": before + rng.randint(-5, 5),
            "reorderPoint": rng.choice([None, 0, 3]),
            "cause": rng.choice([None, f"{me.name}:{len(w.log[me.name])}"]),
            "raisedAtMs": w.wall,
        }
        return {"alert": alert}
