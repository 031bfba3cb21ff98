"""The memory estimate checked before a simulator allocates (envs/sim/footprint.py)."""

from __future__ import annotations

import dataclasses
import time
import tracemalloc

import numpy as np
import pytest

from envs.data import make_simulator, max_sim_bytes
from envs.sim.core import Simulator
from envs.sim.footprint import default_max_bytes, estimate_bytes, physical_memory_bytes
from envs.sim.params import HostParams, standard_params
from envs.sim.reference import ReferenceBatch, ReferenceSimulator

GIB = 1 << 30


def _refused_fast(build, match: str) -> None:
    """``build()`` raises a ValueError matching ``match`` at once, allocating little."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match):
            build()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5.0
    assert peak < 64 << 20, f"allocated {peak / 2**20:.0f} MiB before refusing"


def test_huge_guest_is_refused_before_allocating() -> None:
    params = standard_params(guest_pages=10**9)
    _refused_fast(lambda: Simulator(params, 1), r"guest_pages \(max 1000000000\)")
    _refused_fast(lambda: ReferenceSimulator(params), r"guest_pages \(max 1000000000\)")


def test_huge_ws_sample_is_refused_before_allocating() -> None:
    # Beyond 2**20 samples per VM the sample indices would collide (hashing.py): refused
    # by the params; below it, a large batch is refused by the footprint check.
    _refused_fast(
        lambda: dataclasses.replace(standard_params(), ws_sample_pages=10**7),
        r"ws_sample_pages must be an int in \[0, 1048576\], got 10000000",
    )
    params = dataclasses.replace(standard_params(guest_pages=1024), ws_sample_pages=1 << 20)
    _refused_fast(lambda: Simulator(params, 4096), r"ws_sample_pages \(1048576\)")


def test_ws_sample_indices_match_the_scalar_rule() -> None:
    from envs.sim.hashing import ws_sample_index, ws_sample_indices

    got = ws_sample_indices(3, 5)
    assert got.dtype == np.uint64
    assert got.tolist() == [[ws_sample_index(v, j) for j in range(5)] for v in range(3)]


def test_huge_batch_is_refused_before_allocating() -> None:
    from envs.vector_env import BalloonVectorEnv

    _refused_fast(lambda: BalloonVectorEnv(100_000), r"num_envs \(100000\)")
    _refused_fast(lambda: ReferenceBatch(standard_params(), 100_000), r"num_envs \(100000\)")


def test_limit_is_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    params = standard_params(guest_pages=1024)
    need = estimate_bytes(params, 4)
    Simulator(params, 4, max_bytes=need)  # at the limit: fine
    with pytest.raises(ValueError, match="over the limit"):
        Simulator(params, 4, max_bytes=need - 1)
    monkeypatch.setenv("RECLAIM_MAX_SIM_BYTES", str(need - 1))
    assert max_sim_bytes() == need - 1
    with pytest.raises(ValueError, match="RECLAIM_MAX_SIM_BYTES"):
        make_simulator(params, 4)
    monkeypatch.setenv("RECLAIM_MAX_SIM_BYTES", str(need))
    assert make_simulator(params, 4).num_envs == 4
    monkeypatch.setenv("RECLAIM_MAX_SIM_BYTES", "lots")
    with pytest.raises(ValueError, match="RECLAIM_MAX_SIM_BYTES must be a number"):
        max_sim_bytes()
    monkeypatch.delenv("RECLAIM_MAX_SIM_BYTES")
    assert max_sim_bytes() == default_max_bytes() == physical_memory_bytes() // 2
    with pytest.raises(ValueError, match="max_bytes"):
        Simulator(params, 1, max_bytes=0)


@pytest.mark.parametrize(
    "params, num_envs",
    [
        (standard_params(guest_pages=2048), 8),
        (standard_params(guest_pages=1024, refs_per_tick=8192), 4),
        (dataclasses.replace(standard_params(guest_pages=1024), ws_sample_pages=20_000), 4),
    ],
)
def test_estimate_is_within_2x_of_measured_peak(params: HostParams, num_envs: int) -> None:
    tracemalloc.start()
    sim = Simulator(params, num_envs)
    sim.reset(list(range(num_envs)))
    rng = np.random.default_rng(0)
    for _ in range(6):
        sim.step(rng.integers(0, 600, size=(num_envs, params.num_vms)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ratio = estimate_bytes(params, num_envs) / peak
    assert 0.5 <= ratio <= 2.0, f"estimate / measured peak = {ratio:.2f}"
