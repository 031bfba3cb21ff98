"""Counter-based pseudo-random keys (splitmix64), the same in numpy and in plain Python.

The host's random choices (ESX swaps randomly chosen pages, working-set sampling) must be
reproducible and identical in the vectorized core and the reference simulator, so they are
hashes of (host seed, tick, page index) rather than draws from a stateful generator.
"""

from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def splitmix64_int(z: int) -> int:
    """splitmix64 finalizer on a Python int (mod 2**64)."""
    z = (z + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, elementwise on uint64 arrays (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64) + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def tick_salt_int(host_seed: int, tick: int) -> int:
    return splitmix64_int((host_seed + tick) & MASK64)


def page_key_int(host_seed: int, tick: int, index: int) -> int:
    """key(t, i) = splitmix64(splitmix64(host_seed + t) ^ i)."""
    return splitmix64_int(tick_salt_int(host_seed, tick) ^ index)


def page_keys(salt: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Vectorized key: ``salt`` per env (from ``tick_salts``), broadcast against ``index``."""
    return splitmix64(np.asarray(salt, dtype=np.uint64) ^ np.asarray(index, dtype=np.uint64))


def tick_salts(host_seeds: np.ndarray, tick: int | np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return splitmix64(
            np.asarray(host_seeds, dtype=np.uint64) + np.asarray(tick, dtype=np.uint64)
        )


WS_SAMPLE_BASE = 1 << 40
WS_SAMPLE_BITS = 20  # sample j of VM v has index base + (v << 20) + j: j < 2**20


def ws_sample_index(vm: int, j: int) -> int:
    return WS_SAMPLE_BASE + (vm << WS_SAMPLE_BITS) + j


def ws_sample_indices(num_vms: int, n: int) -> np.ndarray:
    """(num_vms, n) uint64 ``ws_sample_index(v, j)`` for every VM and sample."""
    v = np.arange(num_vms, dtype=np.uint64)[:, None] << np.uint64(WS_SAMPLE_BITS)
    return np.uint64(WS_SAMPLE_BASE) + v + np.arange(n, dtype=np.uint64)[None, :]


def derive_seeds(seed: int | None) -> tuple[np.random.SeedSequence, int]:
    """seed -> (workload SeedSequence, host seed). ``None`` draws fresh entropy."""
    ss = np.random.SeedSequence(seed)
    wl, host = ss.spawn(2)
    return wl, int(host.generate_state(1, np.uint64)[0])


def walk_params(host_seed: int, tick: int, n: int) -> tuple[int, int]:
    """A pseudo-random order of ``n`` positions: ``p_j = (a + j * stride) mod n``.

    ``a = key(t, 0) mod n``; ``stride = key(t, 1) mod n + 1``, incremented until it is
    coprime with ``n`` so the walk is a permutation. Used for ESX-style random host
    swapping: a permutation walk picks the first eligible pages without hashing them all.
    """
    import math

    a = page_key_int(host_seed, tick, 0) % n
    stride = page_key_int(host_seed, tick, 1) % n + 1
    while math.gcd(stride, n) != 1:
        stride += 1
    return a, stride
