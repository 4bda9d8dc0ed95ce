"""What a short command loads (B1): only the module of the command it runs,
no rich when its output is plain text, and no garbage collection on the way.
One real ``python`` process (a test process has imported everything)."""

from __future__ import annotations

import os
import subprocess
import sys

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
