"""``inventory_cli.plain`` writes what rich writes, or leaves it to rich.

Random tables, lines and messages are drawn both ways, rich's with the
console ``inventory_cli.render`` builds (no colour); wherever ``plain``
gives an answer it must be rich's to the byte. The screen's width and
whether rich would style anything are checked against rich's own
``Console`` over the variables and streams that decide them."""

from __future__ import annotations

import io
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from inventory_cli import plain
from inventory_cli.tables import BOXED, PLAIN, Col, cells, draw, fit

# plain text, and what plain must hand to rich: wide and combining
# characters, tabs, runs of spaces, markup, a soft hyphen, a no-break space
WORDS = st.text(st.sampled_from("abcXYZ019-_.:/()éñß"), min_size=1, max_size=12)
ODD = st.sampled_from(
    ["中文", "e\u0301", "a\tb", "a  b", " a", "a ", "[bold]x[/]", "x\u00ady", "\u00a0"]
)
TEXT = st.one_of(st.lists(WORDS, max_size=4).map(" ".join), ODD, st.integers(-5, 10**6).map(str))
KINDS = st.sampled_from(["id", "sku", "code", "time", "number", "text", "prose"])
COLUMN = st.builds(
    Col,
    name=st.lists(WORDS, min_size=1, max_size=2).map(" ".join),
    kind=KINDS,
    priority=st.integers(1, 4),
    min_width=st.integers(1, 20),
)


def rich_console(width: int, *, soft_wrap: bool = False) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        highlight=False,
        soft_wrap=soft_wrap,
        emoji=False,
        color_system=None,
    )
    return console, buf


@st.composite
def tables(draw_: Any) -> tuple[Any, ...]:
    columns = draw_(st.lists(COLUMN, min_size=1, max_size=6))
    rows = draw_(st.lists(st.tuples(*(TEXT for _ in columns)), max_size=5))
    title = draw_(st.one_of(st.none(), st.just(""), TEXT))
    style = draw_(st.sampled_from([BOXED, PLAIN]))
    return columns, rows, title, style, draw_(st.integers(10, 160)), draw_(st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_a_table_is_drawn_as_rich_draws_it(table: tuple[Any, ...]) -> None:
    columns, rows, title, style, width, wide = table
    shown = cells(columns, rows, wide)
    layout = fit(columns, shown, width, style, wide)
    mine = plain.draw(title, columns, shown, layout, style)
    if mine is None:
        return
    console, buf = rich_console(width)
    console.print(draw(title, columns, shown, layout, style), crop=False, soft_wrap=False)
    assert mine == buf.getvalue()


def test_ordinary_tables_are_drawn_without_rich() -> None:
    columns = [Col("Store"), Col("On hand", "number"), Col("Name", "text"), Col("Note", "prose")]
    rows = [("store-001", "10", "Portátil Dell XPS 13, 32 GB", ""), ("store-002", "5", "x", "a b")]
    for style, width, wide in itertools.product([BOXED, PLAIN], [40, 80], [False, True]):
        shown = cells(columns, rows, wide)
        layout = fit(columns, shown, width, style, wide)
        assert plain.draw("Stock of PROD-001", columns, shown, layout, style) is not None


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(1, 60), st.booleans())
def test_a_line_is_printed_as_rich_prints_it(text: str, width: int, markup: bool) -> None:
    mine = plain.line(text, width, markup=markup)
    if mine is None:
        return
    console, buf = rich_console(width)
    console.print(text, markup=markup)
    assert mine == buf.getvalue()


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXT, max_size=12).map(" ".join), st.sampled_from(["", "dim", "bold red"]))
def test_a_message_on_stderr_is_rich_s_with_soft_wrap(text: str, style: str) -> None:
    if not plain.simple(text):
        return
    console, buf = rich_console(20, soft_wrap=True)  # never wrapped, however long
    console.print(text, style=style or None, markup=False)
    assert buf.getvalue() == text + "\n"


class Stream(io.StringIO):
    def __init__(self, tty: bool, encoding: str) -> None:
        super().__init__()
        self._tty, self._encoding = tty, encoding

    def isatty(self) -> bool:
        return self._tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


def test_the_width_and_the_styles_are_rich_s() -> None:
    answered = 0
    choices = itertools.product(
        [True, False],  # a terminal
        ["utf-8", "ascii"],
        [True, False],  # our console built without colour (NO_COLOR)
        [None, "50", "x"],  # COLUMNS
        [None, "", "1"],  # FORCE_COLOR
        [None, "0", "1"],  # TTY_COMPATIBLE
        ["xterm", "dumb"],  # TERM
    )
    for tty, encoding, no_color, columns, force, compatible, term in choices:
        given = {"COLUMNS": columns, "FORCE_COLOR": force, "TTY_COMPATIBLE": compatible}
        environ = {"TERM": term, **{k: v for k, v in given.items() if v is not None}}
        stream = Stream(tty, encoding)
        width = plain.width(stream, no_color=no_color, environ=environ)
        if width is None:
            continue
        answered += 1
        console = Console(file=stream, color_system=None if no_color else "auto", _environ=environ)
        assert (console.width, console.color_system) == (width, None), (environ, tty)
        assert not console.options.ascii_only
    assert answered > 50  # the common cases are answered, not all left to rich
