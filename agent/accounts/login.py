"""Logins, and who a bearer token is: ``Accounts``.

A login checks a user's password (throttled: ``agent.accounts.throttle``) and
answers a JWT with the account's generation in its ``gen`` claim. Such a token
is accepted only while its account exists, is enabled and still has that
generation (``user passwd``, ``disable`` and ``enable`` bump it: every login
made before ends at once), and the role and stores are the account's as they
are now. A token without ``gen`` (``inv-agent token``) is its own claims.

Checking a token runs on every TCP request, on the event loop: the accounts
are held in memory and read again only when users.db has had a commit from
another connection (``PRAGMA data_version``, a check without I/O).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from agent import auth
from agent.accounts.passwords import Passwords
from agent.accounts.throttle import Attempt, Refused, Throttle
from agent.accounts.users import NAME_RE, User, UserStore
from agent.errors import Unauthorized

log = structlog.get_logger("agent.accounts")

WRONG = "wrong username or password"  # the one answer to every failed login


def iso_utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True)
class Login:
    token: str
    expires_at: int  # Unix seconds
    user: User

    def body(self) -> dict[str, Any]:
        """The answer of ``POST /api/v1/auth/token``."""
        return {
            "token": self.token,
            "expiresAt": iso_utc(self.expires_at),
            "user": self.user.name,
            "role": self.user.role,
            "stores": list(self.user.stores) if self.user.stores is not None else None,
        }


class Accounts:
    """This store's accounts as the API uses them. ``users``: a connection of
    its own, used on the event loop only (reads without I/O but for a login's
    one row); a rehash is written through another, in a thread."""

    def __init__(
        self,
        users: UserStore,
        secret: str,
        passwords: Passwords,
        throttle: Throttle,
        login_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = users
        self.secret = secret
        self.passwords = passwords
        self.throttle = throttle
        self.login_ttl = login_ttl
        self.clock = clock
        self._version: int | None = None
        self._cached: dict[str, User] = {}

    def close(self) -> None:
        self.users.close()

    def current(self, name: str) -> User | None:
        """The account as it is now (from memory unless users.db changed)."""
        version = self.users.version()
        if version != self._version:
            self._cached = {u.name: u for u in self.users.all()}
            self._version = version
        return self._cached.get(name)

    def principal(self, header: str | None) -> auth.Principal:
        """Who the bearer token in ``header`` is; Unauthorized if no one."""
        claims = auth.decode(self.secret, header)
        token = auth.principal_of(claims)
        if "gen" not in claims:
            return token
        user = self.current(token.user)
        if user is None or not user.enabled or user.generation != claims["gen"]:
            raise Unauthorized(
                f"the login of {token.user!r} has ended (password changed or account "
                "disabled); log in again (inv login)"
            )
        return auth.Principal(user.name, user.role, user.stores, expires_at=token.expires_at)

    async def login(self, username: str, password: str, address: str) -> Login:
        """A token for ``username``, or Unauthorized (the same answer, after
        the same work, for an unknown user, a wrong password and a disabled
        account), or Refused (429) after too many failures."""
        try:
            attempt = self.throttle.begin(username, address)
        except Refused as exc:
            log.warning(
                "login refused",
                user=username,
                address=address,
                failures=exc.failures,
                by=exc.key,
                retry_after=exc.retry_after,
            )
            raise
        ended = False
        try:
            if attempt.delay:
                await asyncio.sleep(attempt.delay)
            found = self.users.credentials(username) if NAME_RE.match(username) else None
            stored = found[1] if found else None
            matches = await self.passwords.matches(stored, password)
            user = found[0] if found else None
            if user is None or not matches or not user.enabled:
                reason = (
                    "unknown user"
                    if user is None
                    else ("wrong password" if not matches else "account disabled")
                )
                ended = True
                self._failed(attempt, reason)
                raise Unauthorized(WRONG)
            ended = True
            self.throttle.end(attempt, ok=True)
        finally:
            if not ended:  # cancelled (the client went away) or an error: a failure
                self.throttle.end(attempt, ok=False)
        if stored is not None and self.passwords.needs_rehash(stored):
            await self._rehash(user.name, stored, password)
        return self._issue(user, address)

    def _failed(self, attempt: Attempt, reason: str) -> None:
        failures = self.throttle.end(attempt, ok=False)
        log.warning(
            "login failed",
            user=attempt.user,
            address=attempt.address,
            reason=reason,
            failures=failures,
        )

    def _issue(self, user: User, address: str) -> Login:
        now = int(self.clock())
        token = auth.issue(
            self.secret,
            user.name,
            user.role,
            self.login_ttl,
            list(user.stores) if user.stores is not None else None,
            generation=user.generation,
            now=now,
        )
        log.info("login", user=user.name, address=address, role=user.role)
        return Login(token, now + self.login_ttl, user)

    async def _rehash(self, name: str, stored: str, password: str) -> None:
        """The password again under today's parameters (they changed since it
        was set); a failure here does not fail the login."""
        path = self.users.path

        def write() -> bool:
            store = UserStore(path)
            try:
                return store.rehash(name, stored, self.passwords.hash(password))
            finally:
                store.close()

        try:
            async with self.passwords.gate:
                done = await asyncio.to_thread(write)
        except Exception:  # ours, not the user's: the traceback goes to the log
            log.exception("password rehash failed", user=name)
            return
        log.info("password rehashed", user=name, done=done)
