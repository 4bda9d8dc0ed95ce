"""inv-hq's output: tables for people on stdout, JSON for scripts, messages
on stderr. Colour follows the terminal and NO_COLOR, as ``inv``'s does."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from agent.hq.verify import EQUAL, Row


def _console(stderr: bool = False) -> Console:
    return Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=stderr,
        color_system=None if os.environ.get("NO_COLOR") else "auto",
    )


def message(text: str) -> None:
    _console(stderr=True).print(text, markup=False)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _when(iso: str | None) -> str:
    """An ISO instant (UTC) as people read it in a table: to the second."""
    return iso[:19].replace("T", " ") if iso else "—"


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def status(report: dict[str, Any]) -> None:
    """``inv-hq status`` for people: the totals, then one row per store."""
    out = _console()
    projector = report.get("projector")
    active = (
        f"pid {projector['pid']}"
        + (f" on {projector['client']}" if projector.get("client") else "")
        if projector
        else "none"
    )
    pending = report.get("pending")
    if pending is None:
        pending = "unknown (no consumer yet)" if report.get("nats") else "unknown (no NATS)"
    out.print(
        f"Read model {report['schema']} · network {report['network']} · projector {active}",
        markup=False,
        soft_wrap=True,
    )
    out.print(
        f"checkpoint {_num(report['checkpoint'])} · "
        f"{report['eventsPerSecond']:,.1f} events/s over the last minute · "
        f"last event {report['lastEventAt'] or '—'} · stream pending {_num(pending)}",
        markup=False,
        soft_wrap=True,
    )
    table = Table()
    for head, justify in (
        ("Store", "left"),
        ("Applied seq", "right"),
        ("Highest seq", "right"),
        ("Pending", "right"),
        ("Last event (UTC)", "left"),
        ("Lag (s)", "right"),
    ):
        table.add_column(head, justify=justify)  # type: ignore[arg-type]
    for s in report["stores"]:
        lag = s["lagSeconds"]
        table.add_row(
            s["storeId"],
            _num(s["appliedSeq"]),
            _num(s["maxSeq"]),
            _num(s["pending"]),
            _when(s["lastEventAt"]),
            "—" if lag is None else f"{lag:,.1f}",
        )
    out.print(table)


def verify(rows: list[Row]) -> None:
    """``inv-hq verify`` for people: one line when all agree, else the table."""
    if all(r.state == EQUAL for r in rows):
        message(f"all {len(rows)} stores equal at HQ")
        return
    table = Table(title="Stores whose digest at HQ is not the store's own")
    for head in ("Store", "HQ digest", "Agent digest", "State"):
        table.add_column(head)
    for r in rows:
        table.add_row(r.store, r.hq or "—", r.agent or "—", r.state)
    _console().print(table)
