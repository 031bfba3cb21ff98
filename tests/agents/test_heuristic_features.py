"""agents.heuristic_features: the appended features are the targets each heuristic sets
when it drives the env itself, in the vector and the single env, with a decision period."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from agents.heuristic_features import (
    DEFAULT_HEURISTICS,
    HeuristicFeatures,
    HeuristicFeaturesVector,
    check_names,
)
from agents.policies import make_policy
from envs.balloon_env import BalloonEnv
from envs.vector_env import BalloonVectorEnv

KW = {"obs_version": 2, "decision_period_s": 2.0}


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_features_are_the_targets_of_the_heuristics_driving_the_env(mode):
    names = ("esx", "mrc", "hyperv")
    limits = [9, 14]
    plain = BalloonVectorEnv(2, "default-v1", max_episode_steps=limits, autoreset_mode=mode, **KW)
    wrapped = HeuristicFeaturesVector(
        BalloonVectorEnv(2, "default-v1", max_episode_steps=limits, autoreset_mode=mode, **KW),
        names,
    )
    drivers = [make_policy(n, plain) for n in names]
    maxb = np.array([v.max_balloon_pages for v in plain.params.vms], dtype=np.float64)
    obs, info = plain.reset(seed=[4, 5])
    wobs, _ = wrapped.reset(seed=[4, 5])
    for p in drivers:
        p.reset(4)
    D, V = obs.shape[1], plain.config.num_vms
    assert wobs.shape == (2, D + len(names) * V)
    assert wrapped.single_observation_space.shape == (D + len(names) * V,)
    moved = 0.0
    for t in range(20):
        np.testing.assert_array_equal(wobs[:, :D], obs)
        acts = [p.act(obs, info) for p in drivers]
        for j, p in enumerate(drivers):
            want = (p.held_targets / maxb).astype(np.float32)
            np.testing.assert_array_equal(wobs[:, D + j * V : D + (j + 1) * V], want, f"t={t}")
        moved = max(moved, float(wobs[:, D:].max()))
        a = acts[t % len(acts)]  # whichever heuristic drives, the features follow
        obs, *_, info = plain.step(a)
        wobs, *_ = wrapped.step(a)
    assert moved > 0  # the targets are not all zero


def test_single_env_wrapper_and_names():
    env = HeuristicFeatures(BalloonEnv("default-v1", **KW), True)
    V = env.unwrapped.config.num_vms
    assert env.heuristics == DEFAULT_HEURISTICS
    assert len(env.feature_names) == len(DEFAULT_HEURISTICS) * V
    assert env.feature_names[0] == f"{DEFAULT_HEURISTICS[0]}/vm0/target_frac"
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
    # The hold action mode too: the heuristics read targets, not their actions.
    hold = HeuristicFeatures(BalloonEnv("default-v1", action_mode="absolute-hold", **KW), "esx")
    hold.reset(seed=0)
    hold.step(hold.action_space.sample())
    for bad in (False, [], ["esx", "esx"], ["oracle"], "nope"):
        with pytest.raises(ValueError, match="heuristic_features"):
            check_names(bad)
