"""The Stable-Baselines3 VecEnv adapter: SB3's contract, checked against DummyVecEnv."""

from __future__ import annotations

import time

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.sb3_vec_env import BalloonSB3VecEnv
from envs.adapter import ACTION_MODES
from envs.balloon_env import BalloonEnv
from envs.scenarios import scenario_ids
from tests.test_env import OOM_PRONE, assert_same


@pytest.mark.parametrize("mode", ACTION_MODES)
def test_sb3_check_env(mode):
    sb3_check_env(BalloonEnv(action_mode=mode, max_episode_steps=8), warn=True)


@pytest.mark.parametrize("scenario", scenario_ids())
def test_sb3_check_env_every_scenario(scenario):
    sb3_check_env(BalloonEnv(scenario, max_episode_steps=8), warn=True)


def _pop_episode(infos):
    """Remove (and check) the Monitor-style ``episode`` entries DummyVecEnv lacks."""
    for info in infos:
        if "episode" in info:
            ep = info.pop("episode")
            assert set(ep) == {"r", "l", "t"}
            assert ep["l"] == info["episode_summary"]["length"]
            assert ep["r"] == info["episode_summary"]["return"]
    return infos


def _dummy(limits, **overrides):
    return DummyVecEnv([lambda n=n: BalloonEnv(max_episode_steps=n, **overrides) for n in limits])


@pytest.mark.parametrize("overrides", [{}, OOM_PRONE])
def test_equals_dummy_vec_env_with_uneven_episodes(overrides):
    limits = [2, 3, 5, 40] if not overrides else [40, 40, 40]
    ours = BalloonSB3VecEnv(len(limits), max_episode_steps=limits, **overrides)
    ref = _dummy(limits, **overrides)
    ours.seed(7)
    ref.seed(7)
    assert_same(ours.reset(), ref.reset())
    assert_same(ours.reset_infos, ref.reset_infos)
    rng = np.random.default_rng(1)
    ended = np.zeros(len(limits), dtype=int)
    for t in range(24):
        a = rng.uniform(-1, 1, size=(len(limits), 4)).astype(np.float32)
        if overrides:  # envs 0 and 1 without a balloon: host OOM at different steps
            a[:2] = -1.0 + 0.05 * t * np.arange(1, 3)[:, None]
        o1, r1, d1, i1 = ours.step(a)
        o2, r2, d2, i2 = ref.step(a)
        assert_same((o1, r1, d1), (o2, r2, d2), f"step {t}")
        assert all(("episode" in i1[b]) == d1[b] for b in range(len(limits)))
        assert_same(_pop_episode(i1), i2, f"step {t} infos")
        for b in np.nonzero(d1)[0]:
            info = i1[b]
            assert info["terminal_observation"].shape == ours.observation_space.shape
            assert info["TimeLimit.truncated"] == (info["episode_summary"]["host_oom"] == 0)
            assert o1[b, -1] == 1.0  # the new episode's first observation
        ended += d1
        assert_same(ours.reset_infos, ref.reset_infos)
    if overrides:
        assert ended[0] >= 1 and ended[1] >= 1
    else:
        assert ended.tolist() == [12, 8, 4, 0]


def test_seed_semantics():
    env = BalloonSB3VecEnv(3, max_episode_steps=4)
    assert env.seed(100) == [100, 101, 102]
    env.reset()
    assert env.core.episode_seed == [100, 101, 102]
    env.reset()  # seeds are used once
    second = list(env.core.episode_seed)
    assert all(s not in (100, 101, 102) for s in second)
    env.seed(100)
    env.reset()
    env.reset()
    assert env.core.episode_seed == second  # ...and the next ones follow from them


def test_attrs_and_bad_input():
    env = BalloonSB3VecEnv(2, render_mode="rgb_array")
    assert env.get_attr("render_mode") == ["rgb_array", "rgb_array"]
    assert env.env_is_wrapped(object) == [False, False]
    env.reset()
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        env.step(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="unknown option"):
        BalloonSB3VecEnv(2, balloon_speed=3)


def test_ppo_smoke_2048_steps():
    t0 = time.perf_counter()
    env = BalloonSB3VecEnv(16, max_episode_steps=48)
    model = PPO("MlpPolicy", env, n_steps=16, batch_size=256, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    assert len(model.ep_info_buffer) > 0  # episodes logged without a Monitor wrapper
    assert time.perf_counter() - t0 < 60
