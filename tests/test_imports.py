"""The import graph of the project's packages: no cycles, nothing imports upward.

Every ``.py`` file of ``envs``, ``agents`` and ``experiments`` is parsed with ``ast`` and
every ``import`` / ``from ... import`` anywhere in it is collected, including imports
inside functions: a lazy import hides a cycle from the interpreter until the function
runs, but it is a cycle of the design all the same. Relative imports are resolved
against the importing module's package, and ``from pkg import name`` points at the
submodule ``pkg.name`` when ``name`` is one.

Layers, lowest first: ``envs.sim`` (numpy and the standard library only), ``envs``,
``agents``, ``experiments``. A module may import its own layer and the layers below it.
(That importing ``envs.sim`` loads neither gymnasium nor torch is checked at run time in
``tests/envs/test_env.py``.)
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from tests import REPO  # noqa: E402

PACKAGES = ("envs", "agents", "experiments")
# Third-party top-level modules that envs.sim may import besides the standard library.
SIM_ALLOWED_EXTERNAL = frozenset({"numpy"})


@dataclass(frozen=True)
class Edge:
    """One import statement: ``src`` imports ``dst`` (``dst`` is a dotted module name)."""

    src: str
    dst: str
    path: str  # file of ``src``, relative to the repository
    line: int
    lazy: bool  # inside a function (executed only when the function runs)

    def where(self) -> str:
        return f"{self.path}:{self.line}" + (" (inside a function)" if self.lazy else "")


def module_name(rel: Path) -> str:
    """Dotted module name of a file path relative to the repository root."""
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_sources(root: Path = REPO) -> dict[str, tuple[str, str]]:
    """``{module: (relative path, source)}`` for every ``.py`` file of PACKAGES."""
    out: dict[str, tuple[str, str]] = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            rel = f.relative_to(root)
            out[module_name(rel)] = (rel.as_posix(), f.read_text(encoding="utf-8"))
    return out


def _resolve(name: str, modules: set[str]) -> str:
    """The longest prefix of ``name`` that is a project module (``name`` itself if none:
    then it is external)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in modules:
            return cand
    return name


def _imports(module: str, path: str, source: str) -> list[tuple[str, list[str], int, bool]]:
    """``(base, names, line, lazy)`` for every import statement of a module.

    ``base`` is the absolute module named by the statement; ``names`` the imported names
    of a ``from`` import (empty for ``import x``)."""
    tree = ast.parse(source, filename=path)
    pkg = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found: list[tuple[str, list[str], int, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    found.append((a.name, [], child.lineno, lazy))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base_parts = pkg.split(".")
                    up = child.level - 1
                    if up >= len(base_parts):
                        raise AssertionError(f"{path}:{child.lineno}: relative import above top")
                    base = ".".join(base_parts[: len(base_parts) - up])
                    if child.module:
                        base = f"{base}.{child.module}"
                else:
                    base = child.module or ""
                found.append((base, [a.name for a in child.names], child.lineno, lazy))
            visit(child, inner)

    visit(tree, False)
    return found


def import_edges(sources: dict[str, tuple[str, str]]) -> tuple[list[Edge], list[Edge]]:
    """``(internal, external)`` edges of the import graph of ``sources``.

    Internal edges point at project modules (``from pkg import sub`` at ``pkg.sub`` when
    that is a module); external ones carry the imported top-level name (``numpy``)."""
    modules = set(sources)
    internal: list[Edge] = []
    external: list[Edge] = []
    for mod, (path, src) in sources.items():
        for base, names, line, lazy in _imports(mod, path, src):
            targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            if len(targets) < len(names) or not names:
                targets.append(_resolve(base, modules))
            for t in dict.fromkeys(targets):
                if t in modules:
                    if t != mod:
                        internal.append(Edge(mod, t, path, line, lazy))
                else:
                    external.append(Edge(mod, t.split(".")[0], path, line, lazy))
    return internal, external


def find_cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One shortest cycle through each module that lies on a cycle (rotations of the same
    cycle reported once), each as the list of its edges."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges:
        graph.setdefault(e.src, {}).setdefault(e.dst, e)
    cycles: list[list[Edge]] = []
    seen: set[frozenset[tuple[str, str]]] = set()
    for start in sorted(graph):
        # BFS for the shortest path start -> ... -> start.
        prev: dict[str, Edge] = {}
        queue = deque([start])
        found: Edge | None = None
        while queue and found is None:
            u = queue.popleft()
            for v, e in sorted(graph.get(u, {}).items()):
                if v == start:
                    found = e
                    break
                if v not in prev:
                    prev[v] = e
                    queue.append(v)
        if found is None:
            continue
        path = [found]
        while path[0].src != start:
            path.insert(0, prev[path[0].src])
        key = frozenset((e.src, e.dst) for e in path)
        if key not in seen:
            seen.add(key)
            cycles.append(path)
    return cycles


def layer(module: str) -> int:
    """0 envs.sim, 1 envs, 2 agents, 3 experiments."""
    if module == "envs.sim" or module.startswith("envs.sim."):
        return 0
    return {"envs": 1, "agents": 2, "experiments": 3}[module.split(".")[0]]


def upward_imports(internal: list[Edge], external: list[Edge]) -> list[str]:
    """Every import that breaks the layering, as a readable line."""
    out = []
    for e in internal:
        if layer(e.dst) > layer(e.src):
            out.append(f"{e.src} imports {e.dst} at {e.where()}")
    stdlib = sys.stdlib_module_names
    for e in external:
        if layer(e.src) == 0 and e.dst not in stdlib and e.dst not in SIM_ALLOWED_EXTERNAL:
            out.append(f"{e.src} imports {e.dst} (envs.sim allows numpy and stdlib) at {e.where()}")
    return sorted(out)


def _describe(cycle: list[Edge]) -> str:
    chain = " -> ".join([cycle[0].src] + [e.dst for e in cycle])
    steps = "; ".join(f"{e.src} -> {e.dst} at {e.where()}" for e in cycle)
    return f"{chain}\n    ({steps})"


# ----------------------------------------------------------------------------- tests
def test_analysis_sees_lazy_relative_and_submodule_imports():
    """The graph builder must see what the real tests rely on, or they pass vacuously."""
    sources = {
        "agents": ("agents/__init__.py", ""),
        "agents.a": ("agents/a.py", "def f():\n    from agents import b\n    return b\n"),
        "agents.b": ("agents/b.py", "from .a import f\nimport numpy as np\n"),
        "envs": ("envs/__init__.py", ""),
        "envs.sim": ("envs/sim/__init__.py", ""),
        "envs.sim.x": ("envs/sim/x.py", "import os\nfrom .. import y\nimport gymnasium\n"),
        "envs.y": ("envs/y.py", "import experiments.z\n"),
        "experiments": ("experiments/__init__.py", ""),
        "experiments.z": ("experiments/z.py", "from envs.sim.x import *\n"),
    }
    internal, external = import_edges(sources)
    pairs = {(e.src, e.dst, e.lazy) for e in internal}
    assert ("agents.a", "agents.b", True) in pairs  # lazy, `from pkg import submodule`
    assert ("agents.b", "agents.a", False) in pairs  # relative
    assert ("envs.sim.x", "envs.y", False) in pairs  # relative, two levels
    assert {(e.src, e.dst) for e in external} == {
        ("agents.b", "numpy"),
        ("envs.sim.x", "os"),
        ("envs.sim.x", "gymnasium"),
    }
    cycles = [[(e.src, e.dst) for e in c] for c in find_cycles(internal)]
    assert [("agents.a", "agents.b"), ("agents.b", "agents.a")] in cycles
    assert [
        ("envs.sim.x", "envs.y"),
        ("envs.y", "experiments.z"),
        ("experiments.z", "envs.sim.x"),
    ] in cycles
    bad = upward_imports(internal, external)
    assert any(b.startswith("envs.y imports experiments.z") for b in bad)
    assert any(b.startswith("envs.sim.x imports envs.y") for b in bad)
    assert any(b.startswith("envs.sim.x imports gymnasium") for b in bad)
    assert not any("imports os" in b or "imports numpy" in b for b in bad)


def test_the_real_graph_is_seen():
    """Sanity: the project's own graph has the edges every layer is built on."""
    internal, _ = import_edges(project_sources())
    pairs = {(e.src, e.dst) for e in internal}
    assert ("envs.sim.core", "envs.sim.params") in pairs
    assert ("envs.env_batch", "envs.sim.core") in pairs
    assert any(src.startswith("agents.") and dst.startswith("envs") for src, dst in pairs)
    assert any(src.startswith("experiments.") and dst.startswith("agents") for src, dst in pairs)


def test_no_import_cycles():
    internal, _ = import_edges(project_sources())
    cycles = find_cycles(internal)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(
        f"  {_describe(c)}" for c in cycles
    )


def test_no_upward_imports():
    bad = upward_imports(*import_edges(project_sources()))
    assert not bad, f"{len(bad)} upward import(s):\n" + "\n".join(f"  {b}" for b in bad)


# ---------------------------------------------------------------- function length
MAX_FUNCTION_LINES = 100


def test_no_function_over_the_length_limit():
    """No function or method in envs/, agents/ or experiments/ is longer than
    MAX_FUNCTION_LINES lines (a tick's step reads as its list of phases; issue 9)."""
    long = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n})")
    assert not long, "functions over the limit:\n" + "\n".join(long)
