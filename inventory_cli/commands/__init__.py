"""The commands of ``inv``, one module per area; ``inventory_cli.app`` names
them in its command table (a module is imported when one of its commands
runs). Each command parses its flags, calls the client and renders: no rules
of the inventory here (those are the agent's)."""
