"""Tables that fit the terminal: each column declared once (name, kind,
priority), laid out for the console's width before anything is drawn.

The kind says how a column may give way when the width is short:

- ``id``: an id that starts with a UUID is shown as its first 8 characters
  (the first block of the UUID, like git's short hashes; a command takes any
  unique prefix), or as many more as tell apart the ids of that column (as
  git does: sequential UUIDs differ only at the end). Other ids (``web-1002``,
  ``store-001:14``, ``T-7K3M-9XQ2-P8RA``) were made to be read and typed, and
  are shown whole. Never wrapped.
- ``sku``, ``code``, ``time``: shown whole on one line (SKUs, store ids,
  statuses, timestamps), never wrapped nor cut.
- ``number``: right-aligned, never wrapped.
- ``text``: free text (names, reasons): the one that gives way. It shrinks
  down to its ``min_width`` and ends in "…" when cut: a row stays one line.
- ``prose``: free text that means nothing cut short (a conflict's detail, an
  error, a note): it gives way like ``text`` but wraps at words instead, over
  as many lines as it needs.

When the columns would not fit even with every text at its minimum, the
least useful ones are left out: the highest ``priority`` number first (the
right-most of equals), a column with nothing in it before any other;
priority 1 is never left out. ``wide`` shows every column at its full width
(the lines are then as long as they need; a pager or ``less -S`` reads them).

Pure layout: drawing (rich, imported only when a table is printed) is in
``draw``; ``inventory_cli.plain`` draws the same without rich where that is
plain text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

Kind = Literal["id", "sku", "code", "time", "number", "text", "prose"]
SHRINKS = ("text", "prose")
SHORT_ID = 8
TEXT_MIN = 16  # a text column keeps this much (or its widest cell) before columns drop
_UUID_HEAD = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


# NamedTuples, not dataclasses: every command module declares its columns at
# import, and a dataclass costs eight times as much to define (``inv`` start-up, B1)
class Col(NamedTuple):
    """One column: its header, what it holds, and how much it matters (1: always
    shown; 2, 3, ...: left out first when short of room, highest first)."""

    name: str
    kind: Kind = "code"
    priority: int = 1
    min_width: int = TEXT_MIN  # text and prose only


class Style(NamedTuple):
    """A table's frame: what it costs in columns beside the cells."""

    boxed: bool = True  # rich's default box, a rule between columns

    def chrome(self, columns: int) -> int:
        if self.boxed:  # "│ a │ b │": a bar and a space each side per column, one bar more
            return 3 * columns + 1
        return 2 * max(columns - 1, 0)  # "a  b": two spaces between columns, no edges


BOXED = Style()
PLAIN = Style(boxed=False)


class Layout(NamedTuple):
    """The columns shown (by index into the declared ones), each one's width,
    and the names of those left out."""

    shown: tuple[int, ...]
    widths: tuple[int, ...]
    dropped: tuple[str, ...]

    def width(self, style: Style) -> int:
        return sum(self.widths) + style.chrome(len(self.widths))


def short_id(value: str, length: int = SHORT_ID) -> str:
    """The first ``length`` characters of an id that starts with a UUID; any
    other id as it is."""
    return value[:length] if _UUID_HEAD.match(value) else value


def id_length(values: Sequence[str]) -> int:
    """How many characters of these ids tell the different ones apart: 8, or
    more where two share their first 8. (UUIDs have their dashes in the same
    places, so two first differ after one, never on it.)"""
    ids = {v for v in values if _UUID_HEAD.match(v)}
    n = SHORT_ID
    longest = max((len(v) for v in ids), default=n)
    while n < longest and len({v[:n] for v in ids}) < len(ids):
        n += 1
    return n


def cells(columns: Sequence[Col], rows: Sequence[Sequence[Any]], wide: bool) -> list[list[str]]:
    """The values as their columns show them: each on one line; ids shortened
    unless ``wide`` (--wide lifts the width limit, so nothing is withheld:
    every column, whole ids, as --json and the logs have them; git shows
    short ids always, but it has --no-abbrev for that, and --wide is ours)."""
    shown = [
        [
            "" if v is None else " ".join(str(v).splitlines())
            for _, v in zip(columns, row, strict=True)
        ]
        for row in rows
    ]
    for i, col in enumerate(columns):
        if col.kind == "id" and not wide:
            n = id_length([row[i] for row in shown])
            for row in shown:
                row[i] = short_id(row[i], n)
    return shown


def _cell_len(text: str) -> int:
    if text.isascii() and text.isprintable():
        return len(text)  # rich's answer too, without importing its tables
    from rich.cells import cell_len  # wide characters (CJK) take two columns

    return cell_len(text)


def natural_widths(columns: Sequence[Col], rows: Sequence[Sequence[str]]) -> list[int]:
    return [
        max([_cell_len(col.name), *(_cell_len(row[i]) for row in rows)])
        for i, col in enumerate(columns)
    ]


def _least(columns: Sequence[Col], shown: list[int], empty: set[int]) -> int | None:
    """The next column to leave out: an empty one, else the highest priority
    number (the right-most of equals); None when only priority 1 is left."""
    candidates = [i for i in shown if columns[i].priority > 1]
    if not candidates:
        return None
    return max(candidates, key=lambda i: (i in empty, columns[i].priority, i))


def _share(room: int, wants: list[int], floors: list[int]) -> list[int]:
    """Widths for the text columns (most useful first): each its floor, then
    what is left, to each in turn up to its natural width."""
    widths = list(floors)
    room -= sum(floors)
    for k, want in enumerate(wants):
        extra = max(min(want - widths[k], room), 0)
        widths[k] += extra
        room -= extra
    return widths


def fit(
    columns: Sequence[Col], rows: Sequence[Sequence[str]], width: int, style: Style, wide: bool
) -> Layout:
    """Which columns to show, and how wide, in ``width`` terminal columns."""
    natural = natural_widths(columns, rows)
    shown = list(range(len(columns)))
    if wide:
        return Layout(tuple(shown), tuple(natural), ())
    floor = [
        min(natural[i], max(col.min_width, _cell_len(col.name))) if col.kind in SHRINKS else n
        for i, (col, n) in enumerate(zip(columns, natural, strict=True))
    ]

    def fits(these: list[int], back: int | None = None) -> bool:
        """Whether ``these`` fit, each text at its floor; with a column to put
        ``back``, the texts more useful than it at their natural width (it may
        not take their room)."""
        dearer = (
            set()
            if back is None
            else {i for i in these if _rank(columns, i) < _rank(columns, back)}
        )
        need = [natural[i] if i in dearer else floor[i] for i in these]
        return sum(need) + style.chrome(len(these)) <= width

    empty = {i for i in shown if not any(row[i] for row in rows)}
    while not fits(shown):
        drop = _least(columns, shown, empty)
        if drop is None:
            break  # only what must be shown is left: the table is wider than the terminal
        shown.remove(drop)
    # a narrow column left out on the way may fit beside what is left: back in,
    # the most useful first
    for i in sorted(set(range(len(columns))) - set(shown) - empty, key=lambda i: _rank(columns, i)):
        if fits(sorted([*shown, i]), back=i):
            shown = sorted([*shown, i])
    texts = sorted(
        (i for i in shown if columns[i].kind in SHRINKS), key=lambda i: _rank(columns, i)
    )
    room = width - style.chrome(len(shown)) - sum(natural[i] for i in shown if i not in texts)
    fair = _share(room, [natural[i] for i in texts], [floor[i] for i in texts])
    shared = dict(zip(texts, fair, strict=True))
    widths = tuple(shared.get(i, natural[i]) for i in shown)
    dropped = tuple(columns[i].name for i in range(len(columns)) if i not in shown)
    return Layout(tuple(shown), widths, dropped)


def _rank(columns: Sequence[Col], i: int) -> tuple[int, int]:
    """Most useful first: priority 1 before 2, the left-most of equals."""
    return (columns[i].priority, i)


def draw(
    title: str | None,
    columns: Sequence[Col],
    rows: Sequence[Sequence[str]],
    layout: Layout,
    style: Style,
) -> Any:
    """The rich Table of ``layout``: every width fixed here, so rich neither
    wraps an id nor shares out the room its own way."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    frame: dict[str, Any] = (
        {}
        if style.boxed
        else {
            "box": box.SIMPLE_HEAD,
            "show_edge": False,
            "pad_edge": False,
            "collapse_padding": True,
        }
    )
    t = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        width=layout.width(style),
        **frame,
    )
    for i, w in zip(layout.shown, layout.widths, strict=True):
        col = columns[i]
        t.add_column(
            col.name,
            justify="right" if col.kind == "number" else "left",
            width=w,
            no_wrap=col.kind != "prose",
            overflow="fold" if col.kind == "prose" else "ellipsis",
        )
    for row in rows:
        # Text, not str: a name with [brackets] is not rich markup
        t.add_row(*(Text(row[i]) for i in layout.shown))
    return t
