"""The agent's error tree. Each error maps to one HTTP status (and, in the CLI, one exit code).

    InventoryError                 500  base; never raised directly
    ├── InvalidInput               422  a field is wrong (names the field)
    ├── NotFound                   404  product / reservation / stock row unknown; a store
    │                                   this replica never heard of
    ├── Conflict                   409  version mismatch, id reused, reservation in the
    │   │                               wrong state; another store's stock on a standalone
    │   │                               agent
    │   └── InsufficientStock      409  available < requested (says both)
    ├── Unauthorized               401  missing or bad bearer token
    ├── Forbidden                  403  role or store not allowed
    ├── TooManyRequests            429  too many failed logins (carries Retry-After)
    ├── Unavailable                503  ledger not writable or closed, a known owning store
    │                                   unreachable now (or refusing past the deadline)
    └── RemoteError                any  another store's agent answered this error (forwarding);
                                        passed on with the status and body it gave

The CLI maps statuses to exit codes: 404→3, 409→4, 503 (owner/agent unreachable)→5.
"""

from __future__ import annotations

from typing import Any


class InventoryError(Exception):
    status = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides its body."""
        return {}


class InvalidInput(InventoryError):
    status = 422


class NotFound(InventoryError):
    status = 404


class Conflict(InventoryError):
    status = 409


class Unauthorized(InventoryError):
    status = 401


class Forbidden(InventoryError):
    status = 403


class TooManyRequests(InventoryError):
    status = 429

    def __init__(self, message: str, retry_after: int, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(InventoryError):
    status = 503


class InsufficientStock(Conflict):
    def __init__(
        self, available: int, requested: int, *, note: str | None = None, **extra: Any
    ) -> None:
        """``note``: why, when more than the numbers (an online order's limit)."""
        super().__init__(
            f"insufficient stock: available={available}, requested={requested}"
            + (f" ({note})" if note else ""),
            available=available,
            requested=requested,
            **extra,
        )


class RemoteError(InventoryError):
    """An error answered by another store's agent, passed on as it was."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(
            str(body.get("error", f"HTTP {status}")),
            **{k: v for k, v in body.items() if k != "error"},
        )
        self.status = status
