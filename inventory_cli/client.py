"""A small typed client for the agent's REST API (over its Unix socket or HTTP)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from inventory_cli.errors import CliError, UnreachableError, from_status

RETRIES = 3


def default_target() -> str:
    """INV_AGENT, else the agent's default socket path (same rule as the agent)."""
    env = os.environ.get("INV_AGENT")
    if env:
        return env
    from agent.config import default_socket

    return str(default_socket())


class AgentClient:
    def __init__(
        self, target: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        import httpx

        self.target = target or default_target()
        token = token if token is not None else os.environ.get("INV_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self.target.startswith(("http://", "https://")):
            self._http = httpx.Client(
                base_url=self.target.rstrip("/"), headers=headers, timeout=timeout
            )
        else:
            transport = httpx.HTTPTransport(uds=self.target)
            self._http = httpx.Client(
                transport=transport, base_url="http://agent", headers=headers, timeout=timeout
            )
        self._httpx = httpx

    def _unreachable(self, exc: Exception) -> UnreachableError:
        where = self.target
        hint = (
            "start it with: inv-agent --store-id STORE (or make run), "
            "or point INV_AGENT / --agent at it"
        )
        if not where.startswith("http") and not Path(where).exists():
            return UnreachableError(f"no agent is running at {where}: {hint}")
        return UnreachableError(f"cannot reach the agent at {where} ({exc}): {hint}")

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        retry: bool = False,
    ) -> Any:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        content = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if content is not None else {}
        hdrs.update(headers or {})
        attempts = RETRIES if retry else 1
        for attempt in range(attempts):
            try:
                resp = self._http.request(
                    method,
                    path,
                    content=content,
                    params=params,
                    headers=hdrs,
                    timeout=timeout or self._http.timeout,
                )
                break
            except (self._httpx.ConnectError, FileNotFoundError) as exc:
                raise self._unreachable(exc) from exc
            except self._httpx.TimeoutException as exc:
                if attempt + 1 < attempts:
                    continue
                raise UnreachableError(
                    f"the agent at {self.target} did not answer in time ({exc.__class__.__name__})"
                ) from exc
            except self._httpx.TransportError as exc:
                # the request may or may not have been applied: retrying is safe
                # only because every write we retry carries an idempotency key
                if attempt + 1 < attempts:
                    continue
                raise self._unreachable(exc) from exc
        if resp.status_code == 204:
            return None
        try:
            data = resp.json()
        except ValueError:
            data = {"error": resp.text.strip() or f"HTTP {resp.status_code}"}
        if resp.status_code >= 400:
            if not isinstance(data, dict):
                data = {"error": str(data)}
            if resp.status_code == 401:
                data["error"] = f"{data.get('error')} (set INV_TOKEN)"
            raise from_status(resp.status_code, data)
        return data

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def paged(self, path: str, limit: int, **params: Any) -> list[Any]:
        """All rows of a paginated list, up to ``limit``."""
        out: list[Any] = []
        page = 1
        while len(out) < limit:
            size = min(1000, limit - len(out))
            data = self.request("GET", path, params={**params, "page": page, "limit": size})
            out.extend(data["data"])
            if len(data["data"]) < size:
                break
            page += 1
        return out

    def close(self) -> None:
        self._http.close()


__all__ = ["AgentClient", "CliError"]
