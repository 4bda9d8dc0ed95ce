"""Gap repair at HQ: a seq of an origin that HQ lacks is asked of the origin
itself, which keeps all its events, by the agents' own request/reply op
``events`` (``agent.sync.rpc``), as agents repair their own gaps
(``agent.sync.repair``).

What HQ lacks of an origin: the holes below the highest seq it has of it
(``Projector.holes``), and the seqs past that which the origin's heartbeats
announce (lost at the tail: aged out of the stream, or lost by it). A hole is
asked for once it has lasted ``GAP_PATIENCE`` while the stream has nothing
more to deliver (events in flight close most holes by themselves); an origin
that does not answer is asked again later, waiting twice as long each time
up to ``MAX_BACKOFF``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog

from agent.clocks import SYSTEM, Clocks
from agent.hq.sink import Sink
from agent.sync import rpc, subjects, validate
from agent.sync.link import NatsLink
from agent.sync.presence import PeerTable

log = structlog.get_logger("agent.hq")

GAP_PATIENCE = 1.0  # seconds
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
PER_REQUEST = 500  # what an agent serves of its events per request


class Repair:
    def __init__(
        self,
        link: NatsLink,
        sink: Sink,
        peers: PeerTable,
        *,
        network: str,
        timeout: float,
        max_skew_ms: int,
        idle: Callable[[], bool],
        clocks: Clocks = SYSTEM,
    ) -> None:
        """``peers``: the heartbeats heard (each origin's newest seq in the
        stream); ``idle``: the stream has nothing more for us right now."""
        self._link = link
        self._sink = sink
        self._peers = peers
        self._network = network
        self._timeout = timeout
        self._max_skew_ms = max_skew_ms
        self._idle = idle
        self._clocks = clocks
        self._since: dict[str, float] = {}  # origin -> when its gap was first seen
        self._not_before: dict[str, float] = {}  # origin -> next ask (backing off)
        self._delay: dict[str, float] = {}
        self.repaired = 0  # events applied from origins

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._link.connected and self._idle():
                await self.check()

    async def wanted(self) -> dict[str, list[int]]:
        """Per origin, the seqs HQ lacks (up to one request's worth)."""
        out = {o: list(seqs) for o, seqs in (await self._sink.holes(PER_REQUEST)).items() if seqs}
        marks = await self._sink.watermarks()
        for origin, peer in self._peers.peers.items():
            top = marks.get(origin, (0, 0))[1]
            if peer.known_seq > top:
                tail = range(top + 1, min(peer.known_seq, top + PER_REQUEST) + 1)
                out[origin] = sorted({*out.get(origin, ()), *tail})[:PER_REQUEST]
        return out

    async def check(self) -> None:
        """Ask the origin of every gap that has lasted long enough."""
        wanted = await self.wanted()
        now = self._clocks.monotonic()
        for origin in list(self._since):
            if origin not in wanted:  # healed
                for state in (self._since, self._not_before, self._delay):
                    state.pop(origin, None)
        for origin, seqs in wanted.items():
            since = self._since.setdefault(origin, now)
            if now - since >= GAP_PATIENCE and now >= self._not_before.get(origin, 0.0):
                await self.repair(origin, seqs)

    async def repair(self, origin: str, seqs: list[int]) -> bool:
        """Ask ``origin`` for ``seqs`` (one request: the range they span) and
        apply what it sends: did it answer with any?"""
        try:
            msg = await self._link.nc.request(
                subjects.rpc(self._network, origin, "events"),
                json.dumps({"from": seqs[0], "to": seqs[-1]}).encode(),
                timeout=self._timeout,
            )
            _, body = rpc.parse_reply(msg.data)
            raw = body.get("events", []) if isinstance(body, dict) else []
        except Exception as exc:
            self._back_off(origin, f"{exc or exc.__class__.__name__}")
            return False
        subject = subjects.events(self._network, origin)
        items = [(subject, json.dumps(e).encode()) for e in raw]
        events, rejected = validate.sort(items, self._clocks.wall_ms(), self._max_skew_ms)
        outcome = await self._sink.apply(events, rejected)
        self.repaired += outcome.applied
        if not outcome.applied:
            # it answered, with nothing new (held back again, or no longer in
            # its ledger): asked again later, not in a loop
            self._back_off(origin, "nothing new from the origin")
            return False
        self._delay.pop(origin, None)
        log.info(
            "gap repaired from the origin",
            origin=origin,
            first=seqs[0],
            last=seqs[-1],
            applied=outcome.applied,
            duplicates=outcome.duplicates,
            quarantined=outcome.quarantined,
        )
        return True

    def _back_off(self, origin: str, error: str) -> None:
        delay = min(self._delay.get(origin, FIRST_BACKOFF / 2) * 2, MAX_BACKOFF)
        self._delay[origin] = delay
        self._not_before[origin] = self._clocks.monotonic() + delay
        log.info("gap repair failed; will retry", origin=origin, error=error, retry_in=delay)
