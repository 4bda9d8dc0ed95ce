"""Reading the event stream: a durable pull consumer, validation, and an ack
per batch only after the batch is applied.

Reusable by any process that follows the stream: it knows nothing of the
ledger. Each fetched batch is checked (``validate``), split into events to
apply and records to quarantine, and handed to the ``apply`` callback; when
that returns (the batch is committed), the batch is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from agent.clocks import SYSTEM, Clocks
from agent.metrics import Metrics
from agent.sync import subjects, validate
from agent.sync.link import NatsLink
from agent.sync.pull import ConsumerGone, Puller

log = structlog.get_logger("agent.sync")

FETCH_BATCH = 500
Apply = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Awaitable[Any]]


def consumer_config(durable: str, network: str, follow: list[str]) -> api.ConsumerConfig:
    config = api.ConsumerConfig(
        durable_name=durable,
        name=durable,
        # one ack per fetched batch, not per message (a consumer made with
        # AckPolicy.EXPLICIT by an older agent is recreated in ``setup``)
        ack_policy=api.AckPolicy.ALL,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_wait=30.0,
        max_ack_pending=20000,
        max_deliver=-1,
    )
    if follow:
        config.filter_subjects = [subjects.events(network, s) for s in follow]
    else:
        config.filter_subject = subjects.all_events(network)
    return config


class StreamConsumer:
    def __init__(
        self,
        link: NatsLink,
        metrics: Metrics,
        apply: Apply,
        *,
        stream: str,
        durable: str,
        network: str,
        follow: list[str],
        max_skew_ms: int,
        own_store: str | None = None,
        clocks: Clocks = SYSTEM,
    ) -> None:
        """``own_store``: events this process published itself, coming back
        from the stream, are skipped unparsed (it is their only writer)."""
        self._link = link
        self._metrics = metrics
        self._apply = apply
        self._stream = stream
        self._durable = durable
        self._network = network
        self._follow = follow
        self._max_skew_ms = max_skew_ms
        self._own = own_store
        self._clocks = clocks
        self._puller: Puller | None = None
        self._rewind = False
        self._floor = 0  # the consumer's ack floor (stream seq) when set up
        self.idle = False  # the last fetch found nothing new

    async def setup(self) -> None:
        """Create (or recreate, if incompatible) the durable consumer and bind to it."""
        js = self._link.js
        config = consumer_config(self._durable, self._network, self._follow)
        # where the last run left off, before anything here moves it: a new
        # consumer starts with its ack floor just below the stream's first
        # message, which would hide what aged out before it existed
        try:
            floor = (await js.consumer_info(self._stream, self._durable)).ack_floor
            self._floor = (floor.stream_seq or 0) if floor else 0
        except nats.js.errors.NotFoundError:
            self._floor = 0
        try:
            await js.add_consumer(self._stream, config)
        except nats.js.errors.APIError as exc:
            # an incompatible old definition: recreate it (applying is idempotent)
            log.warning("recreating consumer", consumer=self._durable, error=str(exc))
            await js.delete_consumer(self._stream, self._durable)
            await js.add_consumer(self._stream, config)
        self._puller = Puller(
            self._link.nc, self._stream, self._durable, contiguous=False, stall_guard=4.0
        )
        await self._puller.start()

    async def missed(self) -> bool:
        """Did the stream drop messages before this consumer applied them?
        Its first retained message is past the ack floor + 1 (the floor the
        consumer had before ``setup``; 0 if it did not exist): whatever was
        between aged out (or was purged) while we were away, or before this
        ledger ever followed the stream."""
        state = (await self._link.js.stream_info(self._stream)).state
        return bool(state.last_seq > self._floor and state.first_seq > self._floor + 1)

    def rewind(self) -> None:
        """Deliver the whole stream again from its start (after a snapshot
        restore: events it lacks and we had applied are still in the stream)."""
        self._rewind = True

    async def _restart_from_the_start(self) -> None:
        self._rewind = False
        try:
            await self._unsubscribe()
        except Exception:
            # not fatal: the consumer is deleted and made again just below
            log.warning("unsubscribe before the rewind failed", exc_info=True)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._link.js.delete_consumer(self._stream, self._durable)
        await self.setup()
        log.info("consumer rewound to the start of the stream", consumer=self._durable)

    async def run(self) -> None:
        """Fetch, apply, ack, forever. Every fetch has its own timeout (reports
        of fetch stalls exist: nats.py #933, #986).

        One batch at a time: fetching the next batch while the writer thread
        applies the last one was measured slower (B5 catch-up 2,300-2,400
        ev/s against 3,500-4,700): applying is mostly Python, and the two
        threads then fight over the GIL at every SQLite call."""
        while True:
            if self._rewind:
                await self._restart_from_the_start()
            msgs = await self._fetch()
            if msgs is None:
                continue  # the fetch failed (said in link.last_error)
            if not msgs:
                self.idle = True
                continue
            self.idle = False
            await self.handle(msgs)

    async def _fetch(self) -> list[Any] | None:
        """The next batch; [] when there is none, None if the fetch failed."""
        assert self._puller is not None, "setup first"
        try:
            # the puller bounds each request itself (its expiry + stall guard)
            return await self._puller.fetch(FETCH_BATCH, wait=1.0)
        except ConsumerGone as exc:
            # deleted under us (by an operator, or the server lost it): made
            # again where it was; what it had delivered unacked comes again
            self._link.last_error = f"fetch: {exc}"
            self._metrics.sync_failures.labels("fetch").inc()
            log.warning("consumer gone; making it again", consumer=self._durable, error=str(exc))
            await self._unsubscribe()
            await self.setup()
            return None
        except nats.errors.Error as exc:
            self._link.last_error = f"fetch: {exc or exc.__class__.__name__}"
            self._metrics.sync_failures.labels("fetch").inc()
            await asyncio.sleep(0.5)
            return None

    async def handle(self, msgs: list[Any]) -> None:
        """Apply one fetched batch, then acknowledge it."""
        await self._commit(msgs, *self._check(msgs))

    def _check(self, msgs: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A batch's events to apply and records to quarantine."""
        own_subject = subjects.events(self._network, self._own) if self._own else None
        own_id = f"{self._own}:"
        items = []
        for msg in msgs:
            if msg.subject == own_subject and (msg.headers or {}).get("Nats-Msg-Id", "").startswith(
                own_id
            ):
                # what our publisher sent, coming back: never applied here, so
                # not even parsed. Anything else on our subject is checked like
                # any event (a forgery is quarantined).
                continue
            items.append((msg.subject, msg.data))
        events, rejected = validate.sort(items, self._clocks.wall_ms(), self._max_skew_ms)
        return [e for e in events if e["origin"] != self._own], rejected

    async def _commit(
        self, msgs: list[Any], events: list[dict[str, Any]], rejected: list[dict[str, Any]]
    ) -> None:
        await self._apply(events, rejected)
        # AckPolicy.ALL: acknowledging the last message of the batch, once it
        # is committed, acknowledges every one before it
        try:
            await msgs[-1].ack()
        except Exception as exc:
            # not fatal: the batch is redelivered after ack_wait and applying
            # it again changes nothing; but it must be seen
            self._metrics.sync_failures.labels("ack").inc()
            log.warning("ack failed; the batch will be redelivered", error=str(exc), exc_info=True)

    async def close(self) -> None:
        """Stop the subscription: nobody fetches any more, and a late pull
        status or message left in its queue would hold ``drain()`` until its
        timeout. Unacked messages are redelivered to the next run."""
        try:
            await self._unsubscribe()
        except Exception:
            log.warning("consumer unsubscribe failed at shutdown", exc_info=True)

    async def _unsubscribe(self) -> None:
        if self._puller is not None:
            puller, self._puller = self._puller, None
            await puller.close()
