"""Reading the event stream: an ephemeral AckNone pull consumer started from
the checkpoint the ledger keeps, and validation.

Reusable by any process that follows the stream into a ledger: it knows
where it is only through ``Checkpoints`` (``Replica`` in the agent). Each
fetched batch is checked (``validate``), split into events to apply and
records to quarantine, and handed to the ``apply`` callback with the batch's
stream position, which the ledger commits with the batch. Nothing is
acknowledged and the server keeps nothing of ours that outlives the link: a
durable consumer per store is a raft group per store on the hub (B12,
ARCHITECTURE.md "One consumer per store"). Whenever the consumer may have
lost its place (it is gone: its server restarted, or the link was down past
``INACTIVE_THRESHOLD``; a delivery never reached us; an apply failed), it is
made again from the checkpoint: at least once, deduplicated by (origin, seq)
in the apply's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from agent.clocks import SYSTEM, Clocks
from agent.ledger.replication import StreamPosition
from agent.metrics import Metrics
from agent.sync import subjects, validate
from agent.sync.link import NatsLink
from agent.sync.pull import ConsumerGone, DeliveryGap, Puller

log = structlog.get_logger("agent.sync")

FETCH_BATCH = 500
# the server removes the consumer this long after its last pull request: a
# store away longer leaves nothing behind, and makes it again on return
INACTIVE_THRESHOLD = 30.0
# a batch of only our own events writes no transaction of its own; its
# position is committed with the next batch of peers' events, or after
# this many seqs or seconds (a store hearing only itself refetches at most
# that much after a restart)
OWN_ONLY_SEQS = 10_000
OWN_ONLY_SECONDS = 60.0
Apply = Callable[
    [list[dict[str, Any]], list[dict[str, Any]], StreamPosition | None], Awaitable[Any]
]


class Checkpoints(Protocol):
    """Where the ledger has read a stream to (committed with each batch by ``apply``)."""

    async def stream_position(self, stream: str) -> StreamPosition | None: ...

    async def set_stream_position(self, position: StreamPosition) -> None: ...

    async def origins(self) -> dict[str, dict[str, Any]]: ...


def consumer_config(
    name: str, network: str, follow: list[str], checkpoint: int = 0
) -> api.ConsumerConfig:
    """The consumer of a store whose ledger has read the stream to ``checkpoint``."""
    config = api.ConsumerConfig(
        name=name,
        ack_policy=api.AckPolicy.NONE,
        deliver_policy=api.DeliverPolicy.ALL,
        # in memory and on one server (even with the stream at R3): it holds
        # no state worth keeping, and made again it costs nothing
        mem_storage=True,
        num_replicas=1,
        inactive_threshold=INACTIVE_THRESHOLD,
    )
    if checkpoint > 0:
        config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = checkpoint + 1
    if follow:
        config.filter_subjects = [subjects.events(network, s) for s in follow]
    else:
        config.filter_subject = subjects.all_events(network)
    return config


def resume_at(
    position: StreamPosition, *, created: str, last_seq: int, id_at_seq: str | None
) -> int:
    """Where to read the stream from again: the checkpoint, or 0 (all of it;
    applying is idempotent) when the stream is not the one the checkpoint
    was taken on: made again (another creation time), or a hub that lost its
    newest messages and numbers new ones over them (a seq past its last, or
    another message at the checkpoint's seq). ``id_at_seq``: the Msg-Id of
    the stream's message at the checkpoint's seq (None: not there any more,
    aged out; nothing to compare)."""
    if position.created != created or position.seq > last_seq:
        return 0
    if id_at_seq is not None and position.msg_id and id_at_seq != position.msg_id:
        return 0
    return position.seq


class StreamConsumer:
    def __init__(
        self,
        link: NatsLink,
        metrics: Metrics,
        apply: Apply,
        checkpoints: Checkpoints,
        *,
        stream: str,
        name: str,
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
        self._checkpoints = checkpoints
        self._stream = stream
        self._name = name
        self._network = network
        self._follow = follow
        self._max_skew_ms = max_skew_ms
        self._own = own_store
        self._clocks = clocks
        self._puller: Puller | None = None
        self._rewind = False
        self._lost = False  # a batch was fetched and not committed: start again from the checkpoint
        self._created = ""  # the stream's creation time, as the checkpoint names it
        self._floor = 0  # the checkpoint when set up: what the ledger had read
        self._saved = (0, clocks.monotonic())  # the last position committed: (seq, when)
        self.idle = False  # the last fetch found nothing new

    @property
    def lost_place(self) -> bool:
        """A batch was fetched and not committed (its apply raised): the
        next run makes the consumer again at the checkpoint."""
        return self._lost

    async def setup(self) -> None:
        """Make the consumer afresh at the ledger's checkpoint and bind to it."""
        js = self._link.js
        info = await js.stream_info(self._stream)
        self._created = info.created.isoformat() if info.created else ""
        position = await self._checkpoints.stream_position(self._stream)
        if position is None:
            position = await self._upgrade()
        elif (
            resume_at(
                position,
                created=self._created,
                last_seq=info.state.last_seq,
                id_at_seq=await self._id_at(position.seq),
            )
            == 0
        ):
            log.warning(
                "the stream is not the one this ledger read; reading it from the start",
                stream=self._stream,
                checkpoint=position.seq,
            )
            position = StreamPosition(self._stream, self._created, 0)
            await self._checkpoints.set_stream_position(position)
        self._floor = position.seq
        self._saved = (position.seq, self._clocks.monotonic())
        # the server will not move a consumer's start: made anew every time
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(self._stream, self._name)
        await js.add_consumer(
            self._stream, consumer_config(self._name, self._network, self._follow, position.seq)
        )
        self._lost = False
        # contiguous: every delivery of a consumer made for this puller takes
        # the next consumer seq, so one that never reached us shows
        self._puller = Puller(
            self._link.nc, self._stream, self._name, contiguous=True, stall_guard=4.0
        )
        await self._puller.start()

    async def _id_at(self, seq: int) -> str | None:
        """The Msg-Id of the stream's message at ``seq`` (None: not there)."""
        if seq <= 0:
            return None
        try:
            msg = await self._link.js.get_msg(self._stream, seq)
        except nats.js.errors.NotFoundError:
            return None
        return str((msg.headers or {}).get("Nats-Msg-Id", ""))

    async def _upgrade(self) -> StreamPosition:
        """No checkpoint yet: this ledger has never read the stream, or an
        older agent read it with a durable consumer of this name, whose ack
        floor is where it left off. Kept before that consumer goes. A ledger
        that holds no peer's event has read nothing, whatever a durable of
        its name says (a store's machine replaced, its ledger made anew)."""
        floor = 0
        try:
            info = await self._link.js.consumer_info(self._stream, self._name)
        except nats.js.errors.NotFoundError:
            info = None
        if (
            info is not None
            and info.config.durable_name
            and any(o != self._own for o in await self._checkpoints.origins())
        ):
            floor = (info.ack_floor.stream_seq or 0) if info.ack_floor else 0
            log.info(
                "replacing an older agent's durable consumer",
                consumer=self._name,
                ack_floor=floor,
            )
        position = StreamPosition(self._stream, self._created, floor)
        await self._checkpoints.set_stream_position(position)
        return position

    async def missed(self) -> bool:
        """Did the stream drop messages before this ledger read them? Its
        first retained message is past the checkpoint + 1 (as it was at
        ``setup``; 0 if it never read the stream): whatever was between aged
        out (or was purged) while we were away, or before this ledger ever
        followed the stream."""
        state = (await self._link.js.stream_info(self._stream)).state
        return bool(state.last_seq > self._floor and state.first_seq > self._floor + 1)

    def rewind(self) -> None:
        """Deliver the whole stream again from its start (after a snapshot
        restore: events it lacks and we had applied are still in the stream)."""
        self._rewind = True

    async def _start_again(self, why: str) -> None:
        """Make the consumer again at the checkpoint (0 first, for a rewind)."""
        try:
            await self._unsubscribe()
        except Exception:
            # not fatal: the consumer is deleted and made again just below
            log.warning("unsubscribe before starting again failed", exc_info=True)
        if self._rewind:
            await self._checkpoints.set_stream_position(
                StreamPosition(self._stream, self._created, 0)
            )
            self._rewind = False
        await self.setup()
        log.info(
            "consumer made again at the checkpoint", consumer=self._name, why=why, seq=self._floor
        )

    async def run(self) -> None:
        """Fetch and apply, forever. Every fetch has its own timeout (reports
        of fetch stalls exist: nats.py #933, #986).

        One batch at a time: fetching the next batch while the writer thread
        applies the last one was measured slower (B5 catch-up 2,300-2,400
        ev/s against 3,500-4,700): applying is mostly Python, and the two
        threads then fight over the GIL at every SQLite call."""
        while True:
            if self._rewind:
                await self._start_again("rewind")
            elif self._lost:
                # the last batch's apply raised (and this loop was started
                # again): nothing is redelivered to an AckNone consumer
                await self._start_again("a batch was not applied")
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
        except (ConsumerGone, DeliveryGap) as exc:
            # gone (its server restarted, the link was down past the
            # inactive threshold, an operator deleted it), or a delivery
            # lost on a dropped connection: what was not committed comes again
            self._link.last_error = f"fetch: {exc}"
            self._metrics.sync_failures.labels("fetch").inc()
            log.warning("consumer lost its place", consumer=self._name, error=str(exc))
            await self._start_again(str(exc))
            return None
        except nats.errors.Error as exc:
            self._link.last_error = f"fetch: {exc or exc.__class__.__name__}"
            self._metrics.sync_failures.labels("fetch").inc()
            await asyncio.sleep(0.5)
            return None

    async def handle(self, msgs: list[Any]) -> None:
        """Apply one fetched batch, with its stream position."""
        self._lost = True  # until committed
        await self._commit(msgs, *self._check(msgs))
        self._lost = False

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
        last = msgs[-1]
        seq = int(last.metadata.sequence.stream)
        saved_seq, saved_at = self._saved
        now = self._clocks.monotonic()
        if (
            not events
            and not rejected
            and seq - saved_seq < OWN_ONLY_SEQS
            and now - saved_at < OWN_ONLY_SECONDS
        ):
            return  # only our own events: the next batch of peers' carries past them
        msg_id = str((last.headers or {}).get("Nats-Msg-Id", ""))
        await self._apply(
            events, rejected, StreamPosition(self._stream, self._created, seq, msg_id)
        )
        self._saved = (seq, now)

    async def close(self) -> None:
        """Stop the subscription: nobody fetches any more, and a late pull
        status or message left in its queue would hold ``drain()`` until its
        timeout. The consumer itself goes with the inactive threshold, and
        the next run starts from the checkpoint."""
        try:
            await self._unsubscribe()
        except Exception:
            log.warning("consumer unsubscribe failed at shutdown", exc_info=True)

    async def _unsubscribe(self) -> None:
        if self._puller is not None:
            puller, self._puller = self._puller, None
            await puller.close()
