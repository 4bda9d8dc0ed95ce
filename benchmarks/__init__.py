"""Benchmarks (``make bench``): what users feel, each beside a floor measured
in the same run. See docs/PERFORMANCE.md."""
