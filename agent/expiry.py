"""The expiry task: writes EXPIRED for this store's reservations past their TTL.

It sleeps until the next reservation is due (at most ``interval`` seconds), so
a reservation expires within about that long after its time. Reads already show
EXPIRED before this runs; this makes it durable and frees the stock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from agent.service import InventoryService

log = structlog.get_logger("agent.expiry")


class ExpiryWorker:
    def __init__(self, service: InventoryService, interval: float = 0.25) -> None:
        self.service = service
        self.interval = interval
        self.last_run: float = 0.0
        self.expired_total = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="expiry")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                n = await self.service.expire_due()
                self.expired_total += n
                if n:
                    log.info("reservations expired", count=n)
                self.last_run = time.monotonic()
                nxt = await self.service.next_expiry_ms()
                delay = self.interval
                if nxt is not None and n < 500:
                    delay = min(self.interval, max(0.0, nxt / 1000 - time.time()))
                await asyncio.sleep(delay if n < 500 else 0)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep going: log (with the traceback) and retry
                log.exception("expiry pass failed")
                self.last_run = time.monotonic()
                await asyncio.sleep(1.0)
