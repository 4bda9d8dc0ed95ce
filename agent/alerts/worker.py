"""The alert deliverer: takes each target through this store's alerts, in
order, from a cursor kept in the ledger (``ledger.alert_deliveries``).

Per target, one alert at a time (head of line: the next waits until this one
is delivered or given up):

- it is sent; a delivery (a 2xx, or the bus's flush) is committed to the
  ledger and only then does the cursor move on. A crash in between sends it
  again after the restart, under the same event id;
- a failed try is tried again after an exponential backoff with full jitter
  (``backoff``), its tries and next time kept in the ledger, so a restart
  carries on where it was;
- an alert older than ``max_age`` (``alerts.max_age``) is given up: logged at
  error level with its event id, counted, and the cursor moves past it;
- alerts of kinds the target does not want (its ``events``) are skipped.

A target seen for the first time starts at the current end: it gets the
alerts raised from then on. The worker wakes when a write may have raised an
alert (``wake``, set by the service after every write) and otherwise looks
every ``poll_interval`` seconds (an alert raised by a peer's event, applied by
the replicator, is found then): never a busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import structlog

from agent.alerts.backoff import FIRST_RETRY_MS, MAX_RETRY_MS, retry_delay_ms
from agent.alerts.targets import Target, encode
from agent.clocks import SYSTEM, Clocks
from agent.ledger import alert_deliveries
from agent.ledger.local import Ledger
from agent.ledger.queries import iso

log = structlog.get_logger("agent.alerts")
POLL_INTERVAL = 1.0  # seconds between looks when nothing woke the worker
COALESCE = 0.02  # seconds: a burst of writes wakes a target once


def _ignore(target: str, outcome: str) -> None:
    return None


class DeliveryWorker:
    def __init__(
        self,
        ledger: Ledger,
        targets: Sequence[Target],
        *,
        max_age: float,
        wake: asyncio.Event | None = None,
        clocks: Clocks = SYSTEM,
        rng: random.Random | None = None,
        poll_interval: float = POLL_INTERVAL,
        on_outcome: Callable[[str, str], None] = _ignore,
        client: httpx.AsyncClient | None = None,
        retry_ms: tuple[int, int] = (FIRST_RETRY_MS, MAX_RETRY_MS),
    ) -> None:
        """``max_age``: seconds an alert is tried for; ``wake``: set after
        every write; ``clocks``: the wall clock ages and retries are judged
        by; ``rng``: the jitter's; ``on_outcome(target label, outcome)``
        counts each try (delivered, retry, given_up, skipped); ``client``:
        the HTTP client the webhooks among ``targets`` post through, closed
        when the worker stops; ``retry_ms``: the backoff's first ceiling and
        its cap."""
        self._store = ledger.store
        self._me = ledger.store_id
        self.targets = tuple(targets)
        self._max_age_ms = int(max_age * 1000)
        self._wake = wake or asyncio.Event()
        self._wall_ms = clocks.wall_ms
        self._rng = rng or random.Random()
        self.poll_interval = poll_interval
        self._count = on_outcome
        self._client = client
        self._retry_ms = retry_ms
        self._wakes = {t.name: asyncio.Event() for t in self.targets}
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ lifecycle
    @property
    def alive(self) -> bool:
        return all(not t.done() for t in self._tasks) and (bool(self._tasks) or not self.targets)

    async def open(self) -> None:
        """Start a cursor, at the current end, for each target seen for the first time."""
        names = [t.name for t in self.targets]
        await self._store.write(alert_deliveries.open_targets, self._me, names, self._wall_ms())

    async def start(self) -> None:
        if not self.targets:
            return
        await self.open()
        self._tasks = [asyncio.create_task(self._fan_out(), name="alerts-wake")]
        self._tasks += [
            asyncio.create_task(self._run(t), name=f"alerts-{t.label}") for t in self.targets
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()

    async def _fan_out(self) -> None:
        """One wake-up of the service, passed to every target's task."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for event in self._wakes.values():
                event.set()

    async def _run(self, target: Target) -> None:
        wake = self._wakes[target.name]
        while True:
            try:
                wake.clear()  # before looking: a write meanwhile wakes the next look
                delay = await self.step(target)
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), delay)
                    await asyncio.sleep(COALESCE)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep going: log (with the traceback) and retry
                log.exception("alert delivery pass failed", target=target.label)
                await asyncio.sleep(1.0)

    # ----------------------------------------------------------------- steps
    async def step(self, target: Target) -> float:
        """Take ``target`` one step: deliver (or try, or give up, or skip to)
        its next alert. Returns the seconds until it has something to do
        again (0: at once)."""
        record, alert, last = await self._store.read(
            alert_deliveries.next_alert, self._me, target.name, target.kinds
        )
        now = self._wall_ms()
        if alert is None:
            if last > record["cursor"]:  # only kinds it does not want
                await self._store.write(alert_deliveries.skip_to, target.name, last, now)
                self._count(target.label, "skipped")
            return self.poll_interval
        deadline = int(alert["ms"]) + self._max_age_ms
        due: int | None = record["next_at_ms"]
        if now >= deadline:
            await self._give_up(target, record, alert, now)
            return 0.0
        if due is not None and due > now:
            return (min(due, deadline) - now) / 1000
        outcome = await target.send(alert["id"], encode(alert))
        now = self._wall_ms()
        seq: int = alert["seq"]
        if outcome.ok:
            await self._store.write(
                alert_deliveries.delivered, target.name, seq, now, outcome.status
            )
            self._count(target.label, "delivered")
            log.info("alert delivered", target=target.label, event_id=alert["id"])
            return 0.0
        tries = int(record["tries"]) + 1
        next_at = min(now + retry_delay_ms(tries, self._rng, *self._retry_ms), deadline)
        error = outcome.error or "failed"
        await self._store.write(
            alert_deliveries.failed, target.name, seq, now, next_at, outcome.status, error
        )
        self._count(target.label, "retry")
        log.warning(
            "alert delivery failed; will retry",
            target=target.label,
            event_id=alert["id"],
            tries=tries,
            error=error,
            retry_in_ms=next_at - now,
        )
        return max(0.0, (next_at - now) / 1000)

    async def _give_up(self, target: Target, record: Any, alert: dict[str, Any], now: int) -> None:
        tries, last = record["tries"], record["last_error"]
        hours = self._max_age_ms / 3_600_000
        error = (
            f"given up on {alert['id']} after {tries} tries over {hours:g} h: {last}"
            if tries
            else f"given up on {alert['id']}: older than {hours:g} h before it could be sent"
        )
        await self._store.write(alert_deliveries.given_up, target.name, alert["seq"], now, error)
        self._count(target.label, "given_up")
        log.error(
            "alert delivery given up",
            target=target.label,
            event_id=alert["id"],
            tries=tries,
            last_error=last,
        )

    # ---------------------------------------------------------------- status
    async def states(self) -> list[dict[str, Any]]:
        """Each target's delivery state, as ``GET /health`` shows it."""
        kinds = {t.name: tuple(t.kinds) for t in self.targets}
        raw = await self._store.read(alert_deliveries.states, self._me, kinds)
        return [_state_view(t, raw.get(t.name) or {}) for t in self.targets]


def _state_view(target: Target, r: dict[str, Any]) -> dict[str, Any]:
    return {
        "target": target.label,
        "events": list(target.kinds),
        "delivered": r.get("delivered", 0),
        "givenUp": r.get("given_up", 0),
        "pending": r.get("pending", 0),
        "tries": r.get("tries", 0),
        "nextAttemptAt": iso(r.get("next_at_ms")),
        "lastStatus": r.get("last_status"),
        "lastError": r.get("last_error"),
        "lastDeliveredAt": iso(r.get("delivered_at_ms")),
        "lastTriedAt": iso(r.get("tried_at_ms")),
    }
