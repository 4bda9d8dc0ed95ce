"""Unit tests of HQ's projector loop (agent/hq/pump.py) and its held-back
events (agent/hq/heldback.py), against an in-memory read model and a
scripted stream (tests/hqkit.py). The real stream and PostgreSQL are
tests/test_hq_process.py's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.clocks import Clocks
from agent.hq.pump import Pump
from agent.hq.sink import Sink
from tests.hqkit import MemoryModel, ScriptedSource, movement, subject, until

pytestmark = pytest.mark.anyio
SKEW = 300_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pump_of(source: ScriptedSource, sink: Sink | MemoryModel, **options: Any) -> Pump:
    sink = sink if isinstance(sink, Sink) else Sink(sink)
    return Pump(source, sink, network="default", max_skew_ms=SKEW, **options)  # type: ignore[arg-type]


def batch(origin: str, seqs: range) -> list[tuple[str, bytes]]:
    return [(subject(origin), movement(origin, s)) for s in seqs]


async def pumped(pump: Pump, done: Any, timeout: float = 5.0) -> None:
    """Run ``pump`` until ``done()`` holds, then stop it."""
    task = asyncio.create_task(pump.run())
    try:
        await until(done, timeout)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_each_batch_is_committed_with_its_last_stream_seq_then_acknowledged() -> None:
    model = MemoryModel()
    source = ScriptedSource([batch("s1", range(1, 4)), batch("s2", range(1, 3))])
    pump = pump_of(source, model)
    await pumped(pump, lambda: source.acks == [3, 5] and pump.idle)
    assert model.log == ["apply:3", "apply:5"]
    assert model.stored_checkpoint == 5 and len(model.events) == 5
    assert pump.totals.applied == 5 and pump.totals.batches == 2


async def test_no_ack_before_the_commit_returns_and_the_next_batch_waits_its_turn() -> None:
    model = MemoryModel()
    source = ScriptedSource([batch("s1", range(1, 3)), batch("s1", range(3, 5))])
    gate = asyncio.Event()
    sink = Sink(model)
    real_apply = sink.apply
    order: list[str] = []

    async def slow_apply(*args: Any, **kwargs: Any) -> Any:
        order.append("commit")
        await gate.wait()
        return await real_apply(*args, **kwargs)

    sink.apply = slow_apply  # type: ignore[method-assign]
    pump = pump_of(source, sink)
    task = asyncio.create_task(pump.run())
    await until(lambda: not source.batches)  # the second batch is fetched meanwhile
    assert source.acks == [] and order == ["commit"]
    gate.set()
    await until(lambda: source.acks == [2, 4])
    assert model.log == ["apply:2", "apply:4"]
    task.cancel()


async def test_a_batch_delivered_again_changes_nothing_and_is_counted() -> None:
    # a crash after COMMIT, before the ack: stream seqs 1-4 come again
    source = ScriptedSource([batch("s1", range(1, 5)), batch("s1", range(1, 7))])
    model = MemoryModel()
    pump = pump_of(source, model)
    await pumped(pump, lambda: source.acks == [4, 10])
    assert sorted(model.events) == [("s1", n) for n in range(1, 7)]
    assert (pump.totals.applied, pump.totals.duplicates) == (6, 4)
    assert model.stored_checkpoint == 10


async def test_a_failed_ack_is_counted_and_the_loop_goes_on() -> None:
    model = MemoryModel()
    source = ScriptedSource([batch("s1", range(1, 2)), batch("s1", range(2, 3))])
    source.batches[0][0].fail_ack = OSError("connection reset")
    pump = pump_of(source, model)
    await pumped(pump, lambda: source.acks == [2])
    assert pump.totals.ack_failures == 1 and len(model.events) == 2


async def test_a_failed_commit_ends_the_loop_and_nothing_is_acknowledged() -> None:
    model = MemoryModel(fail=OSError("server closed the connection"))
    source = ScriptedSource([batch("s1", range(1, 3))])
    pump = pump_of(source, model)
    with pytest.raises(OSError, match="server closed"):
        await asyncio.wait_for(pump.run(), 5)
    assert source.acks == []


async def test_malformed_events_are_quarantined_with_the_batch() -> None:
    model = MemoryModel()
    forged = (subject("s2"), movement("s1", 9))  # s1's event on s2's subject
    source = ScriptedSource([[*batch("s1", range(1, 2)), forged, (subject("s1"), b"{")]])
    pump = pump_of(source, model)
    await pumped(pump, lambda: source.acks == [3])
    assert [q["reason"] for q in model.quarantine.values()] == ["origin_mismatch", "malformed"]
    assert list(model.events) == [("s1", 1)] and pump.totals.quarantined == 2


async def test_an_event_ahead_of_the_clock_is_held_back_then_applied_once_it_passes() -> None:
    now = [1_000_000_000_000]
    clocks = Clocks(wall_ms=lambda: now[0], monotonic=lambda: now[0] / 1000)
    ahead = (subject("s1"), movement("s1", 2, wall_ms=now[0] + SKEW + 60_000))
    model = MemoryModel()
    source = ScriptedSource([[(subject("s1"), movement("s1", 1, wall_ms=now[0])), ahead]])
    pump = pump_of(source, model, clocks=clocks)
    task = asyncio.create_task(pump.run())
    await until(lambda: source.acks == [2])
    assert [q["reason"] for q in model.quarantine.values()] == ["clock_skew"]
    assert list(model.events) == [("s1", 1)] and model.holes() == {}
    now[0] += 30_000  # the next try: still too far ahead
    await until(lambda: pump.next_release > now[0] / 1000)
    assert list(model.events) == [("s1", 1)]
    now[0] += 60_000  # the clock has caught up
    await until(lambda: ("s1", 2) in model.events)
    assert model.quarantine == {} and model.watermarks() == {"s1": (2, 2)}
    task.cancel()
