"""Held-back events tried again, as agents do (``Replicator.release_held_back``).

An event of a newer schema than this build knows, or stamped further ahead of
our clock than ``max_clock_skew``, is quarantined with its batch (the
projector keeps it in HQ's quarantine table, and its seq is no hole for gap
repair). Every ``RETRY`` seconds the held ones are checked again with the
agents' validation; those that pass now (HQ upgraded, the clock caught up)
are applied and released from the quarantine in one transaction.
"""

from __future__ import annotations

import json

import structlog

from agent.clocks import SYSTEM, Clocks
from agent.hq.sink import Sink
from agent.sync import subjects, validate

log = structlog.get_logger("agent.hq")

RETRY = 10.0  # seconds


async def release(sink: Sink, *, network: str, max_skew_ms: int, clocks: Clocks = SYSTEM) -> int:
    """Apply the held-back events that pass the checks now: how many."""
    ready, ids = [], []
    now = clocks.wall_ms()
    for qid, body in await sink.held_back():
        try:
            origin = str(json.loads(body).get("origin"))
        except (ValueError, AttributeError):
            continue  # kept cut at 64 KiB, or not an object: stays listed
        checked = validate.check(subjects.events(network, origin), body.encode(), now, max_skew_ms)
        if not isinstance(checked, validate.Rejected):
            ready.append(checked)
            ids.append(qid)
    if ready:
        outcome = await sink.apply(ready, released=ids)
        log.info("held-back events applied", count=len(ready), applied=outcome.applied)
    return len(ready)
