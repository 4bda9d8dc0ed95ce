"""The engine: numbers and stamps local changes, records every event once,
keeps the per-origin watermarks, and hands each event to the code of its
entity (``products``, ``stock``, ``reservations``, ``directory``,
``transfers``, ``alerts``)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

from agent import hlc as hlc_mod
from agent.ledger.engine import (
    alerts,
    batch,
    conflicts,
    directory,
    products,
    reservations,
    stock,
    transfers,
)
from agent.ledger.engine.envelope import dumps, envelope, new_uuid, now_ms


class Engine:
    """Applies events to the ledger. Used only on the writer thread.

    It carries every source of time and identity the ledger draws on, built
    whole by the caller: ``clock`` stamps events, ``wall_ms`` is the wall time
    written as bookkeeping (when an event arrived, a conflict was seen, a
    reservation changed), ``new_id`` makes new ids, ``monotonic`` (seconds) is
    what a forwarded command's deadline is set and judged by (never written
    down). A simulator passes its own and gets the same ledger for the same
    inputs."""

    def __init__(
        self,
        store_id: str,
        clock: hlc_mod.HybridLogicalClock,
        *,
        wall_ms: Callable[[], int] = now_ms,
        new_id: Callable[[], str] = new_uuid,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store_id = store_id
        self.clock = clock
        self.wall_ms = wall_ms
        self.new_id = new_id
        self.monotonic = monotonic
        # while an event is applied: this store's stock rows it changes, with
        # their available before it (``touch``), for the low-stock alerts
        self._touched: dict[tuple[str, str], int] | None = None
        # while a write of many events is judged as one (``as_one_write``):
        # the rows they changed and the rows whose reorder point they set
        self._one_write: tuple[alerts.Touched, set[alerts.Key]] | None = None

    # ---------------------------------------------------------------- local
    def next_seq(self, conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "SELECT max_seq FROM origins WHERE origin = ?", (self.store_id,)
        ).fetchone()
        return (int(row[0]) if row else 0) + 1

    def basis(self, conn: sqlite3.Connection) -> dict[str, int]:
        """What this node has seen: per-origin contiguous applied watermark."""
        return {r[0]: r[1] for r in conn.execute("SELECT origin, applied_seq FROM origins")}

    @staticmethod
    def count_basis(seen: dict[str, int], writers: str) -> dict[str, int]:
        """A count's basis: ``seen`` (``basis()``) cut down to the origins that
        have written the stock row (its ``writers``). That is all a count's
        conflicts are judged on: the only events a count can supersede or be
        superseded by are that row's movements, and if this node had applied
        one, its origin is among the row's writers here. So the answer of
        ``covered()`` for any of them is the same as with the whole basis,
        which would list every store of the network in every count."""
        if not writers:
            return {}
        return {o: seen[o] for o in writers.split(",") if seen.get(o)}

    def emit(self, conn: sqlite3.Connection, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        """Record a local change: stamp it, append it to the outbox, apply it."""
        seq, hlc = self.next_seq(conn), self.clock.now()
        event = envelope(self.store_id, seq, hlc, type_, data)
        conn.execute(
            "INSERT INTO events (origin, seq, hlc, type, body, published) VALUES (?,?,?,?,?,0)",
            (self.store_id, seq, hlc, type_, dumps(event)),
        )
        self._advance_origin(conn, self.store_id, seq, hlc)
        self.apply_effects(conn, event, local=True)
        return event

    def stock_batch(self, conn: sqlite3.Connection) -> batch.StockBatch:
        """Where a local write of many stock movements gathers them (an import)."""
        return batch.StockBatch(self, conn)

    # ---------------------------------------------------------------- remote
    def has_event(self, conn: sqlite3.Connection, origin: str, seq: int) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM events WHERE origin = ? AND seq = ?", (origin, seq)
            ).fetchone()
            is not None
        )

    def apply_remote(self, conn: sqlite3.Connection, event: dict[str, Any]) -> bool:
        """Apply a peer's event once. Returns False if it was already applied.
        The caller has validated the envelope and observed its hlc."""
        return self.apply_remote_batch(conn, [event]) == 1

    def apply_remote_batch(self, conn: sqlite3.Connection, events: list[dict[str, Any]]) -> int:
        """Apply peers' events in order, each once; how many were new (the
        rest had been applied already). The caller has validated them and
        observed their stamps.

        Each origin's watermarks are brought up once, after the batch: three
        statements per origin rather than per event (a fifth of a catch-up's
        writer time when done per event). Nothing applied in between reads a
        peer's watermark; our own (an alert an event raises takes the next
        seq of ours) is never deferred."""
        new: dict[str, tuple[set[int], int]] = {}  # origin -> (seqs applied, top stamp)
        applied = 0
        for event in events:
            origin, seq, stamp = event["origin"], event["seq"], event["hlc"]
            if self.has_event(conn, origin, seq):
                continue
            conn.execute(
                "INSERT INTO events (origin, seq, hlc, type, body, published) "
                "VALUES (?,?,?,?,NULL,1)",
                (origin, seq, stamp, event["type"]),
            )
            if origin == self.store_id:
                self._advance_origin(conn, origin, seq, stamp)
            else:
                seqs, top = new.setdefault(origin, (set(), 0))
                seqs.add(seq)
                new[origin] = (seqs, max(top, stamp))
            self.apply_effects(conn, event, local=False)
            applied += 1
        for origin, (seqs, top) in new.items():
            self._advance_origin_over(conn, origin, seqs, top)
        return applied

    # ------------------------------------------------------------ watermarks
    def _advance_origin(self, conn: sqlite3.Connection, origin: str, seq: int, hlc: int) -> None:
        self._advance_origin_range(conn, origin, seq, seq, hlc)

    def _advance_origin_range(
        self, conn: sqlite3.Connection, origin: str, first: int, last: int, hlc: int
    ) -> None:
        """Record events ``first..last`` of one origin (all present now; ``hlc``
        is the largest of their stamps): its newest seq and stamp, and its
        contiguous applied watermark, advanced over any events that had
        arrived early."""
        conn.execute(
            "INSERT INTO origins (origin, applied_seq, max_seq, last_hlc, last_event_at_ms) "
            "VALUES (?, 0, ?, ?, ?) ON CONFLICT(origin) DO UPDATE SET "
            "max_seq = max(max_seq, excluded.max_seq), last_hlc = max(last_hlc, excluded.last_hlc),"
            " last_event_at_ms = excluded.last_event_at_ms",
            (origin, last, hlc, self.wall_ms()),
        )
        applied = conn.execute(
            "SELECT applied_seq FROM origins WHERE origin = ?", (origin,)
        ).fetchone()[0]
        if first == applied + 1:
            applied = last
            while conn.execute(
                "SELECT 1 FROM events WHERE origin = ? AND seq = ?", (origin, applied + 1)
            ).fetchone():
                applied += 1
            conn.execute("UPDATE origins SET applied_seq = ? WHERE origin = ?", (applied, origin))

    def _advance_origin_over(
        self, conn: sqlite3.Connection, origin: str, seqs: set[int], hlc: int
    ) -> None:
        """Record the events ``seqs`` of one origin (all present now; ``hlc``
        the largest of their stamps), as ``_advance_origin_range`` does for a
        range: the watermark can only have stopped below one of them, so it
        walks over them in memory and asks the ledger only past their end."""
        conn.execute(
            "INSERT INTO origins (origin, applied_seq, max_seq, last_hlc, last_event_at_ms) "
            "VALUES (?, 0, ?, ?, ?) ON CONFLICT(origin) DO UPDATE SET "
            "max_seq = max(max_seq, excluded.max_seq), last_hlc = max(last_hlc, excluded.last_hlc),"
            " last_event_at_ms = excluded.last_event_at_ms",
            (origin, max(seqs), hlc, self.wall_ms()),
        )
        applied = conn.execute(
            "SELECT applied_seq FROM origins WHERE origin = ?", (origin,)
        ).fetchone()[0]
        if applied + 1 not in seqs:
            return  # a gap below them: they arrived early
        applied += 1
        while (
            applied + 1 in seqs
            or conn.execute(
                "SELECT 1 FROM events WHERE origin = ? AND seq = ?", (origin, applied + 1)
            ).fetchone()
        ):
            applied += 1
        conn.execute("UPDATE origins SET applied_seq = ? WHERE origin = ?", (applied, origin))

    # --------------------------------------------------------------- effects
    def touch(self, sku: str, store: str, row: sqlite3.Row | dict[str, int]) -> None:
        """The event being applied changes this stock row (``row``: as it was
        before): remember its available then, once, if the row is this store's."""
        touched = self._touched
        if touched is not None and store == self.store_id and (sku, store) not in touched:
            touched[sku, store] = row["on_hand"] - row["reserved"]

    def apply_effects(
        self,
        conn: sqlite3.Connection,
        event: dict[str, Any],
        local: bool,
        *,
        raise_alerts: bool = True,
    ) -> None:
        """Apply one event's effects; then, if it moved this store's stock
        across a reorder point, raise the alert (an event of its own, after
        this one: judged on the whole event, so a confirm's release and sale
        of the same units raise nothing). A ``stock.reorder`` of this store's
        row is judged too, wherever it was written: the owner raises the
        alert a new point calls for when the setting reaches it.
        ``raise_alerts`` False: our own events re-applied over a snapshot,
        whose alerts are among them."""
        outer = self._touched is None and raise_alerts
        if outer:
            self._touched = {}
        try:
            self._dispatch(conn, event, local)
        finally:
            touched, self._touched = self._touched, (None if outer else self._touched)
        if not outer:
            return
        eid, data = event["id"], event["data"]
        changed = {key: (before, eid) for key, before in (touched or {}).items()}
        settled: set[alerts.Key] = set()
        if event["type"] == "stock.reorder" and data["storeId"] == self.store_id:
            key = (data["sku"], data["storeId"])
            changed.setdefault(key, (alerts.available(conn, *key), eid))
            settled.add(key)
        if changed:
            self.judge(conn, changed, settled)

    def judge(
        self,
        conn: sqlite3.Connection,
        touched: alerts.Touched,
        settled: Collection[alerts.Key] = (),
    ) -> None:
        """A write changed this store's rows ``touched`` (and set the points of
        ``settled``): raise the alerts it calls for, now, or at the end of the
        write of many events this is part of (``as_one_write``)."""
        if self._one_write is None:
            alerts.check(self, conn, touched, settled)
            return
        pending, points = self._one_write
        for key, (before, cause) in touched.items():
            pending[key] = (pending[key][0] if key in pending else before, cause)
        points.update(settled)

    @contextlib.contextmanager
    def as_one_write(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Judge the alerts of every event written inside as one write's, at
        the end: each row on its available before the first of them, named
        after the last (an import that counts a row and gives it a point
        raises one alert, not one per event). Nothing is raised if the block
        raises (its transaction is rolled back anyway)."""
        if self._one_write is not None:  # inside another: that one judges
            yield
            return
        pending: alerts.Touched = {}
        points: set[alerts.Key] = set()
        self._one_write = (pending, points)
        try:
            yield
        finally:
            self._one_write = None
        if pending:
            alerts.check(self, conn, pending, points)

    def _dispatch(self, conn: sqlite3.Connection, event: dict[str, Any], local: bool) -> None:
        data = event["data"]
        stamp = (event["hlc"], event["origin"])
        if event["type"] == "product.upserted":
            products.apply_product(self, conn, data, stamp, event["id"])
        elif event["type"] == "stock.movement":
            stock.apply_movement(self, conn, data, stamp, event["id"], local)
        elif event["type"] == "stock.batch":
            batch.apply_batch(self, conn, data, stamp, event["id"], local)
        elif event["type"] == "reservation.changed":
            reservations.apply_reservation(self, conn, data, stamp, event["id"], local)
        elif event["type"] == "store.upserted":
            directory.apply_store(self, conn, data, stamp, event["id"])
        elif event["type"] in ("stock.settings", "stock.reorder"):
            directory.apply_settings(self, conn, data, stamp, event["id"])
        elif event["type"] == "transfer.changed":
            transfers.apply_transfer(self, conn, data, stamp, event["id"], local)
        elif event["type"] == "transfer.received":
            transfers.apply_receipt(self, conn, data, stamp, event["id"], local)
        elif event["type"] == "alert.raised":
            alerts.apply_alert(self, conn, data, event)
        else:  # validated before; never reached for known schema versions
            raise ValueError(f"unknown event type {event['type']!r}")

    def _conflict(
        self,
        conn: sqlite3.Connection,
        kind: str,
        sku: str | None,
        store: str | None,
        winner: str | None,
        loser: str,
        hlc: int,
        detail: dict[str, Any],
    ) -> None:
        conflicts.record(conn, kind, sku, store, winner, loser, hlc, detail, self.wall_ms())
