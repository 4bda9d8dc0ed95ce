"""Forwarding: a command for another store's stock goes to that store's agent
by NATS request/reply, and its answer comes back as the owner gave it.

The request carries its budget (``budgetMs``, relative: see ``rpc``), and
``deadlineMs`` too for owners not upgraded yet (they check only that, on
arrival). Past the budget the owner refuses the command, but a request that
timed out here may still have been applied (its reply may be what was lost),
so a timeout is reported as an unknown outcome, never as "nothing was done".
"""

from __future__ import annotations

import json
from typing import Any

import nats.errors

from agent.clocks import SYSTEM, Clocks
from agent.errors import Unavailable
from agent.sync import rpc, subjects
from agent.sync.link import NatsLink


def _nothing(op: str) -> str:
    return "nothing was reserved" if op == "reserve" else "nothing was changed"


def _unknown(store: str, op: str, payload: dict[str, Any], timeout: float) -> Unavailable:
    """A request sent and not answered in time: say it may have been applied."""
    if op.startswith("transfer_"):
        return _transfer_unknown(store, op, payload, timeout)
    rid = str(payload.get("reservationId"))
    maybe = {
        "reserve": f"the reservation may have been made as {rid}",
        "confirm": f"reservation {rid} may have been confirmed",
        "cancel": f"reservation {rid} may have been cancelled",
    }.get(op, f"{op} {rid} may have been applied")
    again = (
        f"or reserve again with the same id (--id {rid}): it never reserves twice"
        if op == "reserve"
        else f"or {op} it again: doing it twice is harmless"
    )
    return Unavailable(
        f"store {store!r} did not answer within {timeout:g} s; {maybe}: check with "
        f"`inv reservation show {rid}` (once it has replicated here), {again}",
        owner=store,
        reservationId=rid,
        outcome="unknown",
    )


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
        if not self._link.connected or self._link.nc is None:
            raise Unavailable(
                f"store {store!r} owns that stock and is unreachable: this agent is not "
                f"connected to NATS; {_nothing(op)}",
                owner=store,
            )
        timeout = self._timeout
        budget_ms = int(timeout * 1000)
        payload = {
            **payload,
            "budgetMs": budget_ms,
            "deadlineMs": self._clocks.wall_ms() + budget_ms,  # for older owners
        }
        try:
            msg = await self._link.nc.request(
                subjects.rpc(self._network, store, op),
                json.dumps(payload).encode(),
                timeout=timeout,
            )
        except nats.errors.NoRespondersError as exc:
            # the server had nobody to deliver it to: certainly not applied
            raise Unavailable(
                f"store {store!r} owns that stock and is unreachable (its agent "
                f"is not connected); {_nothing(op)}",
                owner=store,
            ) from exc
        except (TimeoutError, nats.errors.TimeoutError) as exc:
            raise _unknown(store, op, payload, timeout) from exc
        return rpc.parse_reply(msg.data)


def _transfer_unknown(store: str, op: str, payload: dict[str, Any], timeout: float) -> Unavailable:
    tid = str(payload.get("transferId"))
    step = op.partition("_")[2]
    done = {"create": "created", "ship": "shipped", "cancel": "cancelled", "receive": "received"}
    again = (
        f"receive it again with the same receipt id (--receipt-id {payload.get('receiptId')}): "
        "it is never counted twice"
        if step == "receive"
        else f"or {step} it again{' with the same id' if step == 'create' else ''}: doing it "
        "twice is harmless"
    )
    return Unavailable(
        f"store {store!r} did not answer within {timeout:g} s; transfer {tid} may have been "
        f"{done.get(step, step)}: check with `inv transfer show {tid}` (once it has "
        f"replicated here), {again}",
        owner=store,
        transferId=tid,
        outcome="unknown",
    )
