"""Pull requests sent by hand to a JetStream pull consumer.

nats-py's ``PullSubscription.fetch`` waits for each message with a timer and
a task of its own: at thousands of messages a second that was most of a
consumer's CPU (a fifth of an agent's event loop in a catch-up, most of HQ's
ingest). ``Puller`` sends the pull requests itself and collects their
messages in a subscription callback (``Puller`` says how it asks). The
messages are nats-py's own (``ack()``, ``metadata``).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog
from nats.js import api

log = structlog.get_logger("agent.sync")

# how often a waiting fetch looks whether its connection was re-established
# (its pull request then died with the old one): seconds
RECONNECT_CHECK = 0.5


class ConsumerGone(Exception):
    """The server ended our pull requests for good (the consumer was deleted)."""


class DeliveryGap(Exception):
    """The consumer delivered messages that never reached us (lost on a
    connection that dropped): acknowledging anything after them would
    acknowledge them too (AckAll, HQ's), unread, and an AckNone consumer
    (the agent's) never sends them again. Start again from the checkpoint."""


class Puller:
    """Pull requests for one consumer, on a reply inbox of its own.

    One request is open at a time. A fetch with nothing in hand first asks
    for what is there now (``no_wait``: a catch-up gets full batches); if
    there is nothing, it opens a long poll for a whole batch (``expires``:
    the fetch's wait) and returns as soon as its first messages come. That
    long poll stays open across fetches until it has brought its batch or
    expired: a store hearing a trickle of peers' events sends a pull request
    or two a second, not three per event (no_wait, long poll for one, no_wait
    for what followed it: in B10 every agent's server load).

    ``contiguous``: check that the consumer's deliveries follow on from the
    first one this puller saw as 1 (``DeliveryGap`` if not): right for a
    consumer made anew for this puller (the agent's and HQ's). A consumer
    that outlives its puller (a durable one) has its next delivery seq past
    1, and redelivers with the first delivery's seq: there the check cannot
    hold. ``stall_guard``: seconds past a request's own expiry after which
    it is taken as unanswered (a reply lost with a dropped connection)."""

    def __init__(
        self, nc: Any, stream: str, durable: str, *, contiguous: bool, stall_guard: float = 10.0
    ) -> None:
        self._nc = nc
        self._contiguous = contiguous
        self._stall_guard = stall_guard
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._sub: Any = None
        # messages arrive here in stream order, whichever request they answer
        self._buffer: list[Any] = []
        self._left = 0  # messages the open request may still bring (0: none open)
        self._deadline = 0.0  # monotonic: the open request has ended by then, or was lost
        self._ended = asyncio.Event()  # the open request is over
        self._arrived = asyncio.Event()  # a message or the end came
        self._gone: str | None = None
        self._delivered = 0  # the consumer seq of the last message handed out
        self._asked_on = 0  # the connection's reconnect count when the open request was sent

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        headers = msg.headers
        status = headers.get(api.Header.STATUS) if headers and not msg.data else None
        if status is None:
            self._buffer.append(msg)
            self._left -= 1
            if self._left <= 0:
                self._end()
            self._arrived.set()
        elif status != "100":  # 404 no messages, 408 expired, 409 ...: this request is over
            if status == "409" and "deleted" in str(headers.get("Description", "")).lower():
                self._gone = str(headers.get("Description"))
            elif status == "503":
                # no responders: the consumer does not exist (an ephemeral one
                # removed while the link was down, or its server restarted)
                self._gone = "no such consumer (no responders)"
            self._end()
            self._arrived.set()

    def _end(self) -> None:
        self._left = 0
        self._ended.set()

    async def _ask(self, batch: int, expires: float | None) -> None:
        self._asked_on = self._nc.stats["reconnects"]
        self._left = batch
        self._ended.clear()
        self._deadline = time.monotonic() + (expires or 0) + self._stall_guard
        req: dict[str, Any] = {"batch": batch}
        if expires is None:
            req["no_wait"] = True
        else:
            req["expires"] = int(expires * 1e9)
        await self._nc.publish(self._next, json.dumps(req).encode(), reply=self._inbox)

    async def _wait(self, event: asyncio.Event) -> None:
        """Until ``event``, or the open request is lost: its deadline passed,
        or the connection it was sent on is gone (a reconnect since: the
        server forgot it, and a consumer on a restarted server may be gone
        too). Then the next fetch asks again."""
        while not event.is_set():
            left = self._deadline - time.monotonic()
            try:
                await asyncio.wait_for(event.wait(), max(0.0, min(left, RECONNECT_CHECK)))
            except TimeoutError:
                if self._nc.stats["reconnects"] != self._asked_on:
                    log.info("pull request lost with the connection; asking again")
                    self._end()
                elif time.monotonic() >= self._deadline:
                    log.warning("pull request unanswered; asking again")
                    self._end()
                else:
                    continue
            break
        if self._gone:
            raise ConsumerGone(self._gone)

    async def fetch(self, batch: int, wait: float) -> list[Any]:
        """Up to ``batch`` messages: those there now, or else the first to
        come within ``wait`` seconds (and any that came with them)."""
        if not self._buffer and not self._left:
            await self._ask(batch, None)
            await self._wait(self._ended)
            if not self._buffer:
                await self._ask(batch, wait)
        if not self._buffer and self._left:
            self._arrived.clear()
            await self._wait(self._arrived)
        out, self._buffer = self._buffer[:batch], self._buffer[batch:]
        if out and self._contiguous:
            self._check_contiguous(out)
        return out

    def _check_contiguous(self, msgs: list[Any]) -> None:
        """Every delivery takes the consumer's next seq: ours must follow on."""
        first = msgs[0].metadata.sequence.consumer
        last = msgs[-1].metadata.sequence.consumer
        if first != self._delivered + 1 or last != first + len(msgs) - 1:
            raise DeliveryGap(
                f"deliveries {self._delivered + 1}..{last} of the consumer, "
                f"{len(msgs)} of them received"
            )
        self._delivered = last

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
