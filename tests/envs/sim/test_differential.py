"""The vectorized core against the page-by-page reference: exact equality, every tick."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.data import load_workload_data
from envs.sim.core import Simulator
from envs.sim.params import standard_params
from envs.sim.reference import ReferenceBatch
from tests.envs.sim.differential import run_differential, step_both
from tests.envs.sim.strategies import host_params


def _reset_twins(params, seeds):
    """The vectorized core and the reference twin on the same data, reset with ``seeds``."""
    data = load_workload_data(params)
    core = Simulator(params, len(seeds), data)
    ref = ReferenceBatch(params, len(seeds), data)
    core.reset(list(seeds))
    ref.reset(list(seeds))
    return core, ref


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=host_params(), seed=st.integers(0, 2**32), action_seed=st.integers(0, 2**16))
def test_core_equals_reference(params, seed, action_seed):
    run_differential(params, [seed, seed + 1], action_seed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=host_params(v2=True), seed=st.integers(0, 2**32),
       action_seed=st.integers(0, 2**16))  # fmt: skip
def test_core_equals_reference_with_v2_content_and_metadata(params, seed, action_seed):
    """The v2 parameters on (docs/model.md §13): struct-page metadata among the kernel
    GPPs, per-image content pools with file data, shareable content repeated in a VM."""
    run_differential(params, [seed, seed + 1], action_seed)


def test_core_equals_reference_v2_preset():
    """A standard host through the v2 preset: every v2 parameter on, within-VM copies too."""
    from envs.physics import with_v2_physics

    base = standard_params(num_vms=3, guest_pages=256, refs_per_tick=96)
    vms = tuple(
        dataclasses.replace(v, kernel_image=i % 2, workload=dataclasses.replace(
            v.workload, shareable_fraction=0.3, shareable_copies=3))
        for i, v in enumerate(base.vms)
    )  # fmt: skip
    params = with_v2_physics(dataclasses.replace(base, vms=vms), page_kib=4)
    assert params.content_model == "image" and params.vms[0].metadata_pages > 0
    run_differential(params, [7, 8], action_seed=3, ticks=80)


def test_core_equals_reference_standard_small():
    """The benchmark's configuration, scaled down, every feature on."""
    params = standard_params(num_vms=3, guest_pages=256, refs_per_tick=96)
    run_differential(params, [7, 8, 9], action_seed=3, ticks=80)


def test_core_equals_reference_lru_host():
    params = standard_params(num_vms=2, guest_pages=128, refs_per_tick=64, host_policy="lru")
    run_differential(params, [1, 2], action_seed=5, ticks=60)


def test_core_equals_reference_after_partial_resets():
    """Envs restarted at different ticks (so the batch's envs are at different ticks, a
    path of the LRU log's append), few references against large memory (so the scratch
    bitmaps are cleared entry by entry rather than wholesale), v1 I/O clustering on."""
    params = standard_params(
        num_vms=2, guest_pages=1024, refs_per_tick=24, guest_page_cluster=3,
        file_readahead_pages=32, host_policy="random", report_block_pages=8,
    )  # fmt: skip
    n = 3
    core, ref = _reset_twins(params, [4, 5, 6])
    rng = np.random.default_rng(11)
    restarts = {15: (np.array([False, True, False]), [None, 40, None]),
                33: (np.array([True, False, False]), [41, None, None]),
                47: (np.array([False, False, True]), [None, None, 42])}  # fmt: skip
    for t in range(1, 61):
        if t in restarts:
            mask, seeds = restarts[t]
            core.reset(seeds, env_mask=mask)
            ref.reset(seeds, env_mask=mask)
        step_both(t, core, ref, rng, params, n)
    assert len(set(core.tick.tolist())) == n  # the envs did run at different ticks


def test_core_equals_reference_ksm_scan(monkeypatch):
    """KSM's cursor windows (256 positions) over hosts of 2048 GPPs whose resident pages
    are clustered, so that some envs' windows come up short and their visit is taken by
    the whole-host scan (``Simulator._ksm_scan``), wraps included."""
    params = standard_params(
        num_vms=2, guest_pages=1024, refs_per_tick=48, ksm_pages_per_tick=40,
        host_policy="random", report_block_pages=8,
    )  # fmt: skip
    scanned = []
    inner = Simulator._ksm_scan

    def spy(self, envs, k):
        scanned.append(envs.size)
        return inner(self, envs, k)

    monkeypatch.setattr(Simulator, "_ksm_scan", spy)
    run_differential(params, [1, 2, 3], action_seed=9, ticks=60)
    assert sum(scanned) >= 10  # the scan path did run


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=host_params(v2=True, closed_loop=True), seed=st.integers(0, 2**32),
       action_seed=st.integers(0, 2**16))  # fmt: skip
def test_core_equals_reference_closed_loop(params, seed, action_seed):
    """The closed loop on (SEMANTICS.md "Closed loop"): each VM's credit and its cursor
    into the stream (in the snapshots), and so which ticks it issues a batch in, agree."""
    run_differential(params, [seed, seed + 1], action_seed)


def test_core_equals_reference_closed_loop_v2_preset():
    """The v2 preset (closed loop on) on a standard host short of frames, whose VMs stall
    and fall behind the open loop's tick: both simulators agree on every tick."""
    from envs.physics import with_v2_physics

    base = dataclasses.replace(
        standard_params(num_vms=3, guest_pages=256, refs_per_tick=96), host_frames=330
    )
    params = dataclasses.replace(with_v2_physics(base), closed_loop=True)
    data = load_workload_data(params)
    core, ref = Simulator(params, 2, data), ReferenceBatch(params, 2, data)
    core.reset([7, 8])
    ref.reset([7, 8])
    rng = np.random.default_rng(3)
    for t in range(1, 61):
        step_both(t, core, ref, rng, params, 2)
    cursors = np.array([ref.snapshot(b)["loop_cursor"] for b in range(2)])
    assert (cursors < 60).any()


def test_core_equals_reference_closed_loop_after_partial_resets():
    """A reset puts a closed-loop env's credits and cursors back to 0 and leaves the
    others' where they were (a v2 host short of frames, so cursors lag their ticks)."""
    from envs.physics import with_v2_physics

    base = dataclasses.replace(
        standard_params(num_vms=2, guest_pages=256, refs_per_tick=96), host_frames=230
    )
    params = with_v2_physics(base)
    assert params.closed_loop
    n = 3
    core, ref = _reset_twins(params, [4, 5, 6])
    rng = np.random.default_rng(11)
    restarts = {15: (np.array([False, True, False]), [None, 40, None]),
                33: (np.array([True, False, False]), [41, None, None])}  # fmt: skip
    for t in range(1, 46):
        if t in restarts:
            mask, seeds = restarts[t]
            core.reset(seeds, env_mask=mask)
            ref.reset(seeds, env_mask=mask)
            for b in np.flatnonzero(mask):
                assert (core.snapshot(b)["loop_cursor"] == 0).all()
        step_both(t, core, ref, rng, params, n)
    cursors = np.array([core.snapshot(b)["loop_cursor"] for b in range(n)])
    assert (cursors < core.tick[:, None]).any()
