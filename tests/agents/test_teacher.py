"""The oracle as a teacher (agents/teacher.py): its curves are the plan's, its labels are
the plan's targets along the plan's (and the oracle's) trajectory, valid on any state,
free of side effects, and cached per episode."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agents.teacher as teacher_mod
from agents.oracle import (
    AllocationTable,
    HindsightAllocationPolicy,
    OraclePolicy,
    guest_size_grid,
    miss_curve,
    stack_distances,
)
from agents.policies import make_policy
from agents.teacher import OracleTeacher, window_curves
from envs.balloon_env import BalloonEnv
from envs.vector_env import BalloonVectorEnv


def _grid(env):
    p = env.config.params
    M = np.array([v.guest_pages for v in p.vms])
    K = np.array([v.kernel_pages for v in p.vms])
    maxb = np.array([v.max_balloon_pages for v in p.vms])
    return guest_size_grid(M, K, maxb)[0]


@pytest.mark.parametrize("chunk", [256, 16])
@pytest.mark.parametrize(("window", "horizon"), [(8, 8), (8, 32), (32, 64), (3, 7)])
def test_window_curves_are_the_plans_stack_distance_curves(window, horizon, chunk, monkeypatch):
    monkeypatch.setattr(teacher_mod, "_CHUNK_TICKS", chunk)  # also in several passes
    env = BalloonVectorEnv(2, "default-v1", max_episode_steps=40)
    env.reset(seed=4)
    for _ in range(3):
        env.step(env.action_space.sample())
    view = env.core.sim.privileged_view()
    refs = view.episode_references(90)
    sizes, F = _grid(env), view.footprint_pages
    curves, pages = window_curves(refs, sizes, window, horizon, F)
    n, B, V, _ = refs.shape
    K = (n - horizon) // window + 1
    assert curves.shape == (B, K, V, sizes.shape[1])
    for b, v in itertools.product(range(B), range(V)):
        ticks = [np.unique(r[r >= 0]) for r in refs[:, b, v]]
        for k in range(K):
            a = k * window
            past, fut = ticks[max(a - window, 0) : a], ticks[a : a + horizon]
            want = miss_curve(stack_distances(past + fut, F)[len(past) :], sizes[v])
            np.testing.assert_array_equal(curves[b, k, v], want)
            np.testing.assert_array_equal(
                np.flatnonzero(pages[k, b, v]), np.unique(np.concatenate(fut))
            )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 20), min_size=4, max_size=4), min_size=1, max_size=3),
       st.lists(st.integers(-5, 45), min_size=1, max_size=8))  # fmt: skip
def test_one_allocation_table_answers_every_budget_exactly(raw, budgets):
    V = len(raw)
    sizes = np.tile(np.array([0, 4, 8, 12]), (V, 1))
    curves = np.array(raw)  # any shape, not even monotone
    table = AllocationTable(curves, sizes)
    for budget in budgets:
        got = table.sizes_for(float(budget))
        if budget < 0:
            assert got.tolist() == sizes[:, 0].tolist()
            continue
        best = min(sum(curves[v, g[v]] for v in range(V))
                   for g in itertools.product(range(4), repeat=V)
                   if sum(sizes[v, g[v]] for v in range(V)) <= budget)  # fmt: skip
        idx = [int(np.flatnonzero(sizes[v] == got[v])[0]) for v in range(V)]
        assert got.sum() <= budget
        assert sum(curves[v, idx[v]] for v in range(V)) == best


def _follow(env, policy, teacher, seed, steps, window):
    """Drive ``env`` with ``policy``; at each decision tick of the plan (every ``window``
    steps of an episode) the applied target (``info balloon_target``) must be the label
    of the state it was decided in. Returns the number of decision ticks checked."""
    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    single = not hasattr(env, "num_envs")
    checked = 0
    tick = np.zeros(1 if single else env.num_envs, dtype=np.int64)
    for _ in range(steps):
        label = teacher.label(env)
        np.testing.assert_array_equal(tick, env.unwrapped.core.sim.privileged_view().tick)
        obs, _r, term, trunc, info = env.step(policy.act(obs, info))
        applied = np.atleast_2d(info["vm"]["balloon_target"])
        due = tick % window == 0
        # Rows that restarted in this step (NEXT_STEP autoreset) report the reset's info.
        stepped = env.unwrapped.core.sim.privileged_view().tick == tick + 1
        rows = due & stepped
        np.testing.assert_array_equal(applied[rows], label[rows])
        checked += int(rows.sum())
        tick = env.unwrapped.core.sim.privileged_view().tick.copy()
    return checked


@pytest.mark.parametrize(("window", "horizon"), [(32, 64), (8, 32)])
def test_labels_are_the_plans_targets_along_its_trajectory_across_autoresets(window, horizon):
    env = BalloonVectorEnv(3, "default-v1", max_episode_steps=40)
    plan = HindsightAllocationPolicy(env, window, 1.0, horizon)
    teacher = OracleTeacher(window, horizon)
    checked = _follow(env, plan, teacher, seed=7, steps=100, window=window)
    assert checked >= 3 * (2 * -(-40 // window))  # two whole episodes per env at least
    assert teacher.rebuilds >= 2  # the autoreset's new seeds invalidated the cache


def test_labels_are_the_oracles_actions_where_it_replays_the_plan():
    env = BalloonVectorEnv(2, "hungry-v1", max_episode_steps=24)
    w, h = 8, 32
    oracle = OraclePolicy(env, {"plan": lambda e: HindsightAllocationPolicy(e, w, 1.0, h)},
                          switch_segments=1)  # fmt: skip
    checked = _follow(env, oracle, OracleTeacher(w, h), seed=2, steps=24, window=w)
    assert oracle.chosen == ["plan", "plan"]
    assert checked == 2 * 3


@pytest.mark.parametrize("make", ["single", "gym"])
def test_labels_of_a_single_env_and_of_gym_make(make):
    env = (BalloonEnv("default-v1", max_episode_steps=40) if make == "single"
           else gym.make("reclaim/Balloon-v1", max_episode_steps=40))  # fmt: skip
    base = env.unwrapped
    plan = HindsightAllocationPolicy(base, 8, 1.0, 32)
    teacher = OracleTeacher(8, 32)
    env.reset(seed=1)
    assert teacher.label(env).shape == (1, base.config.params.num_vms)
    assert _follow(env, plan, teacher, seed=1, steps=40, window=8) == 5


@pytest.mark.parametrize("scenario", ["default-v1", "swapless-v1", "hungry-v1", "default-v0"])
@pytest.mark.parametrize("driver", ["random", "no-balloon"])
def test_labels_on_another_policys_states_are_valid(scenario, driver):
    env = BalloonVectorEnv(2, scenario, max_episode_steps=30)
    pol = make_policy(driver, env)
    teacher = OracleTeacher()
    maxb = np.array([v.max_balloon_pages for v in env.config.params.vms])
    obs, info = env.reset(seed=11)
    pol.reset(11)
    for _ in range(45):  # past an autoreset
        label = teacher.label(env)
        assert label.shape == (2, env.config.params.num_vms)
        assert label.dtype == np.int64
        assert np.all(label >= 0) and np.all(label <= maxb)
        obs, _r, _te, _tr, info = env.step(pol.act(obs, info))


@pytest.mark.parametrize(
    "scenario", ["boot-wave-v1", "swapless-test-v1", "default-v1", "clones-v0"]
)
@pytest.mark.parametrize("driver", ["random", "no-balloon"])
def test_labels_are_the_plans_decisions_on_another_policys_states(scenario, driver):
    """Closed loop: the plan run as a shadow (it sees every observation of another
    policy's trajectory, its actions are not played) decides, at each of its decision
    ticks, from states it never reached itself; the label of that state is its target."""
    env = BalloonVectorEnv(2, scenario, max_episode_steps=64)
    pol = make_policy(driver, env)
    shadow = HindsightAllocationPolicy(env, 8, 1.0, 32)
    teacher = OracleTeacher(8, 32)
    obs, info = env.reset(seed=21)
    pol.reset(21)
    shadow.reset(21)
    for t in range(64):
        label = teacher.label(env)
        target = env.core.targets(shadow.act(obs, info))  # the action back to pages
        if t % 8 == 0:
            np.testing.assert_array_equal(target, label)
        obs, _r, _te, _tr, info = env.step(pol.act(obs, info))


def _state(env):
    sim = env.core.sim
    return [sim.snapshot(b) for b in range(env.num_envs)], sim.workload.ticks.copy()


def test_labelling_does_not_change_the_env():
    envs = [BalloonVectorEnv(2, "default-v1", max_episode_steps=20) for _ in range(2)]
    teacher = OracleTeacher(8, 32)
    outs = [e.reset(seed=3) for e in envs]
    rng = np.random.default_rng(0)
    for _ in range(45):
        teacher.label(envs[0])  # only the first twin is labelled
        a = rng.uniform(-1, 1, size=envs[0].action_space.shape).astype(np.float32)
        outs = [e.step(a) for e in envs]
        (o0, r0, te0, tr0, i0), (o1, r1, te1, tr1, i1) = outs
        np.testing.assert_array_equal(o0, o1)
        np.testing.assert_array_equal(r0, r1)
        np.testing.assert_array_equal(te0 | tr0, te1 | tr1)
        for k in i0["vm"]:
            np.testing.assert_array_equal(i0["vm"][k], i1["vm"][k])
    (s0, t0), (s1, t1) = _state(envs[0]), _state(envs[1])
    np.testing.assert_array_equal(t0, t1)
    for a, b in zip(s0, s1, strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_the_cache_lives_per_episode_and_a_new_seed_invalidates_it():
    env = BalloonVectorEnv(2, "default-v1", max_episode_steps=32)
    teacher = OracleTeacher(8, 32)
    env.reset(seed=0)
    first = teacher.label(env)
    for _ in range(9):
        env.step(env.action_space.sample())
        teacher.label(env)
    assert teacher.rebuilds == 1
    env.reset(seed=0)  # the same streams: the cache stays valid
    np.testing.assert_array_equal(teacher.label(env), first)
    assert teacher.rebuilds == 1
    env.reset(seed=5)
    got = teacher.label(env)
    assert teacher.rebuilds == 2
    np.testing.assert_array_equal(got, OracleTeacher(8, 32).label(env))  # a fresh teacher
    # One env restarts (a reset mask): only its rows change, and they are right.
    for _ in range(12):
        env.step(env.action_space.sample())
    env.reset(seed=[None, 9], options={"reset_mask": np.array([False, True])})
    np.testing.assert_array_equal(teacher.label(env), OracleTeacher(8, 32).label(env))
    assert teacher.rebuilds == 3


def test_a_teacher_attached_mid_episode_labels_as_one_attached_at_the_start():
    env = BalloonVectorEnv(2, "default-v1", max_episode_steps=40)
    early = OracleTeacher(8, 32)
    env.reset(seed=6)
    early.label(env)
    for _ in range(13):
        env.step(env.action_space.sample())
    np.testing.assert_array_equal(OracleTeacher(8, 32).label(env), early.label(env))


def test_the_teacher_refuses_what_is_not_a_reclaimgym_env():
    with pytest.raises(ValueError, match="ReclaimGym env"):
        OracleTeacher().label(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="horizon"):
        OracleTeacher(16, 8)


def test_a_state_past_the_cached_windows_grows_the_cache():
    env = BalloonVectorEnv(1, "default-v1", max_episode_steps=64)
    short, full = OracleTeacher(8, 32), OracleTeacher(8, 32)
    env.reset(seed=8)
    limit = env.core.limit
    for _ in range(40):
        env.core.limit = np.array([8])  # the short teacher is told of 8-step episodes
        got = short.label(env)
        env.core.limit = limit
        np.testing.assert_array_equal(got, full.label(env))
        env.step(env.action_space.sample())
    assert short.rebuilds <= 3  # 2 windows, then 5, then 11: grown geometrically


def test_on_a_closed_loop_host_labels_are_the_plans_targets_along_its_trajectory():
    """Closed loop (hungry-v2, docs/model.md §13.5): the VMs fall behind the tick, each at
    its own pace; at each decision the plan reads each VM's batches from its cursor, and
    the label of that state is the plan's target."""
    env = BalloonVectorEnv(2, "hungry-v2", max_episode_steps=40)
    assert env.config.params.closed_loop
    plan = HindsightAllocationPolicy(env, 8, 1.0, 32)
    teacher = OracleTeacher(8, 32)
    assert _follow(env, plan, teacher, seed=3, steps=40, window=8) == 2 * 5
    progress = env.core.sim.workload.vm_ticks
    assert (progress < env.core.sim.tick[:, None]).any()  # the loop slowed some VM
    assert len(set(progress[0].tolist())) > 1  # the VMs of an env at different places


def test_on_a_closed_loop_host_a_vms_window_starts_at_its_cursor():
    """The label's window of a VM behind the tick is its batches from its cursor ``n``
    (look-ahead ``[n, n + h)``, history ``[n − W, n)``), the plan's curves of them."""
    W, h = 8, 32
    env = BalloonVectorEnv(2, "cache-fill-v2", max_episode_steps=64)
    obs, info = env.reset(seed=[5, 6])
    pol = make_policy("no-balloon", env)
    pol.reset(5)
    teacher = OracleTeacher(W, h)
    v0 = env.core.sim.privileged_view()
    sizes = guest_size_grid(v0.guest_pages, v0.kernel_pages, v0.max_balloon_pages)[0]
    behind = 0
    for t in range(30):
        obs, _r, _te, _tr, info = env.step(pol.act(obs, info))
        if t % 5:
            continue
        teacher.label(env)
        view = env.core.sim.privileged_view()
        n = view.progress()
        refs = view.episode_references(int(n.max()) + h)
        F = view.footprint_pages
        cache = teacher._progress[env.core.sim]
        for b, v in itertools.product(range(2), range(n.shape[1])):
            k = int(n[b, v])
            ticks = [np.unique(r[r >= 0]) for r in refs[:, b, v]]
            past, fut = ticks[max(k - W, 0) : k], ticks[k : k + h]
            curve = cache.curves[b, k, v]
            look = np.unpackbits(cache.pages[k, b, v], count=F).astype(bool)
            want = miss_curve(stack_distances(past + fut, F)[len(past) :], sizes[v])
            np.testing.assert_array_equal(curve, want)
            np.testing.assert_array_equal(np.flatnonzero(look), np.unique(np.concatenate(fut)))
            behind += k < int(view.tick[b])
    assert behind > 0, "some VM must fall behind the tick for the test to mean anything"


@pytest.mark.parametrize("driver", ["random", "no-balloon", "esx"])
def test_on_a_closed_loop_host_labels_are_valid_and_deterministic(driver):
    env = BalloonVectorEnv(2, "default-v2", max_episode_steps=24)
    twin = BalloonVectorEnv(2, "default-v2", max_episode_steps=24)
    pol = make_policy(driver, env)
    teacher = OracleTeacher()
    maxb = np.array([v.max_balloon_pages for v in env.config.params.vms])
    obs, info = env.reset(seed=11)
    twin.reset(seed=11)
    pol.reset(11)
    rng = np.random.default_rng(0)
    for t in range(30):  # past an autoreset
        label = teacher.label(env)
        assert label.shape == (2, env.config.params.num_vms)
        assert label.dtype == np.int64
        assert np.all(label >= 0) and np.all(label <= maxb)
        if t % 7 == 0:  # a fresh teacher on the same state: the same label
            np.testing.assert_array_equal(OracleTeacher().label(env), label)
        a = pol.act(obs, info) if driver != "random" else (
            rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32))  # fmt: skip
        obs, _r, _te, _tr, info = env.step(a)
        o2, *_ = twin.step(a)  # the twin is never labelled
        np.testing.assert_array_equal(obs, o2)


@pytest.mark.parametrize(("window", "horizon"), [(8, 32), (3, 7)])
def test_dense_and_sparse_hit_counts_agree_on_overlapping_windows(window, horizon):
    """_chunk_curves counts a window's hits per cell when windows are sparse and per
    (last use, next use) pair when they overlap: both give the same curves on windows
    at every tick (the closed loop's case), and so on windows a plan apart."""
    env = BalloonVectorEnv(2, "default-v2", max_episode_steps=40)
    env.reset(seed=9)
    view = env.core.sim.privileged_view()
    refs = view.episode_references(60)
    sizes, F = _grid(env), view.footprint_pages
    for step in (1, window):
        starts = np.arange(window, 60 - horizon + 1, step)
        args = (refs, sizes, starts, starts - window, window, horizon, F)
        dense = teacher_mod._chunk_curves(*args, dense=True)
        sparse = teacher_mod._chunk_curves(*args, dense=False)
        np.testing.assert_array_equal(dense[0], sparse[0])
        np.testing.assert_array_equal(dense[1], sparse[1])
