"""Failed logins, counted per user name and per client address: slowed, then refused.

Within ``window`` seconds: after ``slow_after`` failures each attempt waits
first (0.25 s, doubling, at most ``max_delay``); at ``max_per_user`` failures
for a name (``max_per_address`` for an address) attempts are refused until
enough of those failures are older than the window. A success clears its
user's count (not its address's: one clerk's success says nothing of the
other names tried from there).

Attempts still being checked count as failures until they end, so a burst of
parallel guesses cannot slip past the limit before the first one fails.
Not ``limits`` (the rate limiter of ``agent.api.middleware``): this needs
those in-flight attempts, a count to grow the delay from, removing a user's
failures on success, and a clock tests can move. In memory: a restart of the
agent forgets every count.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.errors import TooManyRequests

PRUNE_ABOVE = 1024  # keys kept before old ones are swept out
PRUNE_EVERY = 60.0  # seconds, at most


@dataclass(frozen=True)
class ThrottlePolicy:
    window: float = 900.0
    slow_after: int = 3
    max_per_user: int = 10
    max_per_address: int = 30
    first_delay: float = 0.25
    max_delay: float = 4.0

    def delay(self, failures: int) -> float:
        """How long an attempt waits after ``failures`` recent failures."""
        if failures < self.slow_after:
            return 0.0
        return min(self.max_delay, self.first_delay * 2.0 ** (failures - self.slow_after))


@dataclass
class _Window:
    failures: deque[float]
    in_flight: int = 0

    def count(self, since: float) -> int:
        while self.failures and self.failures[0] <= since:
            self.failures.popleft()
        return len(self.failures) + self.in_flight

    def retry_after(self, limit: int, now: float, window: float) -> int:
        """Seconds until fewer than ``limit`` failures are recent."""
        excess = len(self.failures) + self.in_flight - limit + 1
        if excess > len(self.failures):  # held by attempts still running
            return 1
        return max(1, math.ceil(self.failures[excess - 1] + window - now))


@dataclass(frozen=True)
class Attempt:
    """One login attempt under way: end it once (``Throttle.end``)."""

    user: str
    address: str
    delay: float  # seconds to wait before checking the password
    failures: int  # recent failures of its user or address, the higher


class Refused(TooManyRequests):
    def __init__(self, message: str, retry_after: int, failures: int, key: str) -> None:
        super().__init__(message, retry_after)
        self.failures = failures
        self.key = key  # "user" or "address"


@dataclass
class Throttle:
    policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    clock: Callable[[], float] = time.monotonic
    _windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _pruned: float = 0.0

    def _window(self, kind: str, name: str, limit: int) -> _Window:
        key = (kind, name)
        found = self._windows.get(key)
        if found is None:
            found = self._windows[key] = _Window(deque(maxlen=limit))
        return found

    def begin(self, user: str, address: str) -> Attempt:
        """Start an attempt, or Refused (429) when its user or address has failed too often."""
        now = self.clock()
        since = now - self.policy.window
        self._prune(now, since)
        p = self.policy
        counted = []
        for kind, name, limit in (
            ("user", user, p.max_per_user),
            ("address", address, p.max_per_address),
        ):
            w = self._window(kind, name, limit)
            n = w.count(since)
            if n >= limit:
                retry = w.retry_after(limit, now, p.window)
                raise Refused(
                    f"too many failed logins for this {kind}; try again in {retry} s",
                    retry,
                    n,
                    kind,
                )
            counted.append((w, n))
        for w, _ in counted:
            w.in_flight += 1
        failures = max(n for _, n in counted)
        return Attempt(user, address, p.delay(failures), failures)

    def end(self, attempt: Attempt, ok: bool) -> int:
        """Record how it went; the user's recent failures after it."""
        now = self.clock()
        user = self._windows[("user", attempt.user)]
        address = self._windows[("address", attempt.address)]
        for w in (user, address):
            w.in_flight -= 1
            if not ok:
                w.failures.append(now)
        if ok:
            user.failures.clear()
        count = user.count(now - self.policy.window)
        for key, w in ((("user", attempt.user), user), (("address", attempt.address), address)):
            if not w.failures and not w.in_flight:
                del self._windows[key]
        return count

    def _prune(self, now: float, since: float) -> None:
        """Forget names and addresses with no recent failure (at most once a
        minute, and only once there are many): a sweep of guessed names must
        not grow the agent without end."""
        if len(self._windows) <= PRUNE_ABOVE or now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        stale = [k for k, w in self._windows.items() if not w.in_flight and w.count(since) == 0]
        for key in stale:
            del self._windows[key]
