"""Where an episode of a ReclaimGym id ends, through every way of making one (issue 22).

The episode length is the scenario's (``Scenario.max_episode_steps``) unless the caller
gives ``max_episode_steps``; truncation comes exactly once, at the last step, never
early. Gymnasium's ``make`` consumes ``max_episode_steps=N`` itself (a ``TimeLimit``
outside the env), ``make_vec`` and the env classes take it as an env option: all three
must end the episode at the same step. (Why the registered spec carries no
``max_episode_steps``: envs/__init__.py.)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.env_batch import HOST_FEATURES
from envs.scenarios import get_scenario

TIME_LEFT = -len(HOST_FEATURES) + list(HOST_FEATURES).index("time_left_frac")


def _length(env, seed: int = 0, cap: int = 2000) -> tuple[int, list[bool], np.ndarray]:
    """Steps until the episode ends, the truncation flags, and the last observation."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    flags = []
    for t in range(1, cap + 1):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        flags.append(bool(truncated))
        assert not terminated, "these scenarios do not OOM under random actions"
        if truncated:
            return t, flags, obs
    raise AssertionError(f"no truncation within {cap} steps")


@pytest.mark.parametrize("env_id", list(envs.ENV_IDS))
def test_default_scenario_ends_at_its_length(env_id: str) -> None:
    ticks = get_scenario(envs.ENV_IDS[env_id]).max_episode_steps
    env = gym.make(env_id)
    k = env.unwrapped.config.ticks_per_step  # Balloon-v2: one step is a 5-tick decision
    n, flags, obs = _length(env)
    assert ticks == 256 and n == -(-ticks // k) and flags.count(True) == 1
    time_left = env.unwrapped.observation_names.index("host/time_left_frac")
    assert obs[time_left] == 0.0  # the env's own clock agrees with the end
    assert env.spec.max_episode_steps == n  # the made env's spec carries its limit


def test_the_made_envs_spec_carries_the_episode_limit() -> None:
    assert gym.make("reclaim/Balloon-v1").spec.max_episode_steps == 256
    assert gym.make("reclaim/Balloon-v1", scenario="mixed-v1").spec.max_episode_steps == 384
    made = gym.make("reclaim/Balloon-v1", max_episode_steps=64)
    assert made.spec.max_episode_steps == 64  # Gymnasium's TimeLimit, outside the env
    again = gym.make(gym.make("reclaim/Balloon-v1", scenario="mixed-v1").spec)
    n, flags, _ = _length(again)  # re-made from the spec: the same length, truncated once
    assert n == 384 and flags.count(True) == 1


def test_another_scenario_keeps_its_own_length() -> None:
    sc = get_scenario("mixed-v1")
    assert sc.max_episode_steps != 256
    n, flags, obs = _length(gym.make("reclaim/Balloon-v1", scenario=sc.id))
    assert n == sc.max_episode_steps and flags.count(True) == 1 and obs[TIME_LEFT] == 0.0


@pytest.mark.parametrize("steps", [1, 64])
def test_explicit_max_episode_steps_through_make(steps: int) -> None:
    """``gym.make(..., max_episode_steps=N)`` ends at N (Gymnasium's TimeLimit), once."""
    n, flags, _ = _length(gym.make("reclaim/Balloon-v1", max_episode_steps=steps))
    assert n == steps and flags.count(True) == 1
    # and the env class, which takes it as its own option, ends at the same step
    n2, flags2, obs2 = _length(envs.balloon_env.BalloonEnv("default-v1", max_episode_steps=steps))
    assert n2 == steps and flags2.count(True) == 1 and obs2[TIME_LEFT] == 0.0


def test_make_vec_ends_every_env_at_the_limit() -> None:
    for kwargs, want in (({}, 256), ({"max_episode_steps": 16}, 16),
                         ({"scenario": "mixed-v1"}, 384)):  # fmt: skip
        venv = gym.make_vec("reclaim/Balloon-v1", num_envs=2,
                            vectorization_mode="vector_entry_point", **kwargs)  # fmt: skip
        venv.reset(seed=0)
        venv.action_space.seed(0)
        ends = []
        for t in range(1, want + 1):
            _, _, terminated, truncated, _ = venv.step(venv.action_space.sample())
            assert not terminated.any()
            if truncated.any():
                ends.append((t, truncated.tolist()))
        assert ends == [(want, [True, True])], kwargs


def test_check_env_on_the_made_env() -> None:
    check_env(gym.make("reclaim/Balloon-v1").unwrapped, skip_render_check=True)
