"""Give memory freed after a big request back to the operating system.

A 100,000-row import holds its rows two or three times over while it runs;
once it is answered Python frees them, but glibc's allocator keeps the freed
pages mapped, so the agent's RSS stays at the import's high-water mark
(~75 MB above its resting size). ``malloc_trim(0)`` returns them. It is a
no-op where the C library is not glibc."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

# after the response is sent and the request's objects are gone
TRIM_DELAY_S = 0.2


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None


_trim = _load_trim()


def trim_now() -> bool:
    """Return freed heap pages to the OS; False where that is not possible."""
    if _trim is None:
        return False
    _trim(0)
    return True


def trim_soon() -> None:
    """Trim once the current request has been answered and released."""
    asyncio.get_running_loop().call_later(TRIM_DELAY_S, trim_now)
