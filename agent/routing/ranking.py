"""Which stores a routed reservation asks, and in what order. Pure: it works
on the candidates the router read from its replica (``directory.candidates``)
and does no I/O, so every rule here is unit-tested on its own.

- ``priority`` (the default): the directory's priority, lowest first, then the
  store id; with ``stores`` given, their order.
- ``most-available``: the most available for online orders first.
- ``nearest``: by great-circle distance from ``near``; stores without
  coordinates last.

Ties always fall back to the first rule's order. Without ``stores`` the
candidates are the stores that fulfil online orders. A candidate that shows
less available for online orders than the quantity is kept in the ranking,
marked ``skipped``: the owner would refuse it, so it is not asked, but the
answer lists it (the replica may be behind: the owner has the last word
only on what it is asked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agent.domain import ANY_STORE, ROUTING_STRATEGIES, STORE_RE, great_circle_km
from agent.errors import InvalidInput
from agent.ledger.directory import Candidate

Point = tuple[float, float]  # (lat, lon), degrees


@dataclass(frozen=True, slots=True)
class Ranked:
    store_id: str
    available_online: int
    skipped: bool
    distance_km: float | None = None


def rank(
    candidates: Sequence[Candidate],
    quantity: int,
    strategy: str,
    *,
    stores: Sequence[str] | None = None,
    near: Point | None = None,
) -> list[Ranked]:
    """The candidates in the order they are asked. ``stores`` must name
    candidates (``check_stores``); ``near`` is needed for ``nearest``."""
    if strategy not in ROUTING_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}")
    by_id = {c.store.store_id: c for c in candidates}
    if stores is not None:
        pool = [by_id[s] for s in stores]
        base = {s: (i, "") for i, s in enumerate(stores)}
    else:
        pool = [c for c in candidates if c.store.online]
        base = {c.store.store_id: (c.store.priority, c.store.store_id) for c in pool}

    def distance(c: Candidate) -> float | None:
        if near is None or c.store.lat is None or c.store.lon is None:
            return None
        return great_circle_km(near, (c.store.lat, c.store.lon))

    def key(c: Candidate) -> tuple[object, ...]:
        first = base[c.store.store_id]
        if strategy == "most-available":
            return (-c.available_online, first)
        if strategy == "nearest":
            d = distance(c)
            return (d is None, d if d is not None else 0.0, first)
        return (first,)

    return [
        Ranked(c.store.store_id, c.available_online, c.available_online < quantity, distance(c))
        for c in sorted(pool, key=key)
    ]


def check_stores(stores: Sequence[str], candidates: Sequence[Candidate]) -> None:
    """``stores`` as a client gave them: each once, each a store this replica
    knows (a typo must not quietly route elsewhere)."""
    known = {c.store.store_id for c in candidates}
    seen: set[str] = set()
    for s in stores:
        if s == ANY_STORE:
            raise InvalidInput(f"stores: {ANY_STORE!r} is not a store; name the stores to ask")
        if s in seen:
            raise InvalidInput(f"stores: {s!r} is listed twice")
        if s not in known:
            raise InvalidInput(f"stores: store {s!r} is not known to this agent", storeId=s)
        seen.add(s)


def parse_point(text: str) -> Point:
    """``"lat,lon"`` in degrees; a ValueError says what is wrong."""
    lat_text, sep, lon_text = text.partition(",")
    if not sep:
        raise ValueError("expected LAT,LON")
    lat, lon = float(lat_text), float(lon_text)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("latitude and longitude must be numbers")
    if not -90 <= lat <= 90:
        raise ValueError(f"latitude {lat:g} is not within -90..90")
    if not -180 <= lon <= 180:
        raise ValueError(f"longitude {lon:g} is not within -180..180")
    return lat, lon


def resolve_near(
    near: str | None, strategy: str, candidates: Sequence[Candidate], own_store: str
) -> Point | None:
    """Where ``nearest`` measures from: ``near`` as coordinates or as a store
    with coordinates in the directory; by default this agent's own store, if
    it has them. None for the other strategies (which take no ``near``)."""
    if strategy != "nearest":
        if near is not None:
            raise InvalidInput("near: only with strategy 'nearest'")
        return None
    entries = {c.store.store_id: c.store for c in candidates}
    where = near if near is not None else own_store
    if "," in where:
        try:
            return parse_point(where)
        except ValueError as exc:
            raise InvalidInput(f"near: {where!r}: {exc}") from None
    if not STORE_RE.match(where):
        raise InvalidInput(f"near: {where!r} is neither a store id nor LAT,LON")
    entry = entries.get(where)
    if entry is None or entry.lat is None or entry.lon is None:
        if near is None:
            raise InvalidInput(
                "near: required with strategy 'nearest' (a store id or LAT,LON): this "
                f"agent's store {own_store!r} has no coordinates in the directory"
            )
        raise InvalidInput(
            f"near: store {where!r} has no coordinates in the directory; give LAT,LON"
        )
    return entry.lat, entry.lon
