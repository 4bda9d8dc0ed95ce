"""The one screen of ``inv`` with no arguments."""

from __future__ import annotations

from typing import Any

from inventory_cli.render import out

# What a clerk types most, in the order of a day at the counter.
MOST_USED = (
    ("inv sell SKU [QTY]", "a sale at the counter"),
    ("inv stock show SKU", "stock here and at the other stores"),
    ("inv reserve SKU QTY", "hold stock for a customer"),
    ("inv confirm ID", "the customer paid (ID: its first 4+ characters)"),
    ("inv receive SKU QTY", "goods in"),
)


def _agent_line(h: dict[str, Any]) -> str:
    failing = [name for name, check in h.get("checks", {}).items() if not check.get("ok")]
    state = "healthy" if not failing else "UNHEALTHY (" + ", ".join(failing) + ")"
    return f"Agent:  {state}, v{h.get('version', '?')}, {h.get('mode', '?')}"


def _sync_line(s: dict[str, Any] | None) -> str:
    if s is None:
        return "Sync:   (not shown to this login)"
    if s.get("mode") == "standalone":
        return "Sync:   standalone (no NATS configured): this store only"
    if s.get("publishBlocked"):
        return f"Sync:   NOT PUBLISHING: {s['publishBlocked']}"
    peers = s.get("peers") or []
    up = sum(1 for p in peers if p.get("state") == "up")
    state = "connected" if s.get("connected") else "OFFLINE (sales go on; they sync later)"
    return (
        f"Sync:   {state}; {up} of {len(peers)} other stores up; "
        f"{s.get('outboxBacklog', 0)} events to send"
    )


def screen(health: dict[str, Any] | None, sync: dict[str, Any] | None, problem: str | None) -> None:
    console = out()
    if health is None:
        console.print("Store:  ? (no agent)", markup=False)
        console.print(f"Agent:  {problem}", markup=False, style="bold red", soft_wrap=True)
    else:
        console.print(f"Store:  {health.get('storeId', '?')}", markup=False, style="bold")
        console.print(_agent_line(health), markup=False)
        console.print(_sync_line(sync), markup=False)
    console.print()
    width = max(len(cmd) for cmd, _ in MOST_USED)
    for cmd, what in MOST_USED:
        console.print(f"  {cmd.ljust(width)}  {what}", markup=False)
    console.print()
    console.print("Every command: inv --help", markup=False)
