"""The inventory service: what the API and the replicator's request handler call.

It fills in this store's defaults, sends a reservation for another store's
stock to the store that owns it (through the ``Forwarder`` it was built with),
and runs every other command as one ledger transaction on the writer thread.
Who may do what is the API's business (``agent.api.deps``), not this layer's.

Everything it needs is passed in whole at construction; nothing is attached
to it afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from agent.domain import routed_owner
from agent.errors import InsufficientStock, NotFound
from agent.inputs import Deadline, ReceiptRequest, ReservationRequest, StockChange, TransferRequest
from agent.ledger import (
    commands,
    counts,
    demo,
    directory_views,
    local,
    low_stock,
    queries,
    transfer_views,
)
from agent.ledger.local import Ledger
from agent.standalone import Standalone

T = TypeVar("T")
ReservationOutcome = str  # "created" | "existing" | "rejected" | "forwarded"


class Forwarder(Protocol):
    """Asks the agent of ``store`` to run ``op``; answers its (status, body).

    Raises ``Unavailable`` when the owner can't be asked or does not answer
    (with ``"outcome": "unknown"`` when the request may have been applied),
    ``Conflict`` when this agent can never ask it, and passes the owner's own
    errors on as they were."""

    async def __call__(self, store: str, op: str, payload: dict[str, Any]) -> tuple[int, Any]: ...


def _no_freshness() -> dict[str, int]:
    return {}


def _ignore(outcome: ReservationOutcome) -> None:
    return None


class InventoryService:
    def __init__(
        self,
        ledger: Ledger,
        *,
        reservation_ttl: int,
        outbox: asyncio.Event,
        forwarder: Forwarder | None = None,
        freshness: Callable[[], dict[str, int]] = _no_freshness,
        on_reservation: Callable[[ReservationOutcome], None] = _ignore,
        alerts: asyncio.Event | None = None,
    ) -> None:
        """``outbox`` is set after every write that may have added an event (the
        publisher waits on it); ``freshness`` says up to when this replica's view
        of each peer is complete; ``on_reservation`` counts reservation outcomes;
        ``alerts`` is set after every write too (any may raise a low-stock
        alert: the alert deliverer waits on it)."""
        self.ledger = ledger
        self.store_id = ledger.store_id
        self._store = ledger.store
        self._engine = ledger.engine
        self._ttl = reservation_ttl
        self._outbox = outbox
        self._forwarder: Forwarder = forwarder or Standalone()
        self._freshness = freshness
        self._count = on_reservation
        self._alerts = alerts

    @property
    def reservation_ttl(self) -> int:
        """Seconds a reservation is held when its request names no TTL."""
        return self._ttl

    def _now(self) -> int:
        """The ledger's time (what expiry is judged by)."""
        return self._engine.wall_ms()

    # ------------------------------------------------------------ lifecycle
    def load_demo_data(self) -> int:
        """The sample data's three products and four stock rows, where absent."""
        added = self._store.write_sync(demo.load, self._engine)
        self._written()
        return added

    def close(self) -> None:
        self.ledger.close()

    def _written(self) -> None:
        self._outbox.set()
        if self._alerts is not None:
            self._alerts.set()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        result = await self._store.write(fn, self._engine, *args)
        self._written()
        return result

    # ------------------------------------------------------------- products
    async def list_products(
        self, page: int, limit: int, category: str | None, search: str | None, prefix: str | None
    ) -> dict[str, Any]:
        return await self._store.read(
            queries.list_products, page, limit, category, search, True, prefix
        )

    async def get_product(self, ref: str) -> dict[str, Any]:
        return await self._store.read(queries.get_product, ref)

    async def create_product(self, fields: dict[str, Any]) -> dict[str, Any]:
        return await self._write(commands.create_product, fields)

    async def update_product(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        return await self._write(commands.update_product, ref, changes)

    # ---------------------------------------------------------------- stock
    async def update_stock(self, change: StockChange) -> dict[str, Any]:
        return await self._write(commands.update_stock, change)

    async def availability(self, ref: str, store: str | None) -> dict[str, Any]:
        return await self._store.read(
            queries.availability, ref, store, self.store_id, self._freshness(), self._now()
        )

    async def history(
        self, ref: str, store: str | None, since_ms: int | None, limit: int
    ) -> dict[str, Any]:
        return await self._store.read(queries.history, ref, store, since_ms, limit)

    async def _forward(self, store: str, op: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """Ask ``store`` to do ``op``; the acting user travels as ``NAME@STORE``
        (this store): accounts are a store's own, so a bare name would say
        nothing at the owner (a name already qualified, or none, stays)."""
        actor = payload.get("actor")
        if actor and "@" not in actor:
            payload = {**payload, "actor": f"{actor}@{self.store_id}"}
        return await self._forwarder(store, op, payload)

    # --------------------------------------------------------- reservations
    def deadline(self, budget_ms: int, margin_ms: int = 0) -> Deadline:
        """``budget_ms`` less ``margin_ms`` from now, on this ledger's monotonic
        clock: past it, a forwarded command is refused by the writer instead
        of applied."""
        return Deadline(self._engine.monotonic() + (budget_ms - margin_ms) / 1000, budget_ms)

    async def _require_known(self, store: str) -> None:
        """A store this replica has never heard of is the caller's mistake (a
        typo, a store that does not exist), not an owner out of reach."""
        if store in self._freshness():  # a peer heard from (or replicated)
            return
        if not await self._store.read(local.store_known, store):
            raise NotFound(f"store {store!r} is not known to this agent", storeId=store)

    async def reserve(
        self, request: ReservationRequest, deadline: Deadline | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``deadline``: a request forwarded by another store (see ``Deadline``)."""
        req = request.resolved(self._engine.new_id(), self.store_id, self._ttl)
        if req.store_id != self.store_id:
            await self._require_known(str(req.store_id))
            self._count("forwarded")
            return await self._forward(str(req.store_id), "reserve", req.wire())
        try:
            view, created = await self._write(commands.reserve, req, deadline)
        except InsufficientStock:
            self._count("rejected")
            raise
        self._count("created" if created else "existing")
        return (202 if created else 200), {
            **view,
            "message": "Reservation accepted" if created else "Reservation already exists",
        }

    def reservation_store(self, rid: str, store_hint: str | None = None) -> str | None:
        """The store whose stock a reservation holds (the one a confirm or
        cancel changes): its owner if known here, else the caller's hint, else
        the store a routed reservation's id names (``domain.routed_owner``:
        the id a router returned works before its reservation has replicated).

        Read on the calling thread: a lookup by key takes microseconds, less
        than a hop to the read pool, and under WAL it never waits for the writer."""
        return (
            self._store.read_here(local.reservation_owner, rid) or store_hint or routed_owner(rid)
        )

    async def confirm(
        self,
        rid: str,
        order_id: str | None,
        actor: str,
        owner: str | None = None,
        deadline: Deadline | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """``owner``: ``reservation_store(rid)`` when the caller already asked."""
        owner = owner or self.reservation_store(rid)
        if owner and owner != self.store_id:
            await self._require_known(owner)
            return await self._forward(
                owner, "confirm", {"reservationId": rid, "orderId": order_id, "actor": actor}
            )
        view = await self._write(commands.confirm, rid, order_id, actor, deadline)
        return 200, {**view, "confirmedAt": view["updatedAt"]}

    async def cancel(
        self,
        rid: str,
        actor: str,
        owner: str | None = None,
        deadline: Deadline | None = None,
    ) -> tuple[int, Any]:
        owner = owner or self.reservation_store(rid)
        if owner and owner != self.store_id:
            await self._require_known(owner)
            return await self._forward(owner, "cancel", {"reservationId": rid, "actor": actor})
        await self._write(commands.cancel, rid, actor, deadline)
        return 204, None

    async def get_reservation(self, rid: str) -> dict[str, Any]:
        return await self._store.read(queries.get_reservation, rid, self._now())

    async def list_reservations(
        self, status: str | None, store: str | None, sku: str | None, limit: int, prefix: str | None
    ) -> dict[str, Any]:
        if sku:
            sku = (await self.get_product(sku))["sku"]
        return await self._store.read(
            queries.list_reservations, status, store, sku, limit, self._now(), prefix
        )

    async def expire_due(self) -> int:
        n: int = await self._store.write(commands.expire_due, self._engine)
        if n:
            self._written()
        return n

    async def next_expiry_ms(self) -> int | None:
        return await self._store.read(local.next_expiry_ms, self.store_id)

    # ------------------------------------------------------------ transfers
    def transfer_sides(self, tid: str) -> tuple[str, str, str | None] | None:
        """(origin, destination, origin's state) of a transfer known here; read
        on the calling thread, like ``reservation_store``."""
        return self._store.read_here(transfer_views.sides, tid)

    async def create_transfer(
        self, request: TransferRequest, deadline: Deadline | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Created at the origin: here, or forwarded to the store it comes from."""
        req = request.resolved(self._engine.new_id(), self.store_id)
        origin = str(req.from_store)
        if origin != self.store_id:
            await self._require_known(origin)
            return await self._forward(origin, "transfer_create", req.wire())
        view, created = await self._write(commands.create_transfer, req, deadline)
        return (201 if created else 200), view

    async def ship_transfer(
        self, tid: str, actor: str, deadline: Deadline | None = None
    ) -> tuple[int, dict[str, Any]]:
        return await self._at_origin(tid, "transfer_ship", commands.ship_transfer, actor, deadline)

    async def cancel_transfer(
        self, tid: str, actor: str, deadline: Deadline | None = None
    ) -> tuple[int, dict[str, Any]]:
        return await self._at_origin(
            tid, "transfer_cancel", commands.cancel_transfer, actor, deadline
        )

    async def _at_origin(
        self,
        tid: str,
        op: str,
        command: Callable[..., dict[str, Any]],
        actor: str,
        deadline: Deadline | None,
    ) -> tuple[int, dict[str, Any]]:
        sides = self.transfer_sides(tid)
        if sides is not None and sides[0] != self.store_id:
            await self._require_known(sides[0])
            return await self._forward(sides[0], op, {"transferId": tid, "actor": actor})
        return 200, await self._write(command, tid, actor, deadline)

    async def receive_transfer(
        self, request: ReceiptRequest, deadline: Deadline | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Received at the destination: here, or forwarded to the store it
        goes to. A transfer not known here is received here (it came while
        the network was down, before its shipment's events)."""
        req = request.resolved(self._engine.new_id())
        dest = self._store.read_here(
            transfer_views.received_elsewhere, req.transfer_id, self.store_id, req.receipt_id
        )
        if dest is not None:
            await self._require_known(dest)
            return await self._forward(dest, "transfer_receive", req.wire())
        view, recorded = await self._write(commands.receive_transfer, req, deadline)
        return (201 if recorded else 200), view

    async def get_transfer(self, tid: str) -> dict[str, Any]:
        return await self._store.read(transfer_views.transfer_view, tid)

    async def list_transfers(
        self, status: str | None, store: str | None, way: str | None, limit: int, prefix: str | None
    ) -> dict[str, Any]:
        """``way`` (incoming, outgoing) without a store: this store's."""
        store = store or (self.store_id if way else None)
        return await self._store.read(
            transfer_views.list_transfers, status, store, way, limit, prefix
        )

    # ------------------------------------------------------------ directory
    async def list_stores(self) -> dict[str, Any]:
        return await self._store.read(directory_views.list_stores, self.store_id)

    async def get_store(self, store_id: str) -> dict[str, Any]:
        return await self._store.read(directory_views.get_store, store_id, self.store_id)

    async def set_store(self, store_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Describe a store (``changes``: API field names; None unsets one)."""
        return await self._write(commands.set_store, store_id, changes)

    async def set_safety_stock(
        self, ref: str, store: str | None, value: int | None
    ) -> dict[str, Any]:
        """A product's safety stock at ``store`` (default: this one); None clears it."""
        return await self._write(commands.set_safety_stock, ref, store or self.store_id, value)

    # ------------------------------------------------- reorder points, alerts
    async def set_reorder(
        self, ref: str, store: str | None, changes: dict[str, int | None]
    ) -> dict[str, Any]:
        """A product's reorder settings at ``store`` (default: this one):
        ``changes`` by API name, None clears one, those left out stay."""
        return await self._write(commands.set_reorder, ref, store or self.store_id, changes)

    async def low_stock(self, store: str | None) -> dict[str, Any]:
        """What is at or below its reorder point at ``store`` (default: this
        one; ``all``: every store this replica knows)."""
        return await self._store.read(
            low_stock.low_stock_view, store or self.store_id, self.store_id
        )

    async def list_alerts(
        self, since_ms: int | None, store: str | None, sku: str | None, limit: int
    ) -> dict[str, Any]:
        if sku:
            sku = (await self.get_product(sku))["sku"]
        return await self._store.read(low_stock.list_alerts, since_ms, store, sku, limit)

    # -------------------------------------------------------------- imports
    async def import_stock(
        self, rows: list[dict[str, Any]], dry_run: bool, force: bool, actor: str
    ) -> dict[str, Any]:
        for r in rows:  # what a row leaves out: this store, a count, no reason
            r["storeId"] = r.get("storeId") or self.store_id
            r.setdefault("mode", "set")
            r.setdefault("reason", "")
        return await self._write(commands.import_stock, rows, dry_run, force, actor)

    async def import_products(
        self, rows: list[dict[str, Any]], dry_run: bool, force: bool
    ) -> dict[str, Any]:
        return await self._write(commands.import_products, rows, dry_run, force)

    # ----------------------------------------------------------- operations
    async def conflicts(self, since_ms: int | None, limit: int) -> dict[str, Any]:
        return await self._store.read(queries.list_conflicts, since_ms, limit)

    async def digests(self) -> dict[str, str]:
        return await self._store.read(queries.digests)

    async def outbox_backlog(self) -> int:
        return await self._store.read(queries.outbox_backlog, self.store_id)

    async def ledger_counts(self) -> dict[str, Any]:
        return await self._store.read(counts.ledger_counts)

    async def ledger_check(self) -> dict[str, Any]:
        info = await self._store.read(local.ledger_check)
        info["path"] = str(self._store.path)
        info["writable"] = self._store.last_write_error is None
        if self._store.last_write_error:
            info["lastWriteError"] = self._store.last_write_error
        return info
