"""Pure business rules: no SQL, no I/O. Unit-tested on their own.

Stamps: every write carries ``(hlc, origin)``; comparing stamps is the
last-write-wins order used by every merge rule.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass

Stamp = tuple[int, str]  # (hlc, origin): tuples compare in last-write-wins order

SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$")
# no "." (nor NATS wildcards): a store id is one token of a NATS subject
STORE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
PRODUCT_NAMESPACE = uuid.UUID("6f2c3c1e-8a3b-4e59-9d0e-5b1f4a7c2d10")
MAX_QUANTITY = 1_000_000_000


class ReservationStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class MovementKind(enum.StrEnum):
    RECEIVE = "receive"
    SELL = "sell"
    ADJUST = "adjust"
    COUNT = "count"


OPERATION_KIND = {
    "add": MovementKind.RECEIVE,
    "subtract": MovementKind.ADJUST,
    "set": MovementKind.COUNT,
}


def product_id_for(sku: str) -> str:
    """A product created without an id gets one derived from its SKU, so two
    stores creating the same SKU offline agree on the id."""
    return str(uuid.uuid5(PRODUCT_NAMESPACE, sku))


def covered(basis: dict[str, int] | None, origin: str, seq: int) -> bool:
    """Had the writer of a change whose ``basis`` (its per-origin applied
    watermarks) is given already seen event ``origin:seq``? Used to tell a
    concurrent write (a conflict) from an ordinary later one (history)."""
    if not basis:
        return False
    return basis.get(origin, 0) >= seq


def split_event_id(event_id: str) -> tuple[str, int]:
    origin, _, seq = event_id.rpartition(":")
    return origin, int(seq)


@dataclass(frozen=True)
class ReservationView:
    """Status as a reader should see it: a PENDING reservation past its expiry
    is shown EXPIRED even before the expiry task has written that down."""

    status: str
    expires_at_ms: int

    def effective(self, now_ms: int) -> str:
        if self.status == ReservationStatus.PENDING and self.expires_at_ms <= now_ms:
            return ReservationStatus.EXPIRED
        return self.status


# ------------------------------------------------------------------ the chain
# ``storeId: "any"`` asks the agent to route a reservation: never a store's id
ANY_STORE = "any"
# a directory field nobody has set reads as these
DEFAULT_PRIORITY = 100
MAX_PRIORITY = 1_000_000  # priorities are 1 (asked first) .. this
DEFAULT_ONLINE = True  # like Shopify's "fulfil online orders", on for a new store
DEFAULT_SAFETY_STOCK = 0


def safety_stock_of(sku_setting: int | None, store_default: int | None) -> int:
    """A SKU's safety stock at a store: its own setting, else the store's default."""
    if sku_setting is not None:
        return sku_setting
    return store_default if store_default is not None else DEFAULT_SAFETY_STOCK


def available_online(available: int, safety_stock: int, online: bool) -> int:
    """What a routed (online) order may take at a store: nothing if the store
    does not fulfil online orders, else what is available above its safety stock."""
    if not online:
        return 0
    return max(0, available - safety_stock)
