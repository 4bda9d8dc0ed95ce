"""B10's reading of the agents' delay histograms (benchmarks/delays.py): the
quantiles and the bounds on "readable at every peer" decide a goal's PASS."""

from __future__ import annotations

import math

import pytest

from benchmarks import delays

EDGES = (0.005, 0.05, 0.5, math.inf)


def scrape(*counts: float) -> str:
    lines = [
        f'inv_replication_delay_seconds_bucket{{le="{"+Inf" if math.isinf(e) else e}"}} {c}'
        for e, c in zip(EDGES, counts, strict=True)
    ]
    return "\n".join(["# TYPE inv_replication_delay_seconds histogram", *lines, "other 1"])


def test_a_scrape_parses_and_differences() -> None:
    before, after = delays.parse(scrape(1, 2, 2, 2)), delays.parse(scrape(5, 10, 11, 12))
    d = after.minus(before)
    assert (d.edges, d.counts, d.total) == (EDGES, (4, 8, 9, 10), 10)
    assert d.above(0.05) == 2
    with pytest.raises(ValueError, match="no inv_replication_delay_seconds"):
        delays.parse("inv_http_requests_total 3")


def test_quantiles_interpolate_inside_a_bucket_as_prometheus_does() -> None:
    h = delays.Histogram(EDGES, (0, 100, 100, 100))  # all 100 in (5 ms, 50 ms]
    assert h.quantile(0.5) == pytest.approx(0.0275)
    assert delays.Histogram(EDGES, (0, 0, 0, 10)).quantile(0.5) == math.inf
    assert math.isnan(delays.Histogram(EDGES, (0, 0, 0, 0)).quantile(0.5))


def test_all_peers_is_bounded_by_the_slowest_peer_and_by_the_union() -> None:
    # 100 writes; each of two peers saw 1 of them over 50 ms: the same write
    # (1 % over) or two (2 %), so p99 is not decided below 0.5 s
    peers = [delays.Histogram(EDGES, (90, 99, 100, 100))] * 2
    b = delays.all_peers(peers, 100, 0.99)
    assert (b.above, b.at_most) == (0.005, 0.5)
    assert delays.pooled(peers).counts == (180, 198, 200, 200)
    # one peer alone: exactly its own quantile's bucket
    one = delays.all_peers(peers[:1], 100, 0.99)
    assert (one.above, one.at_most) == (0.005, 0.05)
