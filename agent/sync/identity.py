"""Before publishing anything: is the stream's history of this store the
ledger's? A ledger restored from an older backup takes back the newer events
the stream holds of it (they were acknowledged to someone once); a stream
whose events differ from the ledger's at the same seq (another node runs with
this store id, or this ledger was written to after a restore) would make
event ids name two different events, so publishing is refused, and said.

Events of ours that aged out of the stream are no reason to refuse: if the
ledger has them, there is nothing to do; if it does not (restored from an
older copy, and the stream has moved on), our seq goes on above the newest
the stream holds, and ``catchup`` recovers their effects from a live peer's
snapshot, which also tells whether they clash with this ledger's."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from agent.clocks import SYSTEM, Clocks
from agent.replica import Replica
from agent.sync import subjects, validate
from agent.sync.link import NatsLink

log = structlog.get_logger("agent.sync")


# ``Identity.own_needed`` when the stream holds none of our events although we
# published some: how far our seq got, only the peers can tell
ASK_PEERS = -1


@dataclass(frozen=True)
class Identity:
    """``blocked``: why publishing must stop. ``own_needed``: our events up to
    this seq are lost to the stream and to this ledger; a peer's snapshot must
    hold them (ASK_PEERS: ask the peers how far that is)."""

    blocked: str | None = None
    own_needed: int | None = None


async def check(
    link: NatsLink,
    replica: Replica,
    *,
    stream: str,
    network: str,
    max_skew_ms: int,
    clocks: Clocks = SYSTEM,
) -> Identity:
    """Recover what can be recovered from the stream; what is left to do."""
    me = replica.store_id
    subject = subjects.events(network, me)
    try:
        msg = await link.js.get_last_msg(stream, subject)
    except nats.js.errors.NotFoundError:
        published = await replica.published_seq()
        return Identity(own_needed=ASK_PEERS if published else None)
    try:
        last = json.loads(msg.data)
        stream_seq, stream_hlc = int(last["seq"]), int(last["hlc"])
    except (ValueError, KeyError, TypeError):
        return Identity()
    local = await replica.own_seq_hlcs()
    newest_local = max(local, default=0)
    if stream_seq <= newest_local:
        if local.get(stream_seq, stream_hlc) == stream_hlc:
            return Identity()  # the stream is behind us or level: the outbox will catch up
        newer: list[dict[str, Any]] = []
        clash: int | None = stream_seq
    else:
        newer, clash = await _own_events_in_stream(
            link, stream, subject, local, max_skew_ms, clocks
        )
    if clash:
        blocked = (
            f"the stream holds events of {me} that differ from this ledger's "
            f"(seq {clash}): another agent uses this store id, or this ledger was restored "
            "from an old copy and written to since; not publishing (see docs/OPERATIONS.md)"
        )
    else:
        # taking them back also numbers our next event above stream_seq
        n = await replica.recover_own(newer)
        log.warning("own events recovered from the stream", count=n, up_to=stream_seq)
        if newer and newer[0]["seq"] != newest_local + 1:
            lost = (newest_local + 1, newer[0]["seq"] - 1)
            log.warning("own events aged out of the stream; a peer's snapshot has them", lost=lost)
            return Identity(own_needed=lost[1])
        return Identity()
    log.error("identity conflict", detail=blocked)
    return Identity(blocked=blocked)


async def _own_events_in_stream(
    link: NatsLink,
    stream: str,
    subject: str,
    local: dict[int, int],
    max_skew_ms: int,
    clocks: Clocks,
) -> tuple[list[dict[str, Any]], int | None]:
    """Our events kept in the stream that the ledger lacks, and the first
    seq at which the stream and the ledger disagree (None if they agree)."""
    config = api.ConsumerConfig(
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.NONE,
        inactive_threshold=30.0,
    )
    psub = await link.js.pull_subscribe(subject, stream=stream, config=config)
    newer: list[dict[str, Any]] = []
    try:
        while True:
            try:
                msgs = await asyncio.wait_for(psub.fetch(500, timeout=2.0), 10.0)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for m in msgs:
                checked = validate.check(m.subject, m.data, clocks.wall_ms(), max_skew_ms)
                if isinstance(checked, validate.Rejected):
                    continue
                seq = checked["seq"]
                if seq not in local:
                    newer.append(checked)
                elif local[seq] != checked["hlc"]:
                    return [], seq
            if msgs and msgs[-1].metadata.num_pending == 0:
                break
    finally:
        try:
            await psub.unsubscribe()
        except Exception:
            # an ephemeral consumer: the server drops it after inactive_threshold
            log.warning("identity-check subscription not closed", exc_info=True)
    return sorted(newer, key=lambda e: e["seq"]), None
