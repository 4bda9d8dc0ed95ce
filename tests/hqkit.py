"""Shared pieces of the HQ tests: events as agents write them, an in-memory
read model with ``agent.hq.projector.Projector``'s interface (for the unit
tests of the process around it), stream messages and a scripted source."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from agent import hlc

NET = "default"


def subject(store: str) -> str:
    return f"inv.{NET}.ev.{store}"


def movement(origin: str, seq: int, *, quantity: int = 1, wall_ms: int | None = None) -> bytes:
    """A valid ``stock.movement`` event of ``origin`` (as its agent publishes it)."""
    stamp = hlc.pack(wall_ms if wall_ms is not None else hlc.now_ms(), seq)
    return json.dumps(
        {
            "id": f"{origin}:{seq}",
            "origin": origin,
            "seq": seq,
            "hlc": stamp,
            "type": "stock.movement",
            "schemaVersion": 1,
            "data": {
                "sku": "PROD-001",
                "storeId": origin,
                "kind": "receive",
                "quantity": quantity,
                "reason": "test",
                "actor": "test",
            },
        }
    ).encode()


@dataclass(frozen=True)
class Outcome:
    received: int
    applied: int
    duplicates: int
    quarantined: int
    seconds: float = 0.0


@dataclass
class MemoryModel:
    """The read model's interface, in memory: idempotent on (origin, seq);
    a quarantined record kept once per (event id, reason); the checkpoint
    never moves back."""

    events: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    quarantine: dict[int, dict[str, Any]] = field(default_factory=dict)
    stored_checkpoint: int = 0
    log: list[str] = field(default_factory=list)  # "apply:<checkpoint>" per call
    fail: Exception | None = None

    def encode(self, events: list[dict[str, Any]], payloads: Sequence[bytes]) -> Any:
        assert len(payloads) == len(events)
        assert [json.loads(p) for p in payloads] == events  # what each was parsed from
        return list(events)

    def apply(
        self,
        events: list[dict[str, Any]],
        *,
        rejected: Sequence[dict[str, Any]] = (),
        checkpoint: int | None = None,
        released: Sequence[int] = (),
    ) -> Outcome:
        if self.fail is not None:
            raise self.fail
        applied = 0
        for e in events:
            key = (e["origin"], e["seq"])
            if key not in self.events:
                self.events[key] = e
                applied += 1
        kept = {(q["eventId"], q["reason"]) for q in self.quarantine.values()}
        for record in rejected:
            if record["eventId"] is None or (record["eventId"], record["reason"]) not in kept:
                self.quarantine[len(self.quarantine) + 1] = record
        for qid in released:
            del self.quarantine[qid]
        if checkpoint is not None:
            self.stored_checkpoint = max(self.stored_checkpoint, checkpoint)
        self.log.append(f"apply:{checkpoint}")
        return Outcome(len(events), applied, len(events) - applied, len(rejected))

    def checkpoint(self) -> int:
        return self.stored_checkpoint

    def watermarks(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for origin in {o for o, _ in self.events}:
            seqs = {s for o, s in self.events if o == origin}
            applied = 0
            while applied + 1 in seqs:
                applied += 1
            out[origin] = (applied, max(seqs))
        return out

    def held_back(self) -> list[tuple[int, str]]:
        return [
            (qid, q["body"])
            for qid, q in self.quarantine.items()
            if q["reason"] in ("schema_too_new", "clock_skew")
        ]

    def holes(self, limit: int = 1000) -> dict[str, list[int]]:
        out = {}
        held = {q["eventId"] for q in self.quarantine.values()}
        for origin, (applied, top) in self.watermarks().items():
            missing = [
                s
                for s in range(applied + 1, top)
                if (origin, s) not in self.events and f"{origin}:{s}" not in held
            ]
            if missing:
                out[origin] = missing[:limit]
        return out

    def digests(self) -> dict[str, str]:
        return {}


class StreamMsg:
    """A message as a pull subscription's fetch returns it."""

    def __init__(self, subject: str, data: bytes, stream_seq: int, acks: list[int]) -> None:
        self.subject = subject
        self.data = data
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=stream_seq))
        self._acks = acks
        self.fail_ack: Exception | None = None

    async def ack(self) -> None:
        if self.fail_ack is not None:
            raise self.fail_ack
        self._acks.append(self.metadata.sequence.stream)


class ScriptedSource:
    """``fetch`` returns the scripted batches, then nothing (after a short
    wait, as a real fetch that times out). ``acks``: stream seqs acknowledged."""

    def __init__(self, batches: list[list[tuple[str, bytes]]], *, first_seq: int = 1) -> None:
        self.acks: list[int] = []
        self.batches: list[list[StreamMsg]] = []
        seq = first_seq
        for batch in batches:
            msgs = []
            for subj, data in batch:
                msgs.append(StreamMsg(subj, data, seq, self.acks))
                seq += 1
            self.batches.append(msgs)
        self.durable = "hq-test"

    async def fetch(self) -> list[StreamMsg]:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(0.01)
        return []


async def until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll a plain ``predicate`` on the event loop until it holds (never a
    blind sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """structlog's configuration as it was before the test: the CLI's
    commands configure it, in process here."""
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.configure(**saved)
