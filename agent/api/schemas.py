"""Request bodies. camelCase on the wire; every bound is checked here so a
bad request is a 422 naming the field, never a 5xx."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, NotRequired

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one on Python 3.11

from agent.domain import MAX_PRIORITY, MAX_QUANTITY, MAX_TRANSFER_LINES

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
MAX_CANDIDATES = 64  # stores a routed reservation may name (each may take a forward timeout)


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
    operation: Literal["add", "subtract", "sell", "set"]
    quantity: Quantity
    reason: Text = ""
    expected_version: Annotated[int, Field(strict=True, ge=0)] | None = Field(
        default=None, alias="expectedVersion"
    )


class ReservationCreate(Body):
    reservation_id: Ident | None = Field(default=None, alias="reservationId")
    product_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(alias="productId")
    # "any": routed to whichever store can take it (the three fields below)
    store_id: StoreId | None = Field(default=None, alias="storeId")
    quantity: PositiveQuantity
    customer_id: Text | None = Field(default=None, alias="customerId")
    ttl: Annotated[int, Field(strict=True, ge=1, le=7 * 86400)] | None = None
    stores: Annotated[list[StoreId], Field(min_length=1, max_length=MAX_CANDIDATES)] | None = None
    strategy: Literal["priority", "most-available", "nearest"] | None = None
    near: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class StoreUpdate(Body):
    """A store's directory fields; those left out stay as they are, a null
    unsets one (its default applies: priority 100, online, safety stock 0)."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    address: Text | None = None
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    priority: Annotated[int, Field(strict=True, ge=1, le=MAX_PRIORITY)] | None = None
    online: Annotated[bool, Field(strict=True)] | None = None
    safety_stock: Quantity | None = Field(default=None, alias="safetyStock")


class SafetyStockSet(Body):
    store_id: StoreId | None = Field(default=None, alias="storeId")
    safety_stock: Quantity | None = Field(alias="safetyStock")  # required; null clears it


class ReorderSet(Body):
    """A SKU's reorder settings at a store: ``reorderPoint`` is required (null
    clears it); ``maxStock`` and ``reorderQty`` left out stay as they are, a
    null clears one."""

    store_id: StoreId | None = Field(default=None, alias="storeId")
    reorder_point: Quantity | None = Field(alias="reorderPoint")
    max_stock: Quantity | None = Field(default=None, alias="maxStock")
    reorder_qty: PositiveQuantity | None = Field(default=None, alias="reorderQty")

    def changes(self) -> dict[str, int | None]:
        """The settings to write, by API name: those given (a null too)."""
        given = {"reorderPoint": self.reorder_point}
        if "max_stock" in self.model_fields_set:
            given["maxStock"] = self.max_stock
        if "reorder_qty" in self.model_fields_set:
            given["reorderQty"] = self.reorder_qty
        return given


class ReservationConfirm(Body):
    order_id: Text | None = Field(default=None, alias="orderId")


class ProductLine(Body):
    """A line names its product by ``productId`` (an id or a SKU, as
    everywhere) or by ``sku``: one of the two."""

    product_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, alias="productId"
    )
    sku: Sku | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> ProductLine:
        if (self.product_id is None) == (self.sku is None):
            raise PydanticCustomError("product_ref", "give productId or sku (one of the two)")
        return self

    @property
    def ref(self) -> str:
        return str(self.product_id or self.sku)


class TransferLineIn(ProductLine):
    quantity: PositiveQuantity


class TransferCreate(Body):
    transfer_id: Ident | None = Field(default=None, alias="transferId")
    from_store_id: StoreId | None = Field(default=None, alias="fromStoreId")
    to_store_id: StoreId = Field(alias="toStoreId")
    lines: Annotated[list[TransferLineIn], Field(min_length=1, max_length=MAX_TRANSFER_LINES)]
    note: LongText = ""
    ship: Annotated[bool, Field(strict=True)] = False


class ReceiptLineIn(ProductLine):
    received: Quantity
    damaged: Quantity = 0


class TransferReceive(Body):
    """No ``lines``: everything still pending, as shipped."""

    receipt_id: Ident | None = Field(default=None, alias="receiptId")
    from_store_id: StoreId | None = Field(default=None, alias="fromStoreId")
    lines: (
        Annotated[list[ReceiptLineIn], Field(min_length=1, max_length=MAX_TRANSFER_LINES)] | None
    ) = None


# Import bodies are TypedDicts, not models, validated from the request's bytes
# (``validated`` below): pydantic parses the JSON straight into the dicts the
# ledger takes, 6x faster than json.loads, a model per row and a dump of each,
# and with one copy of 100,000 rows in memory instead of three (FastAPI's own
# body handling keeps its json.loads result for the whole request).
# docs/PERFORMANCE.md, B3 and B6. Absent optional keys stay absent; the
# service fills the defaults.
@with_config(ConfigDict(extra="forbid"))
class StockImportRow(TypedDict):
    line: Int
    sku: Sku
    storeId: NotRequired[StoreId | None]
    # a row that sets safetyStock or a reorder setting may leave the quantity
    # out (the ledger checks); a null reorder setting clears it
    quantity: NotRequired[Annotated[int, Field(strict=True, ge=-MAX_QUANTITY, le=MAX_QUANTITY)]]
    mode: NotRequired[Literal["set", "add"]]
    reason: NotRequired[Text]
    safetyStock: NotRequired[Quantity]
    reorderPoint: NotRequired[Quantity | None]
    maxStock: NotRequired[Quantity | None]
    reorderQty: NotRequired[PositiveQuantity | None]


@with_config(ConfigDict(extra="forbid"))
class StockImport(TypedDict):
    rows: Annotated[list[StockImportRow], Field(max_length=1_000_000)]
    dryRun: NotRequired[bool]
    force: NotRequired[bool]


@with_config(ConfigDict(extra="forbid"))
class ProductImportRow(TypedDict):
    line: Int
    sku: Sku
    id: NotRequired[Ident | None]
    name: NotRequired[Annotated[str, Field(min_length=1, max_length=200)] | None]
    description: NotRequired[LongText | None]
    category: NotRequired[Text | None]
    price: NotRequired[Price | None]
    active: NotRequired[bool | None]


@with_config(ConfigDict(extra="forbid"))
class ProductImport(TypedDict):
    rows: Annotated[list[ProductImportRow], Field(max_length=1_000_000)]
    dryRun: NotRequired[bool]
    force: NotRequired[bool]


STOCK_IMPORT = TypeAdapter(StockImport)
PRODUCT_IMPORT = TypeAdapter(ProductImport)
RAW_BODIES: dict[str, TypeAdapter[Any]] = {
    "StockImport": STOCK_IMPORT,
    "ProductImport": PRODUCT_IMPORT,
}


async def validated(request: Request, adapter: TypeAdapter[Any]) -> Any:
    """The request body validated by ``adapter`` from its bytes; a bad one
    raises ``RequestValidationError`` like FastAPI's own body validation."""
    raw = await request.body()
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        try:  # for the error messages' line numbers
            body = json.loads(raw)
        except ValueError:
            body = None
        raise RequestValidationError(errors, body=body) from None


def raw_body(name: str) -> dict[str, Any]:
    """OpenAPI for a body a route validates itself: ``name``'s schema, which
    ``publish_raw_bodies`` adds to the components."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    }


def publish_raw_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the schemas of the self-validated bodies to an OpenAPI document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, adapter in RAW_BODIES.items():
        body = adapter.json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[name] = body
    return schema
