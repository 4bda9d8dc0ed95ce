"""What a short command loads (B1): only the module of the command it runs,
no rich when its output is plain text, and no garbage collection on the way
(one real ``python`` process: a test process has imported everything); and
each command, built when named, is what ``app.command()`` would have built."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import import_module
from typing import Any

import typer
import typer.main

from inventory_cli.app import COMMANDS
from inventory_cli.command_tree import Group

PROBE = """
import gc, sys
sys.argv = ["inv", *sys.argv[1:]]
from inventory_cli.main import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print(code, gc.isenabled(), " ".join(sorted(sys.modules)), file=sys.stderr)
"""


def loaded(*args: str) -> tuple[str, bool, set[str]]:
    env = {**os.environ, "INV_AGENT": "/nonexistent/agent.sock", "NO_COLOR": "1"}
    env.pop("INV_TOKEN", None)
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60
    )
    code, enabled, modules = r.stderr.splitlines()[-1].split(" ", 2)
    return code, enabled == "True", set(modules.split())


def test_a_command_imports_its_own_module_and_no_rich() -> None:
    code, collecting, modules = loaded("stock", "show", "PROD-001")
    assert code == "5"  # no agent there: the error, written without rich
    commands = {m for m in modules if m.startswith("inventory_cli.commands.")}
    assert commands == {"inventory_cli.commands.stock", "inventory_cli.commands.options"}
    assert not {m for m in modules if m.startswith("rich")}
    assert not collecting


def test_help_still_builds_every_command_it_lists() -> None:
    code, _, modules = loaded("--help")  # the commands of the root, the groups by name
    assert code == "0"
    assert {"inventory_cli.commands.imports", "inventory_cli.commands.auth"} <= modules
    code, _, modules = loaded("transfer", "--help")
    assert code == "0"
    assert "inventory_cli.commands.transfers" in modules


def _shape(value: Any, depth: int = 0) -> Any:
    """A command's attributes as plain data (functions by name)."""
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    if isinstance(value, list | tuple):
        return [_shape(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v, depth + 1) for k, v in value.items()}
    if (callable(value) and not hasattr(value, "params")) or depth > 5:
        return getattr(value, "__qualname__", type(value).__name__)
    return {"class": type(value).__name__, **_shape(vars(value), depth + 1)}


def test_each_command_is_built_as_app_command_builds_it() -> None:
    checked = 0
    for group in COMMANDS.values():
        table = group.commands if isinstance(group, Group) else {"": group}
        for name, cmd in table.items():
            eager = typer.Typer(rich_markup_mode=None, add_completion=False)
            eager.command(name or "x")(getattr(import_module(cmd.module), cmd.function))
            built = cmd.build(name or "x")
            assert _shape(built) == _shape(typer.main.get_command(eager)), cmd
            checked += 1
    assert checked >= 40
