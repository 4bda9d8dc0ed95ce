"""Unit tests of ``inv-hq verify``'s judgement and retries (agent/hq/verify.py)
and of the status report (agent/hq/status.py), with their rendering
(agent/hq/render.py). HQ's side and the agents' answers are the test's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.hq import render, status, verify
from agent.hq.verify import BEHIND, DIFFERS, EQUAL, UNREACHABLE, HqSide, Row

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def quick_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "RETRY_EVERY", 0.01)


def agent_reply(digests: dict[str, str], origins: dict[str, int]) -> dict[str, Any]:
    return {"digests": {**digests, "catalog": "c0"}, "origins": origins}


HQ = HqSide({"s1": "aaa", "s2": "bbb", "catalog": "c0"}, {"s1": 5, "s2": 3})


def test_a_store_is_judged_by_its_own_digest_and_the_watermarks() -> None:
    assert verify.stores_of(HQ) == ["s1", "s2"]
    same = agent_reply({"s1": "aaa", "s2": "zzz"}, {"s1": 5, "s2": 2})
    assert verify.judge("s1", HQ, same).state == EQUAL  # only s1's own digest counts
    assert verify.judge("s1", HQ, agent_reply({"s1": "xxx"}, {"s1": 6})).state == BEHIND
    assert verify.judge("s1", HQ, agent_reply({"s1": "xxx"}, {"s1": 4, "s2": 3})).state == BEHIND
    assert verify.judge("s1", HQ, agent_reply({"s1": "xxx"}, {"s1": 5, "s2": 3})) == Row(
        "s1", "aaa", "xxx", DIFFERS
    )
    assert verify.judge("s2", HQ, None) == Row("s2", "bbb", None, UNREACHABLE)


async def test_verify_waits_while_a_side_is_behind_and_stops_at_a_real_difference() -> None:
    rounds = {"n": 0}

    async def read_hq() -> HqSide:
        rounds["n"] += 1
        # HQ catches up with s1 on its third look
        return HQ if rounds["n"] < 3 else HqSide({**HQ.digests, "s1": "new"}, {"s1": 6, "s2": 3})

    async def ask(store: str) -> dict[str, Any] | None:
        return agent_reply({"s1": "new", "s2": "bad"}, {"s1": 6, "s2": 3})

    rows = await verify.verify(read_hq, ask, timeout=5)
    assert [(r.store, r.state) for r in rows] == [("s1", EQUAL), ("s2", DIFFERS)]
    assert rounds["n"] == 3


async def test_verify_gives_up_at_the_timeout_and_says_who_did_not_answer() -> None:
    async def read_hq() -> HqSide:
        return HQ

    async def ask(store: str) -> dict[str, Any] | None:
        return None if store == "s2" else agent_reply({"s1": "aaa"}, {"s1": 5})

    rows = await verify.verify(read_hq, ask, timeout=0.1)
    assert [(r.store, r.state) for r in rows] == [("s1", EQUAL), ("s2", UNREACHABLE)]
    assert json.loads(verify.as_json(rows)) == {
        "ok": False,
        "stores": [
            {"storeId": "s1", "hq": "aaa", "agent": "aaa", "state": "equal"},
            {"storeId": "s2", "hq": "bbb", "agent": None, "state": "unreachable"},
        ],
    }


def test_verify_prints_one_line_when_all_are_equal_and_a_table_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render.verify([Row("s1", "aaa", "aaa", EQUAL), Row("s2", "bbb", "bbb", EQUAL)])
    out, err = capsys.readouterr()
    assert (out, err.strip()) == ("", "all 2 stores equal at HQ")
    render.verify([Row("s1", "aaa", "aaa", EQUAL), Row("s2", "bbb", "ccc", DIFFERS)])
    out, _ = capsys.readouterr()
    lines = [line for line in out.splitlines() if "s1" in line or "s2" in line]
    assert [line.split()[1:-1:2] for line in lines] == [
        ["s1", "aaa", "aaa", "equal"],
        ["s2", "bbb", "ccc", "differs"],
    ]


PG = status.PgPart(
    checkpoint=1234,
    watermarks={"s1": (10, 12), "s2": (4, 4)},
    last_event_ms={"s1": 1_700_000_000_000, "s2": 1_700_000_030_000},
    events_last_minute=600,
    projector={"pid": 4242, "application": "inv-hq", "client": None, "since": None},
)


def test_the_status_report_per_store_and_overall() -> None:
    nats_part = status.NatsPart(pending=7, newest={"s1": 15, "s2": 4})
    report = status.report(
        PG, nats_part, schema="inv_hq", network="default", now_ms=1_700_000_060_000
    )
    assert report["checkpoint"] == 1234 and report["pending"] == 7
    assert report["eventsPerSecond"] == 10.0
    assert report["lastEventAt"] == "2023-11-14T22:13:50.000Z"
    assert report["stores"] == [
        {
            "storeId": "s1",
            "appliedSeq": 10,
            "maxSeq": 12,
            "pending": 5,
            "lastEventAt": "2023-11-14T22:13:20.000Z",
            "lagSeconds": 60.0,
        },
        {
            "storeId": "s2",
            "appliedSeq": 4,
            "maxSeq": 4,
            "pending": 0,
            "lastEventAt": "2023-11-14T22:13:50.000Z",
            "lagSeconds": 30.0,
        },
    ]


def test_without_nats_the_status_says_pending_is_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = status.report(PG, None, schema="inv_hq", network="default", now_ms=1_700_000_060_000)
    assert report["pending"] is None and report["stores"][0]["pending"] is None
    render.status(report)
    out, _ = capsys.readouterr()
    assert "projector pid 4242" in out and "checkpoint 1,234" in out
    assert "10.0 events/s" in out and "unknown (no NATS)" in out
    row = next(line for line in out.splitlines() if " s1 " in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "s1",
        "10",
        "12",
        "—",
        "2023-11-14 22:13:20",
        "60.0",
    ]
