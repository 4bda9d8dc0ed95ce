"""Known bugs the simulator must catch, injected by patching the real code
for one run (``--bug NAME``). Each is a mistake someone could make; the
closing note of the simulator's issue says how many seeds each took."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from agent.hlc import HybridLogicalClock, pack
from agent.ledger import replication
from agent.ledger.engine import core, stock
from agent.replica import Replica


def _dedup_off() -> list[tuple[Any, str, Any]]:
    # applying an event a second time is no longer recognised
    return [(core.Engine, "has_event", lambda self, conn, origin, seq: False)]


def _hlc_not_observed() -> list[tuple[Any, str, Any]]:
    original = Replica.apply

    async def apply(self: Replica, events: Any, rejected: Any, position: Any = None) -> Any:
        saved = self._clock.observe
        self._clock.observe = lambda remote: remote  # type: ignore[method-assign]
        try:
            return await original(self, events, rejected, position)
        finally:
            self._clock.observe = saved  # type: ignore[method-assign]

    return [(Replica, "apply", apply)]


def _hlc_not_monotonic() -> list[tuple[Any, str, Any]]:
    def now(self: HybridLogicalClock) -> int:
        self._last = pack(self._clock(), 0)  # the wall clock, even when it went back
        return self._last

    return [(HybridLogicalClock, "now", now)]


def _repair_skips_last() -> list[tuple[Any, str, Any]]:
    original = replication.missing

    def missing(conn: Any, origin: str, known_max: int, limit: int = 500) -> list[int]:
        return original(conn, origin, known_max, limit)[:-1]

    return [(replication, "missing", missing)]


def _count_keeps_older_deltas() -> list[tuple[Any, str, Any]]:
    original = stock._apply_winning_count

    def apply(
        engine: Any, conn: Any, row: Any, created: bool, mv: Any, stamp: Any, eid: str
    ) -> int:
        on_hand = original(engine, conn, row, created, mv, stamp, eid)
        if created or not row["count_id"]:
            return on_hand
        # the deltas between the old count and this one are kept on top
        between = conn.execute(
            "SELECT coalesce(sum(quantity), 0) FROM movements WHERE sku = ? AND store_id = ? "
            "AND kind != 'count' AND (hlc, origin) > (?, ?) AND (hlc, origin) < (?, ?)",
            (mv["sku"], mv["storeId"], row["count_hlc"], row["count_origin"], *stamp),
        ).fetchone()[0]
        return int(on_hand + between)

    return [(stock, "_apply_winning_count", apply)]


def _deadline_unchecked() -> list[tuple[Any, str, Any]]:
    # the owner no longer refuses a forwarded command its writer reaches late
    from agent.ledger.commands import reservations

    return [(reservations, "check_in_time", lambda engine, deadline, nothing: None)]


def _oversell() -> list[tuple[Any, str, Any]]:
    # the reservation command judges availability from a wrong row (as if it
    # read a stale replica instead of the owner's own numbers)
    import types

    from agent.ledger import queries
    from agent.ledger.commands import reservations

    def stock_level(conn: Any, sku: str, store: str) -> Any:
        return {"on_hand": 10**6, "reserved": 0}

    fake = types.SimpleNamespace(**{**vars(queries), "stock_level": stock_level})
    return [(reservations, "queries", fake)]


def _routing_cleanup_off() -> list[tuple[Any, str, Any]]:
    # a routing that ends leaves no cleanup for its unanswered asks: what one
    # of them reserved stays held until it expires
    from agent.ledger import routings

    original = routings.finish

    def finish(conn: Any, request_id: str, status: str, **kw: Any) -> Any:
        original(conn, request_id, status, **kw)
        conn.execute(
            "UPDATE routing_attempts SET cleanup = NULL, cleanup_next_ms = NULL "
            "WHERE request_id = ? AND cleanup = 'pending'",
            (request_id,),
        )
        return routings.load(conn, request_id)

    return [(routings, "finish", finish)]


def _online_takes_safety_stock() -> list[tuple[Any, str, Any]]:
    # the owner no longer holds an online order to what is above its safety stock
    from agent.ledger.commands import reservations

    return [(reservations, "check_online", lambda conn, sku, store, available, qty: None)]


def _routing_retry_reroutes() -> list[tuple[Any, str, Any]]:
    # a retry is routed afresh instead of answered from the router's record
    from agent.ledger import routings

    original_context, original_begin = routings.context, routings.begin

    def context(conn: Any, ref: str, request_id: str | None) -> Any:
        return dataclasses.replace(original_context(conn, ref, request_id), record=None)

    def begin(conn: Any, routing: Any, *args: Any) -> None:
        for table in ("routing_attempts", "routings"):
            conn.execute(f"DELETE FROM {table} WHERE request_id = ?", (routing.request_id,))
        original_begin(conn, routing, *args)

    return [(routings, "context", context), (routings, "begin", begin)]


def _cancel_returns_whole_claim() -> list[tuple[Any, str, Any]]:
    # a cancel gives back everything it claimed, even the units a receipt
    # shows had arrived (the derived correction skipped)
    from agent.ledger.engine import transfers

    return [
        (transfers, "_line_counts", lambda conn, tid, sku: None),
        (transfers, "adjust_movement", lambda engine, conn, mid, quantity, local: None),
    ]


def _receipt_counted_twice() -> list[tuple[Any, str, Any]]:
    # the receive command no longer finds a receipt by its id, so a retry
    # records the same receipt again
    from agent.ledger import commands

    original = commands.receive_transfer

    def receive(conn: Any, engine: Any, request: Any, deadline: Any = None) -> Any:
        conn.execute(
            "DELETE FROM transfer_receipts WHERE transfer_id = ? AND id = ?",
            (request.transfer_id, request.receipt_id),
        )
        return original(conn, engine, request, deadline)

    return [(commands, "receive_transfer", receive)]


def _shipment_resets_receipts() -> list[tuple[Any, str, Any]]:
    # a transfer's line is written afresh (INSERT OR REPLACE) instead of
    # kept: what was received before the line was known is forgotten
    from agent.ledger.engine import transfers

    def line(conn: Any, tid: str, sku: str, position: int | None = None) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO transfer_lines (transfer_id, sku, position) VALUES (?,?,?)",
            (tid, sku, position or 0),
        )

    return [(transfers, "_line", line)]


def _damaged_stays_sellable() -> list[tuple[Any, str, Any]]:
    # a receipt's damaged units are counted in, but never written off
    from agent.ledger.engine import transfers

    original = transfers.apply_movement

    def apply(
        engine: Any, conn: Any, mv: Any, stamp: Any, eid: str, local: bool, *a: Any, **kw: Any
    ) -> None:
        if mv["kind"] != "damaged":
            original(engine, conn, mv, stamp, eid, local, *a, **kw)

    return [(transfers, "apply_movement", apply)]


def _ship_oversells() -> list[tuple[Any, str, Any]]:
    # the origin ships what it does not have available
    from agent.ledger.commands import transfers

    return [(transfers, "_check_available", lambda conn, store, lines: None)]


def _alert_per_write() -> list[tuple[Any, str, Any]]:
    # every write that leaves a row low raises an alert, not only the crossing
    from agent.domain import AlertKind, is_low
    from agent.ledger.engine import alerts

    original = alerts.crossing

    def crossing(was: str | None, after: int, point: int | None) -> Any:
        return AlertKind.LOW if is_low(after, point) else original(was, after, point)

    return [(alerts, "crossing", crossing)]


def _forwarded_actor_unqualified() -> list[tuple[Any, str, Any]]:
    # a request forwarded to the owning store names its clerk without the
    # store she works at: "ana" of store-002 reads as store-001's own ana
    from agent.service import InventoryService

    async def forward(self: Any, store: str, op: str, payload: Any) -> Any:
        return await self._forwarder(store, op, payload)

    return [(InventoryService, "_forward", forward)]


def _batch_skips_last_row() -> list[tuple[Any, str, Any]]:
    # a peer applies an import's batch but its last row (an off-by-one)
    from agent.ledger.engine import batch

    original = batch.apply_batch

    def apply(engine: Any, conn: Any, data: Any, stamp: Any, eid: str, local: bool) -> None:
        rows = data["movements"] if local else data["movements"][:-1]
        if rows:
            original(engine, conn, {**data, "movements": rows}, stamp, eid, local)

    return [(batch, "apply_batch", apply)]


def _checkpoint_before_apply() -> list[tuple[Any, str, Any]]:
    # the stream checkpoint is written in a transaction of its own before the
    # batch's: a crash between the two skips the batch on restart
    original = Replica.apply

    async def apply(self: Replica, events: Any, rejected: Any, position: Any = None) -> Any:
        if position is not None:
            await self.set_stream_position(position)
        return await original(self, events, rejected, None)

    return [(Replica, "apply", apply)]


BUGS: dict[str, Callable[[], list[tuple[Any, str, Any]]]] = {
    "dedup-off": _dedup_off,
    "hlc-not-observed": _hlc_not_observed,
    "hlc-not-monotonic": _hlc_not_monotonic,
    "repair-skips-last": _repair_skips_last,
    "count-keeps-older-deltas": _count_keeps_older_deltas,
    "oversell": _oversell,
    "deadline-unchecked": _deadline_unchecked,
    "routing-cleanup-off": _routing_cleanup_off,
    "online-takes-safety-stock": _online_takes_safety_stock,
    "routing-retry-reroutes": _routing_retry_reroutes,
    "cancel-returns-whole-claim": _cancel_returns_whole_claim,
    "receipt-counted-twice": _receipt_counted_twice,
    "shipment-resets-receipts": _shipment_resets_receipts,
    "damaged-stays-sellable": _damaged_stays_sellable,
    "ship-oversells": _ship_oversells,
    "alert-per-write": _alert_per_write,
    "forwarded-actor-unqualified": _forwarded_actor_unqualified,
    "batch-skips-last-row": _batch_skips_last_row,
    "checkpoint-before-apply": _checkpoint_before_apply,
}


@contextlib.contextmanager
def injected(name: str | None) -> Iterator[None]:
    if name is None:
        yield
        return
    patches = BUGS[name]()
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    for obj, attr, value in patches:
        setattr(obj, attr, value)
    try:
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)
