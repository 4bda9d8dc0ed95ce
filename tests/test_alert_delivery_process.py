"""Alert delivery with real processes: an ``inv-agent`` killed with SIGKILL
while the receiver holds its request sends the same alerts again after the
restart (each delivered at least once, same event ids, in order); and an
agent with NATS publishes its alerts on ``inv.<net>.alert.<store>``, a core
subject outside the stream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest

from tests import synckit
from tests.helpers import Agent, wait_for
from tests.natsfix import NatsServer
from tests.webhook_receiver import Receiver

SECRET = "process-test-secret"
nats_server = synckit.nats_server


def alert_ids(agent: Agent) -> list[str]:
    r = agent.client().get("/api/v1/alerts")
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["data"]][::-1]


def cross(agent: Agent, point: int) -> None:
    """A reorder point for PROD-001 (10 available): above 10 it is low at once."""
    r = agent.client().put("/api/v1/products/PROD-001/reorder", json={"reorderPoint": point})
    assert r.status_code == 200, r.text


def test_an_agent_killed_mid_delivery_sends_the_same_alerts_again(
    make_agent: Any, tmp_path: Path
) -> None:
    receiver = Receiver(SECRET).start()
    receiver.hold()
    config = tmp_path / "agent.yaml"
    config.write_text(
        json.dumps({"alerts": {"webhooks": [{"url": receiver.url, "secret": SECRET}]}})
    )
    try:
        agent: Agent = make_agent("store-001", args=["--config", str(config)])
        cross(agent, 12)  # low
        cross(agent, 4)  # restored: waits behind the first (head of line)
        ids = alert_ids(agent)
        assert len(ids) == 2
        wait_for(lambda: receiver.seen(), what="the first alert's request, held")
        agent.kill()  # SIGKILL while the receiver holds the request
        receiver.release()
        assert [(r.event_id, r.status) for r in receiver.seen()] == [(ids[0], 0)]
        agent.start()  # same ledger: the cursor never moved
        receiver.wait_delivered(ids)
        assert list(dict.fromkeys(receiver.delivered())) == ids
        assert all(r.signed for r in receiver.seen())

        def committed() -> dict[str, Any] | None:
            [state] = agent.client().get("/health").json()["alertDeliveries"]
            return state if state["delivered"] == 2 else None

        state = wait_for(committed, what="both deliveries committed")
        assert (state["pending"], state["givenUp"]) == (0, 0)
    finally:
        receiver.stop()


@pytest.mark.anyio
async def test_alerts_are_published_on_the_bus_outside_the_stream(
    nats_server: NatsServer, make_agent: Any
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.subscribe("inv.default.alert.*")
        agent: Agent = await asyncio.to_thread(
            make_agent, "store-001", args=["--nats", nats_server.url]
        )
        await asyncio.to_thread(
            wait_for, lambda: synckit.status(agent)["connected"], what="the agent on NATS"
        )
        await asyncio.to_thread(cross, agent, 12)
        msg = await sub.next_msg(timeout=15)
        [alert_id] = await asyncio.to_thread(alert_ids, agent)
        assert msg.subject == "inv.default.alert.store-001"
        assert msg.headers["X-Inventory-Event-Id"] == alert_id
        body = json.loads(msg.data)
        assert (body["id"], body["kind"], body["after"]) == (alert_id, "low", 10)
        js = nc.jetstream()
        with pytest.raises(nats.js.errors.NotFoundError):  # no stream takes the subject
            await js.find_stream_name_by_subject("inv.default.alert.store-001")
        assert await js.find_stream_name_by_subject("inv.default.ev.store-001") == "INVENTORY"
    finally:
        await nc.close()
