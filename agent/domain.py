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
# a ``stock.batch`` event moves at most this many rows, each (sku, store) once;
# a writer ends a batch sooner, at BATCH_BYTES of rows, so that an event stays
# well under NATS's max_payload (1 MiB by default): an import's row is ~100
# bytes of JSON, and a row's reason and actor may be up to 2,000 characters each
MAX_BATCH_ROWS = 10_000
BATCH_ROWS = 5_000
BATCH_BYTES = 512 * 1024


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
    # written by transfers (``agent.ledger.engine.transfers``), never by a
    # stock change: what the origin ships, what a cancel returns to it, what
    # the destination receives and what of that arrived damaged
    TRANSFER_OUT = "transfer_out"
    TRANSFER_RETURN = "transfer_return"
    TRANSFER_IN = "transfer_in"
    DAMAGED = "damaged"


OPERATION_KIND = {
    "add": MovementKind.RECEIVE,
    "subtract": MovementKind.ADJUST,
    "sell": MovementKind.SELL,  # a sale at the counter (``inv sell``)
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
    """``origin:seq`` of an event, or of one of its movements: an event that
    moves several rows (a transfer's lines) names each movement
    ``origin:seq/sku`` (``movement_id``). Neither a store id nor a SKU has a
    ``:``, and the seq part has no ``/``."""
    origin, _, rest = event_id.rpartition(":")
    return origin, int(rest.split("/", 1)[0])


def batch_movement_id(event_id: str, index: int) -> str:
    """The id of a batch event's ``index``-th movement (from 0): ``origin:seq/index``.
    Stable on every replica (the event's rows are in the event, in order)."""
    return f"{event_id}/{index}"


def movement_id(event_id: str, sku: str, damaged: bool = False) -> str:
    """The id of the movement an event writes for one SKU when it writes
    several (a transfer's lines): ``origin:seq/sku``, and for the damaged
    part of a receipt ``origin:seq/sku#damaged`` (a SKU has no ``#``)."""
    return f"{event_id}/{sku}#damaged" if damaged else f"{event_id}/{sku}"


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


# ---------------------------------------------------------------- transfers
class TransferState(enum.StrEnum):
    """What the origin store has done with a transfer (the origin's field)."""

    DRAFT = "DRAFT"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


class TransferStatus(enum.StrEnum):
    """A transfer's status as users see it: the origin's state and the
    destination's receipts together (``transfer_status``)."""

    DRAFT = "DRAFT"
    SHIPPED = "SHIPPED"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"
    CANCELLED = "CANCELLED"


MAX_TRANSFER_LINES = 500


@dataclass(frozen=True, slots=True)
class LineCounts:
    """One line of a transfer after merging both sides.

    ``shipped`` and ``claim`` (what the origin's cancel returned to its stock,
    as the origin saw the line then) come from the origin; ``received`` and
    ``damaged`` are the sums of the destination's receipts."""

    shipped: int
    claim: int
    received: int
    damaged: int

    @property
    def cancelled(self) -> int:
        """What the cancel actually returns: never units that were received.
        A receipt beats a concurrent cancel of the same units (the goods are
        physically at the destination), whatever order the two arrive in."""
        return min(self.claim, max(0, self.shipped - self.received - self.damaged))

    @property
    def pending(self) -> int:
        """Still in transit: shipped, and neither received, damaged nor cancelled."""
        return max(0, self.shipped - self.received - self.damaged) - self.cancelled

    @property
    def over_received(self) -> int:
        """Units received (or damaged) beyond what was shipped: a discrepancy."""
        return max(0, self.received + self.damaged - self.shipped)

    @property
    def cancel_lost(self) -> int:
        """Units the cancel had returned that a receipt shows arrived: the
        part of the cancel that is corrected (and listed as a conflict)."""
        return self.claim - self.cancelled


def transfer_status(state: str | None, lines: list[LineCounts]) -> TransferStatus:
    """The status users see. ``state``: the origin's (None: only receipts
    seen, the shipment's events have not arrived).

    - CANCELLED by the origin: CANCELLED, unless the cancel returned nothing
      because everything had been received (the receipt beat it): RECEIVED;
    - nothing received yet: DRAFT or SHIPPED, the origin's state;
    - received before this store saw it shipped (the truck came while the
      network was down): RECEIVED, with a discrepancy until the shipment's
      events arrive and reconcile it;
    - otherwise PARTIALLY_RECEIVED while any unit is pending, else RECEIVED."""
    got = any(line.received or line.damaged for line in lines)
    if state == TransferState.CANCELLED:
        beaten = got and any(line.claim for line in lines)
        if beaten and not any(line.cancelled for line in lines):
            return TransferStatus.RECEIVED
        return TransferStatus.CANCELLED
    if not got:
        return TransferStatus.SHIPPED if state == TransferState.SHIPPED else TransferStatus.DRAFT
    if state != TransferState.SHIPPED:
        return TransferStatus.RECEIVED
    if any(line.pending for line in lines):
        return TransferStatus.PARTIALLY_RECEIVED
    return TransferStatus.RECEIVED


# ------------------------------------------------------------- reorder points
class AlertKind(enum.StrEnum):
    LOW = "low"  # available fell to or below the reorder point
    RESTORED = "restored"  # and rose above it again


def is_low(available: int, reorder_point: int | None) -> bool:
    """At or below its reorder point (a SKU without one is never low)."""
    return reorder_point is not None and available <= reorder_point


def suggested_order(
    available: int,
    incoming: int,
    reorder_point: int,
    max_stock: int | None,
    reorder_qty: int | None,
) -> int:
    """What to order for a SKU at or below its reorder point: up to
    ``max_stock`` counting what is already on its way; else the fixed
    ``reorder_qty``; else just enough to be above the reorder point again."""
    if max_stock is not None:
        return max(0, max_stock - available - incoming)
    if reorder_qty is not None:
        return reorder_qty
    return max(0, reorder_point + 1 - available - incoming)
