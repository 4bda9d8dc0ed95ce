"""State digests: one hash per store of what a replica holds of it, and one
of the catalogue. Equal digests = converged replicas.

The agent computes them from its SQLite ledger and HQ from PostgreSQL; both
hand their rows to ``digests`` here, so the two can only agree or disagree on
the data, never on how it is hashed. Rows are sorted here (PostgreSQL's text
collation is not SQLite's byte order) and values normalised (a price is a
REAL in one and a NUMERIC in the other, ``active`` an integer or a bool).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

Row = tuple[Any, ...]


def _v(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    try:  # a Decimal (PostgreSQL NUMERIC) compares as the float SQLite keeps
        return repr(float(value)) if not isinstance(value, str) else value
    except (TypeError, ValueError):
        return str(value)


def _line(tag: str, row: Row) -> bytes:
    return (tag + "|" + "|".join(_v(v) for v in row) + "\n").encode()


def digests(
    stock: Iterable[Row],
    reservations: Iterable[Row],
    settings: Iterable[Row] = (),
    stores: Iterable[Row] = (),
    products: Iterable[Row] = (),
    reorder: Iterable[Row] = (),
    transfers: Iterable[Row] = (),
    alerts: Iterable[Row] = (),
) -> dict[str, str]:
    """The digests of a replica's state, from its rows:

    - ``stock``: (store_id, sku, on_hand, reserved); rows of 0 and 0 are left
      out (a row created by a cancelled reservation is no difference);
    - ``reservations``: (store_id, id, sku, quantity, status, order_id);
    - ``settings``: (store_id, sku, safety_stock), rows with a setting only;
    - ``stores``: (store_id, name, address, lat, lon, priority, online,
      safety_stock): the directory entry of a store;
    - ``products``: (sku, id, name, description, category, price, active);
    - ``reorder``: (store_id, sku, reorder_point, max_stock, reorder_qty),
      rows with any of them set;
    - ``transfers``: (from_store, transfer id, to_store, state, sku, quantity,
      shipped, claim, received, damaged), one per line, under its origin;
    - ``alerts``: (store_id, id, kind, sku, before, after, reorder_point).

    A store has a digest once any of these but ``products`` has a row of it."""
    lines: dict[str, list[bytes]] = {}
    for store, *rest in sorted(stores, key=lambda r: str(r[0])):
        lines.setdefault(store, []).append(_line("d", tuple(rest)))
    for store, sku, on_hand, reserved in sorted(stock, key=lambda r: (str(r[0]), str(r[1]))):
        if on_hand or reserved:
            lines.setdefault(store, []).append(_line("s", (sku, on_hand, reserved)))
    for store, sku, safety in sorted(settings, key=lambda r: (str(r[0]), str(r[1]))):
        if safety is not None:
            lines.setdefault(store, []).append(_line("t", (sku, safety)))
    for store, *rest in sorted(reservations, key=lambda r: (str(r[0]), str(r[1]))):
        lines.setdefault(store, []).append(_line("r", tuple(rest)))
    for store, *rest in sorted(reorder, key=lambda r: (str(r[0]), str(r[1]))):
        if any(v is not None for v in rest[1:]):
            lines.setdefault(store, []).append(_line("o", tuple(rest)))
    for store, *rest in sorted(transfers, key=lambda r: (str(r[0]), str(r[1]), str(r[4]))):
        lines.setdefault(store, []).append(_line("x", tuple(rest)))
    for store, *rest in sorted(alerts, key=lambda r: (str(r[0]), str(r[1]))):
        lines.setdefault(store, []).append(_line("a", tuple(rest)))
    out = {store: _hash(ls) for store, ls in lines.items()}
    out["catalog"] = _hash([_line("p", r) for r in sorted(products, key=lambda r: str(r[0]))])
    return out


def _hash(lines: list[bytes]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line)
    return h.hexdigest()[:16]
