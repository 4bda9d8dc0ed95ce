"""Write → readable from the agents' own histogram
(``inv_replication_delay_seconds``: every applied peer event, from its
origin's timestamp to committed at the applying agent), scraped from each
agent's ``/metrics`` before and after a load and differenced.

Each agent's histogram is one peer's view of every other store's writes, so
the per-peer quantiles come straight from it. "Readable at all peers" is a
per-write figure (the slowest peer of each write) that no histogram holds:
it is bounded instead. If ``late_p`` of the events applied at peer ``p``
took longer than an edge, the writes that took longer than that edge at
some peer number at least ``max(late_p)`` (all the late ones may be the same
writes) and at most ``sum(late_p)`` (none is).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

METRIC = "inv_replication_delay_seconds"
_BUCKET = re.compile(METRIC + r'_bucket\{le="([^"]+)"\} ([0-9.e+]+)')


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts at each upper edge (seconds; the last is +Inf)."""

    edges: tuple[float, ...]
    counts: tuple[float, ...]

    @property
    def total(self) -> float:
        return self.counts[-1]

    def above(self, edge: float) -> float:
        """How many observations were over ``edge`` (one of the edges)."""
        return self.total - self.counts[self.edges.index(edge)]

    def minus(self, before: Histogram) -> Histogram:
        if before.edges != self.edges:
            raise ValueError("the histogram's buckets changed between the scrapes")
        counts = tuple(a - b for a, b in zip(self.counts, before.counts, strict=True))
        return Histogram(self.edges, counts)

    def quantile(self, q: float) -> float:
        """Seconds, interpolated inside its bucket as Prometheus's
        ``histogram_quantile`` does; inf when it lies past the last finite edge."""
        rank, low, below = q * self.total, 0.0, 0.0
        for edge, count in zip(self.edges, self.counts, strict=True):
            if count >= rank and count > below:
                if math.isinf(edge):
                    return math.inf
                return low + (edge - low) * (rank - below) / (count - below)
            low, below = edge, count
        return math.nan  # no observations


def parse(text: str) -> Histogram:
    """The delay histogram out of a Prometheus text exposition."""
    pairs = [(float(le), float(n)) for le, n in _BUCKET.findall(text)]
    if not pairs or not math.isinf(pairs[-1][0]):
        raise ValueError(f"no {METRIC} histogram in the scrape")
    return Histogram(tuple(e for e, _ in pairs), tuple(n for _, n in pairs))


def pooled(hists: Sequence[Histogram]) -> Histogram:
    """Every (write, peer) pair of all the peers in one histogram."""
    counts = tuple(sum(c) for c in zip(*(h.counts for h in hists), strict=True))
    return Histogram(hists[0].edges, counts)


@dataclass(frozen=True)
class Bounds:
    """The q-quantile over writes of "readable at every peer" lies in
    (``above``, ``at_most``], seconds (edges of the histogram)."""

    above: float
    at_most: float


def all_peers(hists: Sequence[Histogram], writes: int, q: float) -> Bounds:
    """Bounds on the q-quantile, over ``writes`` writes, of each write's
    slowest peer: at most the first edge past which the union bound
    (``sum(late_p)``) leaves no more than (1 - q) of the writes; above the
    last edge past which even ``max(late_p)`` leaves more than that."""
    allowed = (1 - q) * writes
    edges = hists[0].edges
    at_most = next((e for e in edges if sum(h.above(e) for h in hists) <= allowed), math.inf)
    above = max((e for e in edges if max(h.above(e) for h in hists) > allowed), default=0.0)
    return Bounds(above, at_most)
