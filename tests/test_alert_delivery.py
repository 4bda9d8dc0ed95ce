"""Delivering this store's alerts to webhooks, against a real HTTP receiver
on loopback (``tests.webhook_receiver``, which checks each body's HMAC with
its own secret): in order, head of line, retried with backoff until the
receiver is up, recovers or is given the right secret, given up past
``alerts.max_age`` (on an injected clock, stepped by hand), the events
filter, a new target starting at the current end, the bus as a target, and
what ``/health`` and ``/metrics`` show. The agent runs in process; the
worker is built here with a fast backoff unless the test is about the one
the runtime builds from the config."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agent.alerts import Bus, DeliveryWorker, Webhook, encode
from agent.alerts.targets import http_client
from agent.clocks import Clocks, wall_now_ms
from agent.config import AlertsConfig, WebhookConfig
from tests.inproc import InProcAgent, captured_logs, wait_until
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.anyio
SECRET = "s3cret-of-the-receiver"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    c = http_client()
    yield c
    await c.aclose()


@pytest.fixture
def receiver() -> Any:
    r = Receiver(SECRET)
    yield r
    r.stop()


def worker(
    agent: InProcAgent,
    *targets: Any,
    max_age: float = 3600,
    clocks: Clocks | None = None,
    outcomes: list[tuple[str, str]] | None = None,
) -> DeliveryWorker:
    """A deliverer on ``agent``'s ledger that retries within 20..100 ms."""
    return DeliveryWorker(
        agent.agent.service.ledger,
        targets,
        max_age=max_age,
        clocks=clocks or Clocks(),
        rng=random.Random(12),
        poll_interval=0.05,
        retry_ms=(20, 100),
        on_outcome=lambda t, o: (outcomes if outcomes is not None else []).append((t, o)),
    )


def hook(url: str, client: httpx.AsyncClient, secret: str = SECRET, **kw: Any) -> Webhook:
    return Webhook(WebhookConfig(url, secret, **kw), client)


async def crossings(api: httpx.AsyncClient, n: int) -> list[str]:
    """Make ``n`` alerts of PROD-001 at store-001 (low, restored, low...):
    their event ids, oldest first."""
    r = await api.put("/api/v1/products/PROD-001/reorder", json={"reorderPoint": 5})
    assert r.status_code == 200, r.text
    before = len((await api.get("/api/v1/alerts")).json()["data"])
    for i in range(n):
        body = {"operation": "subtract" if i % 2 == 0 else "add", "quantity": 6}
        r = await api.post("/api/v1/products/PROD-001/stock", json=body)
        assert r.status_code == 202, r.text
    ids = [a["id"] for a in (await api.get("/api/v1/alerts")).json()["data"]][::-1]
    assert len(ids) == before + n
    return ids[before:]


async def delivered(receiver: Receiver, ids: list[str]) -> None:
    async def done() -> bool:
        return set(ids) <= set(receiver.delivered())

    await wait_until(done, timeout=15, what=f"{ids} delivered (got {receiver.seen()})")


async def committed(w: DeliveryWorker, n: int) -> None:
    """Wait until the worker has committed ``n`` deliveries (the receiver
    answers before the worker writes that down)."""

    async def done() -> bool:
        return bool((await w.states())[0]["delivered"] >= n)

    await wait_until(done, what=f"{n} deliveries committed")


def first_seen(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


# ------------------------------------------------------------------ tests
async def test_a_receiver_down_for_a_while_gets_everything_in_order_once_up(
    api_agent: InProcAgent, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    outcomes: list[tuple[str, str]] = []
    w = worker(api_agent, hook(receiver.url, client), outcomes=outcomes)
    await w.start()
    try:
        ids = await crossings(api_agent.local, 3)

        async def tried_twice() -> bool:
            [state] = await w.states()
            return bool(state["tries"] >= 2 and state["lastError"])

        await wait_until(tried_twice, what="tries while the receiver is down")
        [state] = await w.states()
        assert (state["pending"], state["delivered"], state["lastStatus"]) == (3, 0, None)
        receiver.start()  # up, on the same port
        await delivered(receiver, ids)
        await committed(w, 3)
    finally:
        await w.stop()
    assert first_seen(receiver.delivered()) == ids  # in order, each at least once
    assert all(r.signed for r in receiver.seen())
    [state] = await w.states()
    assert (state["delivered"], state["pending"], state["tries"], state["lastError"]) == (
        3,
        0,
        0,
        None,
    )
    assert (receiver.url, "retry") in outcomes and outcomes[-1] == (receiver.url, "delivered")
    body = receiver.seen()[0].body
    assert (body["id"], body["kind"], body["sku"], body["storeId"]) == (
        ids[0],
        "low",
        "PROD-001",
        "store-001",
    )
    assert (body["before"], body["after"], body["reorderPoint"]) == (10, 4, 5)


async def test_a_receiver_answering_500_is_retried_until_it_recovers(
    api_agent: InProcAgent, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [500, 500, 503]
    receiver.start()
    outcomes: list[tuple[str, str]] = []
    w = worker(api_agent, hook(receiver.url, client), outcomes=outcomes)
    await w.start()
    try:
        ids = await crossings(api_agent.local, 2)
        await delivered(receiver, ids)
        await committed(w, 2)
    finally:
        await w.stop()
    seen = [(r.event_id, r.status) for r in receiver.seen()]
    assert seen == [(ids[0], 500), (ids[0], 500), (ids[0], 503), (ids[0], 200), (ids[1], 200)]
    assert [o for _, o in outcomes] == ["retry"] * 3 + ["delivered"] * 2


async def test_a_wrong_secret_is_rejected_by_the_receiver_and_retried(
    api_agent: InProcAgent, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.start()
    w = worker(api_agent, hook(receiver.url, client, secret="not-the-receivers"))
    await w.start()
    try:
        [alert] = await crossings(api_agent.local, 1)

        async def refused_twice() -> bool:
            return len(receiver.seen()) >= 2

        await wait_until(refused_twice, what="two refused tries")
    finally:
        await w.stop()
    assert {(r.event_id, r.signed, r.status) for r in receiver.seen()} == {(alert, False, 401)}
    [state] = await w.states()
    assert (state["pending"], state["lastStatus"], state["lastError"]) == (1, 401, "HTTP 401")
    # the secret fixed (same URL, same cursor): the alert it kept trying goes through
    fixed = worker(api_agent, hook(receiver.url, client))
    await fixed.start()
    try:
        await delivered(receiver, [alert])
        await committed(fixed, 1)
    finally:
        await fixed.stop()
    assert receiver.delivered() == [alert]


async def test_an_alert_past_max_age_is_given_up_logged_and_passed(
    api_agent: InProcAgent, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.statuses = [500] * 10
    receiver.start()
    now = [wall_now_ms()]
    w = worker(api_agent, hook(receiver.url, client), max_age=60, clocks=Clocks(lambda: now[0]))
    await w.open()
    ids = await crossings(api_agent.local, 2)
    [target] = w.targets
    assert await w.step(target) <= 0.1  # tried: 500, retry within 100 ms
    now[0] += 30_000
    await w.step(target)  # tried again
    now[0] += 31_000  # the first alert is now over 60 s old
    with captured_logs() as logs:
        assert await w.step(target) == 0  # given up without another try
        await w.step(target)  # the second, as old, given up before any try
    assert [r.event_id for r in receiver.seen()] == [ids[0], ids[0]]
    gave_up = [e for e in logs if e["event"] == "alert delivery given up"]
    assert [(e["log_level"], e["event_id"], e["tries"]) for e in gave_up] == [
        ("error", ids[0], 2),
        ("error", ids[1], 0),
    ]
    [state] = await w.states()
    assert (state["givenUp"], state["delivered"], state["pending"]) == (2, 0, 0)
    assert state["lastError"].startswith(f"given up on {ids[1]}: older than")
    assert await w.step(target) == w.poll_interval  # nothing left


async def test_the_events_filter_skips_the_kinds_a_webhook_does_not_want(
    api_agent: InProcAgent, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.start()
    outcomes: list[tuple[str, str]] = []
    w = worker(api_agent, hook(receiver.url, client, events=["restored"]), outcomes=outcomes)
    await w.start()
    try:
        _, restored, _ = await crossings(api_agent.local, 3)  # low, restored, low
        await delivered(receiver, [restored])
        await committed(w, 1)

        async def passed() -> bool:
            return (receiver.url, "skipped") in outcomes

        await wait_until(passed, what="the last low skipped")
    finally:
        await w.stop()
    assert receiver.delivered() == [restored]
    [state] = await w.states()
    assert (state["pending"], state["delivered"], state["events"]) == (0, 1, ["restored"])


async def test_a_new_webhook_starts_at_the_current_end(
    api_agent: InProcAgent, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    receiver.start()
    await crossings(api_agent.local, 2)  # before the webhook existed: not sent
    w = worker(api_agent, hook(receiver.url, client))
    await w.start()
    try:
        [new] = await crossings(api_agent.local, 1)
        await delivered(receiver, [new])
    finally:
        await w.stop()
    assert receiver.delivered() == [new]


async def test_the_bus_is_one_more_target(api_agent: InProcAgent) -> None:
    sent: list[tuple[str, bytes]] = []
    fails = [ConnectionError("not connected to NATS")]

    async def publish(event_id: str, body: bytes) -> None:
        if fails:
            raise fails.pop()
        sent.append((event_id, body))

    w = worker(api_agent, Bus(publish))
    await w.start()
    try:
        [alert] = await crossings(api_agent.local, 1)

        async def published() -> bool:
            return bool(sent)

        await wait_until(published, what="the alert on the bus")
        await committed(w, 1)
    finally:
        await w.stop()
    [(event_id, body)] = sent
    view = (await api_agent.local.get("/api/v1/alerts")).json()["data"][0]
    assert (event_id, json.loads(body), body) == (alert, view, encode(view))
    [state] = await w.states()
    assert (state["target"], state["delivered"], state["lastError"]) == ("nats", 1, None)


async def test_the_configured_webhooks_deliver_and_show_in_health_and_metrics(
    make_inproc: Any, receiver: Receiver
) -> None:
    receiver.start()
    url = receiver.url + "?token=hidden"
    agent = await make_inproc(alerts=AlertsConfig(webhooks=[WebhookConfig(url, SECRET)]))
    [alert] = await crossings(agent.local, 1)
    await delivered(receiver, [alert])

    async def counted() -> Any:
        h = (await agent.local.get("/health")).json()
        return h if h["alertDeliveries"][0]["delivered"] == 1 else None

    health = await wait_until(counted, what="the delivery in /health")
    [state] = health["alertDeliveries"]
    assert state["target"] == receiver.url  # no query string: it may hold a token
    assert (state["pending"], state["givenUp"]) == (0, 0) and state["lastDeliveredAt"]
    assert health["checks"]["alerts"] == {"ok": True, "targets": 1, "pending": 0, "givenUp": 0}
    metrics = (await agent.local.get("/metrics")).text
    assert f'inv_alert_deliveries_total{{outcome="delivered",target="{receiver.url}"}} 1.0' in (
        metrics
    )
    assert f'inv_alert_deliveries_pending{{target="{receiver.url}"}} 0.0' in metrics
    assert "hidden" not in metrics
