"""A deterministic simulator of the store network (``make sim``).

One seed drives everything: the shape of the network, the workload, each
store's clock, the bus, request/reply, partitions, crashes and power losses.
The agents' own code runs (ledger schema, commands, engine and merge rules,
validation, the consumer's batch handling, the publisher, gap repair,
forwarding and the owner's request handler); time, NATS and the machines are
simulated. See docs/ARCHITECTURE.md, "Simulation".
"""
