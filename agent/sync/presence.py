"""What this agent knows of its peers: their heartbeats, and how far it has
applied each one's events. Shared by the consumer (which updates the applied
watermarks), gap repair, bootstrap, sync status, and the service (whose
availability answers say how fresh each store's numbers are)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import structlog

from agent import hlc
from agent.clocks import SYSTEM, Clocks
from agent.metrics import Metrics
from agent.replica import Replica
from agent.sync import subjects
from agent.sync.link import NatsLink

log = structlog.get_logger("agent.sync")
MAX_SEQ = 2**62  # as validate.MAX_INT


@dataclass
class Peer:
    store_id: str
    last_heartbeat_ms: int = 0
    known_seq: int = 0  # the peer's own newest seq, from its heartbeat
    last_delay_ms: float | None = None
    gap_since: float | None = None


class PeerTable:
    def __init__(
        self, store_id: str, heartbeat_interval: float, *, clocks: Clocks = SYSTEM
    ) -> None:
        self.store_id = store_id
        self.clocks = clocks
        self.heartbeat_interval = heartbeat_interval
        self.peers: dict[str, Peer] = {}
        # per origin: appliedSeq, maxSeq, lastHlc (replication.origins), kept
        # current by whoever applies events
        self.applied: dict[str, dict[str, Any]] = {}

    def peer(self, store: str) -> Peer:
        return self.peers.setdefault(store, Peer(store))

    def heard(self, subject: str, data: bytes) -> None:
        """A heartbeat arrived; one that is ours, malformed or sent on
        another store's subject is ignored."""
        try:
            beat = json.loads(data)
            store = str(beat["storeId"])
            seq = beat.get("seq", 0)
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        # a seq that is not a plain integer in range is malformed: int() of
        # Infinity raises OverflowError, and a huge one would reach SQLite
        # in gap repair ("Python int too large to convert")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
            return
        if store == self.store_id or subjects.store_of(subject) != store:
            return
        peer = self.peer(store)
        peer.last_heartbeat_ms = self.clocks.wall_ms()
        peer.known_seq = max(peer.known_seq, seq)

    @property
    def stale_after_ms(self) -> float:
        return self.heartbeat_interval * 3 * 1000

    def live(self) -> list[str]:
        """Peers heard from recently, most recent first."""
        stale = self.clocks.wall_ms() - self.stale_after_ms
        live = [p for p in self.peers.values() if p.last_heartbeat_ms >= stale]
        return [p.store_id for p in sorted(live, key=lambda p: -p.last_heartbeat_ms)]

    def freshness(self) -> dict[str, int]:
        """For each peer store: up to when this replica's view of it is known
        complete (its last heartbeat, if we have applied all it announced)."""
        out: dict[str, int] = {}
        for store, peer in self.peers.items():
            applied = self.applied.get(store, {})
            if peer.last_heartbeat_ms and applied.get("appliedSeq", 0) >= peer.known_seq:
                out[store] = peer.last_heartbeat_ms
            elif applied.get("lastHlc"):
                out[store] = hlc.wall_ms(applied["lastHlc"])
        return out


class Heartbeats:
    """Announces this store every ``interval`` seconds: its id and the newest
    seq of ours that is in the stream (peers learn of a gap from it)."""

    def __init__(
        self,
        link: NatsLink,
        replica: Replica,
        metrics: Metrics,
        network: str,
        interval: float,
        *,
        clocks: Clocks = SYSTEM,
    ) -> None:
        self._clocks = clocks
        self._link = link
        self._replica = replica
        self._metrics = metrics
        self._subject = subjects.heartbeat(network, replica.store_id)
        self._interval = interval

    async def run(self) -> None:
        while True:
            if self._link.connected:
                await self.beat()
            await asyncio.sleep(self._interval)

    async def beat(self) -> None:
        seq = await self._replica.published_seq()
        beat = {"storeId": self._replica.store_id, "seq": seq, "at": self._clocks.wall_ms()}
        try:
            await self._link.nc.publish(self._subject, json.dumps(beat).encode())
        except Exception as exc:
            # the link may have dropped since we looked: counted, and tried
            # again at the next beat
            self._metrics.sync_failures.labels("heartbeat").inc()
            log.warning("heartbeat not sent", error=str(exc), exc_info=True)
