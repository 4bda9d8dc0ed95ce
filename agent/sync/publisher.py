"""The outbox publisher: this store's events, in seq order, to the stream.

Each event goes out with ``Nats-Msg-Id = <origin>:<seq>`` (the server drops a
duplicate within its window; receivers dedup by (origin, seq) in any case)
and is marked published on its PubAck. While NATS is away, events wait in the
outbox; the publisher wakes on every local write and on every reconnection.

The marks are written in the background: the next batch goes out while the
last one's marks wait for the ledger's writer (behind the writes of a busy
store, that wait was most of a write's way to its peers). Until its mark is
committed an acknowledged event is skipped by seq, not read as unpublished;
a mark that fails leaves it in the outbox, to be published again (and
deduplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import nats.errors
import nats.js.errors
from nats.js import api

from agent.metrics import Metrics
from agent.replica import Replica
from agent.sync import subjects
from agent.sync.link import NatsLink

PUBLISH_BATCH = 1000
# Under a stream of writes, a batch that went out less than BUSY ago means more
# are coming: wait LINGER so they go together. Every batch costs a read of the
# outbox and a write marking it published, whatever its size; a lone write
# (the last batch long gone) is published at once.
PUBLISH_BUSY = 0.005
PUBLISH_LINGER = 0.002


class Publisher:
    def __init__(
        self,
        link: NatsLink,
        replica: Replica,
        metrics: Metrics,
        network: str,
        blocked: Callable[[], str | None],
    ) -> None:
        """``blocked``: why publishing must not happen (an identity clash), or None."""
        self._link = link
        self._replica = replica
        self._metrics = metrics
        self._subject = subjects.events(network, replica.store_id)
        self._blocked = blocked
        self.published_total = 0
        self._unmarked: set[int] = set()  # acknowledged, the mark not committed yet
        self._to_mark: list[int] = []  # acknowledged, the mark not written yet
        self._mark_running = False
        self._marking: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        signal = self._replica.outbox
        last_batch = 0.0
        try:
            while True:
                with contextlib.suppress(TimeoutError):  # look anyway: a failed batch is retried
                    await asyncio.wait_for(signal.wait(), 1.0)
                if time.monotonic() - last_batch < PUBLISH_BUSY:
                    await asyncio.sleep(PUBLISH_LINGER)
                signal.clear()
                if not self._link.connected or self._blocked():
                    continue
                while await self.publish_batch() == PUBLISH_BATCH:
                    pass
                last_batch = time.monotonic()
        finally:
            for task in self._marking:
                task.cancel()  # a lost mark costs a re-publish, nothing more

    def _outbox(self) -> list[tuple[int, str]]:
        """The oldest batch of the outbox that is not already acknowledged."""
        skip = self._unmarked
        rows = self._replica.unpublished(PUBLISH_BATCH + len(skip))
        if skip:
            rows = [r for r in rows if r[0] not in skip]
        return rows[:PUBLISH_BATCH]

    async def _mark(self) -> None:
        """Write the waiting marks, all of them in one write each time round:
        as many ledger writes as before the marks went to the background,
        however many batches go out meanwhile."""
        try:
            while self._to_mark:
                seqs, self._to_mark = self._to_mark, []
                try:
                    await self._replica.mark_published(seqs)
                except Exception as exc:
                    # left unpublished in the ledger: read and sent again, deduplicated
                    self._link.last_error = f"publish: marking: {exc}"
                    self._metrics.sync_failures.labels("publish").inc()
                    self._replica.outbox.set()
                finally:
                    self._unmarked.difference_update(seqs)
        finally:
            # no await between the last look at _to_mark and this: a batch
            # acknowledged from now on starts a task of its own
            self._mark_running = False

    def _mark_in_background(self, seqs: list[int]) -> None:
        self._unmarked.update(seqs)
        self._to_mark.extend(seqs)
        if not self._mark_running:
            self._mark_running = True
            task = asyncio.create_task(self._mark(), name="publisher-marks")
            self._marking.add(task)
            task.add_done_callback(self._marking.discard)

    async def publish_batch(self) -> int:
        """Publish the oldest batch of the outbox: how many went out, -1 if not all."""
        batch = self._outbox()
        if not batch:
            return 0
        me = self._replica.store_id
        js = self._link.js
        futures = []
        try:
            for seq, body in batch:
                futures.append(
                    await js.publish_async(
                        self._subject,
                        body.encode(),
                        headers={"Nats-Msg-Id": f"{me}:{seq}"},
                        wait_stall=5.0,
                    )
                )
            results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10.0)
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
            for f in futures:
                f.cancel()
            self._link.last_error = f"publish: {exc or exc.__class__.__name__}"
            self._metrics.sync_failures.labels("publish").inc()
            await asyncio.sleep(0.5)
            return -1
        acked = [
            seq for (seq, _), r in zip(batch, results, strict=True) if isinstance(r, api.PubAck)
        ]
        if acked:
            self._mark_in_background(acked)
            self.published_total += len(acked)
            self._metrics.events_published.inc(len(acked))
        if len(acked) < len(batch):
            self._metrics.sync_failures.labels("publish").inc()
            await asyncio.sleep(0.5)
            return -1
        return len(batch)
