"""Residual agents: a learned correction of a heuristic's absolute actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from agents.learners.sb3.policy import policy_from_model, run_episodes
from agents.learners.sb3.train import TrainConfig
from agents.learners.sb3.vec_env import BalloonSB3VecEnv
from agents.policies import make_policy, over_env
from agents.residual import ResidualPolicy
from agents.runs import ConfigError
from envs.rollout import first_episodes
from envs.vector_env import BalloonVectorEnv

SC, STEPS, HOSTS = "mixed-v1", 60, 3


def _heuristic_rewards(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(STEPS, HOSTS) rewards and (STEPS, HOSTS, V) balloon targets of heuristic ``name``
    alone in the vector env."""
    env = BalloonVectorEnv(HOSTS, SC, max_episode_steps=STEPS)
    pol = make_policy(name, env)
    obs, info = env.reset(seed=seed)
    pol.reset(seed)
    out, tgt = [], []
    for _ in range(STEPS):
        obs, r, _term, _trunc, info = env.step(pol.act(obs, info))
        out.append(r)
        tgt.append(info["vm"]["balloon_target"])
    return np.array(out), np.array(tgt)


@pytest.mark.parametrize("name", ["esx", "mom"])
def test_zero_correction_is_the_heuristic_exactly(name):
    venv = BalloonSB3VecEnv(HOSTS, SC, layout="per-vm", max_episode_steps=STEPS,
                            residual=name, step_info=False)  # fmt: skip
    venv.seed(7)
    venv.reset()
    zero = np.zeros((venv.num_envs, 1), np.float32)
    got = []
    for _ in range(STEPS):
        _obs, r, _done, _ = venv.step(zero)
        got.append(r.reshape(HOSTS, -1)[:, 0])  # every VM of a host shares its reward
    want, targets = _heuristic_rewards(name, 7)
    np.testing.assert_array_equal(np.array(got), want.astype(np.float32))
    # and a positive correction raises every target that is not at its maximum
    from envs.sim.counters import VM_INDEX

    venv.seed(7)
    venv.reset()
    venv.step(np.ones((venv.num_envs, 1), np.float32))
    mine = venv.cores[0].vm[:, :, VM_INDEX["balloon_target"]]
    maxb = np.array([v.max_balloon_pages for v in venv.cores[0].params.vms])
    assert ((mine > targets[0]) | (mine == maxb)).all() and (mine > targets[0]).any()


def _zero_ppo(venv):
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=8, device="cpu", seed=0)
    with torch.no_grad():  # a network whose mean action is 0 everywhere
        for p in model.policy.action_net.parameters():
            p.zero_()
    return model


def test_residual_policy_of_a_zero_network_evaluates_as_the_heuristic():
    venv = BalloonSB3VecEnv(1, SC, layout="per-vm", residual="esx", step_info=False)
    pol = policy_from_model(_zero_ppo(venv), "per-vm", "absolute", residual=("esx", 0.5))
    seeds = [11, 12]
    res = run_episodes(pol, SC, seeds, max_episode_steps=STEPS, for_env=over_env)
    env = BalloonVectorEnv(len(seeds), SC, max_episode_steps=STEPS)
    ref = first_episodes(env, make_policy("esx", env), seeds)
    np.testing.assert_array_equal(res["return"], [e["return"] for e in ref])
    env = BalloonVectorEnv(1, SC)
    wrapped = ResidualPolicy(make_policy("esx", env), pol, 0.5)
    assert wrapped.action_modes == ("absolute",) and "esx" in wrapped.name


@pytest.mark.parametrize("kwargs, match", [
    (dict(residual="oracle"), "residual must be one of"),
    (dict(residual="esx", action_mode="delta"), "residual needs action_mode 'absolute'"),
    (dict(residual="esx", residual_scale=0.0), r"residual_scale must be in \(0, 2\]"),
    (dict(residual_scale=0.3), "residual_scale needs --residual"),
])  # fmt: skip
def test_residual_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)
    if "residual" in kwargs:
        with pytest.raises(ValueError, match=match):
            BalloonSB3VecEnv(1, SC, residual=kwargs["residual"],
                             action_mode=kwargs.get("action_mode", "absolute"),
                             residual_scale=kwargs.get("residual_scale", 0.5))  # fmt: skip
