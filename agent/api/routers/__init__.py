"""The API's routes, one module per resource; ``ALL`` in the order they are served."""

from __future__ import annotations

from agent.api.routers import (
    alerts,
    imports,
    ops,
    products,
    reservations,
    routings,
    stock,
    stores,
    sync,
)

ALL = (
    ops.router,
    products.router,
    stock.router,
    reservations.router,
    routings.router,
    imports.router,
    stores.router,
    sync.router,
    alerts.router,
)
