"""Hybrid logical clock.

A timestamp is one integer: ``wall_ms << 16 | counter``. It sorts like the pair
(wall ms, counter), stays close to real time, and never goes backwards on this
node even if the wall clock does. Ties between nodes are broken by origin:
the total order of writes is ``(hlc, origin)``; that order is last-write-wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1  # the counter's bits of a stamp


def pack(wall_ms: int, counter: int) -> int:
    return (wall_ms << LOGICAL_BITS) | counter


def wall_ms(hlc: int) -> int:
    return hlc >> LOGICAL_BITS


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class HybridLogicalClock:
    """Thread-safe HLC. ``now()`` stamps a local event, ``observe()`` merges a remote one."""

    def __init__(self, last: int = 0, clock: Callable[[], int] = now_ms) -> None:
        self._last = last
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        return self._last

    def now(self) -> int:
        with self._lock:
            physical = pack(self._clock(), 0)
            self._last = physical if physical > self._last else self._last + 1
            return self._last

    def observe(self, remote: int) -> int:
        """Advance past ``remote``. A stamp too far ahead of our wall clock is
        refused before it gets here (``agent.sync.validate``: quarantined)."""
        with self._lock:
            physical = pack(self._clock(), 0)
            self._last = max(physical, self._last, remote + 1)
            return self._last
