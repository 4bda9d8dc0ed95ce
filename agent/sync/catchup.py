"""However long a store was away, it catches up: the decision between the
three ways events reach a replica.

1. **The stream.** The consumer delivers whatever the stream still holds
   past this ledger's checkpoint (``nats.stream_max_age``); nothing to decide.
2. **The origin**, by request/reply (``repair``): a hole in an origin's seq
   is asked of that origin, which keeps all its events. Chosen whenever the
   origin is live (heard within three heartbeats).
3. **A live peer's snapshot** (``bootstrap``), merged with this store's own
   events (published or not, re-applied on top). Chosen for an origin O when
   both hold:

   - the events of O we lack are not in the stream: its first retained event
     of O is past our applied watermark + 1 (or it holds none of O);
   - O does not answer: it is not live, and a gap repair has failed.

   What we lack is learnt in two ways. At start-up, when the ledger's stream
   checkpoint is behind the stream's first message (``StreamConsumer.missed``:
   messages aged out before we applied them, or a fresh ledger) we ask a live
   peer how far it has applied each origin (the ``origins`` request): an
   origin it has further than us that is live is left to gap repair, one that
   is not is needed from a snapshot (a fresh ledger needs every origin from
   it: one snapshot beats replaying history 500 events a request). While
   running, gap repair reports an origin that does not answer
   (``origin_unreachable``).

   Our own events are needed from a snapshot when the stream no longer holds
   them and this ledger does not either (``identity``: a ledger restored from
   an older copy). Our seq then goes on above the highest seq of ours anyone
   has seen (the stream's newest, or a peer's), never reusing one; publishing
   waits for the snapshot, which also shows whether this ledger's events
   clash with what the peers saw (refused for good then, as ``identity``).

A snapshot is restored only if it holds every needed origin up to the needed
seq and is behind this ledger on no origin (``snapshot.check_fit``), so it
never takes back an event we applied; after it, the consumer replays the
stream from its start. Needs that no live peer can meet yet are tried again
every RETRY seconds.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats.errors
import nats.js.errors
import structlog

from agent.clocks import SYSTEM, Clocks
from agent.replica import OwnEventsDiffer, Replica
from agent.sync import bootstrap, subjects
from agent.sync.consumer import StreamConsumer
from agent.sync.identity import ASK_PEERS
from agent.sync.link import NatsLink
from agent.sync.presence import PeerTable

log = structlog.get_logger("agent.catchup")

# seconds between snapshot attempts that found no fitting peer: each one costs
# every live peer a VACUUM INTO and an upload
RETRY = 30.0


class CatchUp:
    def __init__(
        self,
        link: NatsLink,
        replica: Replica,
        peers: PeerTable,
        consumer: StreamConsumer,
        *,
        stream: str,
        network: str,
        timeout: float,
        clocks: Clocks = SYSTEM,
    ) -> None:
        self._clocks = clocks
        self._link = link
        self._replica = replica
        self._peers = peers
        self._consumer = consumer
        self._stream = stream
        self._network = network
        self._timeout = timeout
        self._me = replica.store_id
        self.needs: dict[str, int] = {}  # origin -> seq a snapshot must hold it up to
        self.clash: str | None = None  # our events differ from a peer's record of them
        self.restored: dict[str, Any] | None = None  # the last snapshot restored
        self._next_try = 0.0

    # ------------------------------------------------------------- start-up
    async def start(self, own_needed: int | None, missed: bool) -> None:
        """Decide at start-up (before publishing and consuming) and try once."""
        if own_needed is not None or missed:
            await self._wait_for_peers()
        if own_needed is not None and own_needed != ASK_PEERS:
            await self._need_own(own_needed)
        if own_needed == ASK_PEERS or missed:
            await self._survey(own_needed == ASK_PEERS)
        if self.needs:
            await self.attempt()

    async def _wait_for_peers(self) -> None:
        """Until a peer is heard, then one more heartbeat for the others."""
        hb = self._peers.heartbeat_interval
        deadline = self._clocks.monotonic() + 3 * hb + 1
        while self._clocks.monotonic() < deadline and not self._peers.live():
            await asyncio.sleep(0.1)
        if self._peers.live():
            await asyncio.sleep(1.5 * hb)

    async def _survey(self, own_unknown: bool) -> None:
        """Ask a live peer what it has of each origin; need what we lack of
        origins that cannot answer for themselves."""
        ours = await self._replica.origins()
        # a fresh ledger takes the whole history from one snapshot rather
        # than from each origin, 500 events a request
        fresh = not any(v["appliedSeq"] for o, v in ours.items() if o != self._me)
        for peer in self._peers.live():
            try:
                theirs = await bootstrap.ask_origins(self._link, self._network, peer, self._timeout)
            except Exception as exc:
                log.info("peer did not say what it has", peer=peer, error=str(exc))
                continue
            live = set() if fresh else set(self._peers.live())
            for origin, (applied, top) in theirs.items():
                have = ours.get(origin, {})
                if origin == self._me:
                    if top > have.get("maxSeq", 0):
                        await self._need_own(applied, top)
                elif applied > have.get("appliedSeq", 0):
                    if origin in live:  # gap repair asks it
                        p = self._peers.peer(origin)
                        p.known_seq = max(p.known_seq, top)
                    else:
                        self.needs[origin] = applied
            return
        if own_unknown:
            log.warning("no live peer says how far our seq got; going on from this ledger")

    async def _need_own(self, seq: int, top: int = 0) -> None:
        """Our events up to ``seq`` are needed; ``top`` is the highest seq of
        ours a peer has seen. Our next event is numbered above both at once,
        before any local write can take one of them."""
        self.needs[self._me] = max(self.needs.get(self._me, 0), seq)
        await self._replica.reserve_own(max(seq, top))

    @property
    def blocked(self) -> str | None:
        """Why our events must not be published (yet), or None."""
        if self.clash:
            return self.clash
        if self._me in self.needs:
            return (
                f"events of {self._me} up to seq {self.needs[self._me]} are lost to the stream "
                "and to this ledger; waiting for a live peer's snapshot before publishing "
                "(see docs/OPERATIONS.md, Catching up)"
            )
        return None

    # --------------------------------------------------------------- running
    async def origin_unreachable(self, origin: str, applied: int, known: int) -> None:
        """Gap repair could not get ``origin``'s events applied+1..known from
        it, and it is not live: need them from a snapshot if the stream has
        them no more."""
        if self.needs.get(origin, 0) >= known:
            return
        try:
            first = await self.first_retained(origin)
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
            # the stream itself is out of reach now: decide on the next hole
            log.info("stream not reachable to judge a hole", origin=origin, error=str(exc))
            return
        if first is not None and first <= applied + 1:
            return  # still in the stream: the consumer will bring them
        log.warning(
            "events aged out and their origin does not answer; a peer's snapshot is needed",
            origin=origin,
            applied=applied,
            known=known,
            first_retained=first,
        )
        self.needs[origin] = known

    async def first_retained(self, origin: str) -> int | None:
        """The seq of the oldest event of ``origin`` the stream still holds."""
        try:
            msg = await self._link.js.get_msg(
                self._stream, seq=1, subject=subjects.events(self._network, origin), next=True
            )
        except nats.js.errors.NotFoundError:
            return None
        try:
            return int(json.loads(msg.data)["seq"])
        except (ValueError, KeyError, TypeError):
            return None  # not an event: judge by the watermark alone

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.needs and self._link.connected and self._clocks.monotonic() >= self._next_try:
                await self.attempt()

    async def attempt(self) -> None:
        """Restore the first live peer's snapshot that meets every need."""
        need = dict(self.needs)
        try:
            result = await bootstrap.run(
                self._link, self._replica, self._peers, self._network, need
            )
        except OwnEventsDiffer as exc:
            self.clash = (
                f"{exc}: another agent uses this store id, or this ledger was restored from "
                "an old copy and written to since; not publishing (see docs/OPERATIONS.md)"
            )
            log.error("identity conflict", detail=self.clash)
            self.needs.pop(self._me, None)
            return
        if result is None:
            self._next_try = self._clocks.monotonic() + RETRY
            log.info("no live peer's snapshot meets the need yet; will retry", need=need)
            return
        for origin, seq in need.items():
            if self.needs.get(origin) == seq:
                del self.needs[origin]
        self.restored = result
        self._peers.applied = await self._replica.origins()
        self._consumer.rewind()
        self._replica.outbox.set()
