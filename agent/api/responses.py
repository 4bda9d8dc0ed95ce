"""Response bodies and error statuses as the OpenAPI document declares them.

Documentation only: the routes keep returning plain dicts (``response_model=None``,
so nothing is re-validated or filtered on the way out). tests/test_fuzz.py
fuzzes a real agent with schemathesis and checks every response against these
declarations (status code, content type and schema), so they stay true.
Every model allows extra keys: adding a field to a response is not a break.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(Out):
    """Every error: ``{"error": "..."}``, sometimes with details (``errors``
    naming each bad field or line, ``available``/``requested``, ``currentVersion``...)."""

    error: str


class Product(Out):
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: float
    active: bool
    createdAt: str | None
    updatedAt: str | None


class Pagination(Out):
    page: int
    limit: int
    total: int


class ProductList(Out):
    data: list[Product]
    pagination: Pagination


class StockLevel(Out):
    productId: str
    sku: str
    storeId: str
    quantity: int
    reserved: int
    available: int
    version: int
    lastUpdated: str | None
    asOf: str | None


class StockUpdated(StockLevel):
    message: str
    movementId: str
    operation: Literal["add", "subtract", "sell", "set"]
    replayed: bool | None = None  # true when an idempotency key was replayed


class StoreAvailability(StockLevel):
    safetyStock: int
    availableOnline: int  # what a routed (online) order may take here
    inTransit: int  # shipped from this store by transfers, not yet received
    incoming: int  # on its way to this store by transfers


class Availability(Out):
    productId: str
    sku: str
    stores: list[StoreAvailability]
    totalAvailable: int
    totalAvailableOnline: int
    totalInTransit: int


class SafetyStock(Out):
    productId: str
    sku: str
    storeId: str
    safetyStock: int  # the effective one
    skuSetting: int | None  # the SKU's own setting; null: the store's default applies
    storeDefault: int


class AlertDelivery(Out):
    target: str  # a webhook's URL (no credentials, no query string), or "nats"
    events: list[Literal["low", "restored"]]
    delivered: int
    givenUp: int
    pending: int  # alerts after the cursor, waiting
    tries: int  # failed tries of the alert being delivered
    nextAttemptAt: str | None
    lastStatus: int | None
    lastError: str | None
    lastDeliveredAt: str | None
    lastTriedAt: str | None


class Store(Out):
    storeId: str
    listed: bool  # has a directory entry (else: known from its events only)
    name: str | None
    address: str | None
    lat: float | None
    lon: float | None
    priority: int
    online: bool
    safetyStock: int
    defaults: list[Literal["priority", "online", "safetyStock"]]
    updatedAt: str | None


class StoreList(Out):
    data: list[Store]


class Movement(Out):
    movementId: str
    sku: str
    storeId: str
    kind: Literal[
        "receive",
        "sell",
        "adjust",
        "count",
        "transfer_out",
        "transfer_return",
        "transfer_in",
        "damaged",
    ]
    quantity: int
    reason: str
    actor: str
    reservationId: str | None
    transferId: str | None = None
    origin: str
    at: str | None
    hlc: int
    superseded: bool


class History(Out):
    productId: str
    sku: str
    data: list[Movement]


class RoutingCleanup(Out):
    state: Literal["pending", "cancelled", "never-granted", "expired", "confirmed"]
    tries: int
    nextAt: str | None
    settledAt: str | None
    lastError: str | None


class RoutingAttempt(Out):
    storeId: str
    outcome: Literal["asking", "granted", "insufficient", "unreachable", "timeout", "skipped"]
    availableOnline: int
    reservationId: str | None = None  # every asked store's
    error: str | None = None  # what the store (or the way to it) said
    cleanup: RoutingCleanup | None = None  # an unanswered ask being cancelled


class RoutingSummary(Out):
    requestId: str
    strategy: Literal["priority", "most-available", "nearest"]
    attempts: list[RoutingAttempt]


class Routing(RoutingSummary):
    sku: str
    quantity: int
    customerId: str | None
    ttl: int
    stores: list[str] | None
    near: str | None
    status: Literal["routing", "granted", "refused", "unreachable"]
    storeId: str | None
    reservationId: str | None
    error: str | None
    pendingCleanups: int
    createdAt: str | None
    updatedAt: str | None


class RoutingList(Out):
    data: list[Routing]


class Reservation(Out):
    reservationId: str
    productId: str
    sku: str
    storeId: str
    quantity: int
    customerId: str | None
    status: Literal["PENDING", "CONFIRMED", "CANCELLED", "EXPIRED"]
    orderId: str | None
    channel: Literal["store", "online"] = "store"  # online: routed (storeId "any")
    # who reserved it and who made its latest change: a login's user, the OS
    # user over the socket, NAME@STORE when another store forwarded it; "" for
    # nobody (an expiry) and for reservations written before this was recorded
    createdBy: str = ""
    updatedBy: str = ""
    createdAt: str | None
    updatedAt: str | None
    expiresAt: str | None
    remainingSeconds: int
    message: str | None = None  # on create
    confirmedAt: str | None = None  # on confirm
    routing: RoutingSummary | None = None  # a routed reservation's (storeId "any")


class ReservationList(Out):
    data: list[Reservation]


TransferStatus = Literal["DRAFT", "SHIPPED", "PARTIALLY_RECEIVED", "RECEIVED", "CANCELLED"]


class TransferLine(Out):
    sku: str
    productId: str | None  # null: a SKU this agent's catalogue does not have (yet)
    name: str | None
    quantity: int  # asked for by the origin (0: received, but not on the transfer)
    shipped: int
    received: int
    damaged: int
    cancelled: int  # returned to the origin by its cancel
    pending: int  # still in transit


class TransferTotals(Out):
    quantity: int
    shipped: int
    received: int
    damaged: int
    cancelled: int
    pending: int


class Discrepancy(Out):
    sku: str
    kind: Literal["received_before_shipped", "not_on_transfer", "over_received", "cancel_corrected"]
    quantity: int


class ReceiptLine(Out):
    sku: str
    received: int
    damaged: int


class Receipt(Out):
    receiptId: str
    storeId: str
    lines: list[ReceiptLine]
    actor: str
    receivedAt: str | None


class Transfer(Out):
    transferId: str
    fromStoreId: str
    toStoreId: str
    status: TransferStatus
    originState: Literal["DRAFT", "SHIPPED", "CANCELLED"] | None  # null: known from receipts
    note: str
    actor: str
    lines: list[TransferLine]
    totals: TransferTotals
    discrepancies: list[Discrepancy]
    receipts: list[Receipt] | None = None  # one transfer's view (not in a list)
    createdAt: str | None
    shippedAt: str | None
    cancelledAt: str | None
    updatedAt: str | None


class TransferList(Out):
    data: list[Transfer]


class ImportResult(Out):
    importId: str
    rows: int
    applied: int
    unchanged: int
    alreadyImported: bool
    dryRun: bool
    changes: list[dict[str, Any]]
    changesTruncated: bool | None = None
    importedAt: str | None = None
    events: int | None = None  # stock imports: the stock.batch events their movements went into


class SyncStatus(Out):
    storeId: str
    mode: Literal["standalone", "replicated"]
    connected: bool
    server: str | None
    outboxBacklog: int
    peers: list[dict[str, Any]]
    quarantined: int
    digests: dict[str, str]


class ConflictEntry(Out):
    id: str
    kind: str
    sku: str | None
    storeId: str | None
    winner: str | None
    loser: str
    detail: dict[str, Any]
    at: str | None
    detectedAt: str | None


class Conflicts(Out):
    data: list[ConflictEntry]


class AgentInfo(Out):
    storeId: str
    version: str


class LoginToken(Out):
    token: str
    expiresAt: str
    user: str
    role: Literal["viewer", "clerk", "admin"]
    stores: list[str] | None


class WhoAmI(Out):
    user: str
    role: Literal["viewer", "clerk", "admin"]
    stores: list[str] | None
    via: Literal["socket", "token"]
    expiresAt: str | None


class Health(Out):
    status: Literal["healthy", "unhealthy"]
    storeId: str
    version: str
    uptimeSeconds: float
    mode: Literal["standalone", "replicated"]
    checks: dict[str, dict[str, Any]]
    alertDeliveries: list[AlertDelivery] = []


ERROR_TEXT = {
    400: "The body is not valid JSON",
    401: "Missing or bad bearer token (TCP only; the Unix socket is local admin)",
    403: "The token's role or stores do not allow this",
    404: "Product, reservation, transfer, stock row or store not found",
    409: "Conflict: insufficient stock, version mismatch, id or key reused, wrong state",
    413: "The body is larger than limits.max_body_bytes",
    422: "A field is invalid; the message names it (``errors`` lists each one)",
    429: "Rate limited (TCP only), or too many failed logins; see the Retry-After header",
    503: "The ledger is not writable (e.g. disk full), or the owning store is unreachable",
}

# what any /api/v1 call over TCP may answer, before the route runs
AUTH = (401, 403, 429)
QUERY = (*AUTH, 422)  # a route with query or path parameters
BODY = (*QUERY, 400, 413)  # a route with a JSON body
WRITE = (409, 503)


def spec(ok: int, model: type[BaseModel] | None, *errors: int, **more: Any) -> dict[str, Any]:
    """Decorator keywords for a route: its success body ``model`` under status
    ``ok`` (and any ``more`` statuses, e.g. ``also=(200,)``), and an ``Error``
    body for each status in ``errors``."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Error, "description": ERROR_TEXT[code]} for code in sorted(set(errors))
    }
    if model is not None:
        for code in (ok, *more.get("also", ())):
            responses[code] = {"model": model, "description": "Success"}
    return {"response_model": None, "responses": responses}
