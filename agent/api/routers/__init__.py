"""The API's routes, one module per resource; ``ALL`` in the order they are served."""

from __future__ import annotations

from agent.api.routers import (
    alerts,
    auth,
    imports,
    ops,
    products,
    reservations,
    routings,
    stock,
    stores,
    sync,
    transfers,
)

ALL = (
    ops.router,
    auth.router,
    products.router,
    stock.router,
    reservations.router,
    routings.router,
    transfers.router,
    imports.router,
    stores.router,
    sync.router,
    alerts.router,
)
