"""The invariants of routed reservations (``storeId: "any"``).

As the run goes:
- a routed grant never takes safety stock, nor stock at a store that does not
  fulfil online orders, nor oversells: judged at the owner as the grant
  commits (what the owner's ledger holds at that moment);
- a retry of a routed request (same id, same router) that is answered with a
  reservation names the same reservation as the first answer did.
At quiescence (everything healed, every cleanup settled):
- each routed request holds PENDING or CONFIRMED stock at one store at most;
- of a finished routing, no attempt but the granted one ever held stock
  without being cancelled, except one its owner had already expired when the
  cleanup got there (and said so); every cleanup has settled, and its verdict
  agrees with the owner's ledger; the granted reservation is at its owner.

Routings left unfinished by a crash, and never retried, are judged by the
first rule only: nobody was told of them, and what they hold expires.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.sim.node import Node
from tests.sim.routed import safety_of


class RoutingChecker:
    def __init__(self, fail: Callable[[str], None]) -> None:
        self.fail = fail
        self.cursor: dict[str, int] = {}  # store -> the last own seq looked at for grants
        self.answers: dict[tuple[str, str], tuple[str, str]] = {}  # (router, rid) -> grant
        # found inside an agent's write (raised there, the agent's own error
        # handling could swallow it): raised by ``check`` at the next step
        self.broken: list[str] = []

    def check(self) -> None:
        if self.broken:
            self.fail(self.broken[0])

    # ---------------------------------------------------------- as it goes
    def committed(self, node: Node) -> None:
        """A write of ``node`` committed: judge each online grant it made."""
        conn = node.disk.conn
        last = self.cursor.get(node.store_id, 0)
        rows = conn.execute(
            "SELECT seq, body FROM events WHERE origin = ? AND seq > ? "
            "AND type = 'reservation.changed' ORDER BY seq",
            (node.store_id, last),
        ).fetchall()
        for seq, body in rows:
            self.cursor[node.store_id] = seq
            r = json.loads(body)["data"]["reservation"]
            if r["status"] != "PENDING" or r.get("channel") != "online":
                continue
            safety, online = safety_of(conn, r["sku"], r["storeId"])
            on_hand, reserved = conn.execute(
                "SELECT on_hand, reserved FROM stock WHERE sku = ? AND store_id = ?",
                (r["sku"], r["storeId"]),
            ).fetchone()
            where = f"{node.store_id}: routed reservation {r['id']} of {r['quantity']} {r['sku']}"
            if not online:
                self.broken.append(f"{where} granted by a store that does not fulfil online orders")
            if on_hand - reserved < safety:
                self.broken.append(
                    f"{where} took safety stock: available {on_hand - reserved} after it, "
                    f"safety stock {safety}"
                )

    def restarted(self, node: Node) -> None:
        top = node.disk.conn.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE origin = ?", (node.store_id,)
        ).fetchone()[0]
        self.cursor[node.store_id] = min(self.cursor.get(node.store_id, 0), int(top))

    def answered(self, router: str, rid: str, body: dict[str, Any]) -> None:
        """A routed request was answered with a reservation."""
        grant = (body["reservationId"], body["storeId"])
        first = self.answers.setdefault((router, rid), grant)
        if first != grant:
            self.fail(
                f"a retry of routed request {rid} at {router} returned {grant}, the first "
                f"answer was {first}"
            )

    def granted(self, router: str, rid: str) -> tuple[str, str] | None:
        """The (reservation id, owner) a routed request was granted, if known."""
        return self.answers.get((router, rid))

    # ---------------------------------------------------------- quiescence
    def quiescent(self, nodes: list[Node]) -> None:
        by_id = {n.store_id: n for n in nodes}
        for router in nodes:
            for record in _records(router):
                self._judge(router.store_id, record, by_id)

    def _judge(self, router: str, record: dict[str, Any], nodes: dict[str, Node]) -> None:
        rid = record["request_id"]
        held = []
        for a in record["attempts"]:
            owner = nodes.get(a["store_id"])
            row = _reservation(owner, a["reservation_id"]) if owner else None
            if row is not None and row["status"] in ("PENDING", "CONFIRMED"):
                held.append(a["store_id"])
            a["row"] = row
        if len(held) > 1:
            self.fail(f"routed request {rid} (router {router}) holds stock at {held}")
        if record["status"] == "routing":
            return
        for a in record["attempts"]:
            self._judge_attempt(router, record, a)
        if record["status"] == "granted":
            mine = [
                a for a in record["attempts"] if a["reservation_id"] == record["reservation_id"]
            ]
            if not mine or mine[0]["row"] is None:
                self.fail(
                    f"routed request {rid}: its granted {record['reservation_id']} is missing"
                )

    def _judge_attempt(self, router: str, record: dict[str, Any], a: dict[str, Any]) -> None:
        rid, row, cleanup = record["request_id"], a["row"], a["cleanup"]
        where = f"routed request {rid} (router {router}), attempt at {a['store_id']}"
        if cleanup == "pending":
            self.fail(f"{where}: its cleanup never settled")
        if a["reservation_id"] == record["reservation_id"] or row is None:
            return
        status = row["status"]
        if status == "CANCELLED":
            return
        if status == "EXPIRED" and cleanup == "expired":
            return
        self.fail(
            f"{where}: {a['reservation_id']} is {status} there, outcome {a['outcome']}, "
            f"cleanup {cleanup}: an ask that is not the grant held stock"
        )


def _records(node: Node) -> list[dict[str, Any]]:
    conn = node.disk.conn
    out = []
    for row in conn.execute("SELECT * FROM routings ORDER BY request_id").fetchall():
        record = dict(row)
        record["attempts"] = [
            dict(a)
            for a in conn.execute(
                "SELECT * FROM routing_attempts WHERE request_id = ? ORDER BY position",
                (row["request_id"],),
            )
        ]
        out.append(record)
    return out


def _reservation(node: Node, rid: str) -> dict[str, Any] | None:
    row = node.disk.conn.execute("SELECT * FROM reservations WHERE id = ?", (rid,)).fetchone()
    return dict(row) if row else None
