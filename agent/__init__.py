"""inv-agent: one store's inventory daemon (SQLite ledger, REST API, replication)."""

__version__ = "0.1.0"
