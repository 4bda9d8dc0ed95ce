"""Bootstrap from a peer's snapshot, through the JetStream object store.

Used when a fresh agent joins and the stream no longer holds every event
(its first retained message is past sequence 1): the events it lacks may have
aged out, and their origins may be gone. A live peer writes a snapshot of its
ledger into the object store; we restore it, keep our own events on top, and
then replay the stream from its start (applying is idempotent).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import nats.js.errors
import structlog
from nats.js import api

from agent.replica import Replica
from agent.sync import rpc, subjects
from agent.sync.link import NatsLink
from agent.sync.presence import PeerTable

log = structlog.get_logger("agent.bootstrap")
SNAPSHOT_TTL = 3600.0


def bucket_name(network: str) -> str:
    return "inv_" + "".join(c if c.isalnum() or c in "-_" else "_" for c in network) + "_snap"


async def _bucket(js: Any, network: str) -> Any:
    try:
        return await js.object_store(bucket_name(network))
    except nats.js.errors.BucketNotFoundError:
        return await js.create_object_store(
            bucket_name(network), config=api.ObjectStoreConfig(ttl=SNAPSHOT_TTL)
        )


async def serve(link: NatsLink, replica: Replica, network: str) -> bytes:
    """Answer a peer's snapshot request: upload our ledger, reply with its name."""
    name = f"{replica.store_id}-{time.time_ns()}"
    path = replica.snapshot_dir / f"{name}.db"
    try:
        await replica.write_snapshot(path)
        store = await _bucket(link.js, network)
        with path.open("rb") as fh:
            await store.put(name, fh)
        size = path.stat().st_size
        log.info("snapshot served", name=name, bytes=size)
        return rpc.reply_bytes(
            200,
            {
                "bucket": bucket_name(network),
                "name": name,
                "bytes": size,
                "storeId": replica.store_id,
            },
        )
    except Exception as exc:
        log.exception("snapshot failed")
        return rpc.reply_bytes(503, {"error": f"snapshot failed: {exc}"})
    finally:
        path.unlink(missing_ok=True)


async def needed(link: NatsLink, peers: PeerTable, stream: str) -> bool:
    """A fresh ledger (no peer event applied yet) and a stream that no longer
    starts at sequence 1."""
    if any(o != peers.store_id and v["appliedSeq"] > 0 for o, v in peers.applied.items()):
        return False
    info = await link.js.stream_info(stream)
    return bool(info.state.messages and info.state.first_seq > 1) or bool(
        not info.state.messages and info.state.last_seq > 0
    )


async def run(
    link: NatsLink, replica: Replica, peers: PeerTable, network: str, wait_for_peers: float
) -> dict[str, Any] | None:
    """Restore from the first live peer that can give a snapshot."""
    deadline = time.monotonic() + wait_for_peers
    while time.monotonic() < deadline and not peers.live():
        await asyncio.sleep(0.1)
    for peer in peers.live():
        path: Path = replica.snapshot_dir / f"from-{peer}.db"
        try:
            msg = await link.nc.request(
                subjects.rpc(network, peer, "snapshot"), json.dumps({}).encode(), timeout=60
            )
            _, body = rpc.parse_reply(msg.data)
            store = await _bucket(link.js, network)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                await store.get(body["name"], writeinto=fh)
            result = await replica.restore_snapshot(path)
            await store.delete(body["name"])
            log.info("bootstrapped from snapshot", peer=peer, **result)
            return {"peer": peer, **result}
        except Exception as exc:
            log.warning("snapshot from peer failed", peer=peer, error=str(exc), exc_info=True)
        finally:
            path.unlink(missing_ok=True)
    log.warning("no peer gave a snapshot; catching up from the stream and the origins")
    return None
