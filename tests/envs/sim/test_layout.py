"""The simulator core's layout rule: ``envs/sim`` imports only numpy, the standard library
and itself, and does no file I/O (data arrives as arrays, see ``envs/data.py``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests import REPO

SIM_DIR = REPO / "envs" / "sim"
# Standard-library modules that read or write files, processes or the network.
IO_MODULES = {
    "io", "pathlib", "shutil", "tempfile", "glob", "fileinput", "gzip", "bz2", "lzma",
    "zipfile", "tarfile", "zlib", "csv", "pickle", "shelve", "dbm", "sqlite3", "mmap",
    "subprocess", "socket", "urllib", "http", "ftplib", "importlib", "linecache",
}  # fmt: skip
NUMPY_IO = {
    "load", "save", "savez", "savez_compressed", "fromfile", "tofile", "loadtxt", "savetxt",
    "genfromtxt", "memmap", "fromregex",
}  # fmt: skip
OS_ALLOWED = {"sysconf"}  # the physical memory size (footprint.py): no file access


def violations(source: str) -> list[str]:
    """What in ``source`` breaks the rule, one line per finding (empty: clean)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [node.module or ""] if node.level == 0 else []
        for m in mods:
            top = m.split(".")[0]
            if top == "envs":
                if not (m == "envs.sim" or m.startswith("envs.sim.")):
                    out.append(f"line {node.lineno}: imports {m} (outside envs.sim)")
            elif top in IO_MODULES:
                out.append(f"line {node.lineno}: imports {m} (file or process I/O)")
            elif top not in ("numpy", "__future__") and top not in sys.stdlib_module_names:
                out.append(f"line {node.lineno}: imports {m} (not numpy or the stdlib)")
        if isinstance(node, ast.Name) and node.id in ("open", "Path", "__import__"):
            out.append(f"line {node.lineno}: uses {node.id}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base, attr = node.value.id, node.attr
            if base == "os" and attr not in OS_ALLOWED:
                out.append(f"line {node.lineno}: uses os.{attr}")
            if base in ("np", "numpy") and attr in NUMPY_IO:
                out.append(f"line {node.lineno}: uses {base}.{attr} (file I/O)")
            if attr in ("tofile", "read_text", "write_text", "read_bytes", "write_bytes"):
                out.append(f"line {node.lineno}: uses .{attr} (file I/O)")
    return out


@pytest.mark.parametrize("path", sorted(SIM_DIR.glob("*.py")), ids=lambda p: p.name)
def test_sim_module_imports_numpy_stdlib_only_and_does_no_file_io(path: Path) -> None:
    found = violations(path.read_text())
    assert not found, f"envs/sim/{path.name}: " + "; ".join(found)


def test_checker_catches_what_it_forbids() -> None:
    bad = (
        "import os\nfrom pathlib import Path\nimport gzip\nfrom envs import traces\n"
        "import torch\nimport numpy as np\n"
        "x = open('f')\ny = os.environ\nz = np.load('a.npz')\nw = Path('p').read_text()\n"
    )
    found = "\n".join(violations(bad))
    for what in ("pathlib", "gzip", "envs", "torch", "uses open", "os.environ", "np.load"):
        assert what in found
    assert "imports numpy" not in found
    assert violations("import math\nimport numpy as np\nfrom envs.sim import hashing\n") == []
