"""The projector: a batch of store events into HQ's read model, in one
PostgreSQL transaction, with the agents' merge rules.

``apply`` COPYs the batch into a staging table (or takes it from the inbox,
where it was COPY'd ahead on another connection: ``inbox``), takes out the
events recorded before, records the others in ``events``, merges them
entity by entity with a few set-based statements
(``fields``, ``stock``), keeps the quarantined ones, advances the per-origin
watermarks and the stream checkpoint, and commits before it returns. A
batch's new events are merged as if applied one by one in stamp order
``(hlc, origin)``: the state is the agents' whatever the order (the merge
rules are order-free), and the conflicts are those an agent logs applying
the same batches in that order.

``rebuild`` empties the derived tables and replays every recorded event in
stamp order through the same statements, in one transaction (readers see
the old model until it commits).

One projector per connection, used from one thread at a time; the
connection must be in autocommit mode (each call makes its own
transaction) and is the caller's to close."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from agent import digest
from agent.hlc import now_ms
from agent.hq import bookkeeping, fields, inbox, staging, stock, transfer_moves, transfers
from agent.hq import schema as hq_schema

FIELD_TYPES = {
    "product.upserted": "product",
    "store.upserted": "store",
    "stock.settings": "setting",
    "stock.reorder": "setting",
}
TRANSFER_TYPES = frozenset({"transfer.changed", "transfer.received"})
STOCK_TYPES = frozenset({"stock.movement", "stock.batch", "reservation.changed"}) | TRANSFER_TYPES
REBUILD_BATCH = 100_000
REBUILD_WORK_MEM = "64MB"
# after a rebuild: the derived tables whose rows it updated, vacuumed; the
# others (appended to; a few movements had their superseded flag set) analyzed
VACUUMED = (
    "products",
    "store_entries",
    "stock_settings",
    "field_stamps",
    "stock",
    "reservations",
    "transfers",
    "transfer_lines",
)
ANALYZED = ("movements", "conflicts", "transfer_receipts", "alerts")
DERIVED = (
    "products",
    "store_entries",
    "stock_settings",
    "field_stamps",
    "stock",
    "movements",
    "reservations",
    "conflicts",
    "transfers",
    "transfer_lines",
    "transfer_receipts",
    "alerts",
)


@dataclass(frozen=True)
class BatchResult:
    received: int  # events handed in
    applied: int  # new ones, recorded and merged
    duplicates: int  # already recorded (or repeated in the batch)
    quarantined: int  # rejected records kept, and events PostgreSQL could not store
    seconds: float


class Projector:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        schema: str = hq_schema.DEFAULT_SCHEMA,
        *,
        wall_ms: Callable[[], int] = now_ms,
    ) -> None:
        """``wall_ms`` is the time written as bookkeeping (when an event was
        recorded, a conflict seen); the model's own times come from the
        events' stamps."""
        if not conn.autocommit:
            raise ValueError("Projector needs a connection in autocommit mode")
        found = hq_schema.version(conn, schema)
        if found != len(hq_schema.MIGRATIONS):
            raise RuntimeError(
                f"HQ schema {schema!r} is at version {found}, this inv-hq needs "
                f"{len(hq_schema.MIGRATIONS)}: migrate it first (agent.hq.schema.migrate)"
            )
        self.conn = conn
        self.schema = schema
        self.wall_ms = wall_ms
        staging.create_temp_tables(conn)

    @contextmanager
    def _tx(self, isolation: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        with self.conn.transaction():
            if isolation:
                self.conn.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
            hq_schema.use(self.conn, self.schema)
            yield self.conn

    # ----------------------------------------------------------------- write
    @staticmethod
    def encode(
        events: Sequence[dict[str, Any]], payloads: Sequence[bytes] | None = None
    ) -> staging.Encoded:
        """The batch as ``apply`` stages it (``staging.encode``): no database
        work, so it can be made while the batch before is being applied."""
        return staging.encode(events, payloads)

    def apply(
        self,
        events: Sequence[dict[str, Any]] | staging.Encoded | inbox.Posted,
        *,
        rejected: Sequence[dict[str, Any]] = (),
        checkpoint: int | None = None,
        released: Sequence[int] = (),
        payloads: Sequence[bytes] | None = None,
    ) -> BatchResult:
        """Record and merge validated events (any order, repeats allowed),
        keep ``rejected`` quarantine records (``agent.sync.validate``), delete
        the ``released`` quarantine ids (held-back events now in ``events``),
        advance the watermarks and the checkpoint (a JetStream stream seq; it
        never moves back): one transaction, committed on return.
        ``events`` may come ``encode``d already, or posted to the inbox
        (``inbox.Inbox.post``); else ``payloads``, if given,
        are the JSON each event was parsed from (one per event, in order),
        recorded as they are where PostgreSQL can take them."""
        started = time.perf_counter()
        posted: inbox.Posted | None = None
        if isinstance(events, inbox.Posted):
            posted, staged = events, events.batch
        elif isinstance(events, staging.Encoded):
            staged = events
        else:
            staged = self.encode(events, payloads)
        now = self.wall_ms()
        if posted is None:
            with self._tx() as conn:
                staging.stage(conn, staged)
                # the rest in one round trip: nothing in it needs an answer first
                with conn.pipeline():
                    recorded = self._record(conn, staged, rejected, released, checkpoint, now)
        else:
            # BEGIN to COMMIT in one round trip (inbox_short fails it if need be)
            with self.conn.pipeline(), self._tx() as conn:
                conn.execute(inbox.TAKE, {"token": posted.token, "rows": staged.rows})
                recorded = self._record(conn, staged, rejected, released, checkpoint, now)
        applied = recorded.rowcount if recorded is not None else 0
        received = len(staged.events)
        return BatchResult(
            received=received,
            applied=applied,
            duplicates=received - applied - len(staged.refused),
            quarantined=len(rejected) + len(staged.refused),
            seconds=time.perf_counter() - started,
        )

    def _record(
        self,
        conn: psycopg.Connection[Any],
        staged: staging.Encoded,
        rejected: Sequence[dict[str, Any]],
        released: Sequence[int],
        checkpoint: int | None,
        now: int,
    ) -> psycopg.Cursor[Any] | None:
        """Steps 2 to 5 of a batch (docs/HQ.md) on what ``hq_new`` holds; the
        cursor of the INSERT into ``events`` (its rowcount: how many were new)."""
        params = {"now": now}
        recorded = None
        if staged.rows:
            conn.execute(staging.DROP_RECORDED)
            recorded = conn.execute(staging.RECORD_NEW, params)
            conn.execute(bookkeeping.ORIGINS, params)
            conn.execute(bookkeeping.WATERMARKS)
            self._merge(conn, staged.types, now)
        bookkeeping.quarantine(conn, [*rejected, *staged.refused], now)
        if released:
            bookkeeping.release(conn, released)
        if checkpoint is not None:
            conn.execute(bookkeeping.CHECKPOINT, {"seq": checkpoint, "now": now})
        return recorded

    def rebuild(self, *, batch: int = REBUILD_BATCH) -> int:
        """Empty the derived tables and replay every recorded event in stamp
        order, ``batch`` at a time, in one transaction; returns how many.
        Events, watermarks, checkpoint and quarantine are kept. The
        conflicts log is made anew: what an agent would log applying every
        event in stamp order.

        Rounds are large on purpose: inside one transaction every round that
        touches a stock row leaves a dead version of it that nothing can
        prune before the commit, and each round costs its statements; 100,000
        events a round replay ~2.5 times faster than 10,000 (docs/HQ.md)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        now = self.wall_ms()
        total = 0
        with self._tx() as conn:
            conn.execute(f"SET LOCAL work_mem = '{REBUILD_WORK_MEM}'")  # a round's sorts in memory
            conn.execute("TRUNCATE " + ", ".join(DERIVED))
            conn.execute(staging.ORDER_RECORDED)
            while True:
                staging.clear(conn)
                n = conn.execute(staging.NEXT_RECORDED, {"after": total, "limit": batch}).rowcount
                if n == 0:
                    break
                types = {str(t) for (t,) in conn.execute(staging.NEW_TYPES).fetchall()}
                self._merge(conn, types, now)
                total += n
        # every round left dead versions of the rows it touched (and index
        # entries: few of those updates find room on their page), which only
        # now can go; the live batches after find the rows at once, and the
        # planner sees the new tables
        for statement, tables in (("VACUUM (ANALYZE)", VACUUMED), ("ANALYZE", ANALYZED)):
            names = sql.SQL(", ").join(sql.Identifier(self.schema, t) for t in tables)
            self.conn.execute(sql.SQL(statement + " {}").format(names))
        return total

    def _merge(self, conn: psycopg.Connection[Any], types: Set[str], now: int) -> None:
        """Merge the events in ``hq_new``, entity by entity (only those of
        ``types``, the event types the batch has)."""
        params = {"now": now}
        entities = {FIELD_TYPES[t] for t in types if t in FIELD_TYPES}
        if entities:
            conn.execute(staging.EXTRACT_FIELDS)
            conn.execute(fields.CONFLICTS, params)
            conn.execute(fields.STAMPS)
            for entity in sorted(entities):
                conn.execute(fields.ROWS[entity])
        if "reservation.changed" in types:
            conn.execute(stock.RESERVATIONS)
            conn.execute(stock.UPSERT_RESERVATIONS)
        moved = bool(types & TRANSFER_TYPES)
        if moved:  # the stock they move, at its steps, then the records they leave
            for statement in (
                *transfers.TAKE_APART,
                *transfer_moves.STATEMENTS,
                *transfers.STATEMENTS,
            ):
                conn.execute(statement, params if "%(now)s" in statement else None)
        if types & STOCK_TYPES:
            for statement in stock.STATEMENTS:
                conn.execute(statement, params if "%(now)s" in statement else None)
        if moved:
            conn.execute(transfer_moves.RETURNS)
        if "alert.raised" in types:
            conn.execute(transfers.ALERTS)

    # ------------------------------------------------------------------ read
    def checkpoint(self) -> int:
        """The last committed stream seq (0: none yet)."""
        with self._tx() as conn:
            return bookkeeping.checkpoint(conn)

    def watermarks(self) -> dict[str, tuple[int, int]]:
        """Per origin: (contiguous applied seq, newest seq recorded)."""
        with self._tx() as conn:
            return bookkeeping.watermarks(conn)

    def holes(self, limit: int = 1000) -> dict[str, list[int]]:
        """Per origin with any: the seqs below its newest that HQ lacks (and
        does not hold in quarantine), at most ``limit`` per origin."""
        with self._tx() as conn:
            return bookkeeping.holes(conn, limit)

    def held_back(self) -> list[tuple[int, str]]:
        """Quarantined events that may pass the checks later (a newer schema,
        a clock ahead): (quarantine id, body). Release them through
        ``apply(..., released=ids)``."""
        with self._tx() as conn:
            return bookkeeping.held_back(conn)

    def digests(self) -> dict[str, str]:
        """``agent.digest.digests`` over HQ's tables (one snapshot): equal to
        a store's agent's once both hold the same events."""
        with self._tx("REPEATABLE READ READ ONLY") as conn:
            return digest.digests(
                stock=conn.execute("SELECT store_id, sku, on_hand, reserved FROM stock"),
                reservations=conn.execute(
                    "SELECT store_id, reservation_id, sku, quantity, status, order_id "
                    "FROM reservations"
                ),
                settings=conn.execute("SELECT store_id, sku, safety_stock FROM stock_settings"),
                stores=conn.execute(
                    "SELECT store_id, name, address, lat, lon, priority, online, safety_stock "
                    "FROM store_entries"
                ),
                products=conn.execute(
                    "SELECT sku, product_id, name, description, category, price, active "
                    "FROM products"
                ),
                reorder=conn.execute(
                    "SELECT store_id, sku, reorder_point, max_stock, reorder_qty "
                    "FROM stock_settings"
                ),
                transfers=conn.execute(
                    "SELECT t.from_store, t.transfer_id, t.to_store, t.state, l.sku, l.quantity, "
                    "l.shipped, l.claim, l.received, l.damaged "
                    "FROM transfers t JOIN transfer_lines l USING (transfer_id)"
                ),
                alerts=conn.execute(
                    "SELECT store_id, alert_id, kind, sku, before, after, reorder_point FROM alerts"
                ),
            )
