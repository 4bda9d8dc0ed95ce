"""The CLI's errors and exit codes (documented in ``inv --help`` and README).

CliError (exit 1)
├── UsageError        exit 2   bad flags or bad input data (names the field/line)
├── NotFoundError     exit 3   unknown product / reservation
├── ConflictError     exit 4   insufficient stock, version mismatch, id reused, wrong state
└── UnreachableError  exit 5   the agent, or the store that owns the stock, can't be reached
"""

from __future__ import annotations

from typing import Any

EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_UNREACHABLE = 0, 1, 2, 3, 4, 5

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 other error, 2 usage or invalid input, 3 not found, "
    "4 conflict (insufficient stock, version mismatch, id reused), "
    "5 agent or owning store unreachable."
)


class CliError(Exception):
    exit_code = EXIT_OTHER

    def __init__(self, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.body = body or {}


class UsageError(CliError):
    exit_code = EXIT_USAGE


class NotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


class ConflictError(CliError):
    exit_code = EXIT_CONFLICT


class UnreachableError(CliError):
    exit_code = EXIT_UNREACHABLE


_BY_STATUS: dict[int, type[CliError]] = {
    400: UsageError,
    422: UsageError,
    404: NotFoundError,
    409: ConflictError,
    503: UnreachableError,
}


def from_status(status: int, body: dict[str, Any]) -> CliError:
    message = str(body.get("error") or f"agent answered HTTP {status}")
    return _BY_STATUS.get(status, CliError)(message, body)
