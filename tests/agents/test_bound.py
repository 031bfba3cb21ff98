"""The hindsight bound (agents/bound.py): Belady's optimality on tiny streams, and no
policy or action sequence returning more than the bound."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.bound import belady_misses, cheapest_miss_us, env_bounds, first_touch_us
from agents.policies import POLICY_NAMES, make_policy
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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.integers(0, 5), max_size=3), min_size=1, max_size=6),
       st.lists(st.integers(0, 3), min_size=6, max_size=6))  # fmt: skip
def test_belady_with_bypass_is_optimal_on_tick_batches(ticks, caps):
    caps = caps[: len(ticks)]
    seen: set[int] = set()
    keys, first = [], []
    for u in ticks:
        a = np.array(sorted(u), dtype=np.int64)
        keys.append(a)
        first.append(np.array([k not in seen for k in a], dtype=bool))
        seen |= u
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


def test_the_bound_refuses_a_closed_loop_host():
    """Closed loop (docs/model.md §13.5): the references an episode issues depend on the
    policy's stalls, and a policy that stalls more can issue fewer and cost less over the
    episode's ticks than the whole stream's MIN, so the bound refuses such a host rather
    than answer a number that may not bound every policy."""
    from agents.bound import bound_of_draws

    env = BalloonVectorEnv(1, "default-v1", max_episode_steps=8, closed_loop=True)
    env.reset(seed=[0])
    with pytest.raises(ValueError, match="closed-loop"):
        env_bounds(env)
    with pytest.raises(ValueError, match="closed-loop"):
        bound_of_draws(env.core.params, [])
    open_env = BalloonVectorEnv(1, "default-v1", max_episode_steps=8)
    open_env.reset(seed=[0])
    assert len(env_bounds(open_env)) == 1  # the open loop keeps its bound
