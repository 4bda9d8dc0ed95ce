"""The simulator's campaign, part of every ``make test`` (``make sim`` runs
longer ones): a bounded number of seeds must all pass; the same seed must
give the same run; every bug we know how to make must be caught; seeds that
once found a bug stay here."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator

import pytest
import structlog

from tests.sim import bugs
from tests.sim.run import Result, Simulation, campaign, derive, quiet_logs, run_seed

SEEDS = int(os.environ.get("SIM_SEEDS", "200"))


@pytest.fixture(autouse=True, scope="module")
def _quiet() -> Iterator[None]:
    """Quiet for this module only: left in place, the filter would silence the
    log captures of every test that runs after it in the same process."""
    previous = structlog.get_config()
    quiet_logs()
    yield
    structlog.configure(**previous)


def test_a_bounded_campaign_passes(capsys: pytest.CaptureFixture[str]) -> None:
    ran, failures = campaign(list(range(1, SEEDS + 1)), do_shrink=False, quiet=True)
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    print(summary)
    assert ran == SEEDS
    assert not failures, [(f.seed, f.error) for f in failures]


def test_the_same_seed_gives_the_same_run() -> None:
    a, b = run_seed(5), run_seed(5)
    assert (a.ok, a.events, a.trace) == (b.ok, b.events, b.trace)
    assert run_seed(6).trace != a.trace


def seeds_for(bug: str) -> list[int]:
    """The first seeds, as many as a bug may take to be caught. An online
    order taking safety stock shows only where the router's replica still saw
    stock above it that the owner no longer has: in about 3 % of seeds
    (whatever the other workloads), the others in the first few."""
    return list(range(1, 121 if bug == "online-takes-safety-stock" else 41))


@functools.cache
def run_with(seed: int, bug: str) -> Result:
    """A run is the same every time: the two tests of a bug share theirs."""
    return run_seed(seed, bug)


@pytest.mark.parametrize("bug", sorted(bugs.BUGS))
def test_an_injected_bug_is_caught(bug: str) -> None:
    seeds = seeds_for(bug)
    assert any(not run_with(seed, bug).ok for seed in seeds), f"{bug} survived {len(seeds)} seeds"


# Each bug of routed reservations, transfers and alerts is caught by the invariant it breaks
@pytest.mark.parametrize(
    ("bug", "caught"),
    [
        ("routing-cleanup-off", "an ask that is not the grant held stock"),
        ("online-takes-safety-stock", "took safety stock"),
        ("routing-retry-reroutes", "a retry of routed request"),
        ("cancel-returns-whole-claim", "its return movement"),
        ("receipt-counted-twice", "carried by two events"),
        ("damaged-stays-sellable", "units appeared or vanished in transfers"),
        ("ship-oversells", "left available -"),
        ("alert-per-write", "alerts alternate low/restored"),
        ("forwarded-actor-unqualified", "the clerk was"),
        ("batch-skips-last-row", "not converged"),
        ("checkpoint-before-apply", "never applied there"),
    ],
)
def test_a_bug_is_caught_by_its_own_invariant(bug: str, caught: str) -> None:
    errors = []
    for seed in seeds_for(bug):
        r = run_with(seed, bug)
        errors.append(r.error or "")
        if caught in errors[-1]:
            return
    raise AssertionError(f"{bug}: no seed broke {caught!r}; errors: {errors[:5]}")


# Seeds that found a bug in the agent, kept so it stays fixed:
# 11: events stamped by a clock 10 minutes ahead were quarantined for good
#     (clock_skew) and the replicas never converged; held-back events are now
#     tried again once the receiver's clock has caught up.
# 1661: gap repair, asking the stream whether a hole had aged out while the
#     store was cut off from it, raised a timeout into the repair loop.
# 56: an import that created a stock row at or below its reorder point raised
#     no alert (the bulk path skipped the alert check).
# 1, 33: a truck received at a store that was not its destination: the
#     wrong-store receipt was listed only where the origin's events came
#     first (1), and two stores receiving an id the origin never wrote left
#     the replicas apart for good (33).
# 994: a receipt id sent to a store that did not know the transfer, then to
#     its destination before either had heard of the other's: two receipts,
#     as the ledger keys them, which the checker had counted as one.
@pytest.mark.parametrize("seed", [11, 1661, 56, 1, 33, 994])
def test_regression_seeds(seed: int) -> None:
    r = run_seed(seed)
    assert r.ok, r.error


def test_the_old_durability_mode_would_lose_acknowledged_writes() -> None:
    """What the power-loss invariant is for: with synchronous=NORMAL (the disk
    image only brought up to date at checkpoints) a power loss takes
    acknowledged writes with it, and the checker says so."""
    caught = []
    for seed in range(1, 30):
        p = derive(seed)
        p = dataclasses.replace(
            p,
            durability="NORMAL",
            crashes=[(p.duration_ms * k // 5, p.stores[0], "power", 500) for k in range(1, 5)],
        )
        r = Simulation(p).run()
        if not r.ok:
            caught.append(r.error or "")
            break
    assert caught and "acknowledged write" in caught[0], caught
