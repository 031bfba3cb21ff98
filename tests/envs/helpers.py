"""Helpers of the env tests: a host that runs out of memory, and an exact deep compare."""

from __future__ import annotations

import numpy as np

# A host that runs out of memory within ~10 steps unless the balloons are used.
OOM_PRONE = {"host_frames": 3500, "host_swap_pages": 64}


def assert_same(a, b, path="") -> None:
    """``a`` and ``b`` are equal, recursively through dicts, sequences and arrays (same
    dtypes and types too); the assertion names the first ``path`` that differs."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, path
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                assert_same(x, y, f"{path}[{i}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"
