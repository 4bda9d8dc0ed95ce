"""Who did it, at quiescence: what the clerks did is recorded under their
names on every replica.

- A reservation's ``created_by`` is the clerk of the reserve that made it:
  the bare name when asked at the owner, ``NAME@ASKER`` when another store
  forwarded it (accounts are a store's own).
- A confirmed or cancelled reservation's ``updated_by`` is the clerk of a
  confirm or cancel of it (forwarded: qualified the same way); an expired
  one's is nobody's ("").
- Every movement (by id) names the same actor on every replica: the actor
  travels in the event, it is never filled in on arrival.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.sim.node import Node
from tests.sim.workload import Outcome

_CHANGES = {"confirm": "CONFIRMED", "cancel": "CANCELLED"}


def _as_recorded(actor: str, asker: str, owner: str) -> str:
    return actor if asker == owner else f"{actor}@{asker}"


def _expected(outcomes: list[Outcome]) -> tuple[dict[str, str], dict[tuple[str, str], set[str]]]:
    """(rid -> created_by, (rid, status) -> the updated_by it may have)."""
    created: dict[str, str] = {}
    changed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for o in outcomes:
        a = o.op.args
        if "actor" not in a:
            continue
        if o.op.kind == "reserve" and o.ok and o.status == 202:  # 202: made now
            created[a["rid"]] = _as_recorded(a["actor"], o.op.store, a["store"])
        elif o.op.kind in _CHANGES:
            # any attempt, answered or not: one whose answer was lost may be
            # the one applied, and the granted retry found it done
            status = _CHANGES[o.op.kind]
            changed[(a["rid"], status)].add(_as_recorded(a["actor"], o.op.store, a["owner"]))
    return created, changed


def _reservation_problems(
    n: Node, created: dict[str, str], changed: dict[tuple[str, str], set[str]]
) -> list[str]:
    problems = []
    for rid, status, created_by, updated_by in n.disk.conn.execute(
        "SELECT id, status, created_by, updated_by FROM reservations"
    ):
        if rid not in created:
            continue  # a routed attempt, or one whose reserve's answer was lost
        if created_by != created[rid]:
            problems.append(
                f"{n.store_id}: reservation {rid} created by {created_by!r}, "
                f"the clerk was {created[rid]!r}"
            )
        if status == "EXPIRED":
            allowed = {""}
        elif status == "PENDING":
            allowed = {created[rid]}
        else:
            allowed = changed.get((rid, status), set())
        if updated_by not in allowed:
            problems.append(
                f"{n.store_id}: reservation {rid} ({status}) last changed by {updated_by!r}, "
                f"not one of {sorted(allowed)}"
            )
    return problems


def _movement_problems(nodes: list[Node]) -> list[str]:
    seen: dict[str, tuple[str, str]] = {}
    problems = []
    for n in nodes:
        for mid, actor in n.disk.conn.execute("SELECT id, actor FROM movements"):
            first = seen.setdefault(mid, (n.store_id, actor))
            if first[1] != actor:
                problems.append(
                    f"movement {mid}: by {first[1]!r} at {first[0]}, by {actor!r} at {n.store_id}"
                )
    return problems


def actor_problems(nodes: list[Node], outcomes: list[Outcome]) -> list[str]:
    created, changed = _expected(outcomes)
    problems: list[Any] = []
    for n in nodes:
        problems += _reservation_problems(n, created, changed)
    return problems + _movement_problems(nodes)
