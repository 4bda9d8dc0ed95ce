"""Unit tests of catch-up's decision when gap repair cannot reach an origin
(agent/sync/catchup.py ``origin_unreachable``): a snapshot is needed only if
the stream no longer holds the missing events; if the stream cannot be asked
right now, nothing is decided (and nothing is raised into the repair loop).
In process: a real ledger, a fake JetStream context."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
import pytest

from agent.metrics import Metrics
from agent.sync.catchup import CatchUp
from agent.sync.consumer import StreamConsumer
from agent.sync.presence import PeerTable
from tests import synckit
from tests.synckit import LocalStore, fake_link

pytestmark = pytest.mark.anyio
local_store = synckit.local_store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeJs:
    """``get_msg`` answers the first retained event of a subject: ``first`` is
    its seq (None: nothing retained), or ``error`` is raised."""

    def __init__(self, first: int | None = None, error: Exception | None = None) -> None:
        self.first, self.error = first, error

    async def get_msg(self, stream: str, seq: int, subject: str, next: bool = True) -> Any:
        if self.error is not None:
            raise self.error
        if self.first is None:
            raise nats.js.errors.NotFoundError()

        class Msg:
            data = json.dumps({"seq": self.first}).encode()

        return Msg()


def catchup(here: LocalStore, js: FakeJs) -> CatchUp:
    link = fake_link(here.service.store_id)
    link.js = js
    peers = PeerTable(here.service.store_id, 1.0)

    async def apply(events: Any, rejected: Any, position: Any) -> None:
        return None

    consumer = StreamConsumer(
        link, Metrics(), apply, here.replica, stream="INVENTORY", name="agent-store-001",
        network="default", follow=[], max_skew_ms=300_000,
    )  # fmt: skip
    return CatchUp(
        link, here.replica, peers, consumer, stream="INVENTORY", network="default", timeout=0.5
    )


async def test_a_hole_still_in_the_stream_needs_no_snapshot(
    local_store: Callable[..., LocalStore],
) -> None:
    c = catchup(local_store("store-001"), FakeJs(first=4))
    await c.origin_unreachable("store-002", applied=3, known=9)
    assert c.needs == {}


async def test_a_hole_aged_out_of_the_stream_needs_a_snapshot(
    local_store: Callable[..., LocalStore],
) -> None:
    c = catchup(local_store("store-001"), FakeJs(first=7))
    await c.origin_unreachable("store-002", applied=3, known=9)
    assert c.needs == {"store-002": 9}
    c2 = catchup(local_store("store-003"), FakeJs(first=None))  # nothing of it retained
    await c2.origin_unreachable("store-002", applied=3, known=9)
    assert c2.needs == {"store-002": 9}


@pytest.mark.parametrize("error", [TimeoutError(), nats.errors.TimeoutError()])
async def test_a_stream_out_of_reach_decides_nothing_and_raises_nothing(
    local_store: Callable[..., LocalStore], error: Exception
) -> None:
    c = catchup(local_store("store-001"), FakeJs(error=error))
    await c.origin_unreachable("store-002", applied=3, known=9)
    assert c.needs == {}
