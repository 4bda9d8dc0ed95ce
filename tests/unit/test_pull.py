"""Unit tests of the hand-made pull requests (agent/sync/pull.py, ``Puller``:
HQ's source and the agents' consumer) against
a fake server that answers them as JetStream does: up to ``batch`` messages,
then, if it had fewer, a status (404 for ``no_wait``, 408 when ``expires``
runs out). The real server is tests/test_hq_process.py's, the replication
tests' and B5's and B9's."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from agent.sync.pull import ConsumerGone, DeliveryGap, Puller

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def status(code: str, description: str = "") -> Any:
    return SimpleNamespace(data=b"", headers={"Status": code, "Description": description})


class FakeServer:
    """The consumer's side: ``stream`` holds what it has not delivered yet."""

    def __init__(self) -> None:
        self.stream: list[bytes] = []
        self.requests: list[dict[str, Any]] = []
        self.waiting: list[list[int]] = []  # open long polls: [still to bring, request no]
        self.cb: Any = None
        self.gone = False
        self.delivered = 0  # the consumer seq
        self.stats = {"reconnects": 0}  # as nats-py's client counts them
        self.tasks: set[asyncio.Future[None]] = set()  # callbacks running

    def message(self, data: bytes) -> Any:
        self.delivered += 1
        sequence = SimpleNamespace(consumer=self.delivered, stream=self.delivered)
        return SimpleNamespace(
            data=data, headers={"Nats-Msg-Id": "x"}, metadata=SimpleNamespace(sequence=sequence)
        )

    def new_inbox(self) -> str:
        return "_INBOX.hq.1"

    async def subscribe(self, subject: str, cb: Any) -> Any:
        self.cb = cb
        return SimpleNamespace(unsubscribe=self._nothing)

    async def _nothing(self) -> None:
        return None

    async def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        req = json.loads(payload)
        self.requests.append(req)
        if self.gone:
            asyncio.get_running_loop().call_soon(self._send, status("409", "Consumer Deleted"))
            return
        batch = req["batch"]
        sent = self._deliver(batch)
        if sent < batch:
            if req.get("no_wait"):
                asyncio.get_running_loop().call_soon(self._send, status("404", "No Messages"))
            else:
                # a long poll stays open until it has brought its batch or expires
                request = [batch - sent, len(self.requests)]
                self.waiting.append(request)
                delay = req["expires"] / 1e9
                asyncio.get_running_loop().call_later(delay, self._expire, request)

    def _deliver(self, batch: int) -> int:
        out, self.stream = self.stream[:batch], self.stream[batch:]
        for data in out:
            asyncio.get_running_loop().call_soon(self._send, self.message(data))
        return len(out)

    def _send(self, msg: Any) -> None:
        task = asyncio.ensure_future(self.cb(msg))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _expire(self, request: list[int]) -> None:
        if request in self.waiting:
            self.waiting.remove(request)
            self._send(status("408", "Request Timeout"))

    def publish_event(self, data: bytes) -> None:
        """A new message in the stream: an open long poll gets it."""
        self.stream.append(data)
        if self.waiting:
            request = self.waiting[0]
            request[0] -= self._deliver(request[0])
            if not request[0]:
                self.waiting.pop(0)  # filled: over, no status


async def test_what_is_there_comes_at_once_without_waiting_for_a_full_batch() -> None:
    server = FakeServer()
    server.stream = [b"1", b"2", b"3"]
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    msgs = await asyncio.wait_for(puller.fetch(10, wait=5.0), 1.0)
    assert [m.data for m in msgs] == [b"1", b"2", b"3"]
    assert server.requests == [{"batch": 10, "no_wait": True}]


async def test_a_full_batch_ends_the_request_and_the_rest_waits_its_turn() -> None:
    server = FakeServer()
    server.stream = [str(n).encode() for n in range(5)]
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    assert [m.data for m in await puller.fetch(3, wait=5.0)] == [b"0", b"1", b"2"]
    assert [m.data for m in await puller.fetch(3, wait=5.0)] == [b"3", b"4"]


async def test_with_nothing_there_it_waits_for_the_first_and_takes_what_follows() -> None:
    server = FakeServer()
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    fetching = asyncio.create_task(puller.fetch(100, wait=5.0))
    while not server.waiting:
        await asyncio.sleep(0.001)
    server.publish_event(b"a")
    server.publish_event(b"b")  # in the same read from the socket
    msgs = await asyncio.wait_for(fetching, 1.0)
    assert [m.data for m in msgs] == [b"a", b"b"]
    assert [r.get("no_wait", False) for r in server.requests] == [True, False]
    assert server.requests[1]["batch"] == 100


async def fetch_in_a_long_poll(server: FakeServer, puller: Puller, batch: int, wait: float) -> Any:
    """A fetch started once the server holds its long poll open."""
    fetching = asyncio.create_task(puller.fetch(batch, wait=wait))
    while not server.waiting:
        await asyncio.sleep(0.001)
    return fetching


async def test_the_long_poll_stays_open_across_fetches_until_it_expires() -> None:
    # a trickle of events: one pull request for many of them, not three each
    server = FakeServer()
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    for data in (b"a", b"b", b"c"):
        fetching = await fetch_in_a_long_poll(server, puller, 100, 0.3)
        server.publish_event(data)
        assert [m.data for m in await asyncio.wait_for(fetching, 1.0)] == [data]
    assert len(server.requests) == 2  # the no_wait, then one long poll
    assert await asyncio.wait_for(puller.fetch(100, wait=0.3), 1.0) == []  # it expired
    assert len(server.requests) == 2
    server.stream = [b"d"]
    assert [m.data for m in await asyncio.wait_for(puller.fetch(100, wait=0.3), 1.0)] == [b"d"]
    assert server.requests[-1] == {"batch": 100, "no_wait": True}


async def test_a_long_poll_that_brought_its_batch_is_over() -> None:
    server = FakeServer()
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    fetching = await fetch_in_a_long_poll(server, puller, 2, 5.0)
    server.publish_event(b"a")
    server.publish_event(b"b")
    assert [m.data for m in await asyncio.wait_for(fetching, 1.0)] == [b"a", b"b"]
    assert not server.waiting
    server.stream = [b"c"]
    assert [m.data for m in await asyncio.wait_for(puller.fetch(2, wait=5.0), 1.0)] == [b"c"]
    assert server.requests[-1] == {"batch": 2, "no_wait": True}


async def test_nothing_within_the_wait_is_an_empty_batch() -> None:
    server = FakeServer()
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    assert await asyncio.wait_for(puller.fetch(100, wait=0.05), 1.0) == []


async def test_a_deleted_consumer_is_said_not_waited_on() -> None:
    server = FakeServer()
    server.gone = True
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    with pytest.raises(ConsumerGone, match="Consumer Deleted"):
        await asyncio.wait_for(puller.fetch(100, wait=5.0), 1.0)


async def test_a_pull_request_lost_with_its_connection_is_asked_again_at_once() -> None:
    # the connection dropped and came back: the server forgot the open long
    # poll; waiting for its expiry (and the stall guard) would stall the
    # consumer for seconds, and a consumer on a restarted server may be gone
    server = FakeServer()
    puller = Puller(server, "INVENTORY", "agent-x", contiguous=True, stall_guard=10.0)
    await puller.start()
    fetch = asyncio.ensure_future(puller.fetch(10, wait=30.0))
    await asyncio.sleep(0.05)
    assert len(server.requests) == 2  # no_wait, then the long poll
    server.waiting.clear()  # forgotten with the connection
    server.stats["reconnects"] += 1
    assert await asyncio.wait_for(fetch, 2.0) == []
    server.gone = True  # asked again: the server says whether the consumer is there
    with pytest.raises(ConsumerGone):
        await asyncio.wait_for(puller.fetch(10, wait=30.0), 2.0)


async def test_a_delivery_that_never_arrived_stops_the_consumer() -> None:
    # the server delivered consumer seq 3 on a connection that dropped: an
    # AckAll of seq 4 would acknowledge it unread
    server = FakeServer()
    server.stream = [b"1", b"2"]
    puller = Puller(server, "INVENTORY", "hq-x", contiguous=True)
    await puller.start()
    assert len(await puller.fetch(10, wait=5.0)) == 2
    server.delivered += 1
    server.stream = [b"4"]
    with pytest.raises(DeliveryGap, match=r"deliveries 3\.\.4 of the consumer, 1 of them received"):
        await puller.fetch(10, wait=5.0)


async def test_a_durable_consumers_puller_takes_deliveries_that_do_not_start_at_1() -> None:
    # an agent's consumer outlives its process (its deliveries go on from
    # where the last run left them) and a redelivery keeps its first seq
    server = FakeServer()
    server.delivered = 41
    server.stream = [b"1", b"2"]
    puller = Puller(server, "INVENTORY", "agent-x", contiguous=False)
    await puller.start()
    assert [m.data for m in await puller.fetch(10, wait=5.0)] == [b"1", b"2"]
    server.delivered += 1
    server.stream = [b"4"]
    assert [m.data for m in await puller.fetch(10, wait=5.0)] == [b"4"]
