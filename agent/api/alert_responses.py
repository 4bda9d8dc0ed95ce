"""Response bodies of reorder settings, low stock and the alerts log (the
delivery state of each alert target, part of ``GET /health``, is with
``responses.Health``). Documentation only, like ``responses``."""

from __future__ import annotations

from typing import Literal

from agent.api.responses import Out


class ReorderFigures(Out):
    reorderPoint: int | None  # null: none (never low)
    maxStock: int | None
    reorderQty: int | None
    available: int
    incoming: int  # on its way from other stores (transfers shipped, not received)
    low: bool  # available at or below the reorder point
    suggested: int  # what to order while low (0 when not)


class ReorderSettings(ReorderFigures):
    productId: str
    sku: str
    storeId: str


class LowStockRow(ReorderFigures):
    sku: str
    productId: str | None  # null: a setting for a SKU this replica has no product of
    name: str | None
    storeId: str


class LowStock(Out):
    storeId: str  # the store asked about, or "all"
    data: list[LowStockRow]


class Alert(Out):
    id: str  # the alert's event id (origin:seq): X-Inventory-Event-Id of its deliveries
    kind: Literal["low", "restored"]
    sku: str
    productId: str | None
    storeId: str
    before: int  # available before the write that crossed
    after: int  # and after it
    reorderPoint: int | None  # null: a restored alert of a point taken away
    cause: str | None  # the event id of that write
    raisedAt: str | None


class AlertList(Out):
    data: list[Alert]
