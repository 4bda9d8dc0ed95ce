"""The shape of the code, checked: imports point one way, and nothing grows
past the size one person can hold in their head.

The layers (docs/ARCHITECTURE.md, "Module map"), from the inside out:

    leaves     domain, hlc, clocks, digest, errors, config, paths, inputs, metrics,
               logs, memtrim, auth
    ledger     agent.ledger.*
    service    service, replica, expiry, agent.routing.*, agent.alerts.*, agent.accounts.*
    edges      agent.api.*, agent.sync.*
    root       runtime, main
    hq         agent.hq.* (inv-hq, a process of its own beside the agent: leaves,
               the ledger's pure parts, agent.sync)

A module may import its own layer and the layers inside it, never one outside.
``api`` and ``sync`` are both edges and never import each other; ``root`` and
``hq`` are both outermost and never import each other (nothing imports HQ). The CLI
imports nothing of the agent but ``agent.paths`` (where the socket is).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "inventory_cli")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

LAYERS = {
    "leaf": 0,
    "ledger": 1,
    "service": 2,
    "api": 3,
    "sync": 3,
    "root": 4,
    "hq": 4,
}
LEAVES = {
    "agent",
    "agent.domain",
    "agent.hlc",
    "agent.errors",
    "agent.config",
    "agent.paths",
    "agent.inputs",
    "agent.metrics",
    "agent.logs",
    "agent.memtrim",
    "agent.auth",
    "agent.clocks",
    "agent.digest",
}
SERVICE = {"agent.service", "agent.standalone", "agent.replica", "agent.expiry"}
ROOT_MODULES = {"agent.runtime", "agent.main"}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def layer_of(module: str) -> str:
    if module in LEAVES:
        return "leaf"
    if module in SERVICE:
        return "service"
    if module in ROOT_MODULES:
        return "root"
    for package in ("agent.routing", "agent.alerts", "agent.accounts"):
        if module == package or module.startswith(package + "."):
            return "service"
    for prefix in ("ledger", "api", "sync", "hq"):
        if module == f"agent.{prefix}" or module.startswith(f"agent.{prefix}."):
            return prefix
    raise AssertionError(f"{module} is in no layer: add it to the map above and to ARCHITECTURE.md")


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports, anywhere in it (a function-level import
    is still an arrow), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _type_checking_only(node)
        for n in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


GRAPH = {m: imports_of(p, set(modules())) - {m} for m, p in modules().items()}


def test_every_module_has_a_layer() -> None:
    for module in GRAPH:
        if module.startswith("agent"):
            layer_of(module)


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("agent")))
def test_agent_imports_point_inward(module: str) -> None:
    mine = layer_of(module)
    for target in GRAPH[module]:
        if target == "agent" or target.startswith("inventory_cli"):
            assert not target.startswith("inventory_cli"), f"{module} imports the CLI"
            continue
        theirs = layer_of(target)
        assert LAYERS[theirs] < LAYERS[mine] or theirs == mine, (
            f"{module} ({mine}) imports {target} ({theirs}): arrows must point inward"
        )


def test_cli_imports_only_the_socket_path_of_the_agent() -> None:
    for module, targets in GRAPH.items():
        if module.startswith("inventory_cli"):
            agent_side = {t for t in targets if t.startswith("agent")}
            assert agent_side <= {"agent", "agent.paths"}, f"{module} imports {agent_side}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    # a package's __init__ that imports its own children is not a cycle of logic
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("module", sorted(modules()))
def test_sizes(module: str) -> None:
    path = modules()[module]
    source = path.read_text()
    lines = len(source.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, (
                f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() has {length} lines"
            )


def test_nothing_imports_hq() -> None:
    for module, targets in GRAPH.items():
        if not module.startswith("agent.hq"):
            assert not {t for t in targets if t.startswith("agent.hq")}, f"{module} imports HQ"


def test_the_layer_map_orders_the_layers() -> None:
    assert layer_of("agent.api.app") == "api"
    assert layer_of("agent.ledger.engine") == "ledger"
    assert LAYERS[layer_of("agent.sync.link")] > LAYERS[layer_of("agent.service")]
    assert LAYERS[layer_of("agent.service")] > LAYERS[layer_of("agent.ledger.store")]
