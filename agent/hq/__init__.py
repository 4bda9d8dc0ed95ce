"""HQ: the chain's read model in PostgreSQL, fed from every store's events.

- ``schema``: the versioned migrations of the read model (tables, views;
  ``schema_moves``: the third, transfers, alerts, reorder settings);
- ``projector``: ``Projector``, which records a batch of events and merges
  them with the agents' rules in one transaction, and rebuilds the model
  from the recorded events;
- ``staging``, ``fields``, ``stock``, ``transfers``, ``transfer_moves``,
  ``bookkeeping``: the SQL of one batch (staging the events, per-field
  last-writer-wins, stock and reservations, transfers and alerts, the stock
  transfers move, watermarks, checkpoint and quarantine).

The ``inv-hq`` process around it (``main``: the commands):

- ``runner``: ``inv-hq run``, sessions of the lock (``lock``), the read
  model, the consumer (``source``), the loop (``pump``, ``sink``), gap
  repair (``repair``) and held-back events (``heldback``);
- ``status``, ``reads``, ``verify``, ``commands``, ``render``: the other
  commands; ``config``, ``pg``, ``embedded``: settings and PostgreSQL.

Nothing in the agent imports this package.
"""
