"""The ledger as replication sees it: the one narrow interface ``agent.sync``
(and any other process that replicates, such as a projector) uses.

Everything a publisher, consumer, gap repair or bootstrap needs from this
store's ledger is a method here; none of them reaches into the ledger's
store, engine or clock. Receiving an event advances this store's HLC (so a
later local write is stamped after it) before the event is written.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from agent.ledger import queries, replication, snapshot
from agent.ledger.engine import Engine
from agent.ledger.local import Ledger
from agent.ledger.replication import StreamPosition
from agent.ledger.snapshot import OwnEventsDiffer, SnapshotUnfit
from agent.ledger.store import DryRun

__all__ = ["Applied", "OwnEventsDiffer", "Replica", "SnapshotUnfit", "StreamPosition"]


class Replica:
    def __init__(self, ledger: Ledger, *, outbox: asyncio.Event, snapshot_dir: Path) -> None:
        """``outbox`` is set when there may be something new to publish (the
        service sets it on every write); ``snapshot_dir`` is where snapshot
        files are made and received (under the data dir, owner only)."""
        self.store_id = ledger.store_id
        self.outbox = outbox
        self.snapshot_dir = snapshot_dir
        self._store = ledger.store
        self._engine = ledger.engine
        self._clock = ledger.clock

    # --------------------------------------------------------------- outbox
    def unpublished(self, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` unpublished events of ours: (seq, JSON).

        Read on the event loop: a range of the outbox index is quicker than a
        hop to the read pool, and no slower than publishing what it returns."""
        return self._store.read_here(replication.unpublished, self.store_id, limit)

    async def mark_published(self, seqs: list[int]) -> None:
        # lost in a power cut, they are published again (and deduplicated)
        await self._store.write_lazy(replication.mark_published, self.store_id, seqs)

    async def published_seq(self) -> int:
        return await self._store.read(replication.published_seq, self.store_id)

    async def outbox_backlog(self) -> int:
        return await self._store.read(queries.outbox_backlog, self.store_id)

    # ------------------------------------------------------------ own events
    async def own_seq_hlcs(self) -> dict[int, int]:
        return await self._store.read(replication.own_seq_hlcs, self.store_id)

    async def own_events(self, first: int, last: int) -> list[str]:
        """Our own events in a seq range (JSON), for a peer repairing a gap."""
        return await self._store.read(replication.own_events, self.store_id, first, last)

    async def recover_own(self, events: list[dict[str, Any]]) -> int:
        """Take back our own events from the stream (a ledger restored from an
        older copy): they were acknowledged to someone once."""
        for event in events:
            self._clock.observe(event["hlc"])
        n = await self._store.write(replication.recover_own, self._engine, events)
        self.outbox.set()
        return n

    async def reserve_own(self, seq: int) -> None:
        """Number our next event above ``seq``: seqs of ours up to it were seen
        by someone, even if this ledger does not hold them (yet)."""
        await self._store.write(replication.reserve_own, self.store_id, seq)

    # ---------------------------------------------------------- peer events
    async def apply(
        self,
        events: list[dict[str, Any]],
        rejected: list[dict[str, Any]],
        position: StreamPosition | None = None,
    ) -> Applied:
        """Apply validated peer events and quarantine rejected ones, in one
        transaction (which also moves the stream checkpoint to ``position``,
        for a batch read from the stream). Applying a peer's event writes no
        event of ours unless it takes this store's stock across a reorder
        point (a peer's movement of our stock, a setting made elsewhere):
        only then is the publisher woken.

        A batch read from the stream commits without an fsync of its own: a
        power cut that takes it back takes its checkpoint back with it, and
        the consumer reads it again (the next durable commit carries it to
        the disk; the WAL is written in order). Not so a batch that wrote
        events of ours (alerts): they are published, and must never be lost
        after that: such a batch is undone and applied again, durably."""
        for event in events:
            self._clock.observe(event["hlc"])
        applied: Applied | None = None
        if position is not None:
            applied = await self._store.write_lazy(
                _apply_batch_unless_raised, self._engine, events, rejected, position
            )
        if applied is None:
            applied = await self._store.write(
                _apply_batch, self._engine, events, rejected, position
            )
        if applied.raised:
            self.outbox.set()
        return applied

    async def stream_position(self, stream: str) -> StreamPosition | None:
        """How far this ledger has read ``stream`` (None: never)."""
        return await self._store.read(replication.stream_position, stream)

    async def set_stream_position(self, position: StreamPosition) -> None:
        """Set the checkpoint where it must be (a rewind, a new stream, the
        ack floor an older agent's durable consumer had)."""
        await self._store.write(replication.set_stream_position, position)

    async def origins(self) -> dict[str, dict[str, Any]]:
        """Per origin: appliedSeq (contiguous), maxSeq, lastHlc."""
        return await self._store.read(replication.origins)

    async def missing(self, origin: str, known_max: int) -> list[int]:
        return await self._store.read(replication.missing, origin, known_max)

    async def held_back(self) -> list[tuple[int, str]]:
        """Events quarantined for a newer schema: (quarantine id, JSON)."""
        return await self._store.read(replication.held_back)

    async def release(self, ids: list[int]) -> None:
        await self._store.write(replication.release, ids)

    async def quarantine_list(self, limit: int) -> list[dict[str, Any]]:
        return await self._store.read(replication.quarantine_list, limit)

    async def quarantine_count(self) -> int:
        return await self._store.read(replication.quarantine_count)

    async def digests(self) -> dict[str, str]:
        return await self._store.read(queries.digests)

    # ------------------------------------------------------------- snapshots
    async def write_snapshot(self, target: Path) -> None:
        """A consistent copy of the whole ledger at ``target``."""
        await asyncio.to_thread(snapshot.write_snapshot, self._store.path, target)

    async def restore_snapshot(
        self, path: Path, need: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Replace the replicated state with a peer's snapshot, our own events
        kept on top (see ``snapshot.restore``; ``need``: what it must hold)."""
        result = await self._store.write_attached(path, snapshot.restore, self._engine, need)
        self._clock.observe(result["maxHlc"])
        self.outbox.set()
        return result


class Applied(NamedTuple):
    """What one batch of peers' events did."""

    counts: dict[str, int]  # {"applied", "duplicates", "quarantined"}
    # the batch's origins as the ledger now has them (``Replica.origins``'s
    # entries): read in the same transaction, not by another trip to the ledger
    origins: dict[str, dict[str, Any]]
    raised: bool  # it wrote events of ours (alerts): something to publish


def _apply_batch(
    conn: sqlite3.Connection,
    engine: Engine,
    events: list[dict[str, Any]],
    rejected: list[dict[str, Any]],
    position: StreamPosition | None,
) -> Applied:
    before = engine.next_seq(conn)
    counts = replication.apply_batch(conn, engine, events, rejected, position)
    raised = engine.next_seq(conn) != before
    touched = {e["origin"] for e in events} | ({engine.store_id} if raised else set())
    return Applied(counts, replication.origins(conn, touched), raised)


def _apply_batch_unless_raised(conn: sqlite3.Connection, *args: Any) -> Applied | None:
    """``_apply_batch`` (same arguments), undone (None) if it wrote events of ours."""
    applied = _apply_batch(conn, *args)
    if applied.raised:
        raise DryRun(None)
    return applied
