"""Helpers of the env tests: a host that runs out of memory, and an exact deep compare."""

from __future__ import annotations

import numpy as np

# A host that runs out of memory within ~10 steps unless the balloons are used.
OOM_PRONE = {"host_frames": 3500, "host_swap_pages": 64}


def uneven_actions(rng, num_envs: int, t: int, oom_prone: bool, num_vms: int = 4):
    """Random absolute actions for step ``t``; on an :data:`OOM_PRONE` host, envs 0 and 1
    keep their balloons nearly empty, each a little differently, so they hit host OOM at
    different steps (uneven episode ends for autoreset contract tests)."""
    import numpy as np

    a = rng.uniform(-1, 1, size=(num_envs, num_vms)).astype(np.float32)
    if oom_prone:
        a[:2] = -1.0 + 0.05 * t * np.arange(1, 3)[:, None]
    return a


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
