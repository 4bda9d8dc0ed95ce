"""Request bodies. camelCase on the wire; every bound is checked here so a
bad request is a 422 naming the field, never a 5xx."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.domain import MAX_QUANTITY

Int = Annotated[int, Field(strict=True)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")]
StoreId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
]
Ident = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
Text = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=2000)]
Price = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Quantity = Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY)]
PositiveQuantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ProductCreate(Body):
    sku: Sku
    id: Ident | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: LongText = ""
    category: Text = ""
    price: Price = 0.0
    active: bool = True


class ProductUpdate(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: LongText | None = None
    category: Text | None = None
    price: Price | None = None
    active: bool | None = None


class StockUpdate(Body):
    store_id: StoreId | None = Field(default=None, alias="storeId")
    operation: Literal["add", "subtract", "set"]
    quantity: Quantity
    reason: Text = ""
    expected_version: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        default=None, alias="expectedVersion"
    )


class ReservationCreate(Body):
    reservation_id: Ident | None = Field(default=None, alias="reservationId")
    product_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(alias="productId")
    store_id: StoreId | None = Field(default=None, alias="storeId")
    quantity: PositiveQuantity
    customer_id: Text | None = Field(default=None, alias="customerId")
    ttl: Annotated[int, Field(strict=True, ge=1, le=7 * 86400)] | None = None


class ReservationConfirm(Body):
    order_id: Text | None = Field(default=None, alias="orderId")


class StockImportRow(Body):
    line: Int
    sku: Sku
    store_id: StoreId | None = Field(default=None, alias="storeId")
    quantity: Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
    mode: Literal["set", "add"] = "set"
    reason: Text = ""


class StockImport(Body):
    rows: Annotated[list[StockImportRow], Field(max_length=1_000_000)]
    dry_run: bool = Field(default=False, alias="dryRun")
    force: bool = False


class ProductImportRow(Body):
    line: Int
    sku: Sku
    id: Ident | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: LongText | None = None
    category: Text | None = None
    price: Price | None = None
    active: bool | None = None


class ProductImport(Body):
    rows: Annotated[list[ProductImportRow], Field(max_length=1_000_000)]
    dry_run: bool = Field(default=False, alias="dryRun")
    force: bool = False
