"""The projector loop: fetch a batch from the stream, check it, commit it in
PostgreSQL, then acknowledge it. Never the ack before the COMMIT.

While one batch is being committed (on the sink's thread, PostgreSQL doing
the merge), the next is fetched and checked on the event loop; its commit
starts only when the one before has committed and been acknowledged, so
commits and acks keep the stream's order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import structlog

from agent.hq.heldback import RETRY, HeldBack
from agent.hq.sink import BatchOutcome, Sink
from agent.hq.source import Source

log = structlog.get_logger("agent.hq")

# called after a batch's COMMIT, before its ack: (outcome, checkpoint)
AfterCommit = Callable[[BatchOutcome, int], Awaitable[None]]


@dataclass
class Batch:
    events: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    last: Any  # the batch's last message: acknowledging it acknowledges all
    last_seq: int  # its stream seq: the checkpoint once committed
    redelivered: int  # messages skipped: already committed before a crash
    fresh: int  # messages not skipped


@dataclass
class Totals:
    batches: int = 0
    received: int = 0
    applied: int = 0
    duplicates: int = 0  # events the read model had already
    redelivered: int = 0  # messages skipped at or below the checkpoint
    quarantined: int = 0
    ack_failures: int = 0
    started: float = field(default_factory=time.monotonic)


async def _nothing(outcome: BatchOutcome, checkpoint: int) -> None:
    return None


class Pump:
    def __init__(
        self,
        source: Source,
        sink: Sink,
        held: HeldBack,
        *,
        skip_upto: int = 0,
        after_commit: AfterCommit = _nothing,
    ) -> None:
        """``skip_upto``: stream seqs up to it are committed already (the
        checkpoint, when the consumer's ack floor is behind it).
        ``after_commit``: a test's hook between COMMIT and ack."""
        self._source = source
        self._sink = sink
        self._held = held
        self._skip_upto = skip_upto
        self._after_commit = after_commit
        self.totals = Totals()
        self.idle = False  # the last fetch found nothing and nothing is being committed
        self._next_retry = time.monotonic() + RETRY

    async def run(self) -> None:
        committing: asyncio.Task[None] | None = None
        try:
            while True:
                await self._retry_held_back()
                msgs = await self._fetch()
                if not msgs:
                    if committing is not None:
                        await committing
                        committing = None
                    self.idle = True
                    continue
                self.idle = False
                batch = self.prepare(msgs)
                if committing is not None:
                    await committing
                committing = asyncio.create_task(self.commit(batch), name="hq-commit")
        finally:
            if committing is not None and not committing.done():
                # the commit itself finishes on the sink's thread; its ack is
                # never sent (the batch comes again, and is skipped)
                committing.cancel()

    async def _fetch(self) -> list[Any]:
        try:
            return await self._source.fetch()
        except (nats.errors.ConnectionClosedError, nats.errors.Error) as exc:
            log.warning("fetch failed; retrying", error=str(exc) or exc.__class__.__name__)
            await asyncio.sleep(0.5)
            return []

    def prepare(self, msgs: list[Any]) -> Batch:
        """Check a fetched batch (skipping what is committed already)."""
        last = msgs[-1]
        last_seq = last.metadata.sequence.stream
        redelivered = 0
        if self._skip_upto:
            if last_seq <= self._skip_upto:
                redelivered, msgs = len(msgs), []
            else:
                kept = [m for m in msgs if m.metadata.sequence.stream > self._skip_upto]
                redelivered, msgs = len(msgs) - len(kept), kept
                self._skip_upto = 0
        events, rejected = self._held.sort([(m.subject, m.data) for m in msgs])
        return Batch(events, rejected, last, last_seq, redelivered, len(msgs))

    async def commit(self, batch: Batch) -> None:
        """COMMIT the batch with its checkpoint, then acknowledge it."""
        t = self.totals
        if batch.redelivered:
            t.redelivered += batch.redelivered
            log.info(
                "redelivered messages skipped: committed before the last stop",
                count=batch.redelivered,
            )
        if batch.fresh:
            # even a batch of nothing to store (held back already) moves the
            # checkpoint: the ack floor must never pass it
            outcome = await self._sink.apply(batch.events, batch.rejected, batch.last_seq)
            t.batches += 1
            t.received += outcome.received
            t.applied += outcome.applied
            t.duplicates += outcome.duplicates
            t.quarantined += outcome.quarantined
            log.debug(
                "batch committed",
                checkpoint=batch.last_seq,
                received=outcome.received,
                applied=outcome.applied,
                duplicates=outcome.duplicates,
                quarantined=outcome.quarantined,
                seconds=round(outcome.seconds, 4),
            )
            await self._after_commit(outcome, batch.last_seq)
        await self._ack(batch)

    async def _ack(self, batch: Batch) -> None:
        try:
            await batch.last.ack()
        except Exception as exc:
            # not fatal: the batch comes again after ack_wait and is skipped
            # (at or below the checkpoint) or found already applied
            self.totals.ack_failures += 1
            log.warning("ack failed; the batch will be redelivered", error=str(exc))

    async def _retry_held_back(self) -> None:
        if time.monotonic() < self._next_retry or not len(self._held):
            return
        self._next_retry = time.monotonic() + RETRY
        ready = self._held.ready()
        if ready:
            outcome = await self._sink.apply(ready)
            self.totals.applied += outcome.applied
            log.info("held-back events applied", count=outcome.applied)
