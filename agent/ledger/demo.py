"""The sample data of the plan this project grew from: three products and four
stock rows (``inv-agent --demo-data``, ``make run``). Written as ordinary local
commands, so they replicate like any other write."""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.inputs import StockChange
from agent.ledger import commands, queries
from agent.ledger.engine import Engine
from agent.ledger.local import product_exists

PRODUCTS: tuple[dict[str, Any], ...] = (
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
)
STOCK: tuple[tuple[str, str, int], ...] = (
    ("PROD-001", "store-001", 10),
    ("PROD-001", "store-002", 5),
    ("PROD-002", "store-001", 50),
    ("PROD-003", "store-001", 20),
)


def load(conn: sqlite3.Connection, engine: Engine) -> int:
    """Write whatever of the sample data is absent; how many rows were added."""
    added = 0
    for product in PRODUCTS:
        if not product_exists(conn, product["sku"]):
            commands.create_product(conn, engine, dict(product))
            added += 1
    for sku, store, qty in STOCK:
        if queries.stock_level(conn, sku, store) is None:
            change = StockChange(sku, store, "set", qty, reason="demo data", actor="demo")
            commands.update_stock(conn, engine, change)
            added += 1
    return added
