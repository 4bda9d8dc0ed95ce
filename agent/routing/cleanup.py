"""Cleanups: what an unanswered ask of a routing may have reserved is cancelled.

When a routing ends (granted elsewhere, or refused), every attempt whose
outcome is unknown (the owner did not answer in time: its reservation may
have been made, the reply being what was lost) has a pending cleanup in the
router's ledger. This task, a background loop of the agent like the expiry
task, cancels each at its owner, and tries again with backoff until the
owner answers:

- cancelled (204): it had been made; it holds nothing now;
- not found, asked after the ask's deadline had passed at the owner: it was
  never made (an owner refuses a forwarded command its writer reaches past
  the budget, so it can no longer be made either). Found "not found" before
  that, the ask may still be on its way: tried again later;
- already EXPIRED: it holds nothing any more either;
- CONFIRMED: someone confirmed it (it was never handed out, so this should
  not happen): logged as an error, left alone.

A verdict of "never made" stays under watch for a while: should this replica
then see that reservation PENDING (its request got there later than any
deadline allowed for, e.g. held in a client's send buffer over a reconnect),
the cleanup is armed again. The state of every cleanup is in the routing's
record (``GET /api/v1/routings/{requestId}``) and counted in
``inv_routing_cleanups_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from agent.errors import InventoryError, NotFound
from agent.ledger import cleanups
from agent.service import InventoryService

log = structlog.get_logger("agent.routing")
BATCH = 50
FIRST_BACKOFF_MS = 500
MAX_BACKOFF_MS = 60_000
# past the ask's own budget, and the reply's: a "not found" after this is final
NEVER_GRANTED_GRACE_MS = 1_000
LATE_GRANT_WATCH_MS = 15 * 60_000
LATE_GRANT_CHECK_MS = 5_000  # how often the watch looks (a join of two tables)


def _ignore(outcome: str) -> None:
    return None


def backoff_ms(tries: int) -> int:
    """How long after its ``tries``-th failed try a cleanup is tried again."""
    return int(min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** min(tries, 20)))


class CleanupWorker:
    def __init__(
        self,
        service: InventoryService,
        *,
        budget_ms: int,
        interval: float = 1.0,
        wake: asyncio.Event | None = None,
        on_cleanup: Callable[[str], None] = _ignore,
    ) -> None:
        """``budget_ms``: how long an ask may take (the forwarder's timeout);
        ``interval``: the longest sleep between two passes; ``wake``: set by
        the router when a routing leaves a cleanup (the next pass is planned
        for when it falls due, not after a whole interval)."""
        self._service = service
        self._store = service.ledger.store
        self._wall_ms = service.ledger.engine.wall_ms
        self._monotonic = service.ledger.engine.monotonic
        # when this process first tried each pending cleanup (monotonic): the
        # "never made" verdict waits on this clock, which no wall-clock jump moves
        self._first_try: dict[tuple[str, int], float] = {}
        self._watched_at = float("-inf")  # monotonic seconds of the last late-grant look
        self._budget_ms = budget_ms
        self.interval = interval
        self._count = on_cleanup
        self._wake = wake or asyncio.Event()
        self.settled_total = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="routing-cleanup")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def pending(self) -> int:
        return await self._store.read(cleanups.pending_cleanups)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
                nxt = await self._store.read(cleanups.next_cleanup_ms)
                delay = self.interval
                if nxt is not None:
                    delay = min(delay, max(0.05, (nxt - self._wall_ms()) / 1000))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep going: log (with the traceback) and retry
                log.exception("routing cleanup pass failed")
                await asyncio.sleep(1.0)

    async def run_once(self) -> int:
        """One pass: every cleanup due now is tried once. Returns how many
        were settled."""
        now = self._wall_ms()
        if (self._monotonic() - self._watched_at) * 1000 >= LATE_GRANT_CHECK_MS:
            self._watched_at = self._monotonic()
            since = now - LATE_GRANT_WATCH_MS
            if await self._store.read(cleanups.late_grants, since):
                n = await self._store.write(cleanups.rearm_late_grants, since, now)
                log.warning("routed attempts judged never granted turned up PENDING", count=n)
        due = await self._store.read(cleanups.due_cleanups, now, BATCH)
        down: set[str] = set()  # owners that failed this pass: not asked again in it
        settled = 0
        for c in due:
            key = (c["requestId"], c["position"])
            self._first_try.setdefault(key, self._monotonic())
            state: str = "pending"
            error: str | None = f"store {c['storeId']!r} could not be reached in this pass"
            if c["storeId"] not in down:
                state, error, reached = await self._try(c)
                if not reached:
                    down.add(c["storeId"])
            now = self._wall_ms()
            next_ms = now + backoff_ms(c["tries"]) if state == "pending" else None
            await self._store.write(
                cleanups.settle_cleanup,
                c["requestId"],
                c["position"],
                state,
                error,
                now,
                next_ms,
            )
            self._report(c, state, error)
            if state != "pending":
                self._first_try.pop(key, None)
                settled += 1
        self.settled_total += settled
        return settled

    async def _try(self, c: dict[str, Any]) -> tuple[str, str | None, bool]:
        """Cancel one attempt's reservation at its owner: the cleanup's new
        state, what went wrong if it is still pending, and whether the owner
        answered at all."""
        rid, store = c["reservationId"], c["storeId"]
        try:
            # the router's own undoing of an attempt nobody was granted
            await self._service.cancel(rid, "router", owner=store)
        except InventoryError as exc:
            if isinstance(exc, NotFound) or exc.status == 404:
                if self._past_deadline(c):
                    return "never-granted", None, True
                return "pending", "not found yet: the ask may still be on its way", True
            status = exc.extra.get("status")
            if exc.status == 409 and status == "EXPIRED":
                return "expired", None, True
            if exc.status == 409 and status == "CONFIRMED":
                return "confirmed", exc.message, True
            return "pending", exc.message, exc.status < 500
        return "cancelled", None, True

    def _past_deadline(self, c: dict[str, Any]) -> bool:
        """Is it too late for the ask to be applied at its owner? An owner
        applies a forwarded reserve only within its budget from arrival, and
        arrival is within a budget of the ask; a routing ends no sooner than
        that ask's own timeout. So: two budgets and a grace after the ask by
        the wall clock, and, by this process's monotonic clock, a budget and a
        grace after it first tried this cleanup (a jump of the wall clock, or
        a restart, can only make the wait longer)."""
        wait_ms = self._budget_ms + NEVER_GRANTED_GRACE_MS
        first = self._first_try.get((c["requestId"], c["position"]), self._monotonic())
        return (
            self._wall_ms() >= c["askedAtMs"] + self._budget_ms + wait_ms
            and (self._monotonic() - first) * 1000 >= wait_ms
        )

    def _report(self, c: dict[str, Any], state: str, error: str | None) -> None:
        self._count("retry" if state == "pending" else state)
        where = {"request_id": c["requestId"], "store": c["storeId"], "rid": c["reservationId"]}
        if state == "confirmed":
            log.error("routed attempt was confirmed; the request holds stock twice", **where)
        elif state == "pending":
            log.info("routing cleanup to retry", tries=c["tries"] + 1, error=error, **where)
        else:
            log.info("routing cleanup settled", outcome=state, tries=c["tries"] + 1, **where)
