"""Gap repair: an origin's seq with a hole (lost, aged out of the stream, or a
consumer that started after the stream's first event) is fetched from the
origin itself, which keeps all its events, by request/reply. An origin that
does not answer and is not live is reported to ``catchup``, which restores a
peer's snapshot when the stream no longer holds the events either."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from agent.clocks import SYSTEM, Clocks
from agent.replica import Replica
from agent.sync import rpc, subjects, validate
from agent.sync.link import NatsLink
from agent.sync.presence import PeerTable

log = structlog.get_logger("agent.sync")

# how long a hole must last before it is asked for: events in flight close
# most holes by themselves within a fetch or two
GAP_PATIENCE = 1.0
# a peer we have never applied anything of, but which announced events
UNKNOWN_PATIENCE = 2.0

Apply = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Awaitable[dict[str, int]]]
# (origin, applied seq, known seq): the origin did not answer and is not live
Unreachable = Callable[[str, int, int], Awaitable[None]]


async def _nobody(origin: str, applied: int, known: int) -> None:
    """No one to tell (a process that only follows the stream)."""


class GapRepair:
    def __init__(
        self,
        link: NatsLink,
        replica: Replica,
        peers: PeerTable,
        apply: Apply,
        *,
        network: str,
        timeout: float,
        max_skew_ms: int,
        consumer_idle: Callable[[], bool],
        clocks: Clocks = SYSTEM,
        unreachable: Unreachable = _nobody,
    ) -> None:
        """``consumer_idle``: the stream has nothing more for us right now (a
        hole seen while it is still delivering is usually not one)."""
        self._unreachable = unreachable
        self._link = link
        self._replica = replica
        self._peers = peers
        self._apply = apply
        self._network = network
        self._timeout = timeout
        self._max_skew_ms = max_skew_ms
        self._idle = consumer_idle
        self._clocks = clocks

    async def run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._link.connected and self._idle():
                await self.check()

    async def check(self) -> None:
        """Ask the origins of every hole that has lasted long enough."""
        me = self._replica.store_id
        for origin, info in list(self._peers.applied.items()):
            if origin == me:
                continue
            peer = self._peers.peer(origin)
            known = max(info["maxSeq"], peer.known_seq)
            if info["appliedSeq"] >= known:
                peer.gap_since = None
            elif peer.gap_since is None:
                peer.gap_since = self._clocks.monotonic()
            elif self._clocks.monotonic() - peer.gap_since >= GAP_PATIENCE:
                await self._repair_or_report(origin, info["appliedSeq"], known)
        for store, peer in list(self._peers.peers.items()):
            if store in self._peers.applied or peer.known_seq <= 0 or not self._idle():
                continue
            if peer.gap_since is None:
                peer.gap_since = self._clocks.monotonic()
            elif self._clocks.monotonic() - peer.gap_since >= UNKNOWN_PATIENCE:
                await self._repair_or_report(store, 0, peer.known_seq)

    async def _repair_or_report(self, origin: str, applied: int, known: int) -> None:
        if not await self.repair(origin, known) and origin not in self._peers.live():
            await self._unreachable(origin, applied, known)

    async def repair(self, origin: str, known: int) -> bool:
        """Ask ``origin`` for its events we lack up to ``known``: did it answer?"""
        seqs = await self._replica.missing(origin, known)
        if not seqs:
            return True
        try:
            msg = await self._link.nc.request(
                subjects.rpc(self._network, origin, "events"),
                json.dumps({"from": seqs[0], "to": seqs[-1]}).encode(),
                timeout=self._timeout,
            )
            _, body = rpc.parse_reply(msg.data)
        except Exception as exc:
            # the origin is away or slow: the next check asks again
            self._link.last_error = f"gap repair from {origin}: {exc or exc.__class__.__name__}"
            log.info("gap repair failed; will retry", origin=origin, error=str(exc))
            return False
        subject = subjects.events(self._network, origin)
        items = [(subject, json.dumps(raw).encode()) for raw in body.get("events", [])]
        events, rejected = validate.sort(items, self._clocks.wall_ms(), self._max_skew_ms)
        result = await self._apply(events, rejected)
        log.info("gap repaired", origin=origin, first=seqs[0], last=seqs[-1], **result)
        self._peers.peer(origin).gap_since = None
        return True
