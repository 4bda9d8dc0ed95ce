"""The campaign: ``python -m tests.sim.run [--seeds N | --seed S] [--bug NAME]``.

Each seed draws a network (2–5 stores, a few products), a workload and a menu
of faults with rates of their own (swarm testing: most seeds have a few
faults turned up high, the rest off), runs it in virtual time with the
invariants checked as it goes, then heals everything and demands
convergence within a bounded time (liveness), and checks the end state
against the reference fold. A failure prints its seed, its parameters, the
invariant broken, a shortened list of operations that still fails, and the
command that replays it. The last line is the campaign's summary.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.sim import bugs, routed, transfer_record, transfers
from tests.sim.checks import Checker, Violation
from tests.sim.ledger import Disk
from tests.sim.loop import World
from tests.sim.network import Faults, Hub
from tests.sim.node import Clock, Node
from tests.sim.workload import Op, Outcome, draw, execute, products_first

LIVENESS_MS = 20 * 60_000  # healed, a network must converge within this much virtual time
FAR_FUTURE_MS = 10 * 60_000


@dataclass
class Params:
    seed: int
    stores: list[str]
    skus: list[str]
    duration_ms: int
    on_file: bool
    faults: Faults
    ticks_ms: dict[str, int]
    partitions: list[tuple[int, str, str, int]] = field(default_factory=list)
    splits: list[tuple[int, list[str], int]] = field(default_factory=list)  # a group cut off
    consumer_restarts: list[tuple[int, str]] = field(default_factory=list)
    crashes: list[tuple[int, str, str, int]] = field(default_factory=list)  # at, store, kind, for
    clock_jumps: list[tuple[int, str, int]] = field(default_factory=list)
    hub_losses: list[tuple[int, int]] = field(default_factory=list)
    offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    owner_busy: float = 0.0  # chance a forwarded request waits behind a long write
    durability: str = "FULL"  # the agent's synchronous mode (NORMAL: the old, lossy one)


def on(rng: random.Random, high: float) -> float:
    """Swarm: a fault is off for about half the seeds, and at a random rate otherwise."""
    return rng.uniform(0, high) if rng.random() < 0.5 else 0.0


def derive(seed: int) -> Params:
    rng = random.Random(seed * 7919 + 1)
    stores = [f"store-{i}" for i in range(1, rng.randint(2, 5) + 1)]
    skus = [f"SKU-{i}" for i in range(1, rng.randint(2, 4) + 1)]
    duration = rng.randint(20_000, 60_000)
    faults = Faults(
        delay_ms=(1, 5) if rng.random() < 0.6 else (1, rng.randint(20, 400)),
        publish_loss=on(rng, 0.2),
        puback_loss=on(rng, 0.3),
        delivery_loss=on(rng, 0.2),
        rpc_loss=on(rng, 0.3),
        rpc_slow=on(rng, 0.2),
        max_age_ms=rng.randint(5_000, 20_000) if rng.random() < 0.3 else 0,
    )
    p = Params(
        seed=seed,
        stores=stores,
        skus=skus,
        duration_ms=duration,
        on_file=seed % 8 == 0,
        faults=faults,
        ticks_ms={
            "publish": rng.randint(50, 400),
            "consume": rng.randint(50, 400),
            "heartbeat": 2000,
            "repair": 1000,
            "release": 10_000,
            "expire": rng.randint(250, 2000),
            "cleanup": 1000,  # the agent's interval; not drawn (the draws after it stay)
        },
        owner_busy=on(rng, 0.3),
    )
    for _ in range(rng.randint(0, 4) if rng.random() < 0.6 else 0):
        way = rng.choice(["up", "down", "both"])
        p.partitions.append(
            (rng.randint(0, duration), rng.choice(stores), way, rng.randint(500, 15_000))
        )
    for _ in range(rng.randint(0, 3) if rng.random() < 0.5 else 0):
        kind = rng.choice(["crash", "power"])
        p.crashes.append(
            (rng.randint(0, duration), rng.choice(stores), kind, rng.randint(200, 10_000))
        )
    for s in stores:
        p.offsets[s] = (
            rng.randint(-2000, 2000) if rng.random() < 0.5 else 0,
            rng.randint(-200, 200) if rng.random() < 0.3 else 0,
        )
    for _ in range(rng.randint(0, 3) if rng.random() < 0.4 else 0):
        jump = rng.choice([-30_000, -5_000, -1_000, 1_000, 5_000, 30_000])
        if rng.random() < 0.15:
            jump = FAR_FUTURE_MS
        p.clock_jumps.append((rng.randint(0, duration), rng.choice(stores), jump))
    for _ in range(rng.randint(1, 2) if rng.random() < 0.2 else 0):
        p.hub_losses.append((rng.randint(0, duration), rng.randint(1, 5)))
    # drawn last, so the seeds drawn before these faults existed keep their other draws
    for _ in range(rng.randint(1, 2) if rng.random() < 0.25 else 0):
        group = rng.sample(stores, rng.randint(2, len(stores)))
        p.splits.append((rng.randint(0, duration), sorted(group), rng.randint(1_000, 20_000)))
    for _ in range(rng.randint(1, 3) if rng.random() < 0.3 else 0):
        p.consumer_restarts.append((rng.randint(0, duration), rng.choice(stores)))
    return p


@dataclass
class Result:
    seed: int
    ok: bool
    events: int
    trace: str
    error: str | None = None
    outcomes: int = 0
    tally: Counter[str] = field(default_factory=Counter)  # what the transfer workload did


class Simulation:
    def __init__(self, params: Params, ops: list[Op] | None = None) -> None:
        self.p = params
        self.world = World(params.seed)
        self.hub = Hub(self.world, params.faults)
        self.checker = Checker()
        self.hub.on_stored = self.checker.hub_stored
        self.tmp = Path(tempfile.mkdtemp(prefix="invsim")) if params.on_file else None
        self.nodes: dict[str, Node] = {}
        for s in params.stores:
            self.hub.up[s] = self.hub.down[s] = True
            offset, drift = params.offsets.get(s, (0, 0))
            disk = Disk(self.tmp / f"{s}.db" if self.tmp else None, params.durability, 10)
            clock = Clock(self.world, offset, drift)
            self.nodes[s] = Node(
                self.world,
                self.hub,
                s,
                disk,
                clock,
                forward_timeout=0.5,
                busy_rate=params.owner_busy,
                on_commit=self.checker.committed,
            )
        if ops is None:
            rng = random.Random(params.seed * 7919 + 2)
            ops = draw(rng, params.stores, params.skus, params.duration_ms)
            online = random.Random(params.seed * 7919 + 3)  # its own stream: see routed
            more = routed.draw(online, params.stores, params.skus, params.duration_ms)
            moving = random.Random(params.seed * 7919 + 4)  # its own stream: see transfers
            moved, _ = transfers.draw(moving, params.stores, params.skus, params.duration_ms)
            ops = sorted(ops + more + moved, key=lambda o: o.at_ms)
        self.ops = ops
        # the products whose units are conserved (the transfer stream's first draw)
        self.conserved = transfers.transfer_skus(random.Random(params.seed * 7919 + 4))
        self.outcomes: list[Outcome] = []

    # ----------------------------------------------------------- scheduling
    def schedule(self) -> None:
        for op in products_first(self.p.stores, self.p.skus) + self.ops:
            self.world.at(op.at_ms, lambda op=op: self.run_op(op))
        for n in self.nodes.values():
            for what, every in self.p.ticks_ms.items():
                self._every(n, what, every)
        for at, store, way, length in self.p.partitions:
            self.world.at(at, lambda s=store, w=way, d=length: self.cut(s, w, d))
        for at, group, length in self.p.splits:
            for store in group:
                self.world.at(at, lambda s=store, d=length: self.cut(s, "both", d))
        for at, store in self.p.consumer_restarts:
            self.world.at(at, lambda s=store: self.hub.restart_consumer(s))
        for at, store, kind, length in self.p.crashes:
            self.world.at(at, lambda s=store, k=kind, d=length: self.crash(s, k, d))
        for at, store, jump in self.p.clock_jumps:
            self.world.at(at, lambda s=store, j=jump: self.jump(s, j))
        for at, n in self.p.hub_losses:
            self.world.at(at, lambda n=n: self.hub.lose_newest(n))

    def _every(self, node: Node, what: str, every: int) -> None:
        tick = getattr(node, f"tick_{what}")

        def fire() -> None:
            tick()
            self.world.at(every + self.world.rng.randint(0, every // 4), fire)

        self.world.at(self.world.rng.randint(0, every), fire)

    def run_op(self, op: Op) -> None:
        self.checker.check()
        if op.kind == "cut":  # a partition the transfer workload asks for
            self.cut(op.store, op.args["way"], op.args["ms"])
            return
        if op.kind.startswith("routed-"):  # a routed id: known once it was granted
            grant = self.checker.routing.granted(op.args["router"], op.args["rid"])
            if grant is None:
                self.outcomes.append(Outcome(op, False, None, None, "not granted (yet)"))
                return
            kind = op.kind.removeprefix("routed-")
            op = Op(op.at_ms, op.store, kind, {"rid": grant[0], "owner": grant[1], "hint": False})
        node = self.nodes[op.store]
        if not node.alive:
            self.outcomes.append(Outcome(op, False, None, None, "agent down"))
            return
        me = node.incarnation
        self.checker.scan(node)  # what background work wrote, judged without a floor
        floor = self.checker.applied_floor(node)

        def done(outcome: Any, error: BaseException | None) -> None:
            if error is not None:
                self.world.errors.append(f"{op}: {error!r}\n{traceback.format_exception(error)}")
                return
            self.outcomes.append(outcome)
            self.world.note("op", op.kind, op.store, outcome.ok, outcome.status)
            if outcome.ok and op.kind == "route":
                self.checker.routing.answered(op.store, op.args["rid"], outcome.body)
            if outcome.status == 500:
                self.checker.transfers.broken.append(f"{op}: answered 500: {outcome.body}")
            if outcome.ok and node.live(me):
                self.checker.acknowledged(node, floor)
                owner = self.nodes.get(_owner_of(op, outcome.body))
                if owner is not None and owner is not node and owner.alive:
                    self.checker.acknowledged(owner)
                if op.kind == "reserve" and op.args["store"] == op.store:
                    self.checker.reservation_granted(node, op.args["sku"])

        if op.kind in transfers.KINDS:
            self.world.spawn(transfers.execute(node.service, op), done)
        else:
            self.world.spawn(execute(node.service, op, node.router), done)

    # -------------------------------------------------------------- faults
    def cut(self, store: str, way: str, length: int) -> None:
        keys = {"up": ("up",), "down": ("down",), "both": ("up", "down")}[way]
        for k in keys:
            getattr(self.hub, k)[store] = False
        self.world.note("cut", store, way)

        def heal() -> None:
            for k in keys:
                getattr(self.hub, k)[store] = True

        self.world.at(length, heal)

    def crash(self, store: str, kind: str, length: int) -> None:
        node = self.nodes[store]
        if not node.alive:
            return
        node.power_loss() if kind == "power" else node.crash()
        self.world.at(length, lambda: self.restart(node))

    def restart(self, node: Node) -> None:
        if node.alive:
            return
        node.start()
        self.checker.restarted(node)

    def jump(self, store: str, ms: int) -> None:
        clock = self.nodes[store].clock
        clock.offset_ms += ms
        self.world.note("jump", store, ms)
        if ms == FAR_FUTURE_MS:  # a far-future stamp now and then: the clock comes back
            self.world.at(3_000, lambda: setattr(clock, "offset_ms", clock.offset_ms - ms))

    # ------------------------------------------------------------ the run
    def run(self) -> Result:
        try:
            self.schedule()
            self.world.run_until(self.p.duration_ms)
            self._check_errors()
            self.heal()
            self.converge()
            self._check_errors()
            nodes = list(self.nodes.values())
            tally = self.checker.quiescent(nodes, self.outcomes, self.conserved)
            digests = [sorted(_digests(n).items()) for n in nodes]
            self.world.note("end", digests[0])
            return Result(
                self.p.seed,
                True,
                self.world.events,
                self.world.trace,
                None,
                len(self.outcomes),
                tally,
            )
        except Violation as v:
            return Result(self.p.seed, False, self.world.events, self.world.trace, str(v))
        finally:
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def _check_errors(self) -> None:
        self.checker.check()
        if self.world.errors:
            raise Violation("an agent task failed: " + self.world.errors[0])
        for n in self.nodes.values():
            if n.late:
                raise Violation(f"{n.store_id}: a forwarded {n.late[0]}, past its budget")

    def heal(self) -> None:
        """Liveness mode: faults off, every link up, every agent running."""
        self.hub.faults = Faults()
        for s in self.p.stores:
            self.hub.up[s] = self.hub.down[s] = True
        for n in self.nodes.values():
            if not n.alive:
                self.restart(n)
            n.clock.drift_ppm = n.clock.drift_ppm  # drift goes on; jumps are over

    def converge(self) -> None:
        deadline = self.world.now + LIVENESS_MS
        while self.world.now < deadline:
            self.world.run_until(self.world.now + 1_000)
            if self.converged():
                return
        raise Violation(
            f"liveness: not converged {LIVENESS_MS // 60_000} min after healing: " + self.lag()
        )

    def converged(self) -> bool:
        nodes = list(self.nodes.values())
        if any(n.replica.unpublished(1) for n in nodes):
            return False
        if any(
            self.hub.lost_place(n.store_id)
            or self.hub.consumers[n.store_id].delivered < self.hub.last_seq
            for n in nodes
        ):
            return False
        if any(n.read(_pending_due, n.clock.wall_ms()) for n in nodes):
            return False
        if any(n.read(_pending_cleanups) for n in nodes):
            return False
        if any(n.alive and n.router.in_progress for n in nodes):
            return False
        tops = {n.store_id: max((q for q, _, _ in n.events_of_mine()), default=0) for n in nodes}
        for n in nodes:
            have = dict(n.read(_applied_seqs))
            if any(have.get(o, 0) < top for o, top in tops.items()):
                return False
        ds = [_digests(n) for n in nodes]
        return all(d == ds[0] for d in ds)

    def lag(self) -> str:
        parts = []
        for n in self.nodes.values():
            c = self.hub.consumers.get(n.store_id)
            parts.append(
                f"{n.store_id}: outbox {len(n.replica.unpublished(10_000))}, "
                f"delivered {c.delivered if c else None}/{self.hub.last_seq}, "
                f"quarantined {n.read(_quarantined)}, "
                f"digests {_digests(n)}"
            )
        return "; ".join(parts)


def _owner_of(op: Op, body: Any) -> str:
    """The store whose ledger holds what ``op`` wrote (it may have been forwarded)."""
    if op.kind in transfers.STEPS:
        return str(op.args["to"] if op.kind == "treceive" else op.args["from"])
    if op.kind == "reorder":
        return op.store
    return str(op.args.get("store") or op.args.get("owner") or (body or {}).get("storeId", ""))


def _digests(n: Node) -> dict[str, str]:
    from agent.ledger import queries

    return queries.digests(n.disk.conn)


def _quarantined(conn: Any) -> int:
    return int(conn.execute("SELECT count(*) FROM quarantine").fetchone()[0])


def _applied_seqs(conn: Any) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in conn.execute("SELECT origin, applied_seq FROM origins")]


def _pending_cleanups(conn: Any) -> int:
    return int(
        conn.execute("SELECT count(*) FROM routing_attempts WHERE cleanup = 'pending'").fetchone()[
            0
        ]
    )


def _pending_due(conn: Any, now: int) -> int:
    return int(
        conn.execute(
            "SELECT count(*) FROM reservations WHERE status = 'PENDING' AND expires_at_ms <= ?",
            (now,),
        ).fetchone()[0]
    )


def run_seed(seed: int, bug: str | None = None, ops: list[Op] | None = None) -> Result:
    with bugs.injected(bug):
        return Simulation(derive(seed), ops).run()


def shrink(seed: int, bug: str | None, budget: int = 40) -> list[Op]:
    """Fewer operations that still fail (greedy halving; the faults stay)."""
    ops = Simulation(derive(seed)).ops
    chunk = max(1, len(ops) // 2)
    runs = 0
    while chunk >= 1 and runs < budget:
        i, cut_any = 0, False
        while i < len(ops) and runs < budget:
            trial = ops[:i] + ops[i + chunk :]
            runs += 1
            if not run_seed(seed, bug, trial).ok:
                ops, cut_any = trial, True
            else:
                i += chunk
        if not cut_any:
            chunk //= 2
    return ops


def report_failure(r: Result, bug: str | None, do_shrink: bool) -> None:
    p = derive(r.seed)
    print(f"FAIL seed {r.seed}: {r.error}", file=sys.stderr)
    print(f"  parameters: {json.dumps(asdict(p), default=str)[:2000]}", file=sys.stderr)
    if do_shrink:
        ops = shrink(r.seed, bug)
        print(f"  still fails with {len(ops)} operations:", file=sys.stderr)
        for op in ops[:30]:
            print(f"    {op}", file=sys.stderr)
    print(f"  replay: make sim SEED={r.seed}" + (f" BUG={bug}" if bug else ""), file=sys.stderr)


def campaign(
    seeds: list[int],
    bug: str | None = None,
    *,
    stop_at_first: bool = False,
    do_shrink: bool = True,
    quiet: bool = False,
) -> tuple[int, list[Result]]:
    start = time.perf_counter()
    failures: list[Result] = []
    events = 0
    tally: Counter[str] = Counter()
    for seed in seeds:
        r = run_seed(seed, bug)
        events += r.events
        tally.update(r.tally)
        if not r.ok:
            failures.append(r)
            if not quiet:
                report_failure(r, bug, do_shrink)
            if stop_at_first:
                break
    elapsed = time.perf_counter() - start
    ran = seeds.index(failures[-1].seed) + 1 if stop_at_first and failures else len(seeds)
    print(
        f"sim: {ran} seeds, {len(failures)} failures, {events} simulated events, "
        f"{events / elapsed:,.0f} events/s, {ran / elapsed * 60:,.0f} seeds/min; "
        + transfer_record.summary(tally)
        + (f", bug {bug}" if bug else "")
    )
    return ran, failures


def quiet_logs() -> None:
    """The agents' logs would drown the report: only a campaign's own lines."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def main(argv: list[str] | None = None) -> int:
    quiet_logs()
    ap = argparse.ArgumentParser(prog="make sim", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=300, help="how many seeds (from --first)")
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--seed", type=int, help="replay one seed, printing its trace hash")
    ap.add_argument("--bug", choices=sorted(bugs.BUGS), help="inject a known bug")
    ap.add_argument("--no-shrink", action="store_true")
    args = ap.parse_args(argv)
    if args.seed is not None:
        r = run_seed(args.seed, args.bug)
        print(f"seed {r.seed}: {'ok' if r.ok else 'FAIL'}, {r.events} events, trace {r.trace}")
        if not r.ok:
            report_failure(r, args.bug, not args.no_shrink)
        return 0 if r.ok else 1
    seeds = list(range(args.first, args.first + args.seeds))
    _, failures = campaign(seeds, args.bug, do_shrink=not args.no_shrink)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
