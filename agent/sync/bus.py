"""This store's alerts on the bus: ``inv.<network>.alert.<store>``, core NATS
(``agent.alerts`` delivers to it as one more target, through this callable).

Each alert is published with its event id in the ``X-Inventory-Event-Id``
header and flushed: a try counts as delivered once the server has it. While
the link is down a try fails at once (the message is not left in the
client's buffer), and the deliverer tries again with its backoff."""

from __future__ import annotations

from agent.sync import subjects
from agent.sync.link import NatsLink

FLUSH_TIMEOUT = 2.0  # seconds


class AlertBus:
    def __init__(self, link: NatsLink, network: str, store_id: str) -> None:
        self._link = link
        self.subject = subjects.alert(network, store_id)

    async def __call__(self, event_id: str, body: bytes) -> None:
        if not self._link.connected or self._link.nc is None:
            raise ConnectionError("not connected to NATS")
        nc = self._link.nc
        await nc.publish(self.subject, body, headers={"X-Inventory-Event-Id": event_id})
        await nc.flush(timeout=FLUSH_TIMEOUT)
