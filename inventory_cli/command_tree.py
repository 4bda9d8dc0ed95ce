"""``inv``'s command tree, each command built the first time it is named.

typer builds a click command by reading its function's signature and every
parameter's annotation, and a command's function lives in a module that
imports its renderers: built all at once, that was half of a short
command's run (``inv stock show``: the other ~40 commands, B1). Here a
command is a ``Cmd`` (its module and function, as text) until someone looks
it up in its group's ``Commands``; ``inv stock show`` then builds the
``stock`` group and its ``show`` alone. Whoever needs every command still
gets every one, in the table's order: ``--help`` (each one's short help),
completion (the names; the help of those offered), a mistyped name (the
names typer suggests from), the README's generated table.

A command is built by typer itself (``get_command_from_info``), as
``app.command(name)(function)`` would have had it; a group is the
``TyperGroup`` typer builds for a sub-app without a callback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import typer.main
from typer.core import TyperGroup
from typer.models import CommandInfo, Default

if TYPE_CHECKING:
    from typer._click import Command  # typer's own copy of click
    from typer._click import Context as ClickContext

__all__ = ["Cmd", "Commands", "Group", "LazyGroup"]

# What typer gives every command of ``inv``'s app (main: rich_markup_mode=None;
# pretty_exceptions_short left at its default).
RICH_MARKUP_MODE = None
PRETTY_EXCEPTIONS_SHORT = True


class Cmd(NamedTuple):
    """A command: the function ``function`` of the module ``module``."""

    module: str
    function: str

    def build(self, name: str) -> Command:
        callback = getattr(import_module(self.module), self.function)
        return typer.main.get_command_from_info(
            # rich_help_panel as app.command() leaves it (typer's "not given")
            CommandInfo(name=name, callback=callback, rich_help_panel=Default(None)),
            pretty_exceptions_short=PRETTY_EXCEPTIONS_SHORT,
            rich_markup_mode=RICH_MARKUP_MODE,
        )


class Group(NamedTuple):
    """A group of commands (``inv stock ...``); alone, it prints its help."""

    help: str
    commands: Mapping[str, Cmd]

    def build(self, name: str) -> Command:
        return LazyGroup(
            table=self.commands,
            name=name,
            help=self.help,
            no_args_is_help=True,
            rich_markup_mode=RICH_MARKUP_MODE,
        )


class LazyGroup(TyperGroup):
    """A ``TyperGroup`` whose commands are those of ``table``, each built when
    looked up; it lists them without building them (typer's lists
    ``commands.items()``)."""

    def __init__(self, *, table: Mapping[str, Cmd | Group], **attrs: Any) -> None:
        # TyperGroup keeps any mapping it is given as its commands (typed a dict)
        super().__init__(commands=cast("dict[str, Command]", Commands(table)), **attrs)

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return list(self.commands)


class Commands(MutableMapping[str, "Command"]):
    """A group's commands by name (the ``commands`` click and typer read), in
    the order of ``table``; each built on its first lookup, then kept."""

    def __init__(self, table: Mapping[str, Cmd | Group]) -> None:
        self._table = dict(table)
        self._built: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        built = self._built.get(name)
        if built is None:
            built = self._built[name] = self._table[name].build(name)  # KeyError: no such command
        return built

    def __setitem__(self, name: str, command: Command) -> None:
        # click's add_command: a command given whole (none of ``inv``'s own)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._table.pop(name, None)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._table
        yield from (name for name in self._built if name not in self._table)

    def __len__(self) -> int:
        return len(self._table.keys() | self._built.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._table or name in self._built
