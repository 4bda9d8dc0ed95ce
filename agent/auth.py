"""Bearer tokens for the TCP API: HS256 JWTs with a role and optional stores.

Roles: ``viewer`` reads; ``clerk`` also changes stock and reservations (for the
stores in its ``stores`` claim, or every store without one); ``admin`` also
manages the catalogue and imports. The Unix socket is local admin: its file
mode (0600) is the access control.

Two kinds of token: one ``inv-agent token`` mints (its claims are the whole
truth until it expires), and a login's (``POST /api/v1/auth/token``), which
carries the account's ``gen`` (generation): ``agent.accounts`` accepts it only
while the account is enabled at that generation, and takes the role and
stores from the account, not the token.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from agent.errors import Forbidden, Unauthorized

ROLES = ("viewer", "clerk", "admin")
ALGORITHM = "HS256"
_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    stores: tuple[str, ...] | None = None  # None: every store
    expires_at: int | None = None  # a token's exp (Unix seconds); None: no token

    def require(self, role: str, store: str | None = None) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise Forbidden(f"role {self.role!r} may not do this; it needs {role!r}")
        if store is not None and self.stores is not None and store not in self.stores:
            raise Forbidden(f"token for {self.user!r} is not valid for store {store!r}")


LOCAL_ADMIN = Principal(user="local", role="admin")


def parse_duration(text: str) -> int:
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r}: use e.g. 90s, 30m, 24h, 7d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def load_secret(data_dir: Path, configured: str | None) -> str:
    """The configured secret, or one generated on first start and kept
    owner-only in the data dir."""
    if configured:
        return configured
    path = data_dir / "jwt.secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


def issue(
    secret: str,
    user: str,
    role: str,
    expires_in: int,
    stores: list[str] | None = None,
    *,
    generation: int | None = None,
    now: int | None = None,
) -> str:
    """A signed token; ``generation``: a login's, bound to the account's
    generation (see the module's docstring)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time()) if now is None else now
    claims: dict[str, object] = {"sub": user, "role": role, "iat": now, "exp": now + expires_in}
    if stores:
        claims["stores"] = stores
    if generation is not None:
        claims["gen"] = generation
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode(secret: str, header: str | None) -> dict[str, Any]:
    """The claims of the bearer token in an Authorization header, checked
    (signature, expiry); Unauthorized saying what is wrong."""
    if not header:
        raise Unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>' "
            "(log in with: inv login; or make one with: inv-agent token --user NAME --role clerk)"
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    try:
        claims: dict[str, Any] = jwt.decode(
            token.strip(), secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        unverified = jwt.decode(token.strip(), options={"verify_signature": False})
        if "gen" in unverified:
            raise Unauthorized("login expired; log in again (inv login)") from exc
        raise Unauthorized("token expired; ask an admin for a new one") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    return claims


def principal_of(claims: dict[str, Any]) -> Principal:
    """Who a token's own claims say the caller is."""
    role = claims.get("role", "viewer")
    if role not in ROLES:
        raise Unauthorized(f"invalid token: unknown role {role!r}")
    stores = claims.get("stores")
    exp = claims.get("exp")
    return Principal(
        user=str(claims["sub"]),
        role=role,
        stores=tuple(stores) if isinstance(stores, list) else None,
        expires_at=int(exp) if isinstance(exp, int | float) else None,
    )


def verify(secret: str, header: str | None) -> Principal:
    """The principal of a token's claims alone (no account is consulted)."""
    return principal_of(decode(secret, header))
