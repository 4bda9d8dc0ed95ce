"""Where an alert is delivered, and how one try at it goes.

Every target gets the same body for an alert: its JSON (the object
``GET /api/v1/alerts`` lists), compact, keys sorted, so a resent alert is
byte for byte what was sent before, under the same event id.

A webhook gets it as a POST with ``X-Inventory-Event-Id`` (the alert's
event id: a receiver that keeps the ids it has seen drops a duplicate) and
``X-Inventory-Signature: sha256=<hex HMAC-SHA256 of the body, keyed by the
webhook's secret>``. Any 2xx is a delivery; anything else (another status,
no answer in time, no connection) is a failed try. Redirects are not
followed: a 3xx is a failed try too (a webhook that moved must be
configured where it is now)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from agent import __version__
from agent.config import ALERT_KINDS, WebhookConfig

EVENT_ID_HEADER = "X-Inventory-Event-Id"
SIGNATURE_HEADER = "X-Inventory-Signature"
BUS_TARGET = "nats"  # the bus's name among the targets (alert_deliveries.target)
# seconds: to connect, and for the whole answer
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0
_FIELDS = (
    "id",
    "kind",
    "sku",
    "productId",
    "storeId",
    "before",
    "after",
    "reorderPoint",
    "cause",
    "raisedAt",
)


def encode(alert: dict[str, Any]) -> bytes:
    """The body every target gets for ``alert`` (its API view)."""
    view = {k: alert.get(k) for k in _FIELDS}
    return json.dumps(view, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(secret: str, body: bytes) -> str:
    """``X-Inventory-Signature``'s value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one try went: ``ok`` (delivered), the HTTP status if there was
    one, and what went wrong if it failed."""

    ok: bool
    status: int | None = None
    error: str | None = None


class Target(Protocol):
    """Somewhere alerts go. ``name`` keys its cursor in the ledger (a
    webhook's URL, or ``nats``); ``label`` is how status and logs show it;
    ``kinds`` are the alert kinds it wants (the others are skipped)."""

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def kinds(self) -> Sequence[str]: ...

    async def send(self, event_id: str, body: bytes) -> Outcome: ...


class Webhook:
    """A configured webhook, posted to through the worker's HTTP client."""

    def __init__(self, config: WebhookConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client

    @property
    def name(self) -> str:
        return self._config.url

    @property
    def label(self) -> str:
        return self._config.label

    @property
    def kinds(self) -> Sequence[str]:
        return tuple(self._config.events)

    async def send(self, event_id: str, body: bytes) -> Outcome:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"inv-agent/{__version__}",
            EVENT_ID_HEADER: event_id,
            SIGNATURE_HEADER: sign(self._config.secret, body),
        }
        try:
            r = await self._client.post(self._config.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:  # to connect, or for the answer
            return Outcome(False, None, f"{type(exc).__name__}: no answer in time")
        except httpx.HTTPError as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:300])
        if 200 <= r.status_code < 300:
            return Outcome(True, r.status_code)
        return Outcome(False, r.status_code, f"HTTP {r.status_code}")


def http_client() -> httpx.AsyncClient:
    """The client every webhook is posted through: no redirects, bounded
    waits; HTTPS_PROXY / NO_PROXY of the environment apply, as for any client."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT), follow_redirects=False
    )


class Publish(Protocol):
    """Puts an alert's body on the bus under its event id; raises if it can't
    (not connected, no flush in time)."""

    async def __call__(self, event_id: str, body: bytes) -> None: ...


class Bus:
    """The bus as one more target: every kind, through ``publish``."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish

    @property
    def name(self) -> str:
        return BUS_TARGET

    @property
    def label(self) -> str:
        return BUS_TARGET

    @property
    def kinds(self) -> Sequence[str]:
        return ALERT_KINDS

    async def send(self, event_id: str, body: bytes) -> Outcome:
        try:
            await self._publish(event_id, body)
        except Exception as exc:  # whatever the transport raises is a failed try
            return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:300])
        return Outcome(True)
