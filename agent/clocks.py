"""Where time comes from. Everything that reads the time takes a ``Clocks``
from its caller (``SYSTEM`` by default), so a test or the simulator can run
it on a clock of its own: skewed, drifting, or jumping."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


def wall_now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Clocks:
    wall_ms: Callable[[], int] = wall_now_ms  # milliseconds since the epoch
    monotonic: Callable[[], float] = time.monotonic  # seconds, never going back


SYSTEM = Clocks()
