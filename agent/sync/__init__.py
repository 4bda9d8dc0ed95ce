"""Replication with the other stores over NATS JetStream.

``link`` is the connection; ``publisher`` sends this store's outbox to the
stream; ``consumer`` reads peers' events from it (validated by ``validate``)
and hands them to the ledger through ``agent.replica``; ``presence`` keeps the
peer table and sends heartbeats; ``repair`` fills holes from the origin;
``identity`` checks this store's history in the stream before publishing;
``forwarding`` and ``rpc`` are the two ends of request/reply between agents;
``bootstrap`` restores a fresh agent from a peer's snapshot; ``replicator``
starts and stops all of it.
"""
