"""Every env accepts a seed int >= 0 (numpy integers too) or None, and rejects anything
else with a ValueError that names ``seed`` and the allowed values (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest

from envs.balloon_env import BalloonEnv
from envs.vector_env import BalloonVectorEnv

BAD = [-1, np.int64(-2), "abc", "12", 1.5, True, np.float64(2.0), {}]


@pytest.mark.parametrize("seed", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_single_env_accepts_numpy_and_python_ints(seed):
    env = BalloonEnv("steady-v0", max_episode_steps=4)
    obs, _ = env.reset(seed=seed)
    ref, _ = BalloonEnv("steady-v0", max_episode_steps=4).reset(seed=3)
    assert np.array_equal(obs, ref)
    env.reset(seed=None)


@pytest.mark.parametrize("seed", BAD)
def test_single_env_rejects_bad_seeds_with_value_error(seed):
    env = BalloonEnv("steady-v0", max_episode_steps=4)
    with pytest.raises(ValueError, match=r"seed must be None or an int >= 0"):
        env.reset(seed=seed)


@pytest.mark.parametrize("seed", [5, np.int64(5), [5, 6], (np.int64(5), 6), np.array([5, 6])])
def test_vector_env_accepts_ints_and_lists(seed):
    env = BalloonVectorEnv(2, "steady-v0", max_episode_steps=4)
    obs, _ = env.reset(seed=seed)
    ref, _ = BalloonVectorEnv(2, "steady-v0", max_episode_steps=4).reset(seed=[5, 6])
    assert np.array_equal(obs, ref)
    env.reset(seed=[None, 7])
    env.reset(seed=None)


@pytest.mark.parametrize("seed", [*BAD, [1, 2, 3], [1, -1], [1, "a"], [1, 1.5], "ab"])
def test_vector_env_rejects_bad_seeds_with_value_error(seed):
    env = BalloonVectorEnv(2, "steady-v0", max_episode_steps=4)
    with pytest.raises(ValueError, match=r"seed must be None, an int >= 0, or a list of 2 seeds"):
        env.reset(seed=seed)
