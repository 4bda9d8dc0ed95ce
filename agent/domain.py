"""Pure business rules: no SQL, no I/O. Unit-tested on their own.

Stamps: every write carries ``(hlc, origin)``; comparing stamps is the
last-write-wins order used by every merge rule.
"""

from __future__ import annotations

import enum
import hashlib
import math
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


# ---------------------------------------------------------------- routing
ROUTING_STRATEGIES = ("priority", "most-available", "nearest")
MAX_RESERVATION_ID = 128  # the API's limit on a reservation id
# ``@`` never appears in a client's reservation id (the API's pattern forbids
# it): an id that has one is a routed attempt's, and names its owner
ATTEMPT_SEPARATOR = "@"


def attempt_id(request_id: str, store: str) -> str:
    """The reservation id of a routed request's attempt at ``store``: derived,
    never drawn, so asking the same store again (a retry, a restart in the
    middle of routing) finds the reservation already made instead of making
    a second one. A request id too long to fit is replaced by its hash."""
    rid = f"{request_id}{ATTEMPT_SEPARATOR}{store}"
    if len(rid) <= MAX_RESERVATION_ID:
        return rid
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:40]
    return f"{digest}{ATTEMPT_SEPARATOR}{store}"


def routed_owner(reservation_id: str) -> str | None:
    """The store a routed attempt's reservation id names (None for any other id)."""
    _, sep, store = reservation_id.rpartition(ATTEMPT_SEPARATOR)
    return store if sep and STORE_RE.match(store) else None


EARTH_RADIUS_KM = 6371.0088


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Distance between two (lat, lon) points in degrees, on a spherical Earth
    (haversine): plenty for choosing the nearest store."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
