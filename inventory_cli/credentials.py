"""Logins kept between commands (``inv login``): one per agent target.

``credentials.json`` in the user's config dir for "inv" (platformdirs' rule; e.g.
``~/.config/inv/``), keyed by the agent target (a socket path, or a URL):

    {"targets": {"/run/user/1000/inv-agent/agent.sock":
        {"user": "alice", "role": "clerk", "stores": ["store-001"],
         "token": "eyJ...", "expiresAt": "2026-12-02T16:56:17Z"}}}

The file is 0600 in a 0700 folder, and replaced whole (a temporary file
renamed over it), so a reader never sees half of it. Read by every command
(``inventory_cli.context``) that has no ``--token`` / ``INV_TOKEN``: json,
os and platformdirs only, nothing that slows ``inv``'s start.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventory_cli.errors import AuthError

APP = "inv"
FILE_NAME = "credentials.json"

__all__ = ["StoredLogin", "find", "forget", "key", "path", "save", "token_for"]


def config_dir() -> Path:
    """platformdirs' user config dir for "inv". On Linux its rule (XDG) is
    written out here: importing platformdirs costs ``inv`` more (5-15 ms) than
    the whole read of the file; elsewhere, platformdirs itself."""
    if sys.platform == "linux":
        base = os.environ.get("XDG_CONFIG_HOME", "")
        if not base.strip():
            base = os.path.expanduser("~/.config")
        return Path(base) / APP
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def path() -> Path:
    return config_dir() / FILE_NAME


def key(target: str) -> str:
    """The same agent, however it was written: a URL without its last "/",
    a socket path made absolute."""
    if target.startswith(("http://", "https://")):
        return target.rstrip("/")
    return os.path.abspath(os.path.expanduser(target))


@dataclass(frozen=True)
class StoredLogin:
    user: str
    role: str
    stores: list[str] | None
    token: str
    expires_at: str  # ISO 8601 UTC, as the agent said

    def expired(self, now: float | None = None) -> bool:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return stamp >= self.expires_at  # one fixed format: compares as text

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StoredLogin:
        """From the file's entry, or ``POST /api/v1/auth/token``'s answer (the same keys)."""
        stores = obj.get("stores")
        return cls(
            str(obj["user"]),
            str(obj["role"]),
            [str(s) for s in stores] if isinstance(stores, list) else None,
            str(obj["token"]),
            str(obj["expiresAt"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "role": self.role,
            "stores": self.stores,
            "token": self.token,
            "expiresAt": self.expires_at,
        }


def _read(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):  # unreadable: as if there were no logins (login rewrites it)
        return {}
    targets = data.get("targets") if isinstance(data, dict) else None
    return targets if isinstance(targets, dict) else {}


def _write(file: Path, targets: dict[str, Any]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(file.parent, 0o700)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"targets": targets}, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def find(target: str, file: Path | None = None) -> StoredLogin | None:
    entry = _read(file or path()).get(key(target))
    if not isinstance(entry, dict):
        return None
    try:
        return StoredLogin.from_json(entry)
    except KeyError:
        return None


def save(target: str, login: StoredLogin, file: Path | None = None) -> Path:
    file = file or path()
    targets = _read(file)
    targets[key(target)] = login.to_json()
    _write(file, targets)
    return file


def forget(target: str, file: Path | None = None) -> StoredLogin | None:
    """Remove the login for ``target``; the one removed, if there was one."""
    file = file or path()
    found = find(target, file)
    targets = _read(file)
    if targets.pop(key(target), None) is not None:
        _write(file, targets)
    return found


def token_for(target: str) -> str | None:
    """The stored login's token for ``target`` (None: not logged in);
    AuthError when it has expired, saying what to do."""
    login = find(target)
    if login is None:
        return None
    if login.expired():
        raise AuthError(
            f"your login as {login.user} expired at {login.expires_at}: "
            "run inv login, or inv logout"
        )
    return login.token
