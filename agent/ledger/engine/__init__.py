"""The write path: every change is an event, applied by the same code whether
it was made here or arrived from a peer. That is what makes replicas converge:
applying the same set of events in any order gives the same state.

- ``envelope``: the event on the wire (``SCHEMA_VERSION``, ``EVENT_TYPES``),
  the JSON encoder, the default sources of time and ids;
- ``core``: ``Engine``, which numbers, stamps and records events, keeps the
  per-origin watermarks and dispatches each event to its entity's module;
- ``lww``: per-field last-writer-wins by ``(hlc, origin)``, the one rule of
  every record edited field by field;
- ``products``: the catalogue (lww, by SKU);
- ``directory``: store directory entries and per-SKU stock settings (lww);
- ``stock``: movements are a set; on_hand = latest count + deltas after it;
- ``reservations``: the newest state from their single writer (the owner);
- ``conflicts``: the log of losing writes their winner had not seen;
- ``batch``: ``stock.batch`` events, many movements in one (``StockBatch``
  gathers a local write's), the rows new to the ledger written with executemany.
"""

from agent.ledger.engine.core import Engine
from agent.ledger.engine.envelope import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    TYPE_SCHEMA,
    dumps,
    new_uuid,
    now_ms,
)

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "TYPE_SCHEMA",
    "Engine",
    "dumps",
    "new_uuid",
    "now_ms",
]
