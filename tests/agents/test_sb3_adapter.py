"""The Stable-Baselines3 VecEnv (agents.learners.sb3.vec_env): SB3's contract, checked
against DummyVecEnv of BalloonEnvs in both observation layouts and with several scenarios."""

from __future__ import annotations

import time

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.learners.sb3.vec_env import BalloonSB3VecEnv, env_actions, per_vm_features
from envs.balloon_env import BalloonEnv
from envs.env_batch import ACTION_MODES
from envs.scenarios import scenario_ids
from tests.envs.helpers import OOM_PRONE, assert_same, uneven_actions


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
        a = uneven_actions(rng, len(limits), t, bool(overrides))
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


# ------------------------------------------------- layouts and several scenarios
def _host_actions(rng, vms, mode):
    """One action per VM of every host (a list of (V_h,) arrays)."""
    if mode == "discrete":
        return [rng.integers(0, 3, size=v) for v in vms]
    return [rng.uniform(-1, 1, size=v).astype(np.float32) for v in vms]


def _per_vm(obs_by_host):
    """Per-VM rows of each host's flat observation, concatenated in host order."""
    return np.concatenate([per_vm_features(o[None]) for o in obs_by_host])


def _expected_infos(ref_infos, vms, layout):
    """DummyVecEnv's per-host infos as our rows see them (per-vm: one copy per VM, the
    terminal observation in that VM's per-VM features)."""
    if layout == "flat":
        return ref_infos
    out = []
    for info, v in zip(ref_infos, vms, strict=True):
        for i in range(v):
            row = dict(info)
            if "terminal_observation" in info:
                row["terminal_observation"] = per_vm_features(info["terminal_observation"][None])[i]
            out.append(row)
    return out


CASES = [
    ("flat", ("default-v0", "thrash-v0"), "absolute"),
    ("flat", ("default-v0", "steady-v0"), "discrete"),
    ("per-vm", ("default-v0", "boot-storm-v0", "thrash-v0"), "absolute"),
    ("per-vm", ("boot-storm-v0", "default-v0"), "discrete"),
]


class _Reference:
    """One DummyVecEnv of BalloonEnvs per scenario (their observation sizes may differ),
    hosts counted over the scenarios in order, as one VecEnv."""

    def __init__(self, scenarios, limits, mode):
        self.groups = [
            DummyVecEnv(
                [lambda sc=sc, n=n: BalloonEnv(sc, max_episode_steps=n, action_mode=mode)
                 for n in limits]
            )
            for sc in scenarios
        ]  # fmt: skip
        self.vms = [e.config.num_vms for g in self.groups for e in g.envs]

    def seed(self, s):
        return sum((g.seed(s + j * g.num_envs) for j, g in enumerate(self.groups)), [])

    def reset(self):
        return [o for g in self.groups for o in g.reset()]

    @property
    def reset_infos(self):
        return [i for g in self.groups for i in g.reset_infos]

    def step(self, host_actions):
        obs, rew, done, infos, h = [], [], [], [], 0
        for g in self.groups:
            o, r, d, i = g.step(np.stack(host_actions[h : h + g.num_envs]))
            h += g.num_envs
            obs.extend(o)
            rew.append(r)
            done.append(d)
            infos.extend(i)
        return obs, np.concatenate(rew), np.concatenate(done), infos


@pytest.mark.parametrize(("layout", "scenarios", "mode"), CASES)
def test_layouts_and_scenarios_equal_dummy_vec_env(layout, scenarios, mode):
    limits = [2, 5, 7]  # per host of each scenario: episodes end unevenly
    ours = BalloonSB3VecEnv(
        len(limits), scenarios, layout=layout, max_episode_steps=limits, action_mode=mode
    )
    ref = _Reference(scenarios, limits, mode)
    vms = ref.vms
    k = np.array(vms) if layout == "per-vm" else np.ones(len(vms), dtype=int)
    assert ours.num_envs == k.sum() and ours.num_hosts == len(vms)

    def want(obs):
        return _per_vm(obs) if layout == "per-vm" else np.stack(obs)

    assert ours.seed(3) == ref.seed(3)
    assert_same(ours.reset(), want(ref.reset()))
    assert_same(ours.reset_infos, _expected_infos(ref.reset_infos, vms, layout))
    rng = np.random.default_rng(5)
    ended = np.zeros(len(vms), dtype=int)
    for t in range(16):
        acts = _host_actions(rng, vms, mode)
        if layout == "per-vm":
            a = np.concatenate(acts)
            a = a if mode == "discrete" else a[:, None]
        else:
            a = np.stack(acts)
        o1, r1, d1, i1 = ours.step(a)
        o2, r2, d2, i2 = ref.step(acts)
        assert_same((o1, r1, d1), (want(o2), np.repeat(r2, k), np.repeat(d2, k)), f"step {t}")
        assert_same(_pop_episode(i1), _expected_infos(i2, vms, layout), f"step {t} infos")
        for r in np.nonzero(d1)[0]:
            assert i1[r]["terminal_observation"].shape == ours.observation_space.shape
            assert not np.array_equal(i1[r]["terminal_observation"], o1[r])  # per index
        assert_same(ours.reset_infos, _expected_infos(ref.reset_infos, vms, layout))
        ended += d2
    assert ended.tolist() == [8, 3, 2] * len(scenarios)


@pytest.mark.parametrize(("layout", "scenarios", "mode"), CASES[::2])
def test_without_step_info_only_the_counters_are_left_out(layout, scenarios, mode):
    kw = {"layout": layout, "max_episode_steps": [3, 4], "action_mode": mode}
    full = BalloonSB3VecEnv(2, scenarios, **kw)
    lean = BalloonSB3VecEnv(2, scenarios, step_info=False, **kw)
    full.seed(9)
    lean.seed(9)
    assert_same(full.reset(), lean.reset())
    assert all(info == {} for info in lean.reset_infos)
    lean_keys = {"TimeLimit.truncated", "terminal_observation", "episode_summary", "episode"}
    rng = np.random.default_rng(2)
    for t in range(9):
        a = np.stack([full.action_space.sample() for _ in range(full.num_envs)])
        if mode != "discrete":
            a = rng.uniform(-1, 1, size=a.shape).astype(np.float32)
        o1, r1, d1, i1 = full.step(a)
        o2, r2, d2, i2 = lean.step(a)
        assert_same((o1, r1, d1), (o2, r2, d2), f"step {t}")
        for f, g in zip(_pop_episode(i1), _pop_episode(i2), strict=True):
            assert set(g) <= lean_keys - {"episode"}
            assert_same({key: f[key] for key in g}, g, f"step {t} infos")


def test_seeds_count_hosts_over_scenarios():
    env = BalloonSB3VecEnv(2, ("default-v0", "boot-storm-v0"), layout="per-vm")
    assert env.num_envs == 2 * 4 + 2 * 6 and env.agents_per_host == 5.0
    assert env.seed(100) == [100, 101, 102, 103]
    env.reset()
    assert [c.episode_seed for c in env.cores] == [[100, 101], [102, 103]]
    with pytest.raises(AttributeError, match="cores"):
        _ = env.core


def test_env_actions_honour_the_layout():
    per_vm = np.arange(8, dtype=np.float32)  # 2 hosts of 4 VMs, VM-major per host
    want = np.arange(8, dtype=np.float64).reshape(2, 4)
    assert_same(env_actions(per_vm, "per-vm", "absolute", 2, 4), want)
    assert_same(env_actions(per_vm[:, None], "per-vm", "absolute", 2, 4), want)
    assert_same(env_actions(want, "flat", "absolute", 2, 4), want)
    assert_same(env_actions(np.ones((2, 4)), "flat", "discrete", 2, 4), np.ones((2, 4), np.int64))
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        env_actions(per_vm, "flat", "absolute", 2, 4)  # per-VM rows given to a flat env
    with pytest.raises(ValueError, match=r"shape \(8,\) or \(8, 1\)"):
        env_actions(want, "per-vm", "absolute", 2, 4)
    with pytest.raises(ValueError, match="layout"):
        env_actions(want, "grid", "absolute", 2, 4)


def test_per_vm_features_layout():
    rng = np.random.default_rng(0)
    V = 3
    obs = rng.uniform(size=(2, 13 * V + 4)).astype(np.float32)
    x = per_vm_features(obs)
    assert x.shape == (2 * V, 43) and x.dtype == np.float32
    for b in range(2):
        vm = obs[b, : 13 * V].reshape(V, 13)
        for i in range(V):
            row = x[b * V + i]
            assert_same(row[:13], vm[i])
            np.testing.assert_allclose(row[13:26], vm.mean(axis=0), rtol=1e-6)
            assert_same(row[26:39], vm.max(axis=0))
            assert_same(row[39:], obs[b, 13 * V :])
    with pytest.raises(ValueError, match="13·V"):
        per_vm_features(obs[:, :-1])


def test_flat_layout_needs_one_vm_count():
    with pytest.raises(ValueError, match="one VM count"):
        BalloonSB3VecEnv(1, ("default-v0", "boot-storm-v0"), layout="flat")
    with pytest.raises(ValueError, match="layout"):
        BalloonSB3VecEnv(1, layout="grid")
    with pytest.raises(ValueError, match="at least one scenario"):
        BalloonSB3VecEnv(1, ())


def test_training_uses_this_vec_env():
    from agents.learners.sb3.train import TrainConfig, make_train_env

    cfg = TrainConfig(scenario="default-v0,boot-storm-v0", layout="per-vm")
    env = make_train_env(cfg)
    assert isinstance(env, BalloonSB3VecEnv)
    assert env.scenarios == ("default-v0", "boot-storm-v0")
    assert env.layout == "per-vm" and not env.step_info


@pytest.mark.parametrize("action_mode", ["absolute", "absolute-hold"])
@pytest.mark.parametrize("overrides", [{}, OOM_PRONE])
def test_balloon_v2_options_equal_dummy_vec_env(action_mode, overrides):
    """Observation v2, a decision period (episodes ending inside a period) and holding
    reach the SB3 VecEnv through EnvBatch: it equals DummyVecEnv of BalloonEnvs."""
    limits = [7, 10, 40] if not overrides else [40, 40, 40]
    kw = dict(obs_version=2, decision_period_s=3.0, hold_deadband=0.05, **overrides)
    ours = BalloonSB3VecEnv(len(limits), max_episode_steps=limits, action_mode=action_mode, **kw)
    ref = _dummy(limits, action_mode=action_mode, **kw)
    assert ours.observation_space == ref.observation_space
    assert ours.action_space == ref.action_space
    ours.seed(2)
    ref.seed(2)
    assert_same(ours.reset(), ref.reset())
    rng = np.random.default_rng(3)
    ended = np.zeros(len(limits), dtype=int)
    n = ours.action_space.shape[0]
    for t in range(12):
        a = rng.uniform(-1, 1, size=(len(limits), n)).astype(np.float32)
        if overrides:  # envs 0 and 1 without a balloon: host OOM at different steps
            a[:2, :4] = -1.0
            a[:2, 4:] = -1.0
        o1, r1, d1, i1 = ours.step(a)
        o2, r2, d2, i2 = ref.step(a)
        assert_same((o1, r1, d1), (o2, r2, d2), f"step {t}")
        assert_same(_pop_episode(i1), i2, f"step {t} infos")
        ended += d1
    assert ended[:2].min() >= 1
    # The per-VM layout of the same hosts: each row from the v2 observation.
    per_vm = BalloonSB3VecEnv(
        len(limits), max_episode_steps=limits, layout="per-vm", action_mode=action_mode, **kw
    )
    per_vm.seed(2)
    ref.seed(2)
    assert_same(per_vm.reset(), per_vm_features(ref.reset(), 2))
    assert per_vm.observation_space.shape == (3 * 20 + 5,)
