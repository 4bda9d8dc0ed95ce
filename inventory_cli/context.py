"""What every command is given: where the agent is, and (lazily) a client for it.

Built whole, once, by ``inv``'s global options (``main``) and kept in typer's
``ctx.obj``; a test passes ``obj=Context(transport=...)`` to stand in for the
agent. The client's token: ``--token`` / ``INV_TOKEN`` when given, else the
stored login for the target (``inv login``; ``inventory_cli.credentials``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from inventory_cli.client import AgentClient
    from inventory_cli.transport import Transport

__all__ = ["Context", "client", "context"]


@dataclass(frozen=True)
class Context:
    agent: str | None = None  # --agent / INV_AGENT: socket path or http(s) URL
    token: str | None = None  # --token / INV_TOKEN
    transport: Transport | None = None  # how to reach the agent (default: from ``agent``)

    @cached_property
    def target(self) -> str:
        """The agent: ``--agent``, INV_AGENT, or the default socket."""
        from inventory_cli.client import default_target

        return self.agent or default_target()

    @cached_property
    def client(self) -> AgentClient:
        return self.client_within(None)

    def client_within(self, timeout: float | None) -> AgentClient:
        """A client like ``client`` (the same agent and token) whose requests
        give up after ``timeout`` seconds (None: the client's default)."""
        from inventory_cli import credentials
        from inventory_cli.client import AgentClient

        token = self.token if self.token is not None else credentials.token_for(self.target)
        if timeout is None:
            return AgentClient(self.target, token, transport=self.transport)
        return AgentClient(self.target, token, timeout=timeout, transport=self.transport)

    def anonymous_client(self) -> AgentClient:
        """A client that sends no token (``inv login``: where one comes from)."""
        from inventory_cli.client import AgentClient

        return AgentClient(self.target, "", transport=self.transport)


def context(ctx: typer.Context) -> Context:
    """The running command's ``Context``."""
    obj = ctx.find_object(Context)
    if obj is None:  # a command invoked without the app's callback
        obj = ctx.obj = Context()
    return obj


def client(ctx: typer.Context) -> AgentClient:
    """The client of the running command's ``Context``."""
    return context(ctx).client
