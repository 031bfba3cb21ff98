"""Import layering: agents never import experiments, and agents' modules form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at top level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _graph(package: str) -> dict[str, set[str]]:
    mods = {f"{package}.{p.stem}": p for p in (REPO / package).glob("*.py")}
    return {m: {i for i in _imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_agents_do_not_import_experiments():
    for p in (REPO / "agents").glob("*.py"):
        bad = sorted(i for i in _imports(p) if i.split(".")[0] == "experiments")
        assert not bad, f"{p.name} imports {bad}"


def test_agents_modules_have_no_import_cycle():
    graph = _graph("agents")
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join([*path, m, n])
            if n not in state:
                visit(n, [*path, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
