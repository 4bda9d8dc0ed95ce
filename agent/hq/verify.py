"""``inv-hq verify``: is HQ's copy of each store the store's own?

Every known store's agent is asked for its digests over NATS (the ``digests``
op of ``agent.sync.rpc``), and its own digest (``digests[store]``) is compared
with the one HQ computes from PostgreSQL (``Projector.digests()[store]``):
both come from ``agent.digest``, so they agree exactly when the data does.

Digests mean something only at equal watermarks: while they differ and one
side has applied more of some origin than the other (``behind``), the
comparison is made again until the timeout. Digests that differ at equal
watermarks (``differs``) are a real difference and final; a store whose agent
does not answer is ``unreachable`` (asked again until the timeout).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import nats.errors
import structlog

from agent.errors import RemoteError
from agent.sync import rpc, subjects

log = structlog.get_logger("agent.hq")

EQUAL, DIFFERS, BEHIND, UNREACHABLE = "equal", "differs", "behind", "unreachable"
RETRY_EVERY = 0.5  # seconds between rounds
CATALOG = "catalog"  # agent.digest's key for the catalogue, not a store

# what the agent of a store answers (None: no answer)
Ask = Callable[[str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class HqSide:
    digests: dict[str, str]
    applied: dict[str, int]  # origin -> HQ's contiguous applied seq


@dataclass(frozen=True)
class Row:
    store: str
    hq: str | None  # HQ's digest of the store (None: HQ holds nothing of it)
    agent: str | None  # the agent's own
    state: str

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["storeId"] = out.pop("store")
        return out


def stores_of(hq: HqSide) -> list[str]:
    """Every store HQ knows: one it holds data of, or whose events it applied."""
    return sorted((set(hq.digests) - {CATALOG}) | set(hq.applied))


def judge(store: str, hq: HqSide, reply: dict[str, Any] | None) -> Row:
    mine = hq.digests.get(store)
    if reply is None:
        return Row(store, mine, None, UNREACHABLE)
    digests = reply.get("digests") or {}
    theirs = digests.get(store) if isinstance(digests, dict) else None
    if theirs == mine:
        return Row(store, mine, theirs, EQUAL)
    origins = reply.get("origins") or {}
    behind = isinstance(origins, dict) and any(
        hq.applied.get(origin, 0) != seq for origin, seq in origins.items()
    )
    return Row(store, mine, theirs, BEHIND if behind else DIFFERS)


async def verify(
    read_hq: Callable[[], Awaitable[HqSide]],
    ask: Ask,
    *,
    timeout: float,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[Row]:
    """Compare until every store is equal or differs for good, or ``timeout``."""
    deadline = monotonic() + timeout
    final: dict[str, Row] = {}
    while True:
        hq = await read_hq()
        pending = [s for s in stores_of(hq) if s not in final]
        replies = await asyncio.gather(*(ask(s) for s in pending))
        rows = {s: judge(s, hq, r) for s, r in zip(pending, replies, strict=True)}
        final.update({s: r for s, r in rows.items() if r.state in (EQUAL, DIFFERS)})
        waiting = [r for r in rows.values() if r.state in (BEHIND, UNREACHABLE)]
        if not waiting or monotonic() + RETRY_EVERY > deadline:
            return sorted([*final.values(), *waiting], key=lambda r: r.store)
        await asyncio.sleep(RETRY_EVERY)


def asker(nc: Any, network: str, timeout: float) -> Ask:
    """Ask a store's agent over NATS; None if it does not answer (in time)."""

    async def ask(store: str) -> dict[str, Any] | None:
        if nc is None:
            return None
        try:
            msg = await nc.request(subjects.rpc(network, store, "digests"), b"{}", timeout=timeout)
            _, body = rpc.parse_reply(msg.data)
        except (TimeoutError, nats.errors.Error, RemoteError):
            return None  # not answering (in time), or not serving digests: "unreachable"
        except Exception:
            log.warning("digest request failed", store=store, exc_info=True)
            return None
        return body if isinstance(body, dict) else None

    return ask


def all_equal(rows: list[Row]) -> bool:
    return all(r.state == EQUAL for r in rows)


def as_json(rows: list[Row]) -> str:
    return json.dumps({"ok": all_equal(rows), "stores": [r.as_json() for r in rows]}, indent=2)
