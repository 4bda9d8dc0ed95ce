"""Query parameters several routes share, and reading ``since``."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from agent.errors import InvalidInput

Limit = Annotated[int, Query(ge=1, le=1000)]
StoreId = Annotated[str | None, Query(alias="storeId", max_length=64)]
Since = Annotated[str | None, Query(max_length=64)]
# the first characters of an id (a reservation's, a transfer's, a routing's):
# what a person types off a table's short id: the characters of schemas.Ident,
# and "@" (a routed reservation's id at its owner is "REQUEST@STORE")
IdPrefix = Annotated[
    str | None,
    Query(alias="idPrefix", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$"),
]
# the first characters of a SKU (shell completion asks for these); schemas.Sku's
SkuPrefix = Annotated[
    str | None,
    Query(
        alias="skuPrefix", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$"
    ),
]

_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | None) -> int | None:
    """``since`` as ISO-8601 (date or date-time, UTC if no zone) or relative
    (``90s``, ``30m``, ``24h``, ``7d``): milliseconds since the epoch."""
    if not text:
        return None
    m = _RELATIVE.match(text.strip())
    if m:
        return int((time.time() - int(m.group(1)) * _UNITS[m.group(2)]) * 1000)
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(
            f"since: {text!r} is not a time; use ISO-8601 (2026-11-28T10:00) or 30m, 24h, 7d"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
