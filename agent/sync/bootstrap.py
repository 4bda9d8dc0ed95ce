"""Restoring from a peer's snapshot, through the JetStream object store.

Used when events this agent lacks are gone from the stream and their origin
does not answer (``catchup`` decides when). A live peer writes a snapshot of
its ledger into the object store; we restore it if it holds what we need and
takes back nothing we have, keep our own events on top, and then replay the
stream from its start (applying is idempotent).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nats.js.errors
import structlog
from nats.js import api

from agent.replica import OwnEventsDiffer, Replica, SnapshotUnfit
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


async def run(
    link: NatsLink, replica: Replica, peers: PeerTable, network: str, need: dict[str, int]
) -> dict[str, Any] | None:
    """Restore from the first live peer whose snapshot holds ``need`` (see
    ``snapshot.check_fit``). ``OwnEventsDiffer`` goes to the caller:
    no other peer can make that right."""
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
            try:
                result = await replica.restore_snapshot(path, need)
            finally:
                await store.delete(body["name"])
            log.info("restored from a peer's snapshot", peer=peer, **result)
            return {"peer": peer, **result}
        except SnapshotUnfit as exc:
            log.info("peer's snapshot does not do", peer=peer, reason=str(exc))
        except OwnEventsDiffer:
            raise
        except Exception as exc:
            log.warning("snapshot from peer failed", peer=peer, error=str(exc), exc_info=True)
        finally:
            path.unlink(missing_ok=True)
    return None


async def ask_origins(
    link: NatsLink, network: str, peer: str, timeout: float
) -> dict[str, tuple[int, int]]:
    """What ``peer`` has of each origin: (applied seq, highest seq seen)."""
    msg = await link.nc.request(subjects.rpc(network, peer, "origins"), b"{}", timeout=timeout)
    _, body = rpc.parse_reply(msg.data)
    return {str(o): (int(v[0]), int(v[1])) for o, v in body["origins"].items()}
