"""HQ's source: every store's events, read from the agents' stream by one
durable pull consumer (``hq-<network>-<schema>``), in large batches.

Where it starts is the read model's checkpoint (the stream seq of the last
message whose batch was committed in PostgreSQL), never the consumer's own
state: each session makes the consumer anew, delivering from the checkpoint
+ 1. Whatever the consumer had left behind does not matter then:

- messages committed but not acknowledged (a crash between COMMIT and ack)
  are not delivered again;
- messages delivered to a process that died before committing them are
  delivered again at once, not after ``ack_wait`` (and not acknowledged,
  unread, by the AckAll of a later message);
- a consumer deleted, or acknowledged past the checkpoint (a read model
  restored from a backup), makes no difference.

Two cases are only said in the log: the stream's first message past the
checkpoint + 1 (events aged out, ``max_age``, before HQ read them: gap
repair asks their origins, ``agent.hq.repair``), and a stream behind the
checkpoint (deleted and made again, its seqs started over: read from its
start). Messages that come twice all the same (an ack lost) change nothing:
the read model records each event once.

AckPolicy.ALL: acknowledging a batch's last message, after its COMMIT,
acknowledges the whole batch.

Fetching is done here rather than by nats-py's ``PullSubscription.fetch``,
which waits for each message with a timer of its own: at thousands of
messages a second that was most of the consumer's CPU, taken from the
projector's thread. ``Puller`` (``agent.sync.pull``, the agents' consumer
uses it too) sends the pull requests itself and collects their messages in a
callback, and checks that HQ's deliveries follow on (``DeliveryGap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from agent.sync import subjects
from agent.sync.link import NatsLink
from agent.sync.pull import ConsumerGone, DeliveryGap, Puller

__all__ = ["ConsumerGone", "DeliveryGap", "Puller", "Source", "Start", "consumer_config"]

log = structlog.get_logger("agent.hq")

FETCH_TIMEOUT = 1.0  # seconds a fetch waits for a first message


@dataclass(frozen=True)
class Start:
    """Where the consumer starts, and what that says."""

    checkpoint: int
    ack_floor: int  # of the consumer before setup (0: there was none)
    first_seq: int  # the stream's oldest message
    last_seq: int  # and newest

    @property
    def aged_out(self) -> bool:
        """Messages after the checkpoint left the stream before HQ read them."""
        return self.last_seq > self.checkpoint and self.first_seq > self.checkpoint + 1


def consumer_config(durable: str, network: str, start_at: int) -> api.ConsumerConfig:
    """``start_at``: the stream seq to deliver first (0 or 1: the whole stream)."""
    config = api.ConsumerConfig(
        durable_name=durable,
        name=durable,
        ack_policy=api.AckPolicy.ALL,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subject=subjects.all_events(network),
        ack_wait=60.0,
        # a batch being committed while the next is fetched: two batches
        # unacknowledged at most
        max_ack_pending=200_000,
        max_deliver=-1,
        max_waiting=16,
    )
    if start_at > 1:
        config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = start_at
    return config


class Source:
    def __init__(
        self, link: NatsLink, *, stream: str, network: str, durable: str, batch: int
    ) -> None:
        self._link = link
        self._stream = stream
        self._network = network
        self.durable = durable
        self._batch = batch
        self._puller: Puller | None = None

    async def setup(self, checkpoint: int) -> Start:
        """Make the consumer anew, from the checkpoint + 1, and bind to it."""
        js = self._link.js
        state = (await js.stream_info(self._stream)).state
        first, last = state.first_seq or 0, state.last_seq or 0
        try:
            info = await js.consumer_info(self._stream, self.durable)
        except nats.js.errors.NotFoundError:
            info = None
        floor = (info.ack_floor.stream_seq or 0) if info and info.ack_floor else 0
        reset = last < checkpoint  # the stream's seqs started over
        if info is not None:
            await js.delete_consumer(self._stream, self.durable)
        start_at = 1 if reset else checkpoint + 1
        await js.add_consumer(self._stream, consumer_config(self.durable, self._network, start_at))
        self._puller = Puller(self._link.nc, self._stream, self.durable, contiguous=True)
        await self._puller.start()
        start = Start(checkpoint=checkpoint, ack_floor=floor, first_seq=first, last_seq=last)
        _say(start, self.durable, reset)
        return start

    async def fetch(self) -> list[Any]:
        """The next batch; [] when the stream has nothing new for us."""
        assert self._puller is not None, "setup first"
        return await self._puller.fetch(self._batch, FETCH_TIMEOUT)

    async def pending(self) -> int | None:
        """Messages of the stream this consumer has not delivered yet."""
        try:
            info = await self._link.js.consumer_info(self._stream, self.durable, timeout=2)
        except Exception:
            # status shows "unknown" and says why; the traceback is for us
            log.warning("consumer info not read", exc_info=True)
            return None
        return int(info.num_pending or 0)

    async def close(self) -> None:
        if self._puller is None:
            return
        try:
            await self._puller.close()
        except Exception:
            log.warning("consumer unsubscribe failed", exc_info=True)
        self._puller = None


def _say(start: Start, durable: str, reset: bool) -> None:
    fields = {
        "consumer": durable,
        "checkpoint": start.checkpoint,
        "ack_floor": start.ack_floor,
        "stream_first": start.first_seq,
        "stream_last": start.last_seq,
    }
    if reset:
        log.warning("the stream is behind the checkpoint (made again?); reading it all", **fields)
    else:
        log.info("consumer made from the checkpoint", **fields)
    if start.ack_floor < start.checkpoint:
        # a crash between COMMIT and ack: these are not delivered again
        log.info(
            "messages committed but not acknowledged before the last stop; skipped",
            count=start.checkpoint - start.ack_floor,
            **fields,
        )
    if start.aged_out:
        log.warning(
            "events left the stream before HQ read them; asking their origins (gap repair)",
            lost_from=start.checkpoint + 1,
            lost_to=start.first_seq - 1,
            **fields,
        )
