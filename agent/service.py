"""The inventory service: what the API and the replicator call.

Thin on purpose: it picks defaults, checks who may do what, forwards a
reservation to the store that owns the stock, and runs each command as one
ledger transaction on the writer thread.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from agent import hlc as hlc_mod
from agent.config import AgentConfig, ConfigError
from agent.domain import STORE_RE
from agent.errors import InsufficientStock, Unavailable
from agent.ledger import commands, queries
from agent.ledger.engine import Engine
from agent.ledger.store import LedgerStore

Forwarder = Callable[[str, str, dict[str, Any]], Awaitable[tuple[int, Any]]]

SEED_PRODUCTS = [
    {
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "sku": "PROD-001",
        "name": "Laptop HP Pavilion 15",
        "description": '15.6" FHD, Intel i5, 8GB RAM',
        "category": "electronics",
        "price": 599.99,
    },
    {
        "id": "550e8400-e29b-41d4-a716-446655440001",
        "sku": "PROD-002",
        "name": "Mouse Logitech M185",
        "description": "Wireless Mouse",
        "category": "accessories",
        "price": 29.99,
    },
    {
        "id": "550e8400-e29b-41d4-a716-446655440002",
        "sku": "PROD-003",
        "name": "Teclado Mecánico RGB",
        "description": "Switches Cherry MX Blue",
        "category": "accessories",
        "price": 89.99,
    },
]
SEED_STOCK = [
    ("PROD-001", "store-001", 10),
    ("PROD-001", "store-002", 5),
    ("PROD-002", "store-001", 50),
    ("PROD-003", "store-001", 20),
]


class InventoryService:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.store = LedgerStore(config.ledger_path)
        self.store_id = self.store.write_sync(self._bind_identity, config.store_id)
        last = self.store.read_sync(
            lambda c: c.execute("SELECT coalesce(max(hlc), 0) FROM events").fetchone()[0]
        )
        offset = config.clock_offset_ms
        self.clock = hlc_mod.HybridLogicalClock(
            last=last, clock=(lambda: hlc_mod.now_ms() + offset) if offset else hlc_mod.now_ms
        )
        self.engine = Engine(self.store_id, self.clock)
        self.forwarder: Forwarder | None = None
        self.freshness: Callable[[], dict[str, int]] = dict
        self.outbox_signal = asyncio.Event()
        self.count_reservation: Callable[[str], None] = lambda outcome: None

    # ------------------------------------------------------------ lifecycle
    @staticmethod
    def _bind_identity(conn: Any, wanted: str | None) -> str:
        if wanted and not STORE_RE.match(wanted):
            raise ConfigError(
                f"store_id: {wanted!r} is not valid: letters, digits, '-' and '_' only "
                "(it is part of NATS subject names), at most 64"
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        if row is None:
            if not wanted:
                raise ConfigError(
                    "store_id is not set: start with --store-id ID (or INV_STORE_ID, or "
                    "store_id: in the config file)"
                )
            conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', ?)", (wanted,))
            return wanted
        if wanted and wanted != row[0]:
            raise ConfigError(
                f"this ledger belongs to store {row[0]!r}, not {wanted!r}; "
                "use another --data-dir for another store"
            )
        return str(row[0])

    def load_demo_data(self) -> int:
        """The seed plan's three products and four stock rows, where absent."""

        def load(conn: Any) -> int:
            added = 0
            for p in SEED_PRODUCTS:
                if conn.execute("SELECT 1 FROM products WHERE sku = ?", (p["sku"],)).fetchone():
                    continue
                commands.create_product(conn, self.engine, dict(p))
                added += 1
            for sku, store, qty in SEED_STOCK:
                if queries.stock_level(conn, sku, store) is None:
                    commands.update_stock(
                        conn, self.engine, sku, store, "set", qty, "demo data", "demo", None, None
                    )
                    added += 1
            return added

        added = self.store.write_sync(load)
        self._written()
        return added

    def close(self) -> None:
        self.store.close()

    def _written(self) -> None:
        self.outbox_signal.set()

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        result = await self.store.write(fn, self.engine, *args)
        self._written()
        return result

    # ------------------------------------------------------------- products
    async def list_products(
        self, page: int, limit: int, category: str | None, search: str | None
    ) -> dict[str, Any]:
        return await self.store.read(queries.list_products, page, limit, category, search)

    async def get_product(self, ref: str) -> dict[str, Any]:
        return await self.store.read(queries.get_product, ref)

    async def create_product(self, fields: dict[str, Any]) -> dict[str, Any]:
        return await self.write(commands.create_product, fields)

    async def update_product(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        return await self.write(commands.update_product, ref, changes)

    # ---------------------------------------------------------------- stock
    async def update_stock(
        self,
        ref: str,
        store: str | None,
        operation: str,
        quantity: int,
        reason: str,
        actor: str,
        expected_version: int | None,
        idem_key: str | None,
    ) -> dict[str, Any]:
        return await self.write(
            commands.update_stock,
            ref,
            store or self.store_id,
            operation,
            quantity,
            reason,
            actor,
            expected_version,
            idem_key,
        )

    async def availability(self, ref: str, store: str | None) -> dict[str, Any]:
        return await self.store.read(
            queries.availability, ref, store, self.store_id, self.freshness()
        )

    async def history(
        self, ref: str, store: str | None, since_ms: int | None, limit: int
    ) -> dict[str, Any]:
        return await self.store.read(queries.history, ref, store, since_ms, limit)

    # --------------------------------------------------------- reservations
    async def _forward(self, store: str, op: str, payload: dict[str, Any]) -> tuple[int, Any]:
        if self.forwarder is None:
            raise Unavailable(
                f"store {store!r} owns that stock and cannot be reached: this agent runs "
                "standalone (no NATS configured); nothing was changed",
                owner=store,
            )
        return await self.forwarder(store, op, payload)

    async def reserve(
        self,
        rid: str | None,
        ref: str,
        store: str | None,
        quantity: int,
        customer: str | None,
        ttl: int | None,
    ) -> tuple[int, dict[str, Any]]:
        store = store or self.store_id
        rid = rid or str(uuid.uuid4())
        ttl = ttl or self.config.reservation_ttl
        if store != self.store_id:
            payload = {
                "reservationId": rid,
                "productId": ref,
                "storeId": store,
                "quantity": quantity,
                "customerId": customer,
                "ttl": ttl,
            }
            self.count_reservation("forwarded")
            return await self._forward(store, "reserve", payload)
        try:
            view, created = await self.write(
                commands.reserve, rid, ref, store, quantity, customer, ttl
            )
        except InsufficientStock:
            self.count_reservation("rejected")
            raise
        self.count_reservation("created" if created else "existing")
        return (202 if created else 200), {
            **view,
            "message": "Reservation accepted" if created else "Reservation already exists",
        }

    async def _owner_of(self, rid: str) -> str | None:
        def owner(conn: Any) -> str | None:
            row = conn.execute("SELECT store_id FROM reservations WHERE id = ?", (rid,)).fetchone()
            return row[0] if row else None

        return self.store.read_here(owner)

    async def reservation_store(self, rid: str, store_hint: str | None = None) -> str | None:
        """The store whose stock a reservation holds (the one a confirm or
        cancel changes): its owner if known here, else the caller's hint."""
        return await self._owner_of(rid) or store_hint

    async def confirm(
        self,
        rid: str,
        order_id: str | None,
        actor: str,
        store_hint: str | None = None,
        *,
        owner_known: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """``owner_known``: ``store_hint`` is already ``reservation_store(rid)``."""
        owner = store_hint if owner_known else await self.reservation_store(rid, store_hint)
        if owner and owner != self.store_id:
            return await self._forward(
                owner, "confirm", {"reservationId": rid, "orderId": order_id}
            )
        view = await self.write(commands.confirm, rid, order_id, actor)
        return 200, {**view, "confirmedAt": view["updatedAt"]}

    async def cancel(
        self, rid: str, store_hint: str | None = None, *, owner_known: bool = False
    ) -> tuple[int, Any]:
        owner = store_hint if owner_known else await self.reservation_store(rid, store_hint)
        if owner and owner != self.store_id:
            return await self._forward(owner, "cancel", {"reservationId": rid})
        await self.write(commands.cancel, rid)
        return 204, None

    async def get_reservation(self, rid: str) -> dict[str, Any]:
        return await self.store.read(queries.get_reservation, rid)

    async def list_reservations(
        self, status: str | None, store: str | None, sku: str | None, limit: int
    ) -> dict[str, Any]:
        if sku:
            sku = (await self.get_product(sku))["sku"]
        return await self.store.read(queries.list_reservations, status, store, sku, limit)

    async def expire_due(self) -> int:
        n: int = await self.store.write(commands.expire_due, self.engine)
        if n:
            self._written()
        return n

    async def next_expiry_ms(self) -> int | None:
        def q(conn: Any) -> int | None:
            return conn.execute(
                "SELECT min(expires_at_ms) FROM reservations WHERE status = 'PENDING' "
                "AND store_id = ?",
                (self.store_id,),
            ).fetchone()[0]

        return await self.store.read(q)

    # -------------------------------------------------------------- imports
    async def import_stock(
        self, rows: list[dict[str, Any]], dry_run: bool, force: bool, actor: str
    ) -> dict[str, Any]:
        for r in rows:  # what a row leaves out: this store, a count, no reason
            r["storeId"] = r.get("storeId") or self.store_id
            r.setdefault("mode", "set")
            r.setdefault("reason", "")
        return await self.write(commands.import_stock, rows, dry_run, force, actor)

    async def import_products(
        self, rows: list[dict[str, Any]], dry_run: bool, force: bool
    ) -> dict[str, Any]:
        return await self.write(commands.import_products, rows, dry_run, force)

    # ----------------------------------------------------------- operations
    async def conflicts(self, since_ms: int | None, limit: int) -> dict[str, Any]:
        return await self.store.read(queries.list_conflicts, since_ms, limit)

    async def digests(self) -> dict[str, str]:
        return await self.store.read(queries.digests)

    async def outbox_backlog(self) -> int:
        return await self.store.read(queries.outbox_backlog, self.store_id)

    async def ledger_check(self) -> dict[str, Any]:
        def check(conn: Any) -> dict[str, Any]:
            conn.execute("SELECT count(*) FROM meta").fetchone()
            return {"schemaVersion": conn.execute("PRAGMA user_version").fetchone()[0]}

        info = await self.store.read(check)
        info["path"] = str(self.store.path)
        info["writable"] = self.store.last_write_error is None
        if self.store.last_write_error:
            info["lastWriteError"] = self.store.last_write_error
        return info
