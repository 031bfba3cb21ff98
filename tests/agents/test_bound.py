"""The hindsight bound (agents/bound.py): Belady's optimality on tiny streams, and no
policy or action sequence returning more than the bound."""

from __future__ import annotations

import copy
import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.bound import belady_misses, cheapest_miss_us, env_bounds, first_touch_us
from agents.policies import HEURISTIC_NAMES, POLICY_NAMES, make_policy
from envs.rollout import first_episodes
from envs.sim.params import CostParams, HostParams
from envs.vector_env import BalloonVectorEnv


def _brute_force(ticks: list[set[int]], caps: list[int]) -> int:
    """Fewest non-compulsory misses over every feasible schedule (exhaustive)."""
    seen: set[int] = set()
    first = []
    for u in ticks:
        first.append(u - seen)
        seen |= u
    states = {frozenset(): 0}
    for t, u in enumerate(ticks):
        nxt: dict[frozenset, int] = {}
        for s, cost in states.items():
            c = cost + len(u - s - first[t])
            pool = sorted(s | u)
            for k in range(min(caps[t], len(pool)) + 1):
                for keep in itertools.combinations(pool, k):
                    f = frozenset(keep)
                    if c < nxt.get(f, 1 << 30):
                        nxt[f] = c
        states = nxt
    return min(states.values())


def _tick_keys(ticks: list[set[int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each tick's keys (sorted) and which of them are first touches."""
    seen: set[int] = set()
    keys, first = [], []
    for u in ticks:
        a = np.array(sorted(u), dtype=np.int64)
        keys.append(a)
        first.append(np.array([k not in seen for k in a], dtype=bool))
        seen |= u
    return keys, first


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.integers(0, 5), max_size=3), min_size=1, max_size=6),
       st.lists(st.integers(0, 3), min_size=6, max_size=6))  # fmt: skip
def test_belady_with_bypass_is_optimal_on_tick_batches(ticks, caps):
    caps = caps[: len(ticks)]
    keys, first = _tick_keys(ticks)
    got = belady_misses(keys, first, np.array(caps), 6)
    assert got == _brute_force(ticks, caps)


def test_cheapest_latencies_follow_the_cost_parameters():
    c = CostParams(guest_major_us=50.0, host_swapin_us=7.0, exit_us=1.0, guest_minor_us=0.25)
    assert cheapest_miss_us(HostParams(costs=c)) == 8.0
    assert first_touch_us(HostParams(costs=c)) == 0.25
    assert cheapest_miss_us(HostParams()) == 100.0
    # v1: the device's unloaded latency, half overlapped by the second thread, per 4 KiB
    # of the 1 MiB page; the host swap-in blocks the vCPU, so the guest fault is cheaper.
    from envs.physics import with_v1_physics

    p = with_v1_physics(HostParams())
    assert cheapest_miss_us(p) == p.costs.dev_read_lat_us * 0.5 * 256
    assert first_touch_us(p) == p.costs.guest_minor_us * 256
    with_apf = dataclasses.replace(p, async_pf=True, vms=tuple(
        dataclasses.replace(vm, runnable_threads=3) for vm in p.vms))  # fmt: skip
    assert cheapest_miss_us(with_apf) == 0.0  # o = 1, a = 1: a host swap-in costs nothing


def test_capped_bound_is_below_every_placement_of_the_misses():
    """With the stall cap, the bound is at most the capped cost of any placement of the
    same misses over the non-compulsory references (here: all, and greedy in order)."""
    from agents.bound import capped_stall_us

    p = dataclasses.replace(HostParams(), costs=CostParams(stall_cap=True, guest_major_us=1e5))
    rng = np.random.default_rng(0)
    first = [[rng.random(int(rng.integers(0, 40))) < 0.2 for _ in p.vms] for _ in range(6)]
    room = sum(int(f.size - f.sum()) for row in first for f in row)
    f_us, m_us = first_touch_us(p), cheapest_miss_us(p)
    for misses in (0, room // 3, room):
        lb = capped_stall_us(p, first, misses)
        left, actual = misses, 0.0
        for row in first:  # one placement: fill the cells in order
            for f in row:
                n = min(left, int(f.size - f.sum()))
                left -= n
                actual += min(p.tick_us, f_us * int(f.sum()) + m_us * n)
        assert lb <= actual + 1e-6


SCENARIOS = ("default-v0", "thrash-v0", "file-heavy-v0", "boot-storm-v0", "idle-tax-v0",
             "trace-lirs-v0", "default-v1", "thrash-v1", "file-heavy-v1", "boot-storm-v1",
             "trace-lirs-v1")  # fmt: skip
POLICIES = tuple(p for p in POLICY_NAMES if p != "oracle")  # the oracle: test_oracle.py


class _Actions:
    """A fixed random action sequence (absolute mode), one draw per step."""

    def __init__(self, seed: int, num_envs: int, num_vms: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.shape = (num_envs, num_vms)
        self.extreme = seed % 2 == 0  # half the sequences jump between -1 and 1

    def reset(self, seed=None) -> None:
        pass

    def act(self, obs, info):
        if self.extreme:
            return self.rng.choice([-1.0, 1.0], size=self.shape).astype(np.float32)
        return self.rng.uniform(-1, 1, size=self.shape).astype(np.float32)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=st.sampled_from(SCENARIOS),
    seed=st.integers(0, 10_000),
    steps=st.integers(4, 24),
    who=st.one_of(st.sampled_from(POLICIES), st.integers(0, 10_000)),
    major=st.sampled_from([100.0, 20.0, 300.0]),
    swapin=st.sampled_from([100.0, 5.0]),
)
def test_no_policy_or_action_sequence_beats_the_bound(scenario, seed, steps, who, major, swapin):
    env = BalloonVectorEnv(2, scenario, max_episode_steps=steps, guest_major_us=major,
                           host_swapin_us=swapin)  # fmt: skip
    seeds = [seed, seed + 1]
    env.reset(seed=seeds)
    bounds = env_bounds(env)
    pol = (make_policy(who, env) if isinstance(who, str)
           else _Actions(who, 2, env.config.params.num_vms))  # fmt: skip
    for ep, b in zip(first_episodes(env, pol, seeds), bounds, strict=True):
        assert ep["return"] <= b.bound_return + 1e-12, (who, ep["return"], b)
        if not ep["host_oom"] and ep["totals"]["guest_oom_kills"].sum() == 0:
            assert ep["stall_us"].sum() >= b.bound_stall_us - 1e-6, (who, b)


@pytest.mark.parametrize("scenario", ["thrash-v0", "file-heavy-v0"])
def test_the_bound_charges_misses_when_the_guests_cannot_hold_their_footprints(scenario):
    env = BalloonVectorEnv(1, scenario, max_episode_steps=128)
    env.reset(seed=[0])
    (b,) = env_bounds(env)
    assert b.compulsory > 0 and b.steps == 128
    assert b.misses == max(b.misses_per_vm, b.misses_merged)
    if scenario == "file-heavy-v0":  # footprints exceed guest memory: misses are forced
        assert b.misses_per_vm > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.integers(0, 5), max_size=3), min_size=1, max_size=6),
       st.integers(0, 3))  # fmt: skip
def test_each_prefix_of_one_belady_run_is_optimal(ticks, cap):
    """The closed-loop bound reads the fewest misses of every prefix of a VM's batches
    from one MIN run (belady_misses_per_tick): each cumulative sum is the exhaustive
    optimum of that prefix."""
    from agents.bound import belady_misses_per_tick

    keys, first = _tick_keys(ticks)
    caps = np.full(len(ticks), cap)
    got = np.cumsum(belady_misses_per_tick(keys, first, caps, 6))
    for p in range(1, len(ticks) + 1):
        assert got[p - 1] == _brute_force(ticks[:p], [cap] * p)


V2_SCENARIOS = ("default-v2", "hungry-v2", "cache-fill-v2")


def _progress_lower_bound(p, keys, first, n_keys):
    """min over P of max(f_i(P), T − P − 1) per VM, by MIN on each prefix separately."""
    T, out = len(keys), []
    for v, vm in enumerate(p.vms):
        cap = np.full(T, vm.guest_pages - vm.kernel_reserved_pages)
        best = np.inf
        for P in range(1, T + 1):
            kv, fv = [row[v] for row in keys[:P]], [row[v] for row in first[:P]]
            us = (sum(int(f.sum()) for f in fv) * first_touch_us(p, v)
                  + belady_misses(kv, fv, cap[:P], n_keys) * cheapest_miss_us(p, v))  # fmt: skip
            best = min(best, max(us / (vm.vcpus * p.tick_us), T - P - 1))
        out.append(best)
    return out


def test_the_closed_loop_bound_is_the_least_progress_cost_of_each_vm():
    """bound_of_draws on a closed-loop host (module docstring, *Closed loop*): per VM the
    least ``max(f_i(P), T − P − 1)``, recomputed here prefix by prefix."""
    from agents.bound import _stream, bound_of_draws

    env = BalloonVectorEnv(1, "hungry-v2", max_episode_steps=24)
    env.reset(seed=[2])
    p = env.config.params
    assert p.closed_loop
    wl = copy.deepcopy(env.core.sim.workload)
    draws = []
    for _ in range(24):
        d = wl.draw()
        draws.append((d.live[0].copy(), d.refs[0].copy(), d.writes[0].copy()))
    b = bound_of_draws(p, draws)
    s = _stream(p, draws)
    want = _progress_lower_bound(p, s.keys, s.first, s.n_keys)
    assert b.bound_return == pytest.approx(-min(np.mean(want), p.costs.w_guest_oom,
                                                 p.costs.w_host_oom), rel=1e-12)  # fmt: skip
    assert len(b.batches) == p.num_vms and all(1 <= k <= 24 for k in b.batches)
    assert b.misses_merged == 0  # no host-merged relaxation in the closed loop
    assert (b,) == tuple(env_bounds(env))  # env_bounds draws the same batches


@pytest.mark.parametrize("scenario", V2_SCENARIOS)
def test_no_policy_or_action_sequence_beats_the_bound_on_a_closed_loop_host(scenario):
    """On the -v2 scenarios (closed loop): every heuristic, the oracle and random action
    sequences return at most the bound, and the bound is below 0 where no-balloon
    stalls (it charges the first touches at least)."""
    seeds = [0, 1]
    steps = 12
    env = BalloonVectorEnv(2, scenario, max_episode_steps=steps)
    assert env.config.params.closed_loop
    env.reset(seed=seeds)
    bounds = env_bounds(env)
    assert all(b.steps == steps and b.compulsory > 0 for b in bounds)
    who: list = [*HEURISTIC_NAMES, "oracle", 7, 8]
    for w in who:
        env = BalloonVectorEnv(2, scenario, max_episode_steps=steps)
        pol = (make_policy(w, env) if isinstance(w, str)
               else _Actions(w, 2, env.config.params.num_vms))  # fmt: skip
        for ep, b in zip(first_episodes(env, pol, seeds), bounds, strict=True):
            assert ep["return"] <= b.bound_return + 1e-12, (w, ep["return"], b)
            if w == "no-balloon":
                assert ep["return"] < 0.0
                assert b.bound_return < 0.0
