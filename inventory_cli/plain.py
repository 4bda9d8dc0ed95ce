"""What rich prints, written without rich, where that is sure to be the same.

Importing rich and rendering one table through it is a fifth of a short
command's run (``inv stock show``, B1). Most output is plain: a pipe or a
file, or ``NO_COLOR``, so no escape codes at all; cells of ordinary text; a
table laid out already (``tables.fit``: every column's width fixed). Then a
table is its box characters and padded cells, and a line of text is itself.
This module writes those, byte for byte what rich 15 writes for them
(``tests/unit/test_cli_plain.py`` draws random tables both ways), and says
``None`` for anything else (a terminal that takes styles, characters whose
width or wrapping only rich knows, a cell or title that would wrap, a line
longer than the screen), which rich then draws as before.

``width`` is rich's rule for a console on ``stream`` (``Console.size``):
``COLUMNS``, else the first of stdin, stdout and stderr that is a terminal,
else 80; ``is_terminal`` is rich's too (``TTY_COMPATIBLE``, ``FORCE_COLOR``,
``isatty``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from inventory_cli.tables import Col, Layout, Style

__all__ = ["draw", "line", "simple", "width"]

# Characters rich 15 measures as one cell without its tables
# (rich.cells._SINGLE_CELL_UNICODE_RANGES, Latin part), less the space-likes
# (U+00A0) and the soft hyphen, which wrapping treats its own way.
_CHARS = r"!-~\u00a1-\u00ac\u00ae-\u02ff"
# Words of those characters, one space between them, none at the ends.
_SIMPLE = re.compile(f"(?:[{_CHARS}]+(?: [{_CHARS}]+)*)?")
_ELLIPSIS = "…"


def _rich_is_terminal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """rich's ``Console.is_terminal`` for a console writing to ``stream``."""
    compatible = environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    isatty = getattr(stream, "isatty", None)
    try:
        return False if isatty is None else bool(isatty())
    except ValueError:  # closed
        return False


def width(stream: TextIO, *, no_color: bool, environ: Mapping[str, str] = os.environ) -> int | None:
    """The width rich's console for ``stream`` would lay out for, if it would
    write no escape codes there (``no_color``: ours was built without colour);
    None when only rich can say (a terminal that takes styles, a dumb one,
    Windows, IDLE or Jupyter, an encoding other than UTF-8)."""
    if sys.platform == "win32" or "idlelib" in sys.modules or "ipykernel" in sys.modules:
        return None
    encoding = getattr(stream, "encoding", "utf-8") or "utf-8"
    if not encoding.lower().startswith("utf"):
        return None  # rich would draw ASCII boxes
    terminal = _rich_is_terminal(stream, environ)
    if terminal and not no_color:
        return None
    if terminal and environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return None  # rich's own rule for those (80 columns, mostly)
    columns = environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    found = 0
    for fd in (0, 1, 2):
        try:
            found = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    return found or 80


def simple(text: str) -> bool:
    """Whether rich would print ``text`` as it is: words of one-cell
    characters, single spaces between them."""
    return _SIMPLE.fullmatch(text) is not None


def line(text: str, screen: int, *, markup: bool = True) -> str | None:
    """``text`` as rich's ``Console.print`` writes it: itself, when it is
    simple, fits ``screen`` (no wrap) and, with ``markup``, holds none."""
    if (markup and "[" in text) or len(text) > screen or not simple(text):
        return None
    return text + "\n"


def _cell(text: str, col: Col, w: int) -> str | None:
    """A cell's text at width ``w`` as rich pads (or cuts) it; None if it
    would wrap (prose longer than its column)."""
    if len(text) > w:
        if col.kind == "prose":
            return None
        text = text[: w - 1] + _ELLIPSIS
    return text.rjust(w) if col.kind == "number" else text.ljust(w)


def draw(
    title: str | None,
    columns: Sequence[Col],
    rows: Sequence[Sequence[str]],
    layout: Layout,
    style: Style,
) -> str | None:
    """The table ``tables.draw`` gives rich, as rich prints it to a console
    without styles; None when only rich can draw it."""
    cols = [columns[i] for i in layout.shown]
    texts = [[col.name for col in cols], *([row[i] for i in layout.shown] for row in rows)]
    if not layout.shown or min(layout.widths) < 1 or not all(simple(t) for r in texts for t in r):
        return None
    grid: list[list[str]] = []
    for r in texts:
        cells = [_cell(t, col, w) for t, col, w in zip(r, cols, layout.widths, strict=True)]
        if None in cells:
            return None
        grid.append([c for c in cells if c is not None])
    total = layout.width(style)
    out: list[str] = []
    if title:
        if "[" in title or len(title) > total or not simple(title):
            return None
        out.append(title.ljust(total))
    header, *body = grid
    if style.boxed:
        bars = ["━" * (w + 2) for w in layout.widths]
        out.append("┏" + "┳".join(bars) + "┓")
        out.append("┃" + "┃".join(f" {c} " for c in header) + "┃")
        out.append("┡" + "╇".join(bars) + "┩")
        out.extend("│" + "│".join(f" {c} " for c in r) + "│" for r in body)
        out.append("└" + "┴".join("─" * (w + 2) for w in layout.widths) + "┘")
    else:
        out.append("  ".join(header))
        out.append("─" * total)
        out.extend("  ".join(r) for r in body)
    return "".join(f"{x}\n" for x in out)
