"""The bus, simulated with JetStream's semantics, and request/reply.

One hub (the NATS server) holds the stream. Every store is linked to it in
both directions, each of which can be cut on its own (a partition can be
asymmetric). What is modelled, because the agents must survive it:

- publishing: the message reaches the hub after a delay, or is lost; a stored
  message is deduplicated by ``Nats-Msg-Id`` only within the duplicate window;
  the PubAck can be lost although the message was stored;
- the stream drops messages older than its max age;
- each store's consumer, ephemeral and AckNone, made by the agent at its
  ledger's checkpoint: messages are delivered in stream order past it and
  never again; a delivery can be lost (the agent sees the gap at its next
  fetch), and the consumer can vanish (a hub restart, an operator): either
  way the agent makes it again at its checkpoint;
- request/reply (forwarding, gap repair): no responders when the target has
  no connection, a timeout when a leg is lost or slow; a reply that comes
  after the asker gave up reaches nobody;
- heartbeats, delivered to whoever is connected.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.js import api

from tests.sim.loop import SimFuture, World

DUPLICATE_WINDOW_MS = 120_000


@dataclass
class Faults:
    """Rates drawn per seed (swarm testing): most seeds have a few of them high."""

    delay_ms: tuple[int, int] = (1, 5)
    publish_loss: float = 0.0
    puback_loss: float = 0.0
    delivery_loss: float = 0.0  # a fetched batch that never arrives (the agent starts again)
    rpc_loss: float = 0.0  # per leg
    rpc_slow: float = 0.0  # a leg that takes longer than the asker waits
    max_age_ms: int = 0  # 0: the stream keeps everything
    stream_loss: float = 0.0  # the hub forgets its newest messages (lazy fsync, power loss)


@dataclass
class Stored:
    seq: int
    subject: str
    data: bytes
    msg_id: str
    at: int


@dataclass
class Consumer:
    """A store's ephemeral AckNone consumer: nothing acked, nothing redelivered."""

    delivered: int  # the last stream seq handed out (its start - 1 when made)
    gap: bool = False  # a delivery never reached the agent: its next fetch shows it


@dataclass(frozen=True)
class _Sequence:
    stream: int


@dataclass(frozen=True)
class _Metadata:
    sequence: _Sequence


class SimMsg:
    """A fetched message, as ``StreamConsumer.handle`` reads it."""

    def __init__(self, stored: Stored) -> None:
        self.subject = stored.subject
        self.data = stored.data
        self.headers = {"Nats-Msg-Id": stored.msg_id}
        self.metadata = _Metadata(_Sequence(stored.seq))


@dataclass
class Hub:
    world: World
    faults: Faults
    messages: list[Stored] = field(default_factory=list)
    last_seq: int = 0
    dedup: dict[str, int] = field(default_factory=dict)  # msg id -> when stored
    consumers: dict[str, Consumer] = field(default_factory=dict)
    up: dict[str, bool] = field(default_factory=dict)  # store -> hub reachable
    down: dict[str, bool] = field(default_factory=dict)  # hub -> store reachable
    responders: dict[str, Callable[[str, bytes, Callable[[bytes], None]], None]] = field(
        default_factory=dict
    )
    listeners: dict[str, Callable[[str, bytes], None]] = field(default_factory=dict)
    on_stored: Callable[[str, bytes], None] | None = None

    # --------------------------------------------------------------- links
    def delay(self) -> int:
        lo, hi = self.faults.delay_ms
        return self.world.rng.randint(lo, hi)

    def lost(self, rate: float) -> bool:
        return rate > 0 and self.world.rng.random() < rate

    def connected(self, store: str) -> bool:
        return self.up.get(store, False) and self.down.get(store, False)

    # ------------------------------------------------------------- publish
    def publish(self, store: str, subject: str, data: bytes, msg_id: str) -> SimFuture:
        """A JetStream publish; the future settles with a PubAck, or never
        (the publisher gives up after its own timeout)."""
        fut = SimFuture()
        if not self.up.get(store) or self.lost(self.faults.publish_loss):
            return fut

        def arrive() -> None:
            seq, duplicate = self._store_message(subject, data, msg_id)
            if self.down.get(store) and not self.lost(self.faults.puback_loss):
                ack = api.PubAck(stream="INVENTORY", seq=seq, duplicate=duplicate)
                self.world.at(self.delay(), lambda: fut.set_result(ack))

        self.world.at(self.delay(), arrive)
        return fut

    def _store_message(self, subject: str, data: bytes, msg_id: str) -> tuple[int, bool]:
        now = self.world.now
        self.expire()
        seen = self.dedup.get(msg_id)
        if seen is not None and now - seen <= DUPLICATE_WINDOW_MS:
            return 0, True
        self.last_seq += 1
        self.messages.append(Stored(self.last_seq, subject, data, msg_id, now))
        self.dedup[msg_id] = now
        self.world.note("stored", msg_id, self.last_seq)
        if self.on_stored is not None:
            self.on_stored(msg_id, data)
        return self.last_seq, False

    def expire(self) -> None:
        if self.faults.max_age_ms:
            cut = self.world.now - self.faults.max_age_ms
            while self.messages and self.messages[0].at < cut:
                self.messages.pop(0)

    def lose_newest(self, n: int) -> None:
        """The hub restarts without its last ``n`` messages (they were acked
        before they reached its disk). Its sequence goes on from the last kept."""
        if n and self.messages:
            del self.messages[-n:]
            self.last_seq = self.messages[-1].seq if self.messages else self.last_seq
            self.consumers.clear()  # in memory: gone with the restart
            self.world.note("hub lost", n)

    # ------------------------------------------------------------ consume
    def create_consumer(self, store: str, checkpoint: int) -> None:
        """Made (again) by the agent: deliveries start past ``checkpoint``."""
        self.consumers[store] = Consumer(delivered=checkpoint)

    def lost_place(self, store: str) -> bool:
        """The agent's next fetch would find its consumer gone (a 503, a 409)
        or a delivery missing (a consumer-seq gap): it must make it again."""
        c = self.consumers.get(store)
        return c is None or c.gap

    def message_at(self, seq: int) -> Stored | None:
        """The kept message at a stream seq (the agent checks its checkpoint's;
        the checker, at every commit: found by bisection, the stream being in
        seq order)."""
        self.expire()
        i = bisect.bisect_left(self.messages, seq, key=lambda m: m.seq)
        return self.messages[i] if i < len(self.messages) and self.messages[i].seq == seq else None

    def fetch(self, store: str, batch: int) -> list[SimMsg] | None:
        """The next batch for ``store``'s consumer (None: nothing, or cut)."""
        if not self.connected(store):
            return None
        self.expire()
        c = self.consumers.get(store)
        if c is None or c.gap:
            return None
        msgs = [m for m in self.messages if m.seq > c.delivered][:batch]
        if not msgs:
            return None
        c.delivered = msgs[-1].seq
        if self.lost(self.faults.delivery_loss):
            c.gap = True
            return None
        return [SimMsg(m) for m in msgs]

    def restart_consumer(self, store: str) -> None:
        """The consumer is gone (its server restarted, an operator deleted it)."""
        self.consumers.pop(store, None)

    # -------------------------------------------------------- request/reply
    def request(self, asker: str, target: str, op: str, data: bytes, timeout_ms: int) -> SimFuture:
        fut = SimFuture()

        def give_up() -> None:
            fut.set_exception(nats.errors.TimeoutError())

        self.world.at(timeout_ms, give_up)
        if not self.up.get(asker):
            return fut
        if not self.connected(target) or target not in self.responders:
            # the hub knows at once that nobody is subscribed there
            self.world.at(self.delay(), lambda: fut.set_exception(nats.errors.NoRespondersError()))
            return fut
        slow = timeout_ms + 1 if self.lost(self.faults.rpc_slow) else 0
        if self.lost(self.faults.rpc_loss):
            return fut

        def deliver() -> None:
            handler = self.responders.get(target)
            if handler is None or not self.down.get(target):
                return

            def reply(body: bytes) -> None:
                if not self.up.get(target) or self.lost(self.faults.rpc_loss):
                    return
                if self.down.get(asker):
                    self.world.at(self.delay(), lambda: fut.set_result(_Reply(body)))

            handler(op, data, reply)

        self.world.at(self.delay() + slow, deliver)
        return fut

    # ----------------------------------------------------------- heartbeats
    def broadcast(self, sender: str, subject: str, data: bytes) -> None:
        if not self.up.get(sender):
            return
        for store, listen in list(self.listeners.items()):
            if store != sender and self.down.get(store):
                self.world.at(self.delay(), lambda listen=listen: listen(subject, data))


@dataclass
class _Reply:
    data: bytes


class SimNc:
    """The core NATS client as ``NatsForwarder``, ``GapRepair`` and ``Heartbeats`` use it."""

    def __init__(self, hub: Hub, store: str, network: str) -> None:
        self._hub, self._store, self._net = hub, store, network

    async def request(self, subject: str, payload: bytes, timeout: float) -> _Reply:
        # inv.<net>.rpc.<store>.<op>; an op may have dots of its own (transfer.ship)
        parts = subject.split(".", 4)
        target, op = parts[3], parts[4]
        result: _Reply = await self._hub.request(
            self._store, target, op, payload, int(timeout * 1000)
        )
        return result

    async def publish(self, subject: str, payload: bytes) -> None:
        if not self._hub.up.get(self._store):
            raise nats.errors.ConnectionClosedError()
        self._hub.broadcast(self._store, subject, payload)


class SimJs:
    """The JetStream calls ``agent.sync.catchup`` makes: the oldest retained
    message of a subject (gap repair asks it when an origin does not answer)."""

    def __init__(self, hub: Hub, store: str) -> None:
        self._hub, self._store = hub, store

    async def get_msg(self, stream: str, seq: int, subject: str, next: bool = True) -> Stored:
        if not self._hub.up.get(self._store):
            raise nats.errors.TimeoutError()
        self._hub.expire()
        for m in self._hub.messages:
            if m.seq >= seq and m.subject == subject:
                return m
        raise nats.js.errors.NotFoundError()


class SimLink:
    """What ``agent.sync`` reads of ``NatsLink``: connected, nc, last_error."""

    def __init__(self, hub: Hub, store: str, network: str) -> None:
        self._hub, self._store = hub, store
        self.nc = SimNc(hub, store, network)
        self.js = SimJs(hub, store)
        self.last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self._hub.connected(self._store)

    def server(self) -> str | None:
        return "nats://hub:4222" if self.connected else None
