"""Events checked with the agents' own validation (``agent.sync.validate``),
and the held-back ones tried again later, as agents do.

An event of a newer schema than this build knows, or stamped further ahead
of our clock than ``max_clock_skew``, is quarantined (stored with the batch,
listed at HQ) and kept here to be tried again every ``RETRY`` seconds: once
it passes (HQ upgraded, the clock caught up), it is applied. A restart
forgets the list, not the event: what HQ has not applied of an origin is a
hole that gap repair asks the origin for again.
"""

from __future__ import annotations

from typing import Any

from agent.clocks import SYSTEM, Clocks
from agent.sync import validate

HELD_REASONS = ("schema_too_new", "clock_skew")
RETRY = 10.0  # seconds
LIMIT = 100_000  # held events kept in memory for a retry; past it, gap repair finds them


class HeldBack:
    def __init__(self, max_skew_ms: int, *, clocks: Clocks = SYSTEM) -> None:
        self._skew = max_skew_ms
        self._clocks = clocks
        # (event id, subject) -> body, in arrival order
        self._held: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self._held)

    def sort(
        self, items: list[tuple[str, bytes]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``validate.sort`` of (subject, payload): the events to apply and
        the records to quarantine. A held-back event is kept for a retry; one
        already held (delivered again, or fetched again by gap repair) is not
        quarantined a second time."""
        events, rejected = validate.sort(items, self._clocks.wall_ms(), self._skew)
        fresh = []
        for record in rejected:
            eid = record["eventId"]
            if eid is not None and record["reason"] in HELD_REASONS:
                key = (eid, record["subject"])
                if key in self._held:
                    continue
                if len(self._held) < LIMIT:
                    self._held[key] = record["body"]
            fresh.append(record)
        return events, fresh

    def seqs(self, origin: str) -> set[int]:
        """Seqs of ``origin`` held here that came on its own subject (gap
        repair does not ask for them again: the origin would send the same)."""
        out = set()
        for eid, subject in self._held:
            o, _, seq = eid.rpartition(":")
            if o == origin and subject.endswith(f".ev.{origin}") and seq.isdigit():
                out.add(int(seq))
        return out

    def ready(self) -> list[dict[str, Any]]:
        """The held events that pass the checks now, forgotten here (the
        caller applies them)."""
        now = self._clocks.wall_ms()
        out = []
        for key, body in list(self._held.items()):
            checked = validate.check(key[1], body.encode(), now, self._skew)
            if not isinstance(checked, validate.Rejected):
                out.append(checked)
                del self._held[key]
            elif checked.reason not in HELD_REASONS:
                del self._held[key]  # cut at 64 KiB, or worse: stays listed, never applied
        return out
