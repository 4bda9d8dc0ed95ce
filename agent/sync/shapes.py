"""The shapes a value on the wire may have: the checks every event type's
validation is made of (``validate``, ``validate_moves``). Each answers a
bool and never raises, whatever a hostile payload put where."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from agent.domain import ANY_STORE, STORE_RE

MAX_INT = 2**62


def is_int(v: Any, lo: int = 0, hi: int = MAX_INT) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _utf8(v: str) -> bool:
    """JSON may carry lone surrogates (``"\\ud800"``): SQLite can't store them."""
    if v.isascii():  # nearly every string, and a flag CPython keeps: no encoding
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_str(v: Any, pattern: Any = None, max_len: int = 2000, optional: bool = False) -> bool:
    if v is None:
        return optional
    return (
        isinstance(v, str)
        and len(v) <= max_len
        and (pattern is None or bool(pattern.match(v)))
        and _utf8(v)
    )


def basis_ok(basis: Any) -> bool:
    """Absent, or per-origin watermarks: {origin: seq}."""
    return basis is None or (
        isinstance(basis, dict) and all(isinstance(k, str) and is_int(v) for k, v in basis.items())
    )


def number_ok(v: Any, lo: float, hi: float) -> bool:
    """A finite JSON number in [lo, hi] (Python's JSON reads NaN and Infinity)."""
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and lo <= v <= hi
    )


def store_id_ok(v: Any) -> bool:
    """A store's id, and never ``any`` (which asks for routing)."""
    return is_str(v, STORE_RE) and v != ANY_STORE


def fields_ok(what: str, fields: Any, checks: dict[str, Callable[[Any], bool]]) -> str | None:
    if not isinstance(fields, dict):
        return f"{what} fields invalid"
    for key, value in fields.items():
        if not isinstance(key, str) or key not in checks:
            return f"{what} field {key!r} unknown"
        if value is not None and not checks[key](value):
            return f"{what} field {key!r} invalid"
    return None
