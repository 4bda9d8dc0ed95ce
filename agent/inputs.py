"""What callers ask the service to do: small immutable requests.

A route builds one from its body, the service fills in this store's defaults
(``resolved``) and the ledger command receives it whole; a forwarded request
travels to the owning store as its ``wire()`` form and is rebuilt there by
``from_wire``. No positional lists of eight arguments anywhere on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

StockOperation = Literal["add", "subtract", "sell", "set"]
# "store": a clerk or a script at the store, may take every available unit;
# "online": an order routed to the store (``storeId: "any"``), may not take
# the store's safety stock
Channel = Literal["store", "online"]


@dataclass(frozen=True, slots=True)
class StockChange:
    """Receive (add), take out (subtract) or count (set) one product at one store."""

    ref: str  # SKU or product id
    store_id: str
    operation: StockOperation
    quantity: int
    reason: str = ""
    actor: str = "local"
    expected_version: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """Hold ``quantity`` of a product at a store for ``ttl`` seconds.

    ``None`` fields are filled in by the service: a new id, this store, the
    configured TTL."""

    ref: str
    quantity: int
    reservation_id: str | None = None
    store_id: str | None = None
    customer_id: str | None = None
    ttl: int | None = None
    channel: Channel = "store"
    actor: str = "local"

    def resolved(self, reservation_id: str, store_id: str, ttl: int) -> ReservationRequest:
        return replace(
            self,
            reservation_id=self.reservation_id or reservation_id,
            store_id=self.store_id or store_id,
            ttl=self.ttl or ttl,
        )

    def wire(self) -> dict[str, Any]:
        """The request as the owning store's API (and its RPC handler) reads it."""
        return {
            "reservationId": self.reservation_id,
            "productId": self.ref,
            "storeId": self.store_id,
            "quantity": self.quantity,
            "customerId": self.customer_id,
            "ttl": self.ttl,
            "channel": self.channel,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """Reserve ``quantity`` of a product at whichever store can (``storeId:
    "any"``): the router ranks the candidates and asks their owners in turn.

    ``request_id`` is the client's ``reservationId`` (None: a new one); each
    store asked gets a reservation id derived from it (``domain.attempt_id``).
    ``stores``: the candidates in priority order (None: every store that
    fulfils online orders); ``near``: a store id or ``"lat,lon"``, for
    ``nearest``."""

    ref: str
    quantity: int
    request_id: str | None = None
    customer_id: str | None = None
    ttl: int | None = None
    strategy: str = "priority"
    stores: tuple[str, ...] | None = None
    near: str | None = None
    actor: str = "local"


@dataclass(frozen=True, slots=True)
class Deadline:
    """Past ``at`` (seconds on the owner's engine's monotonic clock) a
    forwarded command is refused rather than applied: the store that asked
    has stopped waiting by then and told its user the outcome is unknown, so
    a late change would hold stock nobody knows about. ``budget_ms`` is what
    the asker allowed (for the refusal's message)."""

    at: float
    budget_ms: int


@dataclass(frozen=True, slots=True)
class TransferLine:
    """``quantity`` of a product (SKU or product id) on a transfer."""

    ref: str
    quantity: int


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """Send stock from ``from_store`` to ``to_store``. ``None`` fields are
    filled in by the service: a new id, this store as the origin. ``ship``:
    ship at once (the origin's stock falls now), else a DRAFT."""

    to_store: str
    lines: tuple[TransferLine, ...]
    transfer_id: str | None = None
    from_store: str | None = None
    note: str = ""
    ship: bool = False
    actor: str = "local"

    def resolved(self, transfer_id: str, store_id: str) -> TransferRequest:
        return replace(
            self,
            transfer_id=self.transfer_id or transfer_id,
            from_store=self.from_store or store_id,
        )

    def wire(self) -> dict[str, Any]:
        """The request as the origin store's API (and its RPC handler) reads it."""
        return {
            "transferId": self.transfer_id,
            "fromStoreId": self.from_store,
            "toStoreId": self.to_store,
            "lines": [{"productId": ln.ref, "quantity": ln.quantity} for ln in self.lines],
            "note": self.note,
            "ship": self.ship,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """What arrived of one product: ``received`` sellable, ``damaged`` not."""

    ref: str
    received: int
    damaged: int = 0


@dataclass(frozen=True, slots=True)
class ReceiptRequest:
    """Receive a transfer at its destination. ``lines`` None: everything
    still pending, as shipped. ``from_store``: the origin, as the packing slip
    names it, needed only for a transfer this store has not heard of yet.
    ``receipt_id`` makes a retry harmless (None: the service draws one)."""

    transfer_id: str
    lines: tuple[ReceiptLine, ...] | None = None
    receipt_id: str | None = None
    from_store: str | None = None
    actor: str = "local"

    def resolved(self, receipt_id: str) -> ReceiptRequest:
        return replace(self, receipt_id=self.receipt_id or receipt_id)

    def wire(self) -> dict[str, Any]:
        return {
            "transferId": self.transfer_id,
            "receiptId": self.receipt_id,
            "fromStoreId": self.from_store,
            "lines": None
            if self.lines is None
            else [
                {"productId": ln.ref, "received": ln.received, "damaged": ln.damaged}
                for ln in self.lines
            ],
            "actor": self.actor,
        }
