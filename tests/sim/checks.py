"""The invariants: checked as the run goes, and once more at quiescence.

Safety, on every step that could break it:
- a store never lets its own reservations, nor what it ships, take its
  available below zero;
- a store's HLC never goes backwards (restarts and power losses included),
  and a write is stamped after every event the store had applied before it;
- an event id ``origin:seq`` never names two different events (seqs are
  gap-free per origin);
- every write acknowledged to a client is in its store's ledger, after any
  crash or power loss;
- a store's stream checkpoint never passes a peer's message it has not
  applied (or quarantined): resuming there after a crash skips nothing.
At quiescence (faults off, everything healed and restarted, bus drained):
- every store's digests are equal, and equal to the reference state folded
  independently from the events the stores committed (``reference``);
- reserved equals the pending reservations in every ledger;
- every acknowledged write is present everywhere;
- every write that lost a merge to one that had not seen it is listed as a
  conflict, in every ledger.
Routed reservations have invariants of their own (``routing_checks``), and
so have transfers and alerts (``transfer_checks``, ``alert_checks``).
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from typing import Any

from agent.ledger import replication
from agent.sync.consumer import resume_at
from tests.sim.actor_checks import actor_problems
from tests.sim.node import Node, event_key
from tests.sim.reference import fold
from tests.sim.routing_checks import RoutingChecker
from tests.sim.transfer_checks import TransferChecker
from tests.sim.workload import Outcome


class Violation(AssertionError):
    pass


class Checker:
    def __init__(self) -> None:
        self.registry: dict[str, str] = {}  # event id -> what it says
        self.recorded: dict[str, dict[int, tuple[int, str]]] = {}  # store -> seq -> (hlc, key)
        self.acked: dict[str, int] = {}  # store -> every seq up to this one was acknowledged
        self.left: set[str] = set()  # event ids that left their machine (reached the hub)
        self.steps = 0
        self.routing = RoutingChecker(self.fail)  # routed reservations (routing_checks)
        self.transfers = TransferChecker()  # transfers and alerts (transfer_checks)
        self.checkpoints: dict[str, int] = {}  # store -> its checkpoint verified up to

    def fail(self, what: str) -> None:
        raise Violation(what)

    def committed(self, node: Node) -> None:
        """A write of ``node`` committed (called inside the agent's write)."""
        self.routing.committed(node)
        self.transfers.committed(node)
        self._checkpoint_covered(node)

    def _checkpoint_covered(self, node: Node) -> None:
        """Every kept stream message up to the store's checkpoint, but its
        own, is in its ledger: the checkpoint moved with what it applied."""
        position = node.read(replication.stream_position, node.config.stream)
        seq = position.seq if position else 0
        hub = node.hub
        if position is not None and seq:
            kept = hub.message_at(seq)
            id_at = kept.msg_id if kept else None
            if not resume_at(
                position, created=position.created, last_seq=hub.last_seq, id_at_seq=id_at
            ):
                # a batch fetched before the hub lost its newest messages
                # (numbered over since): never resumed from, read again from 0
                seq = 0
        verified = self.checkpoints.get(node.store_id, 0)
        # only what the hub holds now is verified: a checkpoint past its last
        # message is checked again once the messages up to it exist
        self.checkpoints[node.store_id] = min(seq, hub.last_seq)
        if seq <= verified:
            return  # unchanged, or set back (read again from there)
        messages = hub.messages
        first = bisect.bisect_right(messages, verified, key=lambda m: m.seq)
        own = node.store_id + ":"
        conn = node.disk.conn
        for m in messages[first:]:
            if m.seq > seq:
                break
            if m.msg_id.startswith(own):
                continue
            origin, _, n = m.msg_id.rpartition(":")
            if (
                not conn.execute(
                    "SELECT 1 FROM events WHERE origin = ? AND seq = ?", (origin, int(n))
                ).fetchone()
                and not conn.execute(
                    "SELECT 1 FROM quarantine WHERE event_id = ?", (m.msg_id,)
                ).fetchone()
            ):
                self.fail(
                    f"{node.store_id}: stream checkpoint {seq} passes message {m.seq} "
                    f"({m.msg_id}), never applied there"
                )

    def check(self) -> None:
        """What was found inside an agent's write, raised at the next step."""
        self.routing.check()
        if self.transfers.broken:
            self.fail(self.transfers.broken[0])

    # ---------------------------------------------------------- as it goes
    def event_seen(self, event_id: str, key: str, where: str) -> None:
        known = self.registry.setdefault(event_id, key)
        if known != key:
            self.fail(f"event id {event_id} names two different events ({where})")

    def hub_stored(self, msg_id: str, data: bytes) -> None:
        self.left.add(msg_id)
        e = json.loads(data)
        self.event_seen(msg_id, event_key(json.dumps(e)), "in the stream")

    @staticmethod
    def applied_floor(node: Node) -> int:
        """The newest stamp of any peer's event this store holds: a write it
        makes from now on must be stamped after it."""
        return int(
            node.disk.conn.execute(
                "SELECT coalesce(max(hlc), 0) FROM events WHERE origin != ?", (node.store_id,)
            ).fetchone()[0]
        )

    def scan(self, node: Node, floor: int = 0) -> None:
        """Check the store's own events written since the last look; ``floor``
        is ``applied_floor`` from before the write that made them."""
        self.steps += 1
        mine = self.recorded.setdefault(node.store_id, {})
        top = max(mine, default=0)
        last_hlc = mine[top][0] if top else 0
        rows = node.disk.conn.execute(
            "SELECT seq, hlc, body FROM events WHERE origin = ? AND seq > ? ORDER BY seq",
            (node.store_id, top),
        ).fetchall()
        for seq, hlc, body in rows:
            if seq != top + 1:
                self.fail(f"{node.store_id}: seq {seq} follows {top} (a gap)")
            if hlc <= last_hlc:
                self.fail(f"{node.store_id}: HLC went backwards at seq {seq}: {hlc} <= {last_hlc}")
            if hlc <= floor:
                self.fail(
                    f"{node.store_id}: seq {seq} stamped {hlc}, not after an event it had "
                    f"applied ({floor}): the HLC did not advance on receive"
                )
            key = event_key(body)
            self.event_seen(f"{node.store_id}:{seq}", key, f"ledger of {node.store_id}")
            mine[seq] = (hlc, key)
            top, last_hlc = seq, hlc

    def acknowledged(self, node: Node, floor: int = 0) -> None:
        """A client was told its write at ``node`` is done."""
        self.scan(node, floor)
        self.acked[node.store_id] = max(self.recorded.get(node.store_id, {}), default=0)

    def restarted(self, node: Node) -> None:
        """After a crash or power loss: every acknowledged write is still there."""
        self.routing.restarted(node)
        self.transfers.restarted(node)
        mine = self.recorded.get(node.store_id, {})
        have = {seq: event_key(body) for seq, _, body in node.events_of_mine()}
        for seq in range(1, self.acked.get(node.store_id, 0) + 1):
            if have.get(seq) != mine[seq][1]:
                self.fail(f"{node.store_id}: acknowledged write {node.store_id}:{seq} lost")
        # what was committed but not acknowledged may be gone (never after FULL);
        # forget it, so the next write with that seq is judged afresh
        for seq in [s for s in mine if s not in have]:
            if f"{node.store_id}:{seq}" in self.left:
                continue  # it left the machine: a new event there would be a clash, caught above
            del mine[seq]
            self.registry.pop(f"{node.store_id}:{seq}", None)

    def reservation_granted(self, node: Node, sku: str) -> None:
        row = node.disk.conn.execute(
            "SELECT on_hand, reserved FROM stock WHERE sku = ? AND store_id = ?",
            (sku, node.store_id),
        ).fetchone()
        if row is not None and row[0] - row[1] < 0:
            self.fail(f"{node.store_id}: a reservation of {sku} left available {row[0] - row[1]}")

    # ---------------------------------------------------------- quiescence
    def quiescent(
        self, nodes: list[Node], outcomes: list[Outcome], conserved: list[str]
    ) -> Counter[str]:
        """``outcomes``: what every client was told; ``conserved``: the
        products whose units the chain must conserve. Returns a tally of what
        the transfer workload did."""
        for n in nodes:
            self.scan(n)
        digests = {n.store_id: _digests(n) for n in nodes}
        first = next(iter(digests.values()))
        for store, d in digests.items():
            if d != first:
                self.fail(
                    f"digests differ at quiescence: {nodes[0].store_id} {first} vs {store} {d}"
                )
        events = [json.loads(body) for n in nodes for _, _, body in n.events_of_mine()]
        ref = fold(events)
        # first: what transfers break says more than the stock rows it leaves wrong
        problems, tally = self.transfers.quiescent(nodes, outcomes, conserved, ref.transfers)
        if problems:
            self.fail(problems[0])
        for n in nodes:
            _matches_reference(self, n, ref)
            _reserved_is_pending(self, n)
            for store, upto in self.acked.items():
                have = n.disk.conn.execute(
                    "SELECT count(*) FROM events WHERE origin = ? AND seq <= ?", (store, upto)
                ).fetchone()[0]
                if have != upto:
                    self.fail(
                        f"{n.store_id} lacks acknowledged writes of {store} (has {have}/{upto})"
                    )
            losers = {r[0] for r in n.disk.conn.execute("SELECT loser FROM conflicts")}
            missing = ref.must_conflict - losers
            if missing:
                losers_missing = sorted(missing)[:3]
                self.fail(
                    f"{n.store_id}: concurrent losers not listed as conflicts: {losers_missing}"
                )
        for problem in actor_problems(nodes, outcomes)[:1]:
            self.fail(problem)
        self.routing.quiescent(nodes)
        return tally


def _digests(n: Node) -> dict[str, str]:
    from agent.ledger import queries

    return queries.digests(n.disk.conn)


def _matches_reference(c: Checker, n: Node, ref: Any) -> None:
    conn = n.disk.conn
    for sku, fields in ref.products.items():
        row = conn.execute("SELECT * FROM products WHERE sku = ?", (sku,)).fetchone()
        if row is None:
            c.fail(f"{n.store_id}: product {sku} missing")
        for name, value in fields.items():
            column = {"name": "name", "price": "price"}.get(name)
            if column and row[column] != value:
                c.fail(f"{n.store_id}: {sku}.{name} = {row[column]!r}, the rules say {value!r}")
    for (sku, store), (on_hand, reserved) in ref.stock.items():
        row = conn.execute(
            "SELECT on_hand, reserved FROM stock WHERE sku = ? AND store_id = ?", (sku, store)
        ).fetchone()
        got = (row[0], row[1]) if row else (0, 0)
        if got != (on_hand, reserved):
            c.fail(
                f"{n.store_id}: stock {sku}@{store} = {got}, the rules say {(on_hand, reserved)}"
            )
    for rid, (_, _, _, status) in ref.reservations.items():
        row = conn.execute("SELECT status FROM reservations WHERE id = ?", (rid,)).fetchone()
        if row is None or row[0] != status:
            c.fail(f"{n.store_id}: reservation {rid} is {row[0] if row else None}, not {status}")


def _reserved_is_pending(c: Checker, n: Node) -> None:
    for sku, store, reserved, pending in n.disk.conn.execute(
        "SELECT s.sku, s.store_id, s.reserved, coalesce((SELECT sum(quantity) FROM reservations r "
        "WHERE r.sku = s.sku AND r.store_id = s.store_id AND r.status = 'PENDING'), 0) FROM stock s"
    ):
        if reserved != pending:
            c.fail(f"{n.store_id}: {sku}@{store} reserved {reserved} but {pending} pending")
