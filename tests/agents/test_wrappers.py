"""The agent views as vector wrappers (agents.wrappers): per-VM observations, residual
actions, multi-scenario batches; each checked against its one formula, and the stack a
learner trains on against the SB3 VecEnv that uses the same formulas."""

from __future__ import annotations

import numpy as np
import pytest

from agents.layout import per_vm_features, per_vm_size
from agents.policies import make_policy
from agents.residual import ResidualPolicy, residual_action
from agents.wrappers import (
    MultiScenarioVectorEnv,
    PerVmObservation,
    ResidualAction,
    multi_scenario_env,
    per_vm_actions,
)
from envs.vector_env import BalloonVectorEnv

SC, SC6, STEPS = "default-v1", "boot-storm-v0", 12


def test_residual_action_formula():
    base = np.array([[-1.0, -0.2, 0.5, 1.0]], dtype=np.float32)
    corr = np.array([[-3.0, 0.4, 0.8, 0.5]])
    got = residual_action(base, corr, 0.5)
    # correction clipped to [-1, 1] first, then the sum clipped to [-1, 1]
    assert np.array_equal(got, np.clip(base.astype(np.float64) + 0.5 * np.clip(corr, -1, 1), -1, 1))
    assert got.dtype == np.float64 and got[0, 0] == -1.0 and got[0, 2] == 0.9
    assert np.array_equal(residual_action(base, np.zeros_like(corr), 0.5), base.astype(np.float64))


def test_per_vm_observation_shapes_and_formula():
    inner = BalloonVectorEnv(3, SC6, max_episode_steps=STEPS)
    env = PerVmObservation(BalloonVectorEnv(3, SC6, max_episode_steps=STEPS))
    V = inner.config.num_vms
    assert env.num_envs == 3 * V and env.num_hosts == 3 and env.vms_per_host == V
    assert env.single_observation_space.shape == (per_vm_size(1),)
    assert env.observation_space.shape == (3 * V, per_vm_size(1))
    assert env.action_space.shape == (3 * V, 1)
    raw, _ = inner.reset(seed=5)
    obs, _ = env.reset(seed=5)
    assert np.array_equal(obs, per_vm_features(raw))
    rng = np.random.default_rng(0)
    for _ in range(STEPS + 2):  # across the NEXT_STEP autoreset
        a = rng.uniform(-1, 1, size=(3 * V,)).astype(np.float32)
        raw, r, term, trunc, info = inner.step(a.reshape(3, V))
        obs, rv, tv, trv, info_v = env.step(a)
        assert np.array_equal(obs, per_vm_features(raw))
        assert np.array_equal(rv, np.repeat(r, V)) and rv.shape == (3 * V,)
        assert np.array_equal(tv, np.repeat(term, V)) and np.array_equal(trv, np.repeat(trunc, V))
        assert np.array_equal(info_v["vm"]["balloon_target"], info["vm"]["balloon_target"])
    with pytest.raises(ValueError, match="must have shape"):
        env.step(np.zeros((3, V)))


def test_per_vm_observation_of_observation_v2_and_hold_actions():
    env = PerVmObservation(
        BalloonVectorEnv(2, SC, obs_version=2, action_mode="absolute-hold", max_episode_steps=4)
    )
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2 * 4, per_vm_size(2)) and per_vm_size(2) == 65
    assert env.single_action_space.shape == (2,)
    a = np.zeros((8, 2))
    a[:, 1] = 1.0  # hold flag of every VM
    got = per_vm_actions(a, "absolute-hold", 2, 4)
    assert got.shape == (2, 8) and np.all(got[:, :4] == 0) and np.all(got[:, 4:] == 1)
    env.step(a)
    d = PerVmObservation(BalloonVectorEnv(1, SC, action_mode="discrete"))
    assert d.single_action_space.n == 3
    assert per_vm_actions(np.array([0, 1, 2, 1]), "discrete", 1, 4).dtype == np.int64


@pytest.mark.parametrize("name", ["esx", "mom"])
def test_residual_zero_correction_is_the_heuristic_exactly(name):
    alone = BalloonVectorEnv(2, SC, max_episode_steps=STEPS)
    pol = make_policy(name, alone)
    env = ResidualAction(BalloonVectorEnv(2, SC, max_episode_steps=STEPS), name, 0.5)
    assert env.observation_space == alone.observation_space
    assert env.action_space == alone.action_space
    o1, i1 = alone.reset(seed=3)
    pol.reset(3)
    o2, _ = env.reset(seed=3)
    for _ in range(STEPS + 3):  # through an autoreset
        a = pol.act(o1, i1)
        assert np.array_equal(env.base_actions, a)
        o1, r1, t1, tr1, i1 = alone.step(a)
        o2, r2, t2, tr2, _ = env.step(np.zeros((2, 4)))
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
        assert np.array_equal(t1 | tr1, t2 | tr2)


def test_residual_action_steps_the_env_with_the_formula():
    plain = BalloonVectorEnv(2, SC, max_episode_steps=STEPS)
    env = ResidualAction(BalloonVectorEnv(2, SC, max_episode_steps=STEPS), "esx", 0.3)
    plain.reset(seed=1)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(5):
        corr = rng.uniform(-1.5, 1.5, size=(2, 4))
        o1, r1, *_ = plain.step(residual_action(env.base_actions, corr, 0.3))
        o2, r2, *_ = env.step(corr)
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)
    with pytest.raises(ValueError, match="absolute"):
        ResidualAction(BalloonVectorEnv(1, SC, action_mode="delta"), "esx")
    with pytest.raises(ValueError, match="residual must be one of"):
        ResidualAction(BalloonVectorEnv(1, SC), "random")


def test_residual_policy_uses_the_same_formula():
    env = BalloonVectorEnv(2, SC, max_episode_steps=STEPS)

    class Fixed:
        name, action_mode = "fixed", "absolute"

        def reset(self, seed=None):
            pass

        def act(self, obs, info):
            return np.full((2, 4), 0.7, dtype=np.float32)

    esx = make_policy("esx", env)
    pol = ResidualPolicy(make_policy("esx", env), Fixed(), 0.5)
    obs, info = env.reset(seed=2)
    esx.reset(2)
    pol.reset(2)
    want = residual_action(esx.act(obs, info), Fixed().act(obs, info), 0.5).astype(np.float32)
    assert np.array_equal(pol.act(obs, info), want)


def test_multi_scenario_env_concatenates_and_seeds_hosts_in_order():
    env = multi_scenario_env([SC, SC6], 2, max_episode_steps=STEPS)
    a4, a6 = (PerVmObservation(BalloonVectorEnv(2, s, max_episode_steps=STEPS)) for s in (SC, SC6))
    V6 = a6.vms_per_host
    assert env.num_envs == 2 * 4 + 2 * V6 and env.num_hosts == 4
    obs, info = env.reset(seed=10)
    o4, _ = a4.reset(seed=10)
    o6, _ = a6.reset(seed=12)  # the second scenario's hosts come after the first's two
    assert np.array_equal(obs, np.concatenate([o4, o6])) and len(info["groups"]) == 2
    rng = np.random.default_rng(0)
    for _ in range(STEPS + 1):
        a = rng.uniform(-1, 1, size=(env.num_envs, 1))
        obs, r, term, trunc, info = env.step(a)
        p4, p6 = a4.step(a[:8]), a6.step(a[8:])
        for k in range(4):
            assert np.array_equal((obs, r, term, trunc)[k], np.concatenate([p4[k], p6[k]]))
    with pytest.raises(ValueError, match="PerVmObservation to mix VM counts"):
        MultiScenarioVectorEnv([BalloonVectorEnv(1, SC), BalloonVectorEnv(1, SC6)])
    with pytest.raises(ValueError, match="rows"):
        env.step(np.zeros((3, 1)))


def test_training_view_equals_the_sb3_vecenv():
    """The wrapper stack (residual, per-VM, two scenarios) and the SB3 VecEnv, which uses
    the same formulas, see the same observations and rewards (before any episode ends:
    their autoreset conventions differ)."""
    from agents.learners.sb3.vec_env import BalloonSB3VecEnv

    steps = 8
    env = multi_scenario_env([SC, SC6], 2, residual="esx", residual_scale=0.5,
                             max_episode_steps=steps + 1)  # fmt: skip
    venv = BalloonSB3VecEnv(2, [SC, SC6], layout="per-vm", residual="esx", residual_scale=0.5,
                            max_episode_steps=steps + 1, step_info=False)  # fmt: skip
    venv.seed(4)
    assert np.array_equal(env.reset(seed=4)[0], venv.reset())
    rng = np.random.default_rng(2)
    for _ in range(steps):
        a = rng.uniform(-1, 1, size=(env.num_envs, 1)).astype(np.float32)
        obs, r, *_ = env.step(a)
        obs2, r2, _done, _ = venv.step(a)
        assert np.array_equal(obs, obs2) and np.allclose(r, r2.astype(np.float64), rtol=1e-6)
