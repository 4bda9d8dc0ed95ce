"""What ``inv sync status`` and ``/health`` say about replication."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import hlc
from agent.ledger.queries import iso
from agent.sync.link import NatsLink
from agent.sync.presence import Peer

if TYPE_CHECKING:
    from agent.sync.replicator import Replicator


def health(link: NatsLink, publish_blocked: str | None) -> dict[str, Any]:
    ok = link.connected and publish_blocked is None
    out: dict[str, Any] = {"ok": ok, "connected": link.connected, "server": link.server()}
    if publish_blocked:
        out["error"] = publish_blocked
    elif not link.connected and link.last_error:
        out["error"] = link.last_error
    return out


def _peer_row(
    store: str, origin: dict[str, Any], peer: Peer, now: int, stale: float
) -> dict[str, Any]:
    state = "never seen"
    if peer.last_heartbeat_ms:
        state = "up" if now - peer.last_heartbeat_ms <= stale else "down"
    last_hlc = origin.get("lastHlc")
    return {
        "storeId": store,
        "state": state,
        "appliedSeq": origin.get("appliedSeq", 0),
        "knownSeq": max(peer.known_seq, origin.get("maxSeq", 0)),
        "behind": max(0, peer.known_seq - origin.get("appliedSeq", 0)),
        "lastEventAt": iso(hlc.wall_ms(last_hlc)) if last_hlc else None,
        "lastHeartbeatAt": iso(peer.last_heartbeat_ms) if peer.last_heartbeat_ms else None,
        "lagSeconds": round(peer.last_delay_ms / 1000, 3)
        if peer.last_delay_ms is not None
        else None,
    }


async def report(r: Replicator) -> dict[str, Any]:
    now = r.clocks.wall_ms()
    me = r.replica.store_id
    origins = await r.replica.origins()
    known = r.peers.peers
    stores = (set(origins) | set(known)) - {me}
    peers = [
        _peer_row(s, origins.get(s, {}), known.get(s, Peer(s)), now, r.peers.stale_after_ms)
        for s in sorted(stores)
    ]
    return {
        "storeId": me,
        "mode": "replicated",
        "network": r.config.network,
        "stream": r.config.stream,
        "connected": r.link.connected,
        "server": r.link.server(),
        "ready": r.ready,
        "outboxBacklog": await r.replica.outbox_backlog(),
        "published": r.publisher.published_total,
        "applied": r.applied_total,
        "publishBlocked": r.publish_blocked,
        "bootstrappedFrom": r.bootstrapped,
        "lastError": r.link.last_error,
        "peers": peers,
        "quarantined": await r.replica.quarantine_count(),
        "quarantine": await r.replica.quarantine_list(20),
        "digests": await r.replica.digests(),
    }
