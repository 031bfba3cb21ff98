"""The public API of ``agents`` (issue 22): ``make_policy`` on envs as ``gym.make`` and
``gym.make_vec`` return them, the names it exports, and an ``import agents`` that does
not load torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

import agents
import envs  # noqa: F401  (registers the reclaim/* ids)
from agents import HEURISTIC_NAMES, POLICY_NAMES, Policy, make_policy, unwrap_env
from envs.balloon_env import BalloonEnv
from tests import REPO

# The oracle replays whole episodes (256 steps) on copies at its first decision: ~30 s.
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=SLOW) if n == "oracle" else n for n in POLICY_NAMES]
)
def test_every_policy_builds_on_gym_make_and_acts(name: str) -> None:
    env = gym.make("reclaim/Balloon-v1")
    assert not isinstance(env, BalloonEnv)  # wrapped: TimeLimit, OrderEnforcing, checker
    policy = make_policy(name, env)
    assert isinstance(policy, Policy)
    obs, info = env.reset(seed=3)
    policy.reset(3)
    for _ in range(4):
        action = policy.act(obs, info)
        assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))
        obs, _, terminated, truncated, info = env.step(action)
        assert not (terminated or truncated)


@pytest.mark.parametrize("name", ["esx", "oracle", "random"])
def test_policies_build_on_gym_make_vec(name: str) -> None:
    venv = gym.make_vec("reclaim/Balloon-v1", num_envs=2, vectorization_mode="vector_entry_point",
                        max_episode_steps=8)  # fmt: skip
    policy = make_policy(name, venv)
    obs, info = venv.reset(seed=0)
    policy.reset(0)
    for _ in range(3):
        obs, *_, info = venv.step(policy.act(obs, info))
    assert obs.shape[0] == 2


def test_vector_wrappers_are_looked_through() -> None:
    venv = gym.make_vec("reclaim/Balloon-v1", num_envs=2, vectorization_mode="vector_entry_point",
                        max_episode_steps=8)  # fmt: skip
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(venv)
    policy = make_policy("mom", wrapped)
    assert policy.env is venv and policy.num_envs == 2
    obs, info = wrapped.reset(seed=1)
    policy.reset(1)
    obs, *_ = wrapped.step(policy.act(obs, info))
    assert obs.shape[0] == 2


def test_policy_classes_unwrap_too() -> None:
    from agents.heuristics import EsxPolicy

    env = gym.make("reclaim/Balloon-v1")
    assert EsxPolicy(env).env is env.unwrapped
    assert unwrap_env(env) is env.unwrapped
    assert unwrap_env(env.unwrapped) is env.unwrapped


def test_a_wrapper_that_changes_the_observation_is_refused() -> None:
    env = gym.wrappers.RescaleObservation(gym.make("reclaim/Balloon-v1"), -2.0, 2.0)
    with pytest.raises(ValueError, match="changes the observation_space"):
        make_policy("esx", env)


def test_a_foreign_env_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="CartPoleEnv"):
        make_policy("esx", gym.make("CartPole-v1"))


def test_exported_names() -> None:
    assert set(HEURISTIC_NAMES) < set(POLICY_NAMES)
    assert {"make_policy", "POLICY_NAMES", "HEURISTIC_NAMES", "Policy", "TrainConfig",
            "train", "load_model_policy"} <= set(agents.__all__)  # fmt: skip
    for name in agents.__all__:
        assert getattr(agents, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        agents.nope  # noqa: B018


def test_import_agents_does_not_load_torch() -> None:
    code = textwrap.dedent("""
        import sys
        import agents
        from agents import make_policy, POLICY_NAMES, HEURISTIC_NAMES
        print("torch" in sys.modules, "stable_baselines3" in sys.modules)
        print("agents.learners.sb3.train" in sys.modules)
        print(agents.TrainConfig.__module__, agents.train.__module__)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    train = "agents.learners.sb3.train"
    assert res.stdout.split() == ["False", "False", "False", train, train]
