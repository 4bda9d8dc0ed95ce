"""The CLI's errors: one tree, every error a command can end with.

CliError                   anything else (an HTTP status without a class below)
├── UsageError             bad flags or bad input data, found by the CLI (names the field/line)
│   └── InvalidError       HTTP 400, 422: the agent refused the request's data
├── AuthError              HTTP 401, 403: no or a bad token (INV_TOKEN, inv login), or a
│                          role not allowed; an expired stored login (before any request)
├── NotFoundError          HTTP 404: unknown product, reservation, stock row
├── ConflictError          HTTP 409: insufficient stock, version mismatch, id reused, wrong state
└── UnreachableError       no answer from where the stock is
    ├── AgentUnreachableError  the agent: not running, no answer in time, connection broken
    └── UnavailableError       HTTP 503: the store that owns the stock can't be reached,
                               or the agent reports itself unhealthy

Every error carries its ``message`` (one line, saying how to go on) and the
agent's JSON ``body`` (``{}`` when the agent said nothing); errors from an
answer carry its HTTP ``status`` too. The client raises them (``from_status``
picks the class); only ``inventory_cli.app`` turns them into exit codes, in
one table (``EXIT_CODES``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentUnreachableError",
    "AuthError",
    "CliError",
    "ConflictError",
    "InvalidError",
    "NotFoundError",
    "UnavailableError",
    "UnreachableError",
    "UsageError",
    "from_status",
]


class CliError(Exception):
    def __init__(
        self, message: str, body: dict[str, Any] | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.body: dict[str, Any] = body or {}
        self.status = status


class UsageError(CliError):
    pass


class InvalidError(UsageError):
    pass


class AuthError(CliError):
    pass


class NotFoundError(CliError):
    pass


class ConflictError(CliError):
    pass


class UnreachableError(CliError):
    pass


class AgentUnreachableError(UnreachableError):
    pass


class UnavailableError(UnreachableError):
    pass


_BY_STATUS: dict[int, type[CliError]] = {
    400: InvalidError,
    422: InvalidError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    503: UnavailableError,
}


def from_status(status: int, body: dict[str, Any]) -> CliError:
    """The error for an agent's answer with an error status."""
    message = str(body.get("error") or f"agent answered HTTP {status}")
    if status == 401:  # how to go on (the agent may have named inv login already)
        message += (
            "; or set INV_TOKEN" if "inv login" in message else " (inv login, or set INV_TOKEN)"
        )
    return _BY_STATUS.get(status, CliError)(message, body, status)
