"""Forwarding: a command for another store's stock goes to that store's agent
by NATS request/reply, and its answer comes back as the owner gave it."""

from __future__ import annotations

import json
from typing import Any

import nats.errors

from agent.clocks import SYSTEM, Clocks
from agent.errors import Unavailable
from agent.sync import rpc, subjects
from agent.sync.link import NatsLink


class NatsForwarder:
    """The service's ``Forwarder`` for an agent on NATS."""

    def __init__(
        self, link: NatsLink, network: str, timeout: float, *, clocks: Clocks = SYSTEM
    ) -> None:
        self._clocks = clocks
        self._link = link
        self._network = network
        self._timeout = timeout

    async def __call__(self, store: str, op: str, payload: dict[str, Any]) -> tuple[int, Any]:
        nothing = "nothing was reserved" if op == "reserve" else "nothing was changed"
        if not self._link.connected or self._link.nc is None:
            raise Unavailable(
                f"store {store!r} owns that stock and is unreachable: this agent is not "
                f"connected to NATS; {nothing}",
                owner=store,
            )
        timeout = self._timeout
        payload = {**payload, "deadlineMs": self._clocks.wall_ms() + int(timeout * 1000)}
        try:
            msg = await self._link.nc.request(
                subjects.rpc(self._network, store, op),
                json.dumps(payload).encode(),
                timeout=timeout,
            )
        except nats.errors.NoRespondersError as exc:
            raise Unavailable(
                f"store {store!r} owns that stock and is unreachable (its agent "
                f"is not connected); {nothing}",
                owner=store,
            ) from exc
        except (TimeoutError, nats.errors.TimeoutError) as exc:
            raise Unavailable(
                f"store {store!r} owns that stock and did not answer within "
                f"{timeout:g} s; {nothing} (it ignores requests past their "
                "deadline)",
                owner=store,
            ) from exc
        return rpc.parse_reply(msg.data)
