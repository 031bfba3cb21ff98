"""The differential harness: step the vectorized core and the page-by-page reference
with the same targets and compare them exactly, every tick (counters, state, invariants)."""

from __future__ import annotations

import numpy as np

from envs.data import load_workload_data
from envs.sim.core import Simulator
from envs.sim.counters import HOST_FIELDS, VM_FIELDS
from envs.sim.invariants import check_invariants
from envs.sim.reference import ReferenceBatch

TICKS = 50


def random_targets(rng: np.random.Generator, params, num_envs: int) -> np.ndarray:
    """(B, V) balloon targets, a few out of range on either side (clipped by both)."""
    hi = np.array([v.guest_pages for v in params.vms]) + 4
    return rng.integers(-4, hi, size=(num_envs, params.num_vms))


def assert_core_equals_reference(tick: int, core_res, ref_res, core, ref, num_envs: int) -> None:
    """The two simulators' tick results and states are equal; else the first difference."""
    for b in range(num_envs):
        for v in range(core_res.vm.shape[1]):
            a, r = core_res.vm[b, v], ref_res.vm[b, v]
            if not np.array_equal(a, r):
                bad = {
                    n: (int(x), int(y)) for n, x, y in zip(VM_FIELDS, a, r, strict=False) if x != y
                }
                raise AssertionError(f"tick {tick} env {b} vm {v}: core != reference {bad}")
        if not np.array_equal(core_res.host[b], ref_res.host[b]):
            bad = {
                n: (int(x), int(y))
                for n, x, y in zip(HOST_FIELDS, core_res.host[b], ref_res.host[b], strict=False)
                if x != y
            }
            raise AssertionError(f"tick {tick} env {b}: host core != reference {bad}")
        cs, rs = core.snapshot(b), ref.snapshot(b)
        assert cs.keys() == rs.keys()
        for k in cs:
            if not np.array_equal(cs[k], rs[k]):
                diff = np.argwhere(np.asarray(cs[k]) != np.asarray(rs[k]))[:5]
                raise AssertionError(f"tick {tick} env {b}: state {k!r} differs at {diff.tolist()}")


def step_both(tick: int, core, ref, rng: np.random.Generator, params, num_envs: int) -> None:
    """One tick of both simulators with the same random targets; they must agree exactly
    and the core's state must satisfy every invariant."""
    tg = random_targets(rng, params, num_envs)
    cr, rr = core.step(tg), ref.step(tg)
    assert_core_equals_reference(tick, cr, rr, core, ref, num_envs)
    for b in range(num_envs):
        check_invariants(params, core.snapshot(b), cr.vm[b], cr.host[b])


def run_differential(params, seeds, action_seed: int, ticks: int = TICKS) -> None:
    """Both simulators from ``seeds`` for ``ticks`` ticks of random targets."""
    n = len(seeds)
    data = load_workload_data(params)
    core, ref = Simulator(params, n, data), ReferenceBatch(params, n, data)
    core.reset(seeds)
    ref.reset(seeds)
    rng = np.random.default_rng(action_seed)
    for t in range(1, ticks + 1):
        step_both(t, core, ref, rng, params, n)
