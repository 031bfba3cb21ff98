"""The hindsight oracle (agents/oracle.py): stack distances, the allocation DP, and the
two checks of the bracket: the oracle returns at least every heuristic on every seed,
and the bound at least the oracle, on every registered scenario."""

from __future__ import annotations

import dataclasses
import itertools
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.bound import episode_bounds
from agents.oracle import allocate, miss_curve, stack_distances
from agents.policies import HEURISTIC_NAMES, make_policy
from envs.rollout import first_episodes
from envs.scenarios import scenario_ids
from envs.vector_env import BalloonVectorEnv
from experiments.evaluate import run_policy


def _naive_distances(ticks):
    out, last = [], {}
    for t, u in enumerate(ticks):
        d = []
        for p in u:
            if p not in last:
                d.append(-1)
            else:
                s = last[p]
                d.append(len({q for q, lt in last.items() if s <= lt < t}))
        for p in u:
            last[p] = t
        out.append(np.array(d, dtype=np.int64))
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sets(st.integers(0, 9), max_size=5), max_size=12))
def test_stack_distances_match_the_definition(ticks):
    ticks = [np.array(sorted(u), dtype=np.int64) for u in ticks]
    got = stack_distances(ticks, 10)
    want = _naive_distances(ticks)
    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_miss_curve_counts_references_beyond_each_size():
    d = [np.array([-1, -1]), np.array([1, 2]), np.array([3, -1])]
    assert miss_curve(d, np.array([0, 1, 2, 3])).tolist() == [6, 5, 4, 3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 20), min_size=4, max_size=4), min_size=2, max_size=3),
       st.integers(0, 40))  # fmt: skip
def test_allocation_dp_is_exact_on_non_convex_curves(raw, budget):
    V = len(raw)
    sizes = np.tile(np.array([0, 4, 8, 12]), (V, 1))
    curves = np.array([np.sort(r)[::-1] for r in raw])  # non-increasing, any shape
    got = allocate(curves, sizes, float(budget))
    best = min(
        (sum(curves[v, g[v]] for v in range(V)), g)
        for g in itertools.product(range(4), repeat=V)
        if sum(sizes[v, g[v]] for v in range(V)) <= budget
    )[0] if budget >= 0 else None  # fmt: skip
    idx = [int(np.flatnonzero(sizes[v] == got[v])[0]) for v in range(V)]
    assert got.sum() <= budget
    assert sum(curves[v, idx[v]] for v in range(V)) == best


def test_the_dp_beats_greedy_on_a_cliff():
    # VM 0 gains nothing until 8 pages (a cliff); VM 1 gains a little per page. Greedy
    # marginal allocation feeds VM 1; the DP gives VM 0 its cliff.
    sizes = np.array([[0, 4, 8], [0, 4, 8]])
    curves = np.array([[100, 100, 0], [60, 40, 30]])
    assert allocate(curves, sizes, 8.0).tolist() == [8.0, 0.0]


def _check(scenario: str, steps: int, seeds=(0, 1)) -> None:
    seeds = list(seeds)
    env = BalloonVectorEnv(len(seeds), scenario, max_episode_steps=steps)
    oracle = make_policy("oracle", env)
    if steps is not None:
        oracle.switch_segments = 3  # short episodes: fewer boundaries, a quicker check
    ret = np.array([e["return"] for e in first_episodes(env, oracle, seeds)])
    for name in HEURISTIC_NAMES:
        h = np.array([r["return"] for r in run_policy(name, scenario, seeds,
                                                      max_episode_steps=steps)])  # fmt: skip
        assert np.all(ret >= h), (scenario, name, ret, h)
    bounds = episode_bounds(scenario, seeds, max_episode_steps=steps)
    bound = np.array([b.bound_return for b in bounds])
    assert np.all(bound >= ret), (scenario, bound, ret)
    # The replayed plan returns what the search predicted (the copies are exact).
    np.testing.assert_allclose(ret, oracle.plan_returns, rtol=0, atol=1e-9)
    # The cost: an episode per candidate, the shadows' walk, and from each boundary one
    # continuation per candidate: at most C · segments + 1 copy steps per env step.
    c, k = len(oracle.candidates), oracle.switch_segments
    assert oracle.copy_steps / oracle.real_steps <= c * k + 1 + 1e-9


@pytest.mark.parametrize("scenario", scenario_ids())
def test_oracle_beats_every_heuristic_and_the_bound_beats_the_oracle(scenario):
    _check(scenario, 32)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("RECLAIM_SLOW") != "1", reason="set RECLAIM_SLOW=1")
@pytest.mark.parametrize("scenario", scenario_ids("test"))
def test_the_bracket_holds_on_full_test_episodes(scenario):
    _check(scenario, None)  # type: ignore[arg-type]


def _episode_return(env, policy, seed: int) -> float:
    """One episode of ``policy`` on the single ``env`` from ``seed``: its return."""
    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, info = env.step(policy.act(obs, info))
        total += r
        done = term or trunc
    return total


def test_oracle_replays_its_choice_in_a_single_env():
    from envs.balloon_env import BalloonEnv

    env = BalloonEnv("default-v0", max_episode_steps=24)
    oracle = make_policy("oracle", env)
    total = _episode_return(env, oracle, seed=3)
    first = oracle.chosen[0].split(">")[0]
    assert first in oracle.candidates
    assert total == pytest.approx(oracle.plan_returns[0], abs=1e-9)
    best = max(float(v[0]) for v in oracle.candidate_returns.values())
    assert total >= best - 1e-12
    if ">" not in oracle.chosen[0]:  # no switch: the best whole-episode candidate
        assert total == pytest.approx(oracle.candidate_returns[first][0], abs=1e-12)


def test_switching_never_loses_to_keeping_the_best_candidate():
    """Hindsight switching (oracle docstring, 3.) only ever replaces a plan's remainder by
    a strictly better one: with switching the return is at least without, per seed."""
    from agents.oracle import OraclePolicy
    from agents.policies import REGISTRY, plan_candidates

    seeds = [0, 1]
    cands = {**plan_candidates(), **{n: REGISTRY[n] for n in HEURISTIC_NAMES}}
    out = {}
    for k in (1, 4):
        env = BalloonVectorEnv(len(seeds), "hungry-test-v1", max_episode_steps=64)
        oracle = OraclePolicy(env, cands, switch_segments=k)
        out[k] = np.array([e["return"] for e in first_episodes(env, oracle, seeds)])
        np.testing.assert_allclose(out[k], oracle.plan_returns, rtol=0, atol=1e-9)
    assert np.all(out[4] >= out[1] - 1e-9), out


def test_switch_segments_is_validated():
    from agents.oracle import OraclePolicy

    env = BalloonVectorEnv(1, "default-v1", max_episode_steps=8)
    with pytest.raises(ValueError, match="switch_segments"):
        OraclePolicy(env, switch_segments=0)


def test_the_oracle_stays_a_feasible_policy_on_a_closed_loop_host():
    """Closed loop on, v2 physics (docs/model.md §13.5): the oracle plays its candidates on
    exact copies of the env (each VM's credit and stream cursor included), so what it
    plays returns what its search predicted, and no candidate does better; its
    hindsight-allocation candidate reads the stream by progress."""
    from envs.balloon_env import BalloonEnv
    from envs.physics import with_v2_physics
    from envs.scenarios import get_scenario

    params = with_v2_physics(get_scenario("default-v0").params)
    assert params.closed_loop
    over = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    env = BalloonEnv("default-v0", max_episode_steps=24, **over)
    oracle = make_policy("oracle", env)
    total = _episode_return(env, oracle, seed=5)
    sim = env.unwrapped.core.sim
    assert (sim.workload.vm_ticks[0] < sim.tick[0]).any()  # the loop slowed a VM
    assert total == pytest.approx(oracle.plan_returns[0], abs=1e-9)
    assert total >= max(float(v[0]) for v in oracle.candidate_returns.values()) - 1e-12


def _pages(refs, b, v):
    r = refs[b, v]
    return np.unique(r[r >= 0])


def test_the_allocation_plan_reads_each_vms_progress_on_a_closed_loop_host():
    """Closed loop (hungry-v2): at each decision the plan's windows of a VM are its own
    batches, the ``horizon`` from its cursor and the ``window`` before it, also for a VM
    that the loop has put behind the tick (and behind the other VMs)."""
    from agents.oracle import HindsightAllocationPolicy

    W, h, steps = 4, 8, 40
    env = BalloonVectorEnv(2, "hungry-v2", max_episode_steps=steps)
    assert env.config.params.closed_loop
    obs, info = env.reset(seed=[3, 4])
    pol = HindsightAllocationPolicy(env, W, 1.0, h)
    pol.reset(3)
    sim = env.core.sim
    behind = 0
    for t in range(steps - 1):
        obs, _r, _term, _trunc, info = env.step(pol.act(obs, info))
        if t % W:
            continue
        # The decision at tick t read each VM's batches [n − W, n + h), n its cursor then.
        view = sim.privileged_view()
        refs = view.episode_references(int(view.progress().max()) + h)
        for b in range(2):
            for v in range(env.config.params.num_vms):
                at = int(pol._seen_at[b, v])
                seen = pol._seen[b][v]
                cur = at + len(pol._past[b][v])  # the cursor at the decision
                assert cur <= sim.workload.vm_ticks[b, v] <= cur + 1
                assert at == max(cur - W, 0) and len(seen) == cur - at + h
                for k, pages in enumerate(seen):
                    np.testing.assert_array_equal(pages, _pages(refs[at + k], b, v))
                behind += cur < t
    assert behind > 0, "some VM must fall behind the tick for the test to mean anything"
