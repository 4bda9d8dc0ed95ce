"""HQ's source: every store's events, read from the agents' stream by one
durable pull consumer (``hq-<network>-<schema>``), in large batches.

Where it starts is decided against the read model's checkpoint (the stream
seq of the last message whose batch was committed in PostgreSQL), never the
other way round:

- the consumer exists and its ack floor is at or behind the checkpoint: it
  goes on. What lies between (a crash after COMMIT, before the ack) comes
  again, and changes nothing (the read model records each event once);
- the consumer is gone, or its ack floor is past the checkpoint (a read
  model restored from a backup, or another HQ acked what this one never
  committed): it is made again from the checkpoint + 1;
- the stream's first message is past the checkpoint + 1: events aged out
  (``max_age``) before HQ read them. Said in the log; gap repair asks their
  origins for them (``agent.hq.repair``);
- the stream is behind the checkpoint (deleted and made again: its seqs
  started over): a consumer made anew reads it from its start.

AckPolicy.ALL: acknowledging a batch's last message, after its COMMIT,
acknowledges the whole batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from agent.sync import subjects
from agent.sync.link import NatsLink

log = structlog.get_logger("agent.hq")

FETCH_TIMEOUT = 1.0  # seconds a fetch waits for a first message
STALL_GUARD = 10.0  # our own bound on a fetch (stalls: nats.py #933, #986)


@dataclass(frozen=True)
class Start:
    """Where the consumer starts, and what that says."""

    checkpoint: int
    ack_floor: int  # of the consumer before setup (0: there was none)
    first_seq: int  # the stream's oldest message
    last_seq: int  # and newest
    recreated: bool  # the consumer was (re)made from the checkpoint

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
        self._psub: Any = None

    async def setup(self, checkpoint: int) -> Start:
        js = self._link.js
        state = (await js.stream_info(self._stream)).state
        first, last = state.first_seq or 0, state.last_seq or 0
        try:
            info = await js.consumer_info(self._stream, self.durable)
        except nats.js.errors.NotFoundError:
            info = None
        floor = (info.ack_floor.stream_seq or 0) if info and info.ack_floor else 0
        reset = last < checkpoint  # the stream's seqs started over
        compatible = info is not None and _compatible(info.config, self._network)
        recreate = reset or not compatible or floor > checkpoint
        if recreate:
            if info is not None:
                await js.delete_consumer(self._stream, self.durable)
            start_at = 1 if reset else checkpoint + 1
            await js.add_consumer(
                self._stream, consumer_config(self.durable, self._network, start_at)
            )
        self._psub = await js.pull_subscribe_bind(durable=self.durable, stream=self._stream)
        start = Start(
            checkpoint=checkpoint,
            ack_floor=floor,
            first_seq=first,
            last_seq=last,
            recreated=recreate,
        )
        _say(start, self.durable, reset)
        return start

    async def fetch(self) -> list[Any]:
        """The next batch; [] when the stream has nothing new for us."""
        try:
            msgs = await asyncio.wait_for(
                self._psub.fetch(self._batch, timeout=FETCH_TIMEOUT), STALL_GUARD
            )
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        return list(msgs or [])

    async def pending(self) -> int | None:
        """Messages of the stream this consumer has not delivered yet."""
        try:
            info = await self._link.js.consumer_info(self._stream, self.durable, timeout=2)
        except Exception:
            return None
        return int(info.num_pending or 0)

    async def close(self) -> None:
        if self._psub is None:
            return
        try:
            await self._psub.unsubscribe()
        except Exception:
            log.warning("consumer unsubscribe failed", exc_info=True)
        self._psub = None


def _compatible(config: Any, network: str) -> bool:
    """An existing consumer that reads what we need, as we need it."""
    return bool(
        config.ack_policy == api.AckPolicy.ALL
        and config.filter_subject == subjects.all_events(network)
        and not config.filter_subjects
    )


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
    elif start.recreated:
        log.info("consumer made from the checkpoint", **fields)
    else:
        log.info("consumer resumed", **fields)
    if start.ack_floor < start.checkpoint and not start.recreated:
        log.info(
            "messages committed but not acknowledged will come again (duplicates)",
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
