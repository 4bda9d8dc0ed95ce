"""The outbox publisher: marks written in the background, never a second
publication of what is acknowledged and not yet marked, and a failed mark
leaves its events to be published again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from nats.js import api

from agent.inputs import StockChange
from agent.metrics import Metrics
from agent.sync.publisher import Publisher
from tests import synckit
from tests.inproc import wait_until
from tests.synckit import LocalStore, failures, fake_link

pytestmark = pytest.mark.anyio
local_store = synckit.local_store


class FakeJS:
    """``publish_async`` as the publisher uses it: every message acknowledged."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def publish_async(self, subject: str, payload: bytes, **kwargs: Any) -> Any:
        self.ids.append(kwargs["headers"]["Nats-Msg-Id"])
        done: asyncio.Future[api.PubAck] = asyncio.get_running_loop().create_future()
        done.set_result(api.PubAck(stream="INVENTORY", seq=len(self.ids)))
        return done


class HeldMarks:
    """A replica whose marks wait for ``release`` (a busy writer), or fail."""

    def __init__(self, replica: Any, fail: bool = False) -> None:
        self._replica = replica
        self.release = asyncio.Event()
        self.fail = fail
        self.store_id = replica.store_id
        self.outbox = replica.outbox

    def unpublished(self, limit: int) -> list[tuple[int, str]]:
        return self._replica.unpublished(limit)  # type: ignore[no-any-return]

    async def mark_published(self, seqs: list[int]) -> None:
        await self.release.wait()
        if self.fail:
            raise OSError("disk I/O error")
        await self._replica.mark_published(seqs)


def publisher(store: LocalStore, replica: HeldMarks) -> tuple[Publisher, FakeJS, Metrics]:
    link = fake_link(store.store_id)
    link.js = FakeJS()
    metrics = Metrics()
    return Publisher(link, replica, metrics, "default", lambda: None), link.js, metrics  # type: ignore[arg-type]


async def drained(store: LocalStore) -> None:
    async def empty() -> bool:
        return bool(await store.replica.outbox_backlog() == 0)

    await wait_until(empty, 5, what="the marks to be committed")


async def test_the_next_batch_goes_out_while_the_last_ones_marks_wait(
    local_store: Callable[..., LocalStore],
) -> None:
    store = local_store("store-001")  # the demo data: 7 events of its own
    held = HeldMarks(store.replica)
    pub, js, _ = publisher(store, held)
    assert await pub.publish_batch() == 7
    await store.service.update_stock(_set(5))
    assert await pub.publish_batch() == 1  # not the first 7 again: their marks wait
    assert js.ids == [f"store-001:{seq}" for seq in range(1, 9)]
    assert await store.replica.outbox_backlog() == 8
    held.release.set()
    await drained(store)
    assert await pub.publish_batch() == 0


async def test_a_failed_mark_leaves_its_events_to_be_published_again(
    local_store: Callable[..., LocalStore],
) -> None:
    store = local_store("store-001")
    held = HeldMarks(store.replica, fail=True)
    pub, js, metrics = publisher(store, held)
    assert await pub.publish_batch() == 7
    store.outbox.clear()
    held.release.set()
    await wait_until(lambda: _true(store.outbox.is_set()), 5, what="the failed mark")
    assert failures(metrics, "publish") == 1
    assert store.outbox.is_set()  # the publisher looks again
    held.fail = False
    assert await pub.publish_batch() == 7  # the same events, deduplicated by Msg-Id
    assert js.ids[7:] == js.ids[:7]
    await drained(store)


def _set(quantity: int) -> StockChange:
    return StockChange(ref="PROD-001", store_id="store-001", operation="set", quantity=quantity)


async def _true(value: bool) -> bool:
    return value
