"""Virtual time and a deterministic way to run the agents' coroutines.

The agent's code is ``async``. Here it runs without an asyncio event loop: a
coroutine is stepped by hand (``World.spawn``); when it awaits a
``SimFuture`` it is parked, and resumed when the world settles that future
(a reply arrives, a timeout fires). Everything else the coroutines await in
the simulation (the simulated ledger, the simulated NATS client) completes
at once. One heap of ``(time, seq)`` orders every event, so a seed gives the
same run every time; ``trace`` hashes what happened, to prove it.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Coroutine, Generator
from typing import Any


class SimFuture:
    """An awaitable the world settles: with a value, or with an exception."""

    __slots__ = ("_callbacks", "_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[], None]] = []

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        if not self._done:
            self._done, self._value = True, value
            self._fire()

    def set_exception(self, error: BaseException) -> None:
        if not self._done:
            self._done, self._error = True, error
            self._fire()

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self) -> None:  # what asyncio futures offer; nothing to stop here
        return None

    def _fire(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb()

    def __await__(self) -> Generator[SimFuture, None, Any]:
        if not self._done:
            yield self
        return self.result()


class World:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0  # virtual ms since the start of the run
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self._trace = hashlib.sha256()
        self.events = 0  # everything the loop ran
        self.errors: list[str] = []  # coroutines that died: always a failure

    # ------------------------------------------------------------ the heap
    def at(self, delay_ms: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self.now + max(0, delay_ms), self._seq, action))

    def step(self) -> bool:
        if not self._heap:
            return False
        self.now, _, action = heapq.heappop(self._heap)
        self.events += 1
        action()
        return True

    def run_until(self, t_ms: int) -> None:
        while self._heap and self._heap[0][0] <= t_ms:
            self.step()
        self.now = max(self.now, t_ms)

    def pending(self) -> int:
        return len(self._heap)

    # ------------------------------------------------------------ tracing
    def note(self, *what: Any) -> None:
        self._trace.update(repr((self.now, what)).encode())

    @property
    def trace(self) -> str:
        return self._trace.hexdigest()[:16]

    # --------------------------------------------------------- coroutines
    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        done: Callable[[Any, BaseException | None], None] | None = None,
    ) -> None:
        """Run ``coro`` until it first waits; go on when what it waits for is settled.
        ``done(value, error)`` hears how it ended."""
        self._resume(coro, None, None, done)

    def _resume(
        self,
        coro: Coroutine[Any, Any, Any],
        value: Any,
        error: BaseException | None,
        done: Callable[[Any, BaseException | None], None] | None,
    ) -> None:
        try:
            waited = coro.throw(error) if error is not None else coro.send(value)
        except StopIteration as stop:
            if done:
                done(stop.value, None)
            return
        except Exception as exc:
            if done:
                done(None, exc)
            else:
                self.errors.append(f"{coro.__qualname__}: {exc!r}")
            return
        if not isinstance(waited, SimFuture):
            raise TypeError(f"{coro.__qualname__} awaited {waited!r}, not a SimFuture")

        def resume() -> None:
            try:
                v, e = waited.result(), None
            except BaseException as exc:
                v, e = None, exc
            self._resume(coro, v, e, done)

        waited._callbacks.append(resume)
