"""The native vector env equals a SyncVectorEnv of single envs, step by step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from envs import ENV_ID
from envs.balloon_env import BalloonEnv
from envs.scenarios import scenario_ids
from envs.vector_env import BalloonVectorEnv
from experiments.vector_env_speed import bench_vector_vs_sync
from tests.envs.helpers import OOM_PRONE, assert_same, uneven_actions

MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP]


def pair(limits, mode, action_mode="absolute", scenario="default-v0", **overrides):
    native = BalloonVectorEnv(
        len(limits),
        scenario,
        max_episode_steps=limits,
        autoreset_mode=mode,
        action_mode=action_mode,
        **overrides,
    )
    sync = SyncVectorEnv(
        [
            (
                lambda n=n: BalloonEnv(
                    scenario, max_episode_steps=n, action_mode=action_mode, **overrides
                )
            )
            for n in limits
        ],
        autoreset_mode=mode,
    )
    return native, sync


def compare(native, sync, seed, steps, actions=None):
    """Step both with the same actions; return per-env episode-end counts and the steps at
    which each env terminated."""
    assert_same(native.reset(seed=seed), sync.reset(seed=seed))
    space = native.action_space
    space.seed(seed)
    ends = np.zeros(native.num_envs, dtype=int)
    terms: dict[int, list[int]] = {}
    for t in range(steps):
        a = space.sample() if actions is None else actions(t)
        n_out, s_out = native.step(a), sync.step(a)
        assert_same(n_out, s_out, f"step {t}")
        ends += n_out[2] | n_out[3]
        for b in np.nonzero(n_out[2])[0]:
            terms.setdefault(int(b), []).append(t)
    return ends, terms


@pytest.mark.parametrize("mode", MODES)
def test_equals_sync_with_uneven_truncations(mode):
    native, sync = pair([2, 3, 5, 7], mode)
    ends, terms = compare(native, sync, seed=3, steps=16)
    assert not terms
    # NEXT_STEP spends one extra step per episode on the reset.
    per_episode = [n + (mode == AutoresetMode.NEXT_STEP) for n in (2, 3, 5, 7)]
    assert ends.tolist() == [16 // n for n in per_episode]


@pytest.mark.parametrize("mode", MODES)
def test_equals_sync_with_host_oom_at_different_steps(mode):
    native, sync = pair([40, 40, 40], mode, **OOM_PRONE)
    # Envs 0 and 1 keep no balloon (host OOM in ~10 steps), env 2 acts at random.
    rng = np.random.default_rng(0)

    def actions(t):
        return uneven_actions(rng, 3, t, oom_prone=True)

    _, terms = compare(native, sync, seed=0, steps=30, actions=actions)
    assert 0 in terms and 1 in terms and terms[0] != terms[1], terms


@pytest.mark.parametrize("scenario", scenario_ids())
def test_equals_sync_every_scenario(scenario):
    native, sync = pair([3, 5], AutoresetMode.SAME_STEP, scenario=scenario)
    ends, _ = compare(native, sync, seed=2, steps=6)
    assert ends.tolist() == [2, 1]


@pytest.mark.parametrize("action_mode", ["delta", "discrete"])
def test_equals_sync_other_action_modes(action_mode):
    native, sync = pair([4, 6], AutoresetMode.NEXT_STEP, action_mode=action_mode)
    compare(native, sync, seed=9, steps=12)


def test_make_vec_and_metadata():
    env = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point")
    assert isinstance(env, BalloonVectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    env = gym.make_vec(
        ENV_ID,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        max_episode_steps=3,
        host_policy="lru",
    )
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert env.params.host_policy == "lru"
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, env.single_observation_space.shape[0])
    assert info["_vm"].all()
    for _ in range(3):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
    assert trunc.all() and info["_final_obs"].all()
    assert info["final_info"]["episode_summary"]["length"].tolist() == [3, 3]
    assert env.observation_space.contains(obs)
    # Sync vectorization of the same id gives the same result.
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync")
    assert isinstance(sync, SyncVectorEnv)


def test_seeds_reset_mask_and_render():
    env = BalloonVectorEnv(3, max_episode_steps=5, render_mode="ansi")
    env.reset(seed=10)
    assert env.core.episode_seed == [10, 11, 12]
    env.reset(seed=[4, None, 6])
    assert env.core.episode_seed[0] == 4 and env.core.episode_seed[2] == 6
    env.step(env.action_space.sample())
    obs, info = env.reset(seed=[7, 8, 9], options={"reset_mask": np.array([False, True, False])})
    assert env.core.episode_seed[1] == 8 and env.core.episode_seed[0] == 4
    assert info["_vm"].tolist() == [False, True, False]
    assert obs[1, -1] == 1.0 and obs[0, -1] < 1.0
    frames = env.render()
    assert len(frames) == 3 and all(isinstance(f, str) for f in frames)
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.zeros(3, dtype=bool)})
    with pytest.raises(ValueError, match="3 seeds"):
        env.reset(seed=[1, 2])


def test_bad_vector_input():
    env = BalloonVectorEnv(2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        env.step(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="autoreset_mode"):
        BalloonVectorEnv(2, autoreset_mode="Sometimes")
    with pytest.raises(ValueError, match="autoreset_mode"):
        BalloonVectorEnv(2, autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match="one int per env"):
        BalloonVectorEnv(2, max_episode_steps=[3, 4, 5])
    with pytest.raises(ValueError, match="num_envs"):
        BalloonVectorEnv(0)


def test_returns_are_not_internal_buffers():
    env = BalloonVectorEnv(2)
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step(env.action_space.sample())
    keep = obs1.copy()
    obs1[:] = -5.0
    env.step(env.action_space.sample())
    assert not np.shares_memory(obs0, obs1)
    assert (keep != -5.0).all()


def test_bench_helper_smoke():
    res = bench_vector_vs_sync(num_envs=2, steps=2, warmup=1)
    assert res["native_steps_per_s"] > 0 and res["sync_steps_per_s"] > 0
    assert res["ratio"] == pytest.approx(res["native_steps_per_s"] / res["sync_steps_per_s"])


def test_a_copied_or_pickled_env_steps_exactly_as_the_original():
    """deepcopy and pickle keep the observation views tied to the buffer: the copy's
    observations, rewards and infos equal the original's, step by step."""
    import copy
    import pickle

    env = BalloonVectorEnv(2, "default-v1", max_episode_steps=12)
    env.reset(seed=[3, 4])
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step(rng.uniform(-1, 1, (2, env.config.num_vms)).astype(np.float32))
    copies = [copy.deepcopy(env), pickle.loads(pickle.dumps(env))]
    for _ in range(12):
        a = rng.uniform(-1, 1, (2, env.config.num_vms)).astype(np.float32)
        want = env.step(a)
        for c in copies:
            got = c.step(a)
            for x, y in zip(want[:4], got[:4], strict=True):
                np.testing.assert_array_equal(x, y)
