"""A transfer's step forwarded by another store: rebuilt from the request as
the store's own API would read it, and run here (the origin creates, ships
and cancels; the destination receives). Errors in the request are the
asker's (``InvalidInput``, a 400), never an internal error."""

from __future__ import annotations

from typing import Any

from agent.errors import InvalidInput
from agent.inputs import Deadline, ReceiptLine, ReceiptRequest, TransferLine, TransferRequest
from agent.service import InventoryService

# each one subject token: an agent serves ``inv.<net>.rpc.<store>.*``
OPS = ("transfer_create", "transfer_ship", "transfer_cancel", "transfer_receive")


async def serve(
    service: InventoryService, op: str, req: dict[str, Any], deadline: Deadline | None
) -> tuple[int, Any]:
    actor = _opt(req, "actor") or "forwarded"
    if op == "transfer_create":
        request = TransferRequest(
            to_store=_s(req, "toStoreId"),
            lines=tuple(
                TransferLine(_s(ln, "productId"), _i(ln, "quantity")) for ln in _lines(req)
            ),
            transfer_id=_s(req, "transferId"),
            from_store=service.store_id,
            note=_opt(req, "note") or "",
            ship=req.get("ship") is True,
            actor=actor,
        )
        return await service.create_transfer(request, deadline)
    if op == "transfer_ship":
        return await service.ship_transfer(_s(req, "transferId"), actor, deadline)
    if op == "transfer_cancel":
        return await service.cancel_transfer(_s(req, "transferId"), actor, deadline)
    if op == "transfer_receive":
        raw = req.get("lines")
        lines = None
        if raw is not None:
            lines = tuple(
                ReceiptLine(_s(ln, "productId"), _i(ln, "received"), _i(ln, "damaged"))
                for ln in _lines(req)
            )
        receipt = ReceiptRequest(
            transfer_id=_s(req, "transferId"),
            lines=lines,
            receipt_id=_s(req, "receiptId"),
            from_store=_opt(req, "fromStoreId"),
            actor=actor,
        )
        return await service.receive_transfer(receipt, deadline)
    raise InvalidInput(f"unknown operation {op!r}")


def _lines(req: dict[str, Any]) -> list[dict[str, Any]]:
    lines = req.get("lines")
    if not isinstance(lines, list) or not all(isinstance(ln, dict) for ln in lines):
        raise InvalidInput("lines: must be a list of objects")
    return lines


def _s(req: dict[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key}: required")
    return value


def _opt(req: dict[str, Any], key: str) -> str | None:
    value = req.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{key}: must be a string")
    return value


def _i(req: dict[str, Any], key: str) -> int:
    value = req.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{key}: must be an integer")
    return value
