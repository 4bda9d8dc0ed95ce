"""Before publishing anything: is the stream's history of this store the
ledger's? A ledger restored from an older backup takes back the newer events
the stream holds of it (they were acknowledged to someone once); a stream
whose events differ from the ledger's at the same seq (another node runs with
this store id, or this ledger was written to after a restore) would make
event ids name two different events, so publishing is refused, and said."""

from __future__ import annotations

import asyncio
import json
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


async def check(
    link: NatsLink,
    replica: Replica,
    *,
    stream: str,
    network: str,
    max_skew_ms: int,
    clocks: Clocks = SYSTEM,
) -> str | None:
    """Recover what can be recovered; why publishing must stop, or None."""
    me = replica.store_id
    subject = subjects.events(network, me)
    try:
        msg = await link.js.get_last_msg(stream, subject)
    except nats.js.errors.NotFoundError:
        return None
    try:
        last = json.loads(msg.data)
        stream_seq, stream_hlc = int(last["seq"]), int(last["hlc"])
    except (ValueError, KeyError, TypeError):
        return None
    local = await replica.own_seq_hlcs()
    newest_local = max(local, default=0)
    if stream_seq <= newest_local:
        if local.get(stream_seq, stream_hlc) == stream_hlc:
            return None  # the stream is behind us or level: the outbox will catch up
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
    elif newer and newer[0]["seq"] != newest_local + 1:
        blocked = (
            f"this ledger has events of {me} up to seq {newest_local} but the "
            f"stream only keeps them from seq {newer[0]['seq']}: the events between are "
            "lost to it; not publishing (see docs/OPERATIONS.md)"
        )
    else:
        n = await replica.recover_own(newer)
        log.warning("own events recovered from the stream", count=n, up_to=stream_seq)
        return None
    log.error("identity conflict", detail=blocked)
    return blocked


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
