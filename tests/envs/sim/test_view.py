"""The privileged view (envs/sim/view.py): read-only, free of side effects, and its
references are the ones the simulator goes on to issue."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.sim.core import UNALLOCATED, Simulator
from envs.sim.counters import HOST_INDEX, VM_INDEX
from envs.sim.params import standard_params
from tests.envs.sim.strategies import host_params


def _sim(params, seeds, ticks, seed=0):
    sim = Simulator(params, len(seeds))
    sim.reset(seeds)
    rng = np.random.default_rng(seed)
    hi = max(v.guest_pages for v in params.vms)
    res = None
    for _ in range(ticks):
        res = sim.step(rng.integers(0, hi, size=(len(seeds), params.num_vms)))
    return sim, res


def _arrays(view):
    return {f.name: getattr(view, f.name) for f in dataclasses.fields(view)
            if isinstance(getattr(view, f.name), np.ndarray)}  # fmt: skip


def test_every_array_of_the_view_is_read_only():
    sim, _ = _sim(standard_params(num_vms=2, guest_pages=512, refs_per_tick=64), [0, 1], 3)
    view = sim.privileged_view()
    arrays = _arrays(view)
    assert {"vstate", "is_file", "tick", "episode_key", "guest_used_pages"} <= set(arrays)
    for name, a in arrays.items():
        with pytest.raises(ValueError, match="read-only"):
            a[...] = a  # noqa: PLW0128 - the write itself is the test
        assert not a.flags.writeable, name
    for refs in (view.future_references(2), view.episode_references(2)):
        with pytest.raises(ValueError, match="read-only"):
            refs[0, 0, 0, 0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.tick = np.zeros(2)  # type: ignore[misc]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=host_params(), seed=st.integers(0, 2**31), ticks=st.integers(0, 6))
def test_the_view_reads_without_changing_and_foresees_the_stream(params, seed, ticks):
    sims = [_sim(params, [seed, seed + 1], ticks)[0] for _ in range(2)]
    view = sims[0].privileged_view()
    fut = view.future_references(4)
    past = view.episode_references(ticks + 4)
    np.testing.assert_array_equal(past[ticks:], fut)  # a rewound copy replays the episode
    rng = np.random.default_rng(1)
    hi = max(v.guest_pages for v in params.vms)
    for _ in range(4):  # the twin never viewed: the same steps, the same state
        tg = rng.integers(0, hi, size=(2, params.num_vms))
        a, b = sims[0].step(tg), sims[1].step(tg)
        np.testing.assert_array_equal(a.vm, b.vm)
        np.testing.assert_array_equal(a.host, b.host)
    for e in range(2):
        sa, sb = sims[0].snapshot(e), sims[1].snapshot(e)
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    # What the view foresaw is what the simulator then issued.
    np.testing.assert_array_equal(sims[0].privileged_view().episode_references(ticks + 4), past)


def test_the_views_gauges_are_the_last_steps_and_live():
    params = standard_params(num_vms=2, guest_pages=512, refs_per_tick=64)
    sim, res = _sim(params, [3, 4], 5)
    view = sim.privileged_view()
    for name in ("guest_used_pages", "guest_cache_pages", "guest_swap_used", "balloon_pages"):
        np.testing.assert_array_equal(getattr(view, name), res.vm[:, :, VM_INDEX[name]])
    np.testing.assert_array_equal(view.sharing_saved_frames,
                                  res.host[:, HOST_INDEX["sharing_saved_frames"]])  # fmt: skip
    assert view.tick.tolist() == [5, 5]
    assert view.vstate.shape == (2, 2, params.max_footprint_pages)
    committed = np.count_nonzero(view.vstate != UNALLOCATED, axis=2)
    np.testing.assert_array_equal(committed >= res.vm[:, :, VM_INDEX["guest_used_pages"]], True)
    sim.step(np.zeros((2, 2), dtype=np.int64))
    assert view.tick.tolist() == [6, 6]  # a live view of the state


def test_the_episode_key_names_the_stream():
    params = standard_params(num_vms=2, guest_pages=512, refs_per_tick=64)
    sim = Simulator(params, 2)
    sim.reset([5, 5])
    view = sim.privileged_view()
    k = view.episode_key.copy()
    assert k[0] == k[1]
    sim.reset([5, 6])
    assert view.episode_key[0] == k[0] and view.episode_key[1] != k[1]


def test_on_a_closed_loop_host_the_view_reads_each_vm_from_its_cursor():
    """Closed loop (SEMANTICS.md §10): ``progress`` is each VM's cursor (the batches it
    issued), and ``future_references`` gives each VM's batches from it, the same batches
    ``episode_references`` numbers from the start, also for a VM behind the tick."""
    from envs.env_batch import EnvBatch, make_config

    cfg = make_config("hungry-v2")
    assert cfg.params.closed_loop
    core = EnvBatch(cfg, 2)
    core.reset([1, 2])
    rng = np.random.default_rng(0)
    for _ in range(30):
        core.step(rng.uniform(-1, 1, size=(2, cfg.num_vms)))
    view = core.sim.privileged_view()
    n = view.progress()
    assert n.shape == (2, cfg.num_vms) and (n < view.tick[:, None]).any()
    for e in range(2):
        np.testing.assert_array_equal(n[e], core.sim.snapshot(e)["loop_cursor"])
    fut = view.future_references(5)
    past = view.episode_references(int(n.max()) + 5)
    for e in range(2):
        for v in range(cfg.num_vms):
            k = int(n[e, v])
            np.testing.assert_array_equal(fut[:, e, v], past[k : k + 5, e, v])
    n[...] = -1  # a copy: the view is unchanged
    assert (view.progress() >= 0).all()
