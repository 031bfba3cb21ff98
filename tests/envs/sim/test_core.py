"""The vectorized core: batch independence, determinism, physics, bad input."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.sim.core import Simulator
from envs.sim.invariants import check_invariants
from envs.sim.params import HostParams, Phase, VmParams, WorkloadParams, standard_params
from tests.envs.sim.strategies import host_params


def _rollout(params, seeds, targets_seq):
    sim = Simulator(params, len(seeds))
    sim.reset(seeds)
    return [sim.step(tg) for tg in targets_seq], sim


def _random_targets(params, num_envs, ticks, seed):
    rng = np.random.default_rng(seed)
    hi = max(v.guest_pages for v in params.vms)
    return [rng.integers(0, hi, size=(num_envs, params.num_vms)) for _ in range(ticks)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=host_params(), seed=st.integers(0, 2**31), action_seed=st.integers(0, 999))
def test_env_in_batch_equals_env_alone(params, seed, action_seed):
    seeds = [seed, seed + 11, seed + 5]
    tgs = _random_targets(params, 3, 30, action_seed)
    batch, _ = _rollout(params, seeds, tgs)
    for b in (0, 2):
        alone, _ = _rollout(params, [seeds[b]], [tg[b : b + 1] for tg in tgs])
        for t, (x, y) in enumerate(zip(batch, alone, strict=True)):
            assert np.array_equal(x.vm[b], y.vm[0]), f"env {b} tick {t + 1}"
            assert np.array_equal(x.host[b], y.host[0]), f"env {b} tick {t + 1}"


def test_partial_reset_leaves_other_envs_alone():
    params = standard_params(num_vms=2, guest_pages=256, refs_per_tick=64)
    tgs = _random_targets(params, 2, 40, 1)
    ref, _ = _rollout(params, [3, 4], tgs)
    sim = Simulator(params, 2)
    sim.reset([3, 9])
    for tg in tgs[:10]:
        sim.step(tg)
    sim.reset([3, None], env_mask=np.array([True, False]))  # restart env 0 only
    out = [sim.step(tg) for tg in tgs[:20]]
    for t in range(20):
        assert np.array_equal(out[t].vm[0], ref[t].vm[0])


def test_same_seed_same_trajectory_and_different_seed_differs():
    params = standard_params(num_vms=3, guest_pages=512, refs_per_tick=128)
    tgs = _random_targets(params, 2, 25, 7)
    a, sa = _rollout(params, [5, 6], tgs)
    b, sb = _rollout(params, [5, 6], tgs)
    c, _ = _rollout(params, [50, 60], tgs)
    assert all(
        np.array_equal(x.vm, y.vm) and np.array_equal(x.host, y.host)
        for x, y in zip(a, b, strict=True)
    )
    for k, v in sa.snapshot(1).items():
        assert np.array_equal(v, sb.snapshot(1)[k]), k
    assert any(not np.array_equal(x.vm, y.vm) for x, y in zip(a, c, strict=True))


def test_seed_none_draws_fresh_entropy():
    params = standard_params(num_vms=1, guest_pages=256, refs_per_tick=64)
    tgs = _random_targets(params, 1, 5, 0)
    a, sa = _rollout(params, [None], tgs)
    b, sb = _rollout(params, [None], tgs)
    assert sa.host_seed[0] != sb.host_seed[0]


def test_invariants_at_standard_scale():
    params = standard_params(num_vms=4, guest_pages=1024, refs_per_tick=256)
    res, sim = _rollout(params, [1, 2], _random_targets(params, 2, 40, 3))
    for b in range(2):
        check_invariants(params, sim.snapshot(b), res[-1].vm[b], res[-1].host[b])


# ----------------------------------------------------------------------- physics


def _run(params, targets, ticks, seed=0):
    sim = Simulator(params, 1)
    sim.reset([seed])
    tg = np.asarray(targets, dtype=np.int64).reshape(1, -1)
    return [sim.step(tg) for _ in range(ticks)], sim


def _total(results, name):
    return int(sum(r.vm_field(name).sum() for r in results))


def test_host_swapping_alone_double_pages_at_overcommit_1_5():
    """No balloon, overcommit 1.5: the host swaps blindly and the guest later evicts
    host-swapped pages (the double-paging problem)."""
    params = standard_params(
        num_vms=4, guest_pages=1024, refs_per_tick=256, overcommit=1.5, ksm_pages_per_tick=0
    )
    params = dataclasses.replace(
        params,
        vms=tuple(
            dataclasses.replace(
                v,
                workload=dataclasses.replace(v.workload, footprint_pages=1400, cold_fraction=0.3),
            )
            for v in params.vms
        ),
    )
    res, _ = _run(params, [0] * 4, 150)
    assert _total(res, "host_swapouts") > 0
    assert _total(res, "double_paging") > 0
    assert _total(res, "host_swapins") > 0


def test_dedup_of_identical_vms_frees_frames():
    vm = VmParams(
        guest_pages=512,
        kernel_pages=128,
        guest_reserve_pages=8,
        workload=WorkloadParams(
            footprint_pages=256,
            phases=(Phase(ws_pages=256),),
            shareable_fraction=0.5,
            write_fraction=0.0,
        ),
    )
    on = HostParams(vms=(vm, vm), host_frames=2048, host_min_free=0, ksm_pages_per_tick=256)
    off = dataclasses.replace(on, ksm_pages_per_tick=0)
    r_on, _ = _run(on, [0, 0], 30)
    r_off, _ = _run(off, [0, 0], 30)
    saved = int(r_on[-1].host_field("sharing_saved_frames")[0])
    assert saved >= 128  # at least the second kernel
    free_on = int(r_on[-1].host_field("host_free_frames")[0])
    free_off = int(r_off[-1].host_field("host_free_frames")[0])
    assert free_on - free_off == saved


def test_balloon_into_free_guest_memory_causes_no_guest_io():
    wl = WorkloadParams(footprint_pages=200, phases=(Phase(ws_pages=200, refs_per_tick=64),))
    vm = VmParams(guest_pages=1024, kernel_pages=32, guest_reserve_pages=16, workload=wl)
    params = HostParams(vms=(vm,), host_frames=4096, balloon_rate_pages=256)
    res, sim = _run(params, [700], 10)
    assert int(res[-1].vm_field("balloon_pages")[0, 0]) == 700
    for name in ("guest_swapouts", "guest_writebacks", "guest_drops", "guest_major_faults"):
        assert _total(res, name) == 0, name


def test_balloon_squeezing_the_working_set_makes_the_guest_page():
    wl = WorkloadParams(footprint_pages=900, phases=(Phase(ws_pages=900, refs_per_tick=256),))
    vm = VmParams(guest_pages=1024, kernel_pages=32, guest_reserve_pages=16, workload=wl)
    params = HostParams(vms=(vm,), host_frames=4096, balloon_rate_pages=256)
    res, _ = _run(params, [600], 40)
    assert _total(res, "guest_swapouts") + _total(res, "guest_drops") > 0
    assert _total(res, "guest_major_faults") > 0


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: VmParams(guest_pages=0), "guest_pages"),
        (lambda: VmParams(guest_pages=64, kernel_pages=64), "kernel_pages"),
        (lambda: VmParams(guest_swap_pages=-1), "guest_swap_pages"),
        (lambda: WorkloadParams(write_fraction=1.5), "write_fraction"),
        (lambda: WorkloadParams(cold_fraction=-0.1), "cold_fraction"),
        (lambda: Phase(refs_per_tick=1 << 21), "refs_per_tick"),
        (lambda: HostParams(host_frames=10), "host_frames"),
        (lambda: HostParams(balloon_rate_pages=-3), "balloon_rate_pages"),
        (lambda: HostParams(host_policy="fifo"), "host_policy"),
        (lambda: HostParams(ksm_max_sharing=1), "ksm_max_sharing"),
    ],
)
def test_bad_params_name_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()


def test_working_set_cannot_exceed_footprint():
    phases = (Phase(ws_pages=100), Phase(ws_pages=101))
    with pytest.raises(ValueError, match=r"phases\[1\]\.ws_pages must be <= footprint_pages"):
        WorkloadParams(footprint_pages=100, phases=phases)
    WorkloadParams(footprint_pages=100, phases=phases[:1])  # equal is fine


def test_lower_bound_message_reads_plainly():
    with pytest.raises(ValueError, match=r"^duration_ticks must be an int >= 1, got 0$"):
        Phase(duration_ticks=0)
    with pytest.raises(ValueError, match=r"^ws_min_pages must be an int in \[0, 5\], got 6$"):
        Phase(ws_pages=5, ws_min_pages=6)


def test_undercommitted_host_is_accepted_and_runs():
    """More host frames than guest pages is legitimate: nothing to reclaim, no OOM."""
    params = standard_params(num_vms=2, guest_pages=128, refs_per_tick=16, overcommit=0.5)
    assert params.host_frames > sum(v.guest_pages for v in params.vms)
    sim = Simulator(params, 1)
    sim.reset([0])
    for _ in range(30):
        res = sim.step(np.zeros((1, 2), dtype=np.int64))
    assert res.host_field("host_oom").sum() == 0
    assert res.vm_field("host_swapped_pages").sum() == 0


def test_bad_targets_raise():
    params = standard_params(num_vms=2, guest_pages=128, refs_per_tick=16)
    sim = Simulator(params, 2)
    with pytest.raises(RuntimeError, match="reset"):
        sim.step(np.zeros((2, 2), dtype=np.int64))
    sim.reset([0, 1])
    with pytest.raises(ValueError, match="shape"):
        sim.step(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="integers"):
        sim.step(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="seeds"):
        sim.reset([0])
    with pytest.raises(ValueError, match="num_envs"):
        Simulator(params, 0)


def test_importing_the_core_imports_neither_gymnasium_nor_torch():
    code = (
        "import sys, envs.sim, envs.sim.core, envs.sim.reference, envs.traces; "
        "bad = [m for m in ('gymnasium', 'torch', 'stable_baselines3') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=60, deadline=None)
@given(
    guest_pages=st.sampled_from([64, 100, 128, 200, 640]),
    density=st.floats(0.0, 1.0),
    k_max=st.integers(0, 700),
    seed=st.integers(0, 2**16),
)
def test_first_k_is_the_k_lowest_gpps_in_the_state(guest_pages, density, k_max, seed):
    """``_first_k`` (64-GPP blocks, whole blocks taken but each row's last) against a
    plain scan, with sizes that are and are not multiples of 64, k of 0 and past the
    row's count, rows in any order."""
    params = standard_params(num_vms=2, guest_pages=guest_pages, refs_per_tick=8)
    sim = Simulator(params, 3)
    rng = np.random.default_rng(seed)
    N, P = sim.N, sim.P
    state = np.where(rng.random(N * P) < density, 2, 1).astype(np.int8)
    rows = rng.choice(N, size=int(rng.integers(1, N + 1)), replace=False)  # any order
    k = rng.integers(0, k_max + 1, size=rows.size)
    lowest = [
        np.flatnonzero(state[r * P : (r + 1) * P] == 2)[:kr] for r, kr in zip(rows, k, strict=True)
    ]
    want = np.concatenate([r * P + g for r, g in zip(rows, lowest, strict=True)])
    np.testing.assert_array_equal(sim._first_k(state, 2, rows, k), want)


@settings(max_examples=30, deadline=None)
@given(
    guest_pages=st.sampled_from([64, 100, 640]),
    density=st.floats(0.0, 1.0),
    k_max=st.integers(0, 700),
    seed=st.integers(0, 2**16),
)
def test_first_k_over_every_row_in_order(guest_pages, density, k_max, seed):
    """``_first_k`` of every row in ascending order (its path without a gather of the
    rows) against a plain scan."""
    params = standard_params(num_vms=2, guest_pages=guest_pages, refs_per_tick=8)
    sim = Simulator(params, 3)
    rng = np.random.default_rng(seed)
    N, P = sim.N, sim.P
    state = np.where(rng.random(N * P) < density, 2, 1).astype(np.int8)
    k = rng.integers(0, k_max + 1, size=N)
    want = np.concatenate(
        [r * P + np.flatnonzero(state[r * P : (r + 1) * P] == 2)[: k[r]] for r in range(N)]
    )
    np.testing.assert_array_equal(sim._first_k(state, 2, np.arange(N), k), want)


def _assert_steps_alike(sim: Simulator, old: Simulator, targets) -> None:
    """Step both simulators with each of ``targets``; every counter must agree."""
    for tg in targets:
        a, b = sim.step(tg), old.step(tg)
        np.testing.assert_array_equal(a.vm, b.vm)
        np.testing.assert_array_equal(a.host, b.host)


def _stepped(ticks: int, stepped: int, seed: int) -> tuple[Simulator, list]:
    """A 2-env simulator stepped ``stepped`` ticks of ``ticks`` random targets (the rest
    left for the caller)."""
    params = standard_params(num_vms=2, guest_pages=128, refs_per_tick=32)
    sim = Simulator(params, 2)
    sim.reset([1, 2])
    targets = _random_targets(params, 2, ticks, seed=seed)
    for tg in targets[:stepped]:
        sim.step(tg)
    return sim, targets[stepped:]


def test_unpickling_a_simulator_without_the_newer_tables_rebuilds_them():
    """A Simulator pickled before the flat file flags and the scalar tick existed (a
    training checkpoint) unpickles and steps as the original."""
    import pickle

    sim, rest = _stepped(6, 3, seed=3)
    state = dict(sim.__dict__)
    del state["_vfile"], state["_t_same"]
    old = Simulator.__new__(Simulator)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    _assert_steps_alike(sim, old, rest)


def test_unpickling_a_simulator_with_stale_glast_marks_the_dead_entries():
    """A Simulator pickled before glast was cleared on leaving USED (a GPP freed or
    evicted kept the tick of its last reference, which can equal a dead LRU log entry's)
    unpickles and steps as the original: the LRU windows must not see those entries."""
    import pickle

    from envs.sim.core import USED

    sim, rest = _stepped(30, 20, seed=4)
    # Free pages of the middle of each LRU order (as a workload shrink or an OOM kill
    # does): their entries stay in the logs, dead.
    for r in range(sim.N):
        e = np.arange(sim.log_head[r], sim.log_tail[r]) + r * sim.CAP
        fg = r * sim.P + sim.log_g[e]
        fg = fg[sim.glast[fg] == sim.log_t[e]]
        mid = fg[fg.size // 3 : 2 * fg.size // 3]
        sim._free_vpages(r * sim.F + sim.gvpage[mid].astype(np.int64))
    state = pickle.loads(pickle.dumps(dict(sim.__dict__)))
    del state["_glast_dead"]
    # The older state: every GPP that left USED with a log entry still holds that tick.
    stale = 0
    for r in range(sim.N):
        e = np.arange(sim.log_head[r], sim.log_tail[r]) + r * sim.CAP
        fg = r * sim.P + state["log_g"][e]
        gone = state["gstate"][fg] != USED
        state["glast"][fg[gone]] = state["log_t"][e[gone]]
        stale += int(gone.sum())
    assert stale > 0
    old = Simulator.__new__(Simulator)
    old.__setstate__(state)
    _assert_steps_alike(sim, old, rest)


# ------------------------------------------------------------------ closed loop
_FREE_COSTS = dict(
    guest_major_us=0.0, guest_minor_us=0.0, host_swapin_us=0.0, exit_us=0.0,
    guest_write_us=0.0, false_read_us=0.0, cow_us=0.0, host_minor_us=0.0,
)  # fmt: skip


def _loop_run(params, seeds, ticks, action_seed):
    """(per-tick vm counters (T, B, V, NV), per-tick cursors (T, B, V)) of a rollout."""
    sim = Simulator(params, len(seeds))
    sim.reset(seeds)
    rng = np.random.default_rng(action_seed)
    hi = np.array([v.guest_pages for v in params.vms])
    vms, cursors = [], []
    for _ in range(ticks):
        res = sim.step(rng.integers(0, hi, size=(len(seeds), params.num_vms)))
        vms.append(res.vm.copy())
        cursors.append(sim.workload.vm_ticks.copy())
    return np.array(vms), np.array(cursors), sim


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=host_params(closed_loop=True), seed=st.integers(0, 2**32),
       action_seed=st.integers(0, 2**16))  # fmt: skip
def test_closed_loop_without_stall_is_the_open_loop(params, seed, action_seed):
    """Every cost 0: no VM ever stalls, so the closed loop issues a batch every tick and
    the run is the open loop's, counter for counter and state for state."""
    costs = dataclasses.replace(params.costs, **_FREE_COSTS, dev_enabled=False,
                                sync_reclaim=False)  # fmt: skip
    loop = dataclasses.replace(params, costs=costs)
    open_ = dataclasses.replace(loop, closed_loop=False)
    a, cur, sa = _loop_run(loop, [seed, seed + 1], 30, action_seed)
    b, _, sb = _loop_run(open_, [seed, seed + 1], 30, action_seed)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cur[-1], 30)
    for e in range(2):
        sna, snb = sa.snapshot(e), sb.snapshot(e)
        np.testing.assert_array_equal(sna.pop("loop_credit"), 0.0)
        sna.pop("loop_cursor")
        assert sna.keys() == snb.keys()
        for k in snb:
            np.testing.assert_array_equal(sna[k], snb[k], err_msg=k)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=host_params(closed_loop=True), seed=st.integers(0, 2**32),
       action_seed=st.integers(0, 2**16))  # fmt: skip
def test_closed_loop_issues_a_prefix_of_the_open_loop_stream(params, seed, action_seed):
    """With the loop on, a VM's batches are the open loop's, in order, spread over more
    ticks: at each tick it issues its next nominal batch or nothing."""

    ticks, seeds = 30, [seed, seed + 1]
    _, cur, sim = _loop_run(params, seeds, ticks, action_seed)
    prev = np.concatenate([np.zeros((1,) + cur.shape[1:], np.int64), cur[:-1]])
    adv = cur - prev
    assert set(np.unique(adv).tolist()) <= {0, 1}
    assert (adv[0] == 1).all()  # the first tick always issues
    # Replay both streams from the episode start: the open loop's batch k is the batch
    # the closed loop issued at its k-th advancing tick.
    open_wl, loop_wl = sim.workload.rewound(), sim.workload.rewound()
    open_batches = [open_wl.draw().copy() for _ in range(ticks)]
    for t in range(ticks):
        d = loop_wl.draw(adv[t].astype(bool))
        for e in range(len(seeds)):
            for v in range(params.num_vms):
                if adv[t, e, v]:
                    k = cur[t, e, v] - 1
                    np.testing.assert_array_equal(d.refs[e, v], open_batches[k].refs[e, v])
                    np.testing.assert_array_equal(d.writes[e, v], open_batches[k].writes[e, v])
                    assert d.live[e, v] == open_batches[k].live[e, v]
                else:
                    assert (d.refs[e, v] == -1).all() and not d.writes[e, v].any()
                    k = cur[t, e, v] - 1
                    assert d.live[e, v] == open_batches[k].live[e, v]


def test_closed_loop_slows_a_stalled_vm():
    """A host short of frames under the v2 preset: the VMs that wait for host swap-ins
    fall behind the open loop's tick (the pace is the unstalled share of their time)."""
    from envs.physics import with_v2_physics

    base = dataclasses.replace(
        standard_params(num_vms=3, guest_pages=256, refs_per_tick=96), host_frames=330
    )
    params = dataclasses.replace(with_v2_physics(base), closed_loop=True)
    _, cur, _ = _loop_run(params, [7, 8], 80, 0)
    assert (cur[-1] < 80).all() and (cur[-1] > 0).all()
