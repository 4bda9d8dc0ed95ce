"""Per-field last-writer-wins by ``(hlc, origin)``: the one merge rule of every
record that is edited field by field (products, store directory entries,
per-SKU stock settings).

Each field's winning write is kept in the row's ``stamps``:
``{field: [hlc, origin, event id, basis]}``. A write replaces a field's value
when its stamp is newer than the field's. A losing write that its winner had
not seen (not covered by the winner's ``basis``, the writer's per-origin
watermarks) was concurrent: that loss is logged as a conflict, unless both
wrote the same value (nothing was lost). ``outcome`` is the rule itself, with
no SQL; ``merge`` applies it to one row of the ledger."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent import hlc as hlc_mod
from agent.domain import Stamp, covered, split_event_id
from agent.ledger.engine.envelope import dumps

if TYPE_CHECKING:
    from agent.ledger.engine.core import Engine


def _as_is(name: str, value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Record:
    """A table of per-field LWW rows, as the merge sees it.

    ``columns`` maps an event's field to its column where the names differ
    (``safetyStock`` → ``safety_stock``); ``stored`` turns an event's value
    into what the column keeps (a bool into 0/1); ``shown`` turns a value of
    either kind into what the API shows, to compare two values and report a
    loss. ``sku_at`` / ``store_at``: where the SKU and the store are in the
    key, for the conflicts log."""

    table: str
    keys: tuple[str, ...]
    conflict_kind: str
    columns: Mapping[str, str] = field(default_factory=dict)
    stored: Callable[[str, Any], Any] = _as_is
    shown: Callable[[str, Any], Any] = _as_is
    sku_at: int | None = None
    store_at: int | None = None

    def column(self, name: str) -> str:
        return self.columns.get(name, name)


@dataclass(frozen=True, slots=True)
class FieldWrite:
    """One event's writes to one row: its fields, stamp, id and basis."""

    fields: Mapping[str, Any]
    stamp: Stamp
    event_id: str
    basis: dict[str, int]


def outcome(current: Sequence[Any] | None, write: FieldWrite) -> tuple[bool, str | None]:
    """Does ``write`` win a field whose winning write so far is ``current``
    (``[hlc, origin, event id, basis]``; None: never written)? And which
    write lost without its winner having seen it (a concurrent loss), if one
    did: ``current``'s event when ``write`` wins, ``write``'s when it loses.
    The same event applied again wins nothing and loses nothing."""
    origin = write.stamp[1]
    if current is None:
        return True, None
    if write.stamp > (current[0], current[1]):
        seen = current[1] == origin or covered(write.basis, *split_event_id(current[2]))
        return True, None if seen else str(current[2])
    seen = current[1] == origin or covered(current[3], origin, split_event_id(write.event_id)[1])
    return False, None if seen else write.event_id


def merge(
    engine: Engine,
    conn: sqlite3.Connection,
    record: Record,
    key: tuple[Any, ...],
    write: FieldWrite,
    created: Mapping[str, Any] | None = None,
) -> None:
    """Apply ``write`` to the row of ``record`` at ``key``, field by field. A
    row that does not exist yet is made first, with ``created`` (column:
    value) besides its key."""
    hlc = write.stamp[0]
    wall = hlc_mod.wall_ms(hlc)
    match = " AND ".join(f"{k} = ?" for k in record.keys)
    row = conn.execute(f"SELECT * FROM {record.table} WHERE {match}", key).fetchone()
    if row is None:
        extra = dict(created or {})
        columns = (*record.keys, *extra, "updated_at_ms")
        conn.execute(
            f"INSERT INTO {record.table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})",
            (*key, *extra.values(), wall),
        )
        stamps: dict[str, list[Any]] = {}
    else:
        stamps = json.loads(row["stamps"])
    changed: dict[str, Any] = {}
    for name, value in write.fields.items():
        column = record.column(name)
        old = row[column] if row is not None else None
        current = stamps.get(name)
        wins, lost = outcome(current, write)
        if wins:
            if lost is not None:
                _conflict(engine, conn, record, key, name, write.event_id, lost, hlc, value, old)
            stamps[name] = [hlc, write.stamp[1], write.event_id, write.basis]
            changed[column] = record.stored(name, value)
        elif lost is not None and current is not None:
            _conflict(engine, conn, record, key, name, str(current[2]), lost, hlc, old, value)
    sets = "".join(f"{c} = ?, " for c in changed)
    conn.execute(
        f"UPDATE {record.table} SET {sets}stamps = ?, "
        f"updated_at_ms = max(updated_at_ms, ?) WHERE {match}",
        (*changed.values(), dumps(stamps), wall, *key),
    )


def _conflict(
    engine: Engine,
    conn: sqlite3.Connection,
    record: Record,
    key: tuple[Any, ...],
    name: str,
    winner: str,
    loser: str,
    hlc: int,
    kept: Any,
    lost: Any,
) -> None:
    kept, lost = record.shown(name, kept), record.shown(name, lost)
    if kept == lost:
        return  # both wrote the same value: nothing was lost
    engine._conflict(
        conn,
        record.conflict_kind,
        key[record.sku_at] if record.sku_at is not None else None,
        key[record.store_at] if record.store_at is not None else None,
        winner,
        loser,
        hlc,
        {"field": name, "kept": kept, "lost": lost},
    )
