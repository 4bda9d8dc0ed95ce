"""The invariants of transfers (and, through ``alert_checks``, of alerts).

At every commit of every store, on what that replica holds then:
- a shipment the store wrote left each line's available at zero or more;
- no line has a negative count; cancelled = min(claim, max(0, shipped −
  received − damaged)) and pending = max(0, shipped − received − damaged) −
  cancelled;
- the status is ``domain.transfer_status`` of the origin's state and the lines;
- a cancel's return movement (``cancel id/sku``) moves exactly ``cancelled``,
  and a claim the receipts cut down is listed as a ``cancel_vs_receipt``
  conflict.
At quiescence, at every replica:
- the lines and the origin's state are the reference's (``reference_transfers``),
  and no receipt id is carried by two events;
- what the clients were told (``transfer_record``) holds: received and
  damaged are the sums of the acknowledged receipts (and of those whose
  outcome was unknown that the destination has), every acknowledged receipt is
  there and no refused one; shipped is what the origin answered; a transfer
  whose every create was refused has no origin state;
- units received beyond what was shipped are listed as discrepancies (at one
  replica: the lines they are listed from are equal everywhere, by the digests);
- the transfer conflicts are listed alike everywhere, a receipt by a store
  that is not the destination its origin named among them;
- conservation: for each product only transfers and its owners' writes move
  (``transfers``), on_hand summed over the stores plus what is in transit
  equals its opening counts, plus supplier receipts, less sales and
  adjustments, less damaged units, plus units received beyond what was shipped.
  Products that are counted during the run are left out: a count makes a row's
  on_hand absolute, superseding whatever moved before it by its stamp, so
  their arithmetic depends on stamps no client is told.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from agent.domain import LineCounts, transfer_status
from agent.errors import NotFound
from agent.ledger import transfer_views
from tests.sim.alert_checks import AlertChecker
from tests.sim.node import Node
from tests.sim.reference_transfers import TransferRef
from tests.sim.transfer_record import Lines, ReceiptKey, Record, Resolver
from tests.sim.workload import Outcome

OVER = ("over_received", "received_before_shipped", "not_on_transfer")


# the tables the checks at every commit look at, and what a change to a row
# of each names: the transfer it is of, or the stock row (store, sku)
WATCHED = {
    "transfers": ("'t'", "{row}.id", "''"),
    "transfer_lines": ("'t'", "{row}.transfer_id", "''"),
    "stock": ("'s'", "{row}.store_id", "{row}.sku"),
    "stock_settings": ("'s'", "{row}.store_id", "{row}.sku"),
}


class TransferChecker:
    def __init__(self) -> None:
        self.alerts = AlertChecker()
        # found inside an agent's write: raised by ``Checker`` at the next step
        self.broken: list[str] = []
        self._watched: dict[str, Any] = {}  # store -> the connection watched
        self._cursor: dict[str, int] = {}  # store -> its last own event looked at for shipments
        # store -> what its writes changed since the last look: transfers, its own rows' skus
        self._changed: dict[str, tuple[set[str], set[str]]] = {}

    def committed(self, node: Node) -> None:
        """Judge what the commit changed (only that: most commits change no
        transfer, and no row of this store's with a reorder point)."""
        self._watch(node)
        transfers, skus = self._changed.pop(node.store_id, (set(), set()))
        if transfers:
            self.broken += line_problems(node.disk.conn, node.store_id, transfers)
            self.broken += self._shipped_within_available(node)
        if skus:
            self.broken += self.alerts.committed(node, skus)

    def _shipped_within_available(self, node: Node) -> list[str]:
        """Each shipment the store wrote since the last look left every line's
        available at zero or more (judged as it commits: its own transaction)."""
        conn, me = node.disk.conn, node.store_id
        rows = conn.execute(
            "SELECT seq, body FROM events WHERE origin = ? AND seq > ? "
            "AND type = 'transfer.changed' ORDER BY seq",
            (me, self._cursor.get(me, 0)),
        ).fetchall()
        problems = []
        for seq, body in rows:
            self._cursor[me] = seq
            t = json.loads(body)["data"]["transfer"]
            if t["state"] != "SHIPPED":
                continue
            for line in t["lines"]:
                on_hand, reserved = conn.execute(
                    "SELECT on_hand, reserved FROM stock WHERE sku = ? AND store_id = ?",
                    (line["sku"], me),
                ).fetchone()
                if on_hand - reserved < 0:
                    problems.append(
                        f"{me}: shipping {line['quantity']} {line['sku']} on transfer {t['id']} "
                        f"left available {on_hand - reserved}"
                    )
        return problems

    def restarted(self, node: Node) -> None:
        top = node.disk.conn.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE origin = ?", (node.store_id,)
        ).fetchone()[0]
        self._cursor[node.store_id] = min(self._cursor.get(node.store_id, 0), int(top))
        self.alerts.restarted(node)

    def _watch(self, node: Node) -> None:
        """Temporary triggers on the store's connection (they live in it only,
        nothing of them is in the ledger) note what a write changes. A new
        connection (a ledger file reopened) is judged whole once."""
        conn, store = node.disk.conn, node.store_id
        if self._watched.get(store) is conn:
            return
        self._watched[store] = conn
        every = {r[0] for r in conn.execute("SELECT id FROM transfers")}
        mine = {
            r[0]
            for r in conn.execute("SELECT sku FROM stock_settings WHERE store_id = ?", (store,))
        }
        self._changed[store] = (every, mine)

        def changed(kind: str, key: str, sku: str) -> None:
            transfers, skus = self._changed.setdefault(store, (set(), set()))
            if kind == "t":
                transfers.add(key)
            elif key == store:
                skus.add(sku)

        conn.create_function("sim_changed", 3, changed)
        for table, args in WATCHED.items():
            for op, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                call = ", ".join(a.format(row=row) for a in args)
                conn.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS sim_{table}_{op.lower()} AFTER {op} "
                    f"ON main.{table} BEGIN SELECT sim_changed({call}); END"
                )

    def quiescent(
        self,
        nodes: list[Node],
        outcomes: list[Outcome],
        conserved: list[str],
        refs: dict[str, TransferRef],
    ) -> tuple[list[str], Counter[str]]:
        record = Record.of(outcomes)
        by_id = {n.store_id: n for n in nodes}
        resolver = Resolver(
            record,
            lambda tid: _view(by_id.get(record.transfers[tid].origin), tid),
            lambda tid: _view(by_id.get(record.transfers[tid].dest), tid),
        )
        told = {tid: resolver.receipts(tid) for tid in record.transfers}
        problems = list(record.problems)
        for tid, ref in refs.items():
            problems += [f"receipt {rid} of {tid} carried by two events" for rid in ref.doubled]
        expected = _expected_totals(record, resolver, told)
        for n in nodes:
            problems += line_problems(n.disk.conn, n.store_id)
            problems += _against_reference(n, refs)
            problems += _against_record(n, record, resolver, told)
            problems += _conservation(n, expected, conserved)
        # the lines are the same everywhere (digests), so what they list is too
        problems += [p for tid in record.transfers for p in _over_listed(nodes[0], tid)]
        problems += _conflicts_alike(nodes)
        problems += self.alerts.quiescent(nodes, record)
        return problems, _tally(record, nodes[0], told)


def _view(node: Node | None, tid: str) -> dict[str, Any] | None:
    if node is None:
        return None
    try:
        return transfer_views.transfer_view(node.disk.conn, tid)
    except NotFound:
        return None


# ---------------------------------------------------------- at every commit
_LINES = (
    "SELECT t.id, t.state, t.status, t.cancel_id, l.sku, l.shipped, l.claim, l.received, "
    "l.damaged, l.cancelled, l.pending FROM transfers t "
    "JOIN transfer_lines l ON l.transfer_id = t.id {where} ORDER BY t.id, l.position"
)


def line_problems(conn: Any, where: str, only: set[str] | None = None) -> list[str]:
    """``only``: these transfers (None: every one)."""
    problems = []
    lines: dict[str, list[LineCounts]] = defaultdict(list)
    headers: dict[str, tuple[str | None, str]] = {}
    ids = sorted(only or ())
    sql = _LINES.format(where=f"WHERE t.id IN ({','.join('?' * len(ids))})" if only else "")
    for tid, state, status, cancel_id, sku, *counts in conn.execute(sql, ids).fetchall():
        shipped, claim, received, damaged, cancelled, pending = counts
        at = f"{where}: transfer {tid} line {sku}"
        if min(counts) < 0:
            problems.append(f"{at}: a negative count {counts}")
        is_open = max(0, shipped - received - damaged)
        if cancelled != min(claim, is_open) or pending != is_open - min(claim, is_open):
            problems.append(
                f"{at}: shipped {shipped}, claim {claim}, received {received}, damaged "
                f"{damaged}, but cancelled {cancelled} and pending {pending}"
            )
        lines[tid].append(LineCounts(shipped, claim, received, damaged))
        headers[tid] = (state, status)
        if cancel_id is None or not claim:
            continue
        ret = conn.execute(
            "SELECT kind, quantity FROM movements WHERE id = ?", (f"{cancel_id}/{sku}",)
        ).fetchone()
        if ret is None or tuple(ret) != ("transfer_return", cancelled):
            problems.append(
                f"{at}: cancelled {cancelled}, its return movement {ret and tuple(ret)}"
            )
        if (
            claim > cancelled
            and not conn.execute(
                "SELECT 1 FROM conflicts WHERE id = ? AND kind = 'cancel_vs_receipt'",
                (f"cancel_vs_receipt:{cancel_id}:{tid}:{sku}",),
            ).fetchone()
        ):
            problems.append(f"{at}: the cancel claimed {claim}, returned {cancelled}, not listed")
    for tid, (state, status) in headers.items():
        rule = transfer_status(state, lines[tid])
        if status != rule:
            problems.append(f"{where}: transfer {tid} is {status}, the rule says {rule}")
    return problems


# ---------------------------------------------------------- at quiescence
def _ledger_lines(conn: Any, tid: str) -> dict[str, tuple[int, ...]]:
    return {
        r[0]: tuple(r[1:])
        for r in conn.execute(
            "SELECT sku, quantity, shipped, claim, received, damaged FROM transfer_lines "
            "WHERE transfer_id = ?",
            (tid,),
        )
    }


def _against_reference(n: Node, refs: dict[str, TransferRef]) -> list[str]:
    conn, problems = n.disk.conn, []
    known = {r[0] for r in conn.execute("SELECT id FROM transfers")}
    for tid in sorted(known - set(refs)):
        problems.append(f"{n.store_id}: transfer {tid} that no event wrote")
    for tid, ref in refs.items():
        header = conn.execute(
            "SELECT from_store, to_store, state FROM transfers WHERE id = ?", (tid,)
        ).fetchone()
        want = {
            s: (x.quantity, x.shipped, x.claim, x.received, x.damaged) for s, x in ref.lines.items()
        }
        got = _ledger_lines(conn, tid)
        if header is None or tuple(header) != (ref.origin, ref.dest, ref.state) or got != want:
            problems.append(
                f"{n.store_id}: transfer {tid} is {header and tuple(header)} {got}, the rules "
                f"say {(ref.origin, ref.dest, ref.state)} {want}"
            )
    return problems


def _against_record(
    n: Node, record: Record, resolver: Resolver, told: dict[str, dict[ReceiptKey, Lines]]
) -> list[str]:
    conn, problems = n.disk.conn, []
    for tid, t in record.transfers.items():
        at = f"{n.store_id}: transfer {tid}"
        lines = _ledger_lines(conn, tid)
        state = conn.execute("SELECT state FROM transfers WHERE id = ?", (tid,)).fetchone()
        if not t.created and not t.create_maybe and state is not None and state[0] is not None:
            problems.append(f"{at}: every create was refused, yet its origin wrote it")
        shipped = resolver.shipped(tid)
        for sku, qty in t.lines.items():
            if sku in lines and lines[sku][1] != (qty if shipped else 0):
                problems.append(f"{at}: {sku} shipped {lines[sku][1]}, the answers say {shipped}")
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for receipt in told[tid].values():
            for sku, got, broken in receipt:
                sums[sku][0] += got
                sums[sku][1] += broken
        for sku in set(sums) | set(lines):
            have = list(lines[sku][3:]) if sku in lines else [0, 0]
            if have != sums[sku]:
                problems.append(
                    f"{at}: {sku} received/damaged {have}, its acknowledged receipts {sums[sku]}"
                )
        ids = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT store_id, id FROM transfer_receipts WHERE transfer_id = ?", (tid,)
            )
        }
        if ids != set(told[tid]):
            problems.append(
                f"{at}: receipts {sorted(ids)}, the clients were told of {sorted(told[tid])}"
            )
    return problems


TRANSFER_CONFLICTS = ("cancel_vs_receipt", "transfer_wrong_store", "transfer_id_clash")


def _conflicts_alike(nodes: list[Node]) -> list[str]:
    """Every replica lists the same transfer conflicts, and a receipt by a
    store that is not the destination is one of them."""
    problems, lists = [], {}
    marks = ",".join("?" * len(TRANSFER_CONFLICTS))
    for n in nodes:
        conn = n.disk.conn
        lists[n.store_id] = {
            r[0]
            for r in conn.execute(
                f"SELECT id FROM conflicts WHERE kind IN ({marks})", TRANSFER_CONFLICTS
            )
        }
        for rid, tid, store, eid in conn.execute(
            "SELECT r.id, r.transfer_id, r.store_id, r.event_id FROM transfer_receipts r "
            "JOIN transfers t ON t.id = r.transfer_id WHERE r.store_id != t.to_store "
            "AND t.state IS NOT NULL"  # the destination as its origin named it
        ).fetchall():
            if not conn.execute(
                "SELECT 1 FROM conflicts WHERE kind = 'transfer_wrong_store' AND loser = ?", (eid,)
            ).fetchone():
                problems.append(
                    f"{n.store_id}: receipt {rid} of {tid} by {store}, not its destination, "
                    "not listed"
                )
    first = next(iter(lists.values()))
    for store, ids in lists.items():
        if ids != first:
            problems.append(
                f"transfer conflicts differ: {nodes[0].store_id} lists {sorted(first - ids)} that "
                f"{store} does not, {store} {sorted(ids - first)} that {nodes[0].store_id} does not"
            )
    return problems


def _over_listed(n: Node, tid: str) -> list[str]:
    at = f"{n.store_id}: transfer {tid}"
    try:
        view = transfer_views.transfer_view(n.disk.conn, tid, receipts=False)
    except NotFound:
        return []  # never written (every step refused)
    listed = {(d["sku"], d["kind"]): d["quantity"] for d in view["discrepancies"]}
    problems = []
    for ln in view["lines"]:
        over = ln["received"] + ln["damaged"] - ln["shipped"]
        kinds = [k for k in OVER if (ln["sku"], k) in listed]
        if over > 0 and not kinds:
            problems.append(f"{at}: {ln['sku']} {over} more than shipped, no discrepancy listed")
        if kinds == ["over_received"] and listed[(ln["sku"], "over_received")] != over:
            problems.append(f"{at}: {ln['sku']} over-received {over}, listed {listed}")
    return problems


def _expected_totals(
    record: Record, resolver: Resolver, told: dict[str, dict[ReceiptKey, Lines]]
) -> Counter[str]:
    """Per product: what the chain must hold, on hand and in transit."""
    total: Counter[str] = Counter()
    for (sku, _), qty in record.openings.items():
        total[sku] += qty
    total.update(record.deltas)
    for tid, t in record.transfers.items():
        shipped = resolver.shipped(tid)
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for receipt in told[tid].values():
            for sku, got, broken in receipt:
                sums[sku][0] += got
                sums[sku][1] += broken
        for sku, (got, broken) in sums.items():
            sent = t.lines.get(sku, 0) if shipped else 0
            total[sku] += max(0, got + broken - sent) - broken
    return total


def _conservation(n: Node, expected: Counter[str], conserved: list[str]) -> list[str]:
    conn = n.disk.conn
    on_hand = dict(conn.execute("SELECT sku, sum(on_hand) FROM stock GROUP BY sku").fetchall())
    transit = dict(
        conn.execute("SELECT sku, sum(pending) FROM transfer_lines GROUP BY sku").fetchall()
    )
    problems = []
    for sku in conserved:
        have = (on_hand.get(sku) or 0) + (transit.get(sku) or 0)
        if have != expected[sku]:
            problems.append(
                f"{n.store_id}: {sku} on hand {on_hand.get(sku)} + in transit "
                f"{transit.get(sku)} = {have}; what the clients did says {expected[sku]}: "
                "units appeared or vanished in transfers"
            )
    return problems


def _tally(record: Record, n: Node, told: dict[str, dict[ReceiptKey, Lines]]) -> Counter[str]:
    tally = Counter(record.tally)
    conn = n.disk.conn
    tally["cancel-vs-receipt"] = conn.execute(
        "SELECT count(*) FROM conflicts WHERE kind = 'cancel_vs_receipt'"
    ).fetchone()[0]
    tally["over-receipts"] = conn.execute(
        "SELECT count(*) FROM transfer_lines WHERE received + damaged > shipped"
    ).fetchone()[0]
    tally["alerts"] = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    tally["receipts"] = sum(len(r) for r in told.values())
    return tally
