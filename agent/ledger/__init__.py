"""The SQLite ledger: the only package that contains SQL.

- ``schema``: the versioned migrations (v3: full-text product search);
- ``connection``: opening the ledger file; which SQLite errors mean it is
  not writable;
- ``store``: ``LedgerStore``, the single writer thread (group commit) and the
  read pool;
- ``engine``: the write path: emit and apply events, the merge rules
  (a package: one module per entity);
- ``commands``: the local commands, checked and recorded as events
  (a package: products, stock, reservations, imports);
- ``queries``: the read side, in the API's shapes;
- ``replication``: the outbox, peers' events in batches, quarantine, gaps;
- ``snapshot``: writing a consistent copy, and restoring from a peer's.
"""
