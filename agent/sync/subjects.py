"""Subject names. ``inv.<network>.ev.<store>`` carries a store's events (the
stream), ``inv.<network>.hb.<store>`` its heartbeats, and
``inv.<network>.rpc.<store>.<op>`` requests to its agent."""

from __future__ import annotations


def events(network: str, store: str = "*") -> str:
    return f"inv.{network}.ev.{store}"


def all_events(network: str) -> str:
    return f"inv.{network}.ev.>"


def heartbeat(network: str, store: str = "*") -> str:
    return f"inv.{network}.hb.{store}"


def rpc(network: str, store: str, op: str = "*") -> str:
    return f"inv.{network}.rpc.{store}.{op}"


def store_of(subject: str) -> str | None:
    """The store named by an event or heartbeat subject."""
    parts = subject.split(".")
    return parts[3] if len(parts) == 4 else None


def durable_name(store: str) -> str:
    return "agent-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in store)
