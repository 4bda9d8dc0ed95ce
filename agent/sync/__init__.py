"""Replication with the other stores over NATS JetStream (DESIGN.md §3)."""
