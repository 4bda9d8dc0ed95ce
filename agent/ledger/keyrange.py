"""Keys that start with a prefix, as one range of the key's index.

``id LIKE 'ca65%'`` is not an index probe in SQLite unless the column's
collation and ``case_sensitive_like`` line up (and LIKE is case-insensitive
for ASCII, which a key is not); ``id >= 'ca65' AND id < 'ca66'`` always is.
The keys are TEXT under SQLite's BINARY collation, which orders UTF-8 bytes,
that is code points: every key that starts with ``p`` lies in
``[p, p with its last code point incremented)``.

When a prefix is given, a list query writes its other filters on ``+column``
(``unary_plus``): the unary plus keeps SQLite from choosing an index on those
columns (https://sqlite.org/optoverview.html, "Disqualifying WHERE clause
terms using unary-+"), so the plan stays the one probe of the key's range, in
key order, and the other filters are checked on the few rows the range holds.
Without it the planner prefers an equality on ``status`` or ``store_id`` and
walks every PENDING reservation, or every transfer of a store, to find four.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["column", "prefix_range", "range_clause"]

_MAX = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """``(low, high)``: the keys that start with ``prefix`` are those with
    ``low <= key < high`` (``high`` None: no upper bound, only when every
    character of the prefix is the last code point)."""
    stem = prefix.rstrip(chr(_MAX))
    if not stem:
        return prefix, None
    nxt = ord(stem[-1]) + 1
    if nxt in _SURROGATES:  # not a character: the next one is past them
        nxt = _SURROGATES.stop
    return prefix, stem[:-1] + chr(nxt)


def range_clause(key: str, prefix: str) -> tuple[str, list[str]]:
    """The SQL condition (and its parameters) for ``key`` starting with ``prefix``."""
    low, high = prefix_range(prefix)
    if high is None:
        return f"{key} >= ?", [low]
    return f"{key} >= ? AND {key} < ?", [low, high]


def column(prefix: str | None) -> Callable[[str], str]:
    """How a list query names its other filters' columns: ``+name`` when a
    prefix range is the plan (see the module's docstring), else ``name``."""
    if prefix:
        return lambda name: f"+{name}"
    return lambda name: name
