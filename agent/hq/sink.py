"""The read model as the running process sees it: the projector's calls made
one at a time on one worker thread, off the event loop.

``Projector`` (``agent.hq.projector``) is synchronous (psycopg 3 on one
connection): its calls are queued here on a single thread, so they never
overlap on the connection and never block the event loop, where the next
batch is being fetched from NATS meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from agent.hq.inbox import Inbox
from agent.hq.staging import Encoded

T = TypeVar("T")


class BatchOutcome(Protocol):
    """What ``Projector.apply`` returns (``agent.hq.projector.BatchResult``)."""

    @property
    def received(self) -> int: ...
    @property
    def applied(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def quarantined(self) -> int: ...
    @property
    def seconds(self) -> float: ...


class ReadModel(Protocol):
    """The part of ``agent.hq.projector.Projector`` the process uses."""

    def encode(self, events: list[dict[str, Any]], payloads: Sequence[bytes]) -> Any:
        """The events as ``apply`` takes them, made with no database work."""
        ...

    def apply(
        self,
        events: Any,  # a list of events, or what ``encode`` made of one
        *,
        rejected: Sequence[dict[str, Any]] = (),
        checkpoint: int | None = None,
        released: Sequence[int] = (),
    ) -> BatchOutcome: ...
    def checkpoint(self) -> int: ...
    def held_back(self) -> list[tuple[int, str]]: ...
    def watermarks(self) -> dict[str, tuple[int, int]]: ...
    def holes(self, limit: int = 1000) -> dict[str, list[int]]: ...
    def digests(self) -> dict[str, str]: ...


def _unfenced() -> None:
    return None


class Sink:
    def __init__(
        self,
        model: ReadModel,
        *,
        fence: Callable[[], None] = _unfenced,
        inbox: Inbox | None = None,
    ) -> None:
        """``fence`` runs on the same thread just before every apply and
        raises if this process may no longer write (``lock.fence``).
        ``inbox``: where ``post`` COPYs a batch ahead, on a thread and a
        connection of its own."""
        self.model = model
        self._fence = fence
        self._inbox = inbox
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hq-projector")
        self._poster = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hq-inbox")

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    def encode(self, events: list[dict[str, Any]], payloads: Sequence[bytes]) -> Any:
        """Checked events, with the payloads they were parsed from, as the
        model takes them (``ReadModel.encode``): on the caller's thread, since
        it touches no connection, while the sink's thread is busy."""
        return self.model.encode(events, payloads)

    async def post(self, events: Any) -> Any:
        """``encode``d events COPY'd to the inbox (``inbox.Posted``), while the
        batch before may be being applied; as they are without an inbox."""
        if self._inbox is None or not isinstance(events, Encoded):
            return events
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._poster, self._inbox.post, events)

    async def apply(
        self,
        events: Any,
        rejected: Sequence[dict[str, Any]] = (),
        checkpoint: int | None = None,
        released: Sequence[int] = (),
    ) -> BatchOutcome:
        """One committed transaction by the time it returns: the events (a
        list, or ``encode``d), the quarantined records, the released
        quarantine ids and, if given, the stream checkpoint."""
        return await self._call(self._apply, events, rejected, checkpoint, released)

    def _apply(
        self,
        events: Any,
        rejected: Sequence[dict[str, Any]],
        checkpoint: int | None,
        released: Sequence[int],
    ) -> BatchOutcome:
        self._fence()
        return self.model.apply(events, rejected=rejected, checkpoint=checkpoint, released=released)

    async def checkpoint(self) -> int:
        return await self._call(self.model.checkpoint)

    async def held_back(self) -> list[tuple[int, str]]:
        """Quarantined events that may pass later: (quarantine id, body)."""
        return await self._call(self.model.held_back)

    async def watermarks(self) -> dict[str, tuple[int, int]]:
        return await self._call(self.model.watermarks)

    async def holes(self, limit: int = 1000) -> dict[str, list[int]]:
        return await self._call(self.model.holes, limit)

    async def digests(self) -> dict[str, str]:
        return await self._call(self.model.digests)

    def close(self) -> None:
        """Let a call in progress finish (a transaction is never cut short
        here), start no other."""
        self._poster.shutdown(wait=True, cancel_futures=True)
        self._thread.shutdown(wait=True, cancel_futures=True)
