"""Transfers between stores: create (and ship), ship, receive, cancel, read.

Who may write is the role ``clerk`` for the store whose side the step is:
the origin creates, ships and cancels, the destination receives (the
service forwards a step to that store when it is not this one). A receipt
id, or a create's transfer id, may come as the ``X-Idempotency-Key`` header,
the header a stock change takes: one way to make any write safe to retry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse

from agent.api import responses as out
from agent.api import schemas
from agent.api.deps import Service, Who
from agent.api.responses import BODY, QUERY, WRITE, spec
from agent.api.routers.params import IdPrefix, Limit, StoreId
from agent.errors import InvalidInput
from agent.inputs import ReceiptLine, ReceiptRequest, TransferLine, TransferRequest

router = APIRouter(prefix="/api/v1/transfers", tags=["transfers"])
ID_PATTERN = r"^[A-Za-z0-9._:\-]+$"  # schemas.Ident: a reservation id's (no '@')
Tid = Annotated[str, Path(alias="transferId", min_length=1, max_length=128, pattern=ID_PATTERN)]
Status = Annotated[
    str | None, Query(pattern="^(DRAFT|SHIPPED|PARTIALLY_RECEIVED|RECEIVED|CANCELLED)$")
]
Direction = Annotated[str | None, Query(pattern="^(incoming|outgoing)$")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="X-Idempotency-Key", min_length=1, max_length=128, pattern=ID_PATTERN),
]


def _one_id(field: str, given: str | None, key: str | None) -> str | None:
    """The body's id or the header's: both may be sent only when they agree."""
    if given and key and given != key:
        raise InvalidInput(
            f"{field}: {given!r} differs from the X-Idempotency-Key header {key!r}; send one "
            "of the two (or the same id in both)"
        )
    return given or key


# 201: created; 200: that transferId exists with the same request (shipped now with "ship")
@router.post("", status_code=201, **spec(201, out.Transfer, *BODY, 404, *WRITE, also=(200,)))
async def create_transfer(
    body: schemas.TransferCreate,
    service: Service,
    principal: Who,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    origin = body.from_store_id or service.store_id
    principal.require("clerk", origin)
    request = TransferRequest(
        to_store=body.to_store_id,
        lines=tuple(TransferLine(ln.ref, ln.quantity) for ln in body.lines),
        transfer_id=_one_id("transferId", body.transfer_id, idempotency_key),
        from_store=origin,
        note=body.note,
        ship=body.ship,
        actor=principal.user,
    )
    status, view = await service.create_transfer(request)
    return JSONResponse(view, status_code=status)


@router.get("", **spec(200, out.TransferList, *QUERY))
async def list_transfers(
    service: Service,
    principal: Who,
    status: Status = None,
    store_id: StoreId = None,
    direction: Direction = None,
    limit: Limit = 100,
    id_prefix: IdPrefix = None,
) -> dict[str, Any]:
    """``direction`` without ``storeId``: this store's incoming or outgoing."""
    principal.require("viewer")
    return await service.list_transfers(status, store_id, direction, limit, id_prefix)


@router.get("/{transferId}", **spec(200, out.Transfer, *QUERY, 404))
async def get_transfer(tid: Tid, service: Service, principal: Who) -> dict[str, Any]:
    principal.require("viewer")
    return await service.get_transfer(tid)


def _side(service: Service, tid: str, origin: bool) -> str:
    """The store a step changes, as this agent knows the transfer (else this store)."""
    sides = service.transfer_sides(tid)
    if sides is None:
        return service.store_id
    return sides[0] if origin else sides[1]


@router.post("/{transferId}/ship", **spec(200, out.Transfer, *QUERY, 404, *WRITE))
async def ship_transfer(tid: Tid, service: Service, principal: Who) -> JSONResponse:
    principal.require("clerk", _side(service, tid, origin=True))
    status, view = await service.ship_transfer(tid, principal.user)
    return JSONResponse(view, status_code=status)


@router.post("/{transferId}/cancel", **spec(200, out.Transfer, *QUERY, 404, *WRITE))
async def cancel_transfer(tid: Tid, service: Service, principal: Who) -> JSONResponse:
    principal.require("clerk", _side(service, tid, origin=True))
    status, view = await service.cancel_transfer(tid, principal.user)
    return JSONResponse(view, status_code=status)


# 201: a new receipt recorded; 200: that receipt id was recorded already (a retry)
@router.post(
    "/{transferId}/receive",
    status_code=201,
    **spec(201, out.Transfer, *BODY, 404, *WRITE, also=(200,)),
)
async def receive_transfer(
    tid: Tid,
    service: Service,
    principal: Who,
    body: schemas.TransferReceive | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """No body, or no ``lines``: everything still pending, as shipped."""
    body = body or schemas.TransferReceive()
    principal.require("clerk", _side(service, tid, origin=False))
    lines = None
    if body.lines is not None:
        lines = tuple(ReceiptLine(ln.ref, ln.received, ln.damaged) for ln in body.lines)
    request = ReceiptRequest(
        transfer_id=tid,
        lines=lines,
        receipt_id=_one_id("receiptId", body.receipt_id, idempotency_key),
        from_store=body.from_store_id,
        actor=principal.user,
    )
    status, view = await service.receive_transfer(request)
    return JSONResponse(view, status_code=status)
