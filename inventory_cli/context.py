"""What every command is given: where the agent is, and (lazily) a client for it.

Built whole, once, by ``inv``'s global options (``main``) and kept in typer's
``ctx.obj``; a test passes ``obj=Context(transport=...)`` to stand in for the
agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from inventory_cli.client import AgentClient
    from inventory_cli.transport import Transport

__all__ = ["Context", "client"]


@dataclass(frozen=True)
class Context:
    agent: str | None = None  # --agent / INV_AGENT: socket path or http(s) URL
    token: str | None = None  # --token / INV_TOKEN
    transport: Transport | None = None  # how to reach the agent (default: from ``agent``)

    @cached_property
    def client(self) -> AgentClient:
        from inventory_cli.client import AgentClient

        return AgentClient(self.agent, self.token, transport=self.transport)


def client(ctx: typer.Context) -> AgentClient:
    """The client of the running command's ``Context``."""
    obj = ctx.find_object(Context)
    if obj is None:  # a command invoked without the app's callback
        obj = ctx.obj = Context()
    return obj.client
