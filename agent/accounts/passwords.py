"""Password hashing: argon2id (argon2-cffi), its default parameters (RFC 9106's
low-memory profile: 64 MiB, 3 passes, 4 lanes; about 0.1 s here).

A check costs its memory and a tenth of a second of CPU, so it runs off the
event loop (``asyncio.to_thread``) and at most ``concurrency`` at a time: a
burst of logins waits its turn instead of stalling the agent or taking
``n`` × 64 MiB. An unknown user is checked against a dummy hash of the same
parameters, so that answer takes as long as a wrong password's.
"""

from __future__ import annotations

import asyncio
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

DEFAULT_CONCURRENCY = 2


class Passwords:
    """Hash and check passwords. ``hasher``: other parameters (the tests use
    cheap ones); default: the library's."""

    def __init__(
        self, hasher: PasswordHasher | None = None, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        self.hasher = hasher or PasswordHasher()
        self.gate = asyncio.Semaphore(concurrency)  # checks and hashes at once, at most
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def needs_rehash(self, stored: str) -> bool:
        """Was ``stored`` made with other parameters than today's?"""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return False

    async def matches(self, stored: str | None, password: str) -> bool:
        """Does ``password`` match ``stored`` (None: no such user; always
        False, after as much work as a real check)?"""
        async with self.gate:
            return await asyncio.to_thread(self._matches, stored, password)

    def _matches(self, stored: str | None, password: str) -> bool:
        # the dummy is made on the first check of any kind, so that even the
        # first unknown user takes no longer than the first known one
        dummy = self._dummy_hash()
        try:
            return self.hasher.verify(stored or dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self.hasher.hash(secrets.token_urlsafe(24))
            return self._dummy
