"""The forwarder of an agent without NATS (``InventoryService``'s default)."""

from __future__ import annotations

from typing import Any

from agent.errors import Conflict


class Standalone:
    """The forwarder of an agent without NATS: another store's stock is not
    this agent's to change, and it has no way to ask the owner. That is a
    request this agent can never serve (409), not an outage (503): asking
    again later will not help."""

    async def __call__(self, store: str, op: str, payload: dict[str, Any]) -> tuple[int, Any]:
        what = {
            "reserve": "reserve its own store's stock",
            "transfer_create": "create transfers from its own store",
            "transfer_ship": "ship transfers from its own store",
            "transfer_cancel": "cancel transfers from its own store",
            "transfer_receive": "receive transfers to its own store",
        }.get(op, "confirm or cancel reservations of its own store's stock")
        raise Conflict(
            f"store {store!r} owns that stock, and this agent runs standalone (no NATS "
            f"configured): it can only {what}; nothing was changed",
            owner=store,
        )
