"""The pure rules of routing: the ranking of candidates, where ``nearest``
measures from, and the ids of routed attempts."""

from __future__ import annotations

from typing import Any

import pytest

from agent.domain import attempt_id, great_circle_km, routed_owner
from agent.errors import (
    Conflict,
    InsufficientStock,
    InvalidInput,
    NotFound,
    RemoteError,
    Unavailable,
)
from agent.ledger.directory import Candidate, StoreEntry
from agent.routing import ranking
from agent.routing.answers import outcome_of

PARIS, LONDON, MADRID = (48.8566, 2.3522), (51.5074, -0.1278), (40.4168, -3.7038)


def cand(store: str, available: int, **entry: Any) -> Candidate:
    e = StoreEntry(store, **entry)
    return Candidate(e, available, 0, available if e.online else 0)


def order(ranked: list[ranking.Ranked]) -> list[str]:
    return [r.store_id for r in ranked]


CANDS = [
    cand("s-c", 5, priority=2),
    cand("s-a", 9, priority=2),
    cand("s-b", 1, priority=1),
    cand("s-off", 50, priority=0, online=False),
]


def test_priority_is_the_directorys_then_the_store_id_among_online_stores() -> None:
    ranked = ranking.rank(CANDS, 2, "priority")
    assert order(ranked) == ["s-b", "s-a", "s-c"]
    assert [r.skipped for r in ranked] == [True, False, False]


def test_stores_given_are_the_candidates_in_that_order_online_or_not() -> None:
    ranked = ranking.rank(CANDS, 2, "priority", stores=["s-off", "s-c", "s-b"])
    assert order(ranked) == ["s-off", "s-c", "s-b"]
    # a store that does not fulfil online orders has nothing for them
    assert [(r.available_online, r.skipped) for r in ranked] == [(0, True), (5, False), (1, True)]


def test_most_available_first_ties_by_priority_or_by_the_order_given() -> None:
    cands = [*CANDS, cand("s-d", 9, priority=1)]
    assert order(ranking.rank(cands, 1, "most-available")) == ["s-d", "s-a", "s-c", "s-b"]
    given = ["s-a", "s-b", "s-d"]
    assert order(ranking.rank(cands, 1, "most-available", stores=given)) == ["s-a", "s-d", "s-b"]


def test_nearest_by_great_circle_stores_without_coordinates_last() -> None:
    cands = [
        cand("paris", 3, lat=PARIS[0], lon=PARIS[1]),
        cand("madrid", 3, lat=MADRID[0], lon=MADRID[1]),
        cand("nowhere", 3, priority=1),
        cand("london", 3, lat=LONDON[0], lon=LONDON[1]),
    ]
    ranked = ranking.rank(cands, 1, "nearest", near=(51.0, 0.0))
    assert order(ranked) == ["london", "paris", "madrid", "nowhere"]
    assert ranked[0].distance_km == pytest.approx(great_circle_km((51.0, 0.0), LONDON))
    assert ranked[-1].distance_km is None


def test_great_circle_distance() -> None:
    assert great_circle_km(PARIS, LONDON) == pytest.approx(343.5, abs=1)
    assert great_circle_km(PARIS, PARIS) == 0
    assert great_circle_km((0, 0), (0, 180)) == pytest.approx(20015, abs=1)


def test_check_stores_refuses_unknown_repeated_and_any() -> None:
    ranking.check_stores(["s-a", "s-off"], CANDS)
    for bad, why in (
        (["s-x"], "stores: store 's-x' is not known to this agent"),
        (["s-a", "s-a"], "stores: 's-a' is listed twice"),
        (["any"], "stores: 'any' is not a store"),
    ):
        with pytest.raises(InvalidInput) as err:
            ranking.check_stores(bad, CANDS)
        assert err.value.message.startswith(why)


def test_near_is_coordinates_or_a_store_with_them_default_this_agents_store() -> None:
    cands = [cand("paris", 1, lat=PARIS[0], lon=PARIS[1]), cand("web", 0)]
    assert ranking.resolve_near("1.5, -2", "nearest", cands, "web") == (1.5, -2.0)
    assert ranking.resolve_near("paris", "nearest", cands, "web") == PARIS
    assert ranking.resolve_near(None, "nearest", cands, "paris") == PARIS
    assert ranking.resolve_near(None, "priority", cands, "web") is None
    for near, strategy, own, why in (
        (None, "nearest", "web", "near: required with strategy 'nearest'"),
        ("web", "nearest", "paris", "near: store 'web' has no coordinates"),
        ("91,0", "nearest", "web", "near: '91,0': latitude 91 is not within -90..90"),
        ("0,181", "nearest", "web", "near: '0,181': longitude 181 is not within"),
        ("a,b", "nearest", "web", "near: 'a,b': could not convert"),
        ("nan,0", "nearest", "web", "near: 'nan,0': latitude and longitude must be numbers"),
        ("x y", "nearest", "web", "near: 'x y' is neither a store id nor LAT,LON"),
        ("paris", "priority", "web", "near: only with strategy 'nearest'"),
    ):
        with pytest.raises(InvalidInput) as err:
            ranking.resolve_near(near, strategy, cands, own)
        assert err.value.message.startswith(why), err.value.message


def test_attempt_ids_are_derived_fit_the_limit_and_name_their_store() -> None:
    assert attempt_id("ord-1", "store-002") == "ord-1@store-002"
    long = attempt_id("x" * 128, "s" * 64)
    assert len(long) <= 128 and long.endswith("@" + "s" * 64)
    assert long == attempt_id("x" * 128, "s" * 64) != attempt_id("y" * 128, "s" * 64)
    assert routed_owner("ord-1@store-002") == routed_owner(long[:-64] + "store-002") == "store-002"
    assert routed_owner("ord-1") is None
    assert routed_owner("ord-1@") is None and routed_owner("a@b.c") is None


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (Unavailable("no answer", outcome="unknown"), "timeout"),
        (Unavailable("not connected"), "unreachable"),
        (RemoteError(503, {"error": "busy", "outcome": "refused"}), "unreachable"),
        (RemoteError(500, {"error": "internal error"}), "timeout"),
        (RemoteError(409, {"error": "insufficient stock"}), "insufficient"),
        (RemoteError(404, {"error": "product unknown"}), "insufficient"),
        (InsufficientStock(1, 2), "insufficient"),
        (Conflict("standalone"), "insufficient"),
        (NotFound("no such product"), "insufficient"),
    ],
)
def test_what_an_ask_that_raised_counts_as(exc: Exception, outcome: str) -> None:
    assert outcome_of(exc) == outcome  # type: ignore[arg-type]
