"""Local commands: the business rules that need the ledger's current state.

Each function runs on the writer thread inside one transaction (see
``LedgerStore.write``): it checks, then records its change as events through
the engine. Nothing here is applied partially. Time and ids come from the
engine (``engine.wall_ms()``, ``engine.new_id()``), never from the globals.

- ``common``: request fingerprints and idempotency keys;
- ``products``: create and update products;
- ``stock``: add, subtract, set a stock level;
- ``reservations``: reserve, confirm, cancel, expire;
- ``directory``: describe a store, set a SKU's safety stock at a store;
- ``reorder``: a SKU's reorder point, maximum and reorder quantity at a store;
- ``transfers``: create, ship, cancel (the origin), receive (the destination);
- ``imports``: all-or-nothing imports of stock and products.
"""

from agent.ledger.commands.common import (
    FINGERPRINT_CHUNK,
    fingerprint,
    recall,
    remember,
    rows_fingerprint,
)
from agent.ledger.commands.directory import set_safety_stock, set_store
from agent.ledger.commands.imports import CHANGES_SHOWN, import_products, import_stock
from agent.ledger.commands.products import create_product, update_product
from agent.ledger.commands.reorder import set_reorder
from agent.ledger.commands.reservations import cancel, confirm, expire_due, reserve
from agent.ledger.commands.stock import update_stock
from agent.ledger.commands.transfers import cancel as cancel_transfer
from agent.ledger.commands.transfers import create as create_transfer
from agent.ledger.commands.transfers import receive as receive_transfer
from agent.ledger.commands.transfers import ship as ship_transfer

__all__ = [
    "CHANGES_SHOWN",
    "FINGERPRINT_CHUNK",
    "cancel",
    "cancel_transfer",
    "confirm",
    "create_product",
    "create_transfer",
    "expire_due",
    "fingerprint",
    "import_products",
    "import_stock",
    "recall",
    "receive_transfer",
    "remember",
    "reserve",
    "rows_fingerprint",
    "set_reorder",
    "set_safety_stock",
    "set_store",
    "ship_transfer",
    "update_product",
    "update_stock",
]
