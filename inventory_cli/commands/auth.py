"""``inv login``, ``inv logout``, ``inv whoami``: acting as a user of the store.

A login is kept per agent target (``inventory_cli.credentials``) and every
later command to that agent sends it, unless ``--token`` / ``INV_TOKEN`` is
given. Logging out forgets it here; the token itself stays valid until it
expires, or until an admin runs ``inv-agent user passwd`` or ``disable``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from inventory_cli import credentials, render
from inventory_cli.commands.options import Json
from inventory_cli.context import context
from inventory_cli.errors import AuthError, UsageError

User = Annotated[str | None, typer.Option("--user", "-u", help="user name (default: asked for)")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="read the password from stdin's first line"),
]


def _describe(obj: dict[str, Any]) -> str:
    stores = obj.get("stores")
    return f"{obj['user']} ({obj['role']}{', stores: ' + ', '.join(stores) if stores else ''})"


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    return str(typer.prompt("Password", hide_input=True, err=True))


def login(ctx: typer.Context, user: User = None, password_stdin: PasswordStdin = False) -> None:
    """Log in to the agent as one of its store's users (accounts are made
    with inv-agent user add); later commands to this agent act as that user."""
    obj = context(ctx)
    if user is None:
        if password_stdin:
            raise UsageError("--password-stdin needs --user (stdin holds the password)")
        user = str(typer.prompt("User", err=True)).strip()
    password = _password(password_stdin)
    if not user or not password:
        raise UsageError("a user name and a password are needed")
    try:
        answer = obj.anonymous_client().request(
            "POST", "/api/v1/auth/token", body={"username": user, "password": password}
        )
    except AuthError as exc:  # the agent's one answer, without the INV_TOKEN hint
        raise AuthError(str(exc.body.get("error") or exc.message), exc.body, exc.status) from exc
    stored = credentials.StoredLogin.from_json(answer)
    credentials.save(obj.target, stored)
    until = render.when(stored.expires_at)
    render.message(f"logged in to {obj.target} as {_describe(answer)} until {until} UTC")


def logout(ctx: typer.Context) -> None:
    """Forget the login for this agent (later commands send INV_TOKEN, if
    set, or no token)."""
    obj = context(ctx)
    gone = credentials.forget(obj.target)
    if gone is None:
        render.message(f"not logged in to {obj.target}")
    else:
        render.message(f"logged out of {obj.target} ({gone.user})")


def _show(me: dict[str, Any]) -> None:
    how = "logged in" if me["via"] == "token" else "over the local socket"
    until = f", until {render.when(me['expiresAt'])} UTC" if me.get("expiresAt") else ""
    render.out().print(f"{_describe(me)}, {how}{until}", markup=False)


def whoami(ctx: typer.Context, as_json: Json = False) -> None:
    """Who the agent takes you for: user, role, stores, and until when."""
    me = context(ctx).client.get("/api/v1/auth/whoami")
    render.emit(me, as_json, _show)
