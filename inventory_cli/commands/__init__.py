"""The commands of ``inv``, one module per area; ``inventory_cli.main`` puts
them in the app. Each command parses its flags, calls the client and renders:
no rules of the inventory here (those are the agent's)."""
