"""Subject names. ``inv.<network>.ev.<store>`` carries a store's events (the
stream), ``inv.<network>.hb.<store>`` its heartbeats,
``inv.<network>.rpc.<store>.<op>`` requests to its agent, and
``inv.<network>.alert.<store>`` its low-stock alerts, for anyone on the bus
(core NATS: outside the stream, whose subjects are ``inv.<network>.ev.>``;
the alerts replicate through the stream as ``alert.raised`` events anyway)."""

from __future__ import annotations


def events(network: str, store: str = "*") -> str:
    return f"inv.{network}.ev.{store}"


def all_events(network: str) -> str:
    return f"inv.{network}.ev.>"


def heartbeat(network: str, store: str = "*") -> str:
    return f"inv.{network}.hb.{store}"


def alert(network: str, store: str = "*") -> str:
    return f"inv.{network}.alert.{store}"


def rpc(network: str, store: str, op: str = "*") -> str:
    return f"inv.{network}.rpc.{store}.{op}"


def store_of(subject: str) -> str | None:
    """The store named by an event or heartbeat subject."""
    parts = subject.split(".")
    return parts[3] if len(parts) == 4 else None


def consumer_name(store: str) -> str:
    """The store's consumer of the stream (the name its permissions list)."""
    return "agent-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in store)
