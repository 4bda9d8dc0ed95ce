"""The projector loop: fetch a batch from the stream, check it with the
agents' validation, commit it in PostgreSQL with its checkpoint, then
acknowledge it. Never the ack before the COMMIT.

While one batch is being committed (on the sink's thread, PostgreSQL doing
the merge), the next is fetched and checked on the event loop; its commit
starts only once the one before has committed and been acknowledged, so
commits and acks keep the stream's order.

A batch delivered again (a crash after its COMMIT, before its ack; an ack
lost) is applied again: the read model records each event once by
(origin, seq), so it changes nothing, and its events are counted as
duplicates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import nats.errors
import structlog

from agent.clocks import SYSTEM, Clocks
from agent.hq import heldback
from agent.hq.sink import BatchOutcome, Sink
from agent.hq.source import Source
from agent.sync import validate

log = structlog.get_logger("agent.hq")

# called after a batch's COMMIT, before its ack: (outcome, checkpoint)
AfterCommit = Callable[[BatchOutcome, int], Awaitable[None]]


@dataclass
class Batch:
    events: Any  # the checked events, as the read model stages them (``Sink.encode``)
    rejected: list[dict[str, Any]]
    last: Any  # the batch's last message: acknowledging it acknowledges all
    last_seq: int  # its stream seq: the checkpoint once committed


@dataclass
class Totals:
    batches: int = 0
    received: int = 0
    applied: int = 0
    duplicates: int = 0  # events the read model had already (delivered again)
    quarantined: int = 0
    ack_failures: int = 0
    commit_seconds: float = 0.0  # inside the read model's transactions
    started: float = field(default_factory=time.monotonic)


async def _nothing(outcome: BatchOutcome, checkpoint: int) -> None:
    return None


class Pump:
    def __init__(
        self,
        source: Source,
        sink: Sink,
        *,
        network: str,
        max_skew_ms: int,
        clocks: Clocks = SYSTEM,
        after_commit: AfterCommit = _nothing,
    ) -> None:
        """``after_commit``: a test's hook between COMMIT and ack."""
        self._source = source
        self._sink = sink
        self._network = network
        self._skew = max_skew_ms
        self._clocks = clocks
        self._after_commit = after_commit
        self.totals = Totals()
        self.idle = False  # the last fetch found nothing and nothing is being committed
        self.next_release = clocks.monotonic() + heldback.RETRY

    async def run(self) -> None:
        committing: asyncio.Task[None] | None = None
        posting: asyncio.Task[Any] | None = None
        try:
            while True:
                await self._release_held_back()
                msgs = await self._fetch()
                if not msgs:
                    if committing is not None:
                        await committing
                        committing = None
                    self.idle = True
                    continue
                self.idle = False
                # checked here, then COPY'd ahead (a connection of its own) while
                # the batch before commits and the next is fetched and checked
                batch = self.prepare(msgs)
                posting = asyncio.create_task(self._sink.post(batch.events), name="hq-post")
                if committing is not None:
                    await committing
                committing = asyncio.create_task(
                    self._commit_posted(batch, posting), name="hq-commit"
                )
        finally:
            if posting is not None and not posting.done():
                posting.cancel()
            if committing is not None and not committing.done():
                # the commit itself finishes on the sink's thread; its ack is
                # never sent (the batch comes again, and changes nothing)
                committing.cancel()

    async def _fetch(self) -> list[Any]:
        try:
            return await self._source.fetch()
        except (nats.errors.ConnectionClosedError, nats.errors.Error) as exc:
            log.warning("fetch failed; retrying", error=str(exc) or exc.__class__.__name__)
            await asyncio.sleep(0.5)
            return []

    def prepare(self, msgs: list[Any]) -> Batch:
        """Check a fetched batch: the events to apply, encoded for the read
        model with the payloads they came as (here, on the event loop, while
        the batch before is being committed on the sink's thread), and the
        records to quarantine (as ``validate.sort``)."""
        now = self._clocks.wall_ms()
        events: list[dict[str, Any]] = []
        payloads: list[bytes] = []
        rejected: list[dict[str, Any]] = []
        for m in msgs:
            checked = validate.check(m.subject, m.data, now, self._skew)
            if isinstance(checked, validate.Rejected):
                rejected.append(validate.quarantine_record(checked, m.subject, m.data))
            else:
                events.append(checked)
                payloads.append(m.data)
        last = msgs[-1]
        staged = self._sink.encode(events, payloads)
        return Batch(staged, rejected, last, last.metadata.sequence.stream)

    async def _commit_posted(self, batch: Batch, posting: asyncio.Task[Any]) -> None:
        await self.commit(replace(batch, events=await posting))

    async def commit(self, batch: Batch) -> None:
        """COMMIT the batch with its checkpoint, then acknowledge it."""
        outcome = await self._sink.apply(batch.events, batch.rejected, batch.last_seq)
        t = self.totals
        t.batches += 1
        t.received += outcome.received
        t.applied += outcome.applied
        t.duplicates += outcome.duplicates
        t.quarantined += outcome.quarantined
        t.commit_seconds += outcome.seconds
        if outcome.duplicates:
            log.info(
                "events delivered again were already applied",
                duplicates=outcome.duplicates,
                checkpoint=batch.last_seq,
            )
        log.debug(
            "batch committed",
            checkpoint=batch.last_seq,
            received=outcome.received,
            applied=outcome.applied,
            quarantined=outcome.quarantined,
            seconds=round(outcome.seconds, 4),
        )
        await self._after_commit(outcome, batch.last_seq)
        try:
            await batch.last.ack()
        except Exception as exc:
            # not fatal: the batch comes again after ack_wait and changes nothing
            t.ack_failures += 1
            log.warning("ack failed; the batch will be delivered again", error=str(exc))

    async def _release_held_back(self) -> None:
        if self._clocks.monotonic() < self.next_release:
            return
        self.next_release = self._clocks.monotonic() + heldback.RETRY
        self.totals.applied += await heldback.release(
            self._sink, network=self._network, max_skew_ms=self._skew, clocks=self._clocks
        )
