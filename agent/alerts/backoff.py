"""When a failed delivery is tried again: exponential backoff with full
jitter (a uniformly drawn wait up to a doubling ceiling, capped), so targets
that failed together do not come back together."""

from __future__ import annotations

import random

FIRST_RETRY_MS = 1_000
MAX_RETRY_MS = 300_000  # 5 minutes


def ceiling_ms(tries: int, first_ms: int = FIRST_RETRY_MS, cap_ms: int = MAX_RETRY_MS) -> int:
    """The longest wait after the ``tries``-th failed try (1, 2, 3...)."""
    return int(min(cap_ms, first_ms * 2 ** min(max(tries - 1, 0), 30)))


def retry_delay_ms(
    tries: int,
    rng: random.Random,
    first_ms: int = FIRST_RETRY_MS,
    cap_ms: int = MAX_RETRY_MS,
) -> int:
    """How long to wait after the ``tries``-th failed try: anything from 0
    to its ceiling ("full jitter")."""
    return int(rng.uniform(0, ceiling_ms(tries, first_ms, cap_ms)))
