"""The one rollout loop (envs.rollout) against single-env episodes."""

from __future__ import annotations

import numpy as np
import pytest

from envs.balloon_env import BalloonEnv
from envs.rollout import first_episodes, rollout_steps
from envs.vector_env import BalloonVectorEnv
from tests.envs.helpers import OOM_PRONE, assert_same


class Wave:
    """A batch policy whose action depends on the step only (so each env's episode does
    not depend on the others), counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.reset_seed: int | None = None

    def reset(self, seed: int | None = None) -> None:
        self.reset_seed = seed

    def act(self, obs, info):
        self.calls += 1
        B, V = obs.shape[0], (obs.shape[1] - 4) // 13
        return np.full((B, V), np.sin(self.calls), dtype=np.float32)


def _single(seed, limit, **overrides):
    env = BalloonEnv(max_episode_steps=limit, **overrides)
    env.reset(seed=seed)
    t = 0
    while True:
        t += 1
        _, _, term, trunc, info = env.step(np.full(4, np.sin(t), dtype=np.float32))
        if term or trunc:
            return info["episode_summary"]


@pytest.mark.parametrize("overrides", [{}, OOM_PRONE])
def test_first_episodes_equal_single_env_episodes(overrides):
    limits, seeds = [3, 9, 6], [11, 12, 13]
    env = BalloonVectorEnv(3, max_episode_steps=limits, **overrides)
    policy = Wave()
    steps = []
    eps = first_episodes(env, policy, seeds, on_step=steps.append)
    assert policy.reset_seed == 11
    for b, (s, n) in enumerate(zip(seeds, limits, strict=True)):
        assert_same(eps[b], _single(s, n, **overrides), f"env {b}")
    assert len(steps) == max(e["length"] for e in eps) == policy.calls
    ended = np.array([st.ended for st in steps])
    assert (ended.sum(axis=0) == 1).all()  # each env's first episode ends once
    assert [int(np.argmax(ended[:, b])) + 1 for b in range(3)] == [e["length"] for e in eps]


def test_stopping_early_does_not_ask_the_policy_again():
    env = BalloonVectorEnv(2, max_episode_steps=50)
    policy = Wave()
    for step in rollout_steps(env, policy, [0, 1]):
        if step.t == 4:
            break
    assert policy.calls == 4


def test_needs_next_step_autoreset_and_one_seed_per_env():
    with pytest.raises(ValueError, match="NEXT_STEP"):
        next(rollout_steps(BalloonVectorEnv(1, autoreset_mode="SameStep"), Wave(), [0]))
    with pytest.raises(ValueError, match="one seed per env"):
        next(rollout_steps(BalloonVectorEnv(2), Wave(), [0]))
