"""``inv-hq status``: how far HQ is, from PostgreSQL, plus what the stream
still holds for it when NATS is reachable.

Per store: the contiguous applied seq and the highest seq HQ has of it, the
time of its last event and the lag (seconds since then), and the events
pending (the stream's newest seq of that store minus HQ's applied seq).
Overall: the checkpoint, events/s over the last minute, the consumer's
pending count, and who holds the projector lock.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats.js.errors
import structlog

from agent.sync import subjects

log = structlog.get_logger("agent.hq")

LOOKUPS_AT_ONCE = 32  # the stream's last message per store, asked concurrently


@dataclass(frozen=True)
class PgPart:
    """What PostgreSQL says (read by the caller from the read model)."""

    checkpoint: int
    watermarks: dict[str, tuple[int, int]]  # origin -> (applied, max seq)
    last_event_ms: dict[str, int]  # origin -> wall ms of its last event
    events_last_minute: int
    projector: dict[str, Any] | None  # the lock's holder


@dataclass(frozen=True)
class NatsPart:
    pending: int | None  # the consumer's num_pending (None: no such consumer)
    newest: dict[str, int]  # store -> its newest seq in the stream


async def read_nats(
    js: Any, stream: str, durable: str, network: str, stores: list[str]
) -> NatsPart:
    """The consumer's pending count and each store's newest seq in the stream."""
    try:
        pending: int | None = int(
            (await js.consumer_info(stream, durable, timeout=2)).num_pending or 0
        )
    except Exception:
        log.warning("consumer info not read", exc_info=True)  # shown as unknown
        pending = None
    gate = asyncio.Semaphore(LOOKUPS_AT_ONCE)

    async def newest(store: str) -> tuple[str, int | None]:
        async with gate:
            try:
                msg = await js.get_last_msg(stream, subjects.events(network, store))
                return store, int(json.loads(msg.data)["seq"])
            except nats.js.errors.NotFoundError:
                return store, 0
            except Exception:
                log.warning("newest event of a store not read", store=store, exc_info=True)
                return store, None

    found = await asyncio.gather(*(newest(s) for s in stores))
    return NatsPart(pending, {s: seq for s, seq in found if seq is not None})


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def report(
    pg: PgPart, nats_part: NatsPart | None, *, schema: str, network: str, now_ms: int
) -> dict[str, Any]:
    """The status (the shape of ``inv-hq status --json``)."""
    stores = []
    for origin in sorted(pg.watermarks):
        applied, top = pg.watermarks[origin]
        last = pg.last_event_ms.get(origin)
        newest = nats_part.newest.get(origin) if nats_part else None
        stores.append(
            {
                "storeId": origin,
                "appliedSeq": applied,
                "maxSeq": top,
                "pending": max(0, max(newest, top) - applied) if newest is not None else None,
                "lastEventAt": iso(last),
                "lagSeconds": round(max(0, now_ms - last) / 1000, 1) if last else None,
            }
        )
    last_any = max(pg.last_event_ms.values(), default=None)
    return {
        "schema": schema,
        "network": network,
        "checkpoint": pg.checkpoint,
        "projector": pg.projector,
        "pending": nats_part.pending if nats_part else None,
        "nats": nats_part is not None,
        "eventsPerSecond": round(pg.events_last_minute / 60, 1),
        "lastEventAt": iso(last_any),
        "stores": stores,
    }
