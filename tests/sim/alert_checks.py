"""The invariants of low-stock alerts.

As the run goes, at every commit of a store: each of its own stock rows with
a reorder point that the commit changed (its point unchanged by it) has, as
its newest alert, the side it is on: ``low`` while available is at or below
the point, else ``restored`` or none. Nothing can then cross unreported.
At quiescence, over every alert any store raised:
- only the store that holds the stock raised it;
- per (SKU, store), in stamp order, they alternate low / restored, starting
  with low (one per crossing, never one per write);
- a low alert's ``after`` is at or below its reorder point, a restored one's
  above it (or the point was taken away);
- for a row whose point was set once: every alert but the first has its
  ``before`` on the other side, and carries that point;
- the write it names as its cause is one of the owner's ledger's events.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from tests.sim.node import Node
from tests.sim.transfer_record import Record


class AlertChecker:
    def __init__(self) -> None:
        # (store, sku) -> (stock row version, reorder point) at the last commit looked at
        self.seen: dict[tuple[str, str], tuple[int | None, int | None]] = {}

    def committed(self, node: Node, skus: set[str]) -> list[str]:
        """``skus``: this store's rows (stock or settings) the commit changed."""
        conn, me = node.disk.conn, node.store_id
        marks = ",".join("?" * len(skus))
        points = dict(
            conn.execute(
                "SELECT sku, reorder_point FROM stock_settings WHERE store_id = ? "
                f"AND sku IN ({marks})",
                (me, *skus),
            )
        )
        if not points:
            return []
        rows = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT sku, version, on_hand - reserved FROM stock WHERE store_id = ? "
                f"AND sku IN ({marks})",
                (me, *skus),
            )
        }
        problems = []
        for sku, point in points.items():
            version, available = rows.get(sku, (None, 0))
            before = self.seen.get((me, sku), (None, None))
            self.seen[(me, sku)] = (version, point)
            if point is None or before[1] != point or version is None or version == before[0]:
                continue  # not changed, or its point changed in this very commit
            last = _last_kind(conn, sku, me)
            if (available <= point) != (last == "low"):
                problems.append(
                    f"{me}: {sku} available {available}, reorder point {point}, but its "
                    f"newest alert is {last!r}: a crossing went unreported"
                )
        return problems

    def restarted(self, node: Node) -> None:
        """What a power loss took back: judged afresh from the next commit on."""
        for key in [k for k in self.seen if k[0] == node.store_id]:
            del self.seen[key]

    def quiescent(self, nodes: list[Node], record: Record) -> list[str]:
        by_id = {n.store_id: n for n in nodes}
        rows: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        problems = []
        for n in nodes:
            for _, hlc, body in n.events_of_mine():
                e = json.loads(body)
                if e["type"] != "alert.raised":
                    continue
                a = e["data"]["alert"]
                if a["storeId"] != e["origin"]:
                    problems.append(
                        f"alert {e['id']} of {a['storeId']}'s stock raised by {e['origin']}"
                    )
                rows[(a["sku"], a["storeId"])].append((hlc, a))
        for (sku, store), alerts in sorted(rows.items()):
            alerts.sort(key=lambda x: x[0])
            points = record.points.get((sku, store), [])
            once = points[0] if len(points) == 1 else "changed"
            for i, (_, a) in enumerate(alerts):
                where = (
                    f"alert {i + 1} of {sku}@{store} ({a['kind']}, {a['before']} -> "
                    f"{a['after']}, point {a['reorderPoint']})"
                )
                problems += _judge(where, a, i, alerts[i - 1][1] if i else None, once)
                if not _caused_by_an_event(by_id.get(store), a.get("cause")):
                    problems.append(
                        f"{where}: its cause {a.get('cause')!r} is no event of the owner's"
                    )
        return problems


def _judge(
    where: str, a: dict[str, Any], i: int, previous: dict[str, Any] | None, once: Any
) -> list[str]:
    point, kind = a["reorderPoint"], a["kind"]
    expected = "low" if previous is None or previous["kind"] == "restored" else "restored"
    if kind != expected:
        after = previous["kind"] if previous else "nothing"
        return [f"{where}: follows {after}; alerts alternate low/restored, starting with low"]
    if kind == "low" and (point is None or a["after"] > point):
        return [f"{where}: low, yet above its point"]
    if kind == "restored" and point is not None and a["after"] <= point:
        return [f"{where}: restored, yet at or below its point"]
    if once == "changed" or previous is None:
        return []
    if point != once:
        return [f"{where}: the row's only reorder point was {once}"]
    crossed = a["before"] > point if kind == "low" else a["before"] <= point
    return [] if crossed else [f"{where}: before and after on the same side of the point"]


def _caused_by_an_event(owner: Node | None, cause: str | None) -> bool:
    if owner is None or not cause:
        return False
    origin, _, seq = cause.rpartition(":")
    return (
        owner.disk.conn.execute(
            "SELECT 1 FROM events WHERE origin = ? AND seq = ?", (origin, int(seq))
        ).fetchone()
        is not None
    )


def _last_kind(conn: Any, sku: str, store: str) -> str | None:
    row = conn.execute(
        "SELECT kind FROM alerts WHERE sku = ? AND store_id = ? ORDER BY hlc DESC LIMIT 1",
        (sku, store),
    ).fetchone()
    return None if row is None else str(row[0])
