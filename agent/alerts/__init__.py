"""Delivery of this store's low-stock alerts to the webhooks of
``alerts.webhooks`` and to the bus (``inv.<net>.alert.<store>``).

- ``targets``: where an alert goes, and how one try goes (``Webhook``: a
  signed JSON POST; ``Bus``: a publish callable the composition root builds
  from the NATS link, so this package knows nothing of ``agent.sync``);
- ``backoff``: when a failed try is tried again (exponential, full jitter);
- ``worker``: ``DeliveryWorker``, which takes each target through this
  store's alerts in order, from a cursor kept in the ledger.
"""

from agent.alerts.targets import Bus, Outcome, Publish, Target, Webhook, encode, sign
from agent.alerts.worker import DeliveryWorker

__all__ = [
    "Bus",
    "DeliveryWorker",
    "Outcome",
    "Publish",
    "Target",
    "Webhook",
    "encode",
    "sign",
]
