"""Variance reduction options of ``reclaim train``: seed groups with the group-mean
baseline (agents.learners.sb3.varred) and the per-VM reward."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer

from agents.learners.sb3.train import (
    ConfigError,
    TrainConfig,
    check_run_dir,
    make_model,
    make_train_env,
    train,
)
from agents.learners.sb3.varred import GroupBaselineCallback, group_baseline_advantages
from agents.learners.sb3.vec_env import BalloonSB3VecEnv
from agents.runs import RunDir
from experiments.cli import main as cli_main

TINY = dict(
    total_timesteps=256, n_envs=4, max_episode_steps=32, eval_freq=0, eval_episodes=1,
    checkpoint_freq=128, progress_bar=False, tensorboard=False,
)  # fmt: skip


# ------------------------------------------------------------------ seed groups
def _record_demand(venv: BalloonSB3VecEnv) -> list[list]:
    """Wrap every group's workload draw: the list of its demands (copies), per group."""
    logs: list[list] = []
    for core in venv.cores:
        wl, log = core.sim.workload, []
        draw = wl.draw

        def recording(*a, _draw=draw, _log=log, **k):
            d = _draw(*a, **k)
            _log.append(d.copy())
            return d

        wl.draw = recording
        logs.append(log)
    return logs


@pytest.mark.parametrize("layout", ["per-vm", "flat"])
def test_a_seed_group_replays_one_workload_across_autoresets(layout):
    """Members of a group draw identical references at every tick, episode after episode
    (a member whose episode ends early restarts its group), and groups differ."""
    scenarios = ["default-v1", "default-v0"] if layout == "per-vm" else ["default-v1"]
    # Per-host limits: in each group one member's episode ends first, cutting the other's.
    venv = BalloonSB3VecEnv(4, scenarios, layout=layout, seed_group_size=2,
                            max_episode_steps=[7, 11, 11, 7], step_info=False)  # fmt: skip
    assert venv.seed(5) == [5, 5, 6, 6, 7, 7, 8, 8][: venv.num_hosts]
    venv.reset()
    logs = _record_demand(venv)
    rng = np.random.default_rng(0)
    hosts = [venv._host_of(i) for i in range(venv.num_envs)]
    group_of = [(id(core), b // 2) for core, b in hosts]
    seeds = []
    cut = 0
    for _ in range(30):  # > 4 episodes
        a = rng.uniform(-1, 1, size=(venv.num_envs,) + venv.action_space.shape)
        _, _, done, infos = venv.step(a.astype(np.float32))
        cut += sum(bool(i.get("TimeLimit.truncated")) for i in infos)
        seeds.append([list(c.episode_seed) for c in venv.cores])
        for key in set(group_of):  # a group's members end together
            rows = [i for i, k in enumerate(group_of) if k == key]
            assert len(set(done[rows].tolist())) == 1
    assert cut > 0
    for log in logs:
        assert len(log) == 30
        for d in log:
            refs, writes = d.refs, d.writes  # (B, V, R)
            np.testing.assert_array_equal(refs[0], refs[1])
            np.testing.assert_array_equal(refs[2], refs[3])
            np.testing.assert_array_equal(writes[0], writes[1])
        assert any(not np.array_equal(d.refs[0], d.refs[2]) for d in log), "groups must differ"
    s = np.array(seeds)  # (T, groups of scenario, B)
    assert (s[..., 0] == s[..., 1]).all() and (s[..., 2] == s[..., 3]).all()
    assert (s[..., 0] != s[..., 2]).all()
    assert len(np.unique(s[:, 0, 0])) >= 4  # new seeds at every restart
    if len(scenarios) > 1:  # groups of other scenarios have other seeds
        assert (s[:, 0, 0] != s[:, 1, 0]).all()


def test_seed_groups_without_a_seed_draw_one_entropy_per_group():
    venv = BalloonSB3VecEnv(4, "default-v1", layout="flat", seed_group_size=2, step_info=False)
    venv.seed(None)
    venv.reset()
    s = list(venv.core.episode_seed)
    assert s[0] == s[1] and s[2] == s[3] and s[0] != s[2]
    venv.reset()  # again without a seed: from the members' (identical) generators
    t = venv.core.episode_seed
    assert t[0] == t[1] and t[2] == t[3] and t[0] != s[0]


def test_baseline_groups():
    venv = BalloonSB3VecEnv(2, ["default-v1", "boot-storm-v0"], layout="per-vm",
                            seed_group_size=2, step_info=False)  # fmt: skip
    V0, V1 = (c.num_vms for c in venv.cores)
    ids = venv.baseline_groups
    assert ids.shape == (venv.num_envs,)
    first = ids[: 2 * V0].reshape(2, V0)  # host-major, VM i of each host together
    assert (first[0] == first[1]).all() and len(set(first[0])) == V0
    second = ids[2 * V0 :].reshape(2, V1)
    assert (second[0] == second[1]).all() and not set(second[0]) & set(first[0])
    flat = BalloonSB3VecEnv(4, "default-v1", seed_group_size=2, step_info=False)
    assert flat.baseline_groups.tolist() == [0, 0, 1, 1]
    assert BalloonSB3VecEnv(3, "default-v1", step_info=False).baseline_groups.tolist() == [0, 1, 2]


def test_seed_group_vec_env_errors():
    with pytest.raises(ValueError, match=r"hosts_per_scenario \(3\) must be a multiple of seed_group_size \(2\)"):  # noqa: E501
        BalloonSB3VecEnv(3, "default-v1", seed_group_size=2)
    with pytest.raises(ValueError, match="reward 'per-vm' needs layout 'per-vm'"):
        BalloonSB3VecEnv(2, "default-v1", layout="flat", reward="per-vm")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(seed_group_size=3, n_envs=4), r"n_envs \(4\) must be a multiple of seed_group_size \(3\)"),  # noqa: E501
        (dict(seed_group_size=4, n_envs=4, scenario="default-v1,default-v0"), r"n_envs \(4\) must be a multiple of seed_group_size \(4\) for each of the 2 scenario\(s\): 2 host"),  # noqa: E501
        (dict(seed_group_size=3), r"n_envs \(16\) must be a multiple"),  # the default n_envs
        (dict(seed_group_size=0), "seed_group_size must be an int >= 1"),
        (dict(seed_group_size=2, algo="sac", n_envs=4), "on-policy algorithms"),
        (dict(reward="vm"), "reward must be one of"),
        (dict(reward="per-vm", layout="flat"), "--reward per-vm needs --layout per-vm"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


# ---------------------------------------------------------------- the baseline
def _gae(rewards, values, starts, last_values, last_dones, gamma, lam):
    """SB3's GAE(λ), written out: returns = advantages + values."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    last = np.zeros(N)
    for t in reversed(range(T)):
        if t == T - 1:
            nonterminal, next_v = 1.0 - last_dones, last_values
        else:
            nonterminal, next_v = 1.0 - starts[t + 1], values[t + 1]
        delta = rewards[t] + gamma * next_v * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
    return adv + values


def test_group_baseline_on_a_hand_made_buffer():
    import torch

    T, N, gamma, lam = 3, 4, 0.9, 0.8
    rewards = np.array([[1.0, 2.0, -1.0, 0.5], [0.0, 1.0, 3.0, -2.0], [2.0, -1.0, 0.0, 1.0]])
    values = np.array([[0.5, 0.1, 0.2, -0.3], [1.0, 0.0, 0.4, 0.2], [0.3, 0.6, -0.5, 0.0]])
    starts = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 1, 1]], dtype=np.float64)
    last_values, last_dones = np.array([0.2, -0.1, 0.7, 0.3]), np.array([0.0, 0.0, 1.0, 1.0])
    buf = RolloutBuffer(T, spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), device="cpu",
                        gae_lambda=lam, gamma=gamma, n_envs=N)  # fmt: skip
    for t in range(T):
        buf.add(np.zeros((N, 2), np.float32), np.zeros((N, 1), np.float32), rewards[t],
                starts[t], torch.tensor(values[t]), torch.zeros(N))  # fmt: skip
    buf.compute_returns_and_advantage(torch.tensor(last_values), last_dones)
    R = _gae(rewards, values, starts, last_values, last_dones, gamma, lam)
    np.testing.assert_allclose(buf.returns, R, rtol=1e-6)
    groups = np.array([7, 7, 3, 3])
    want = np.empty_like(R)
    want[:, :2] = R[:, :2] - R[:, :2].mean(axis=1, keepdims=True)
    want[:, 2:] = R[:, 2:] - R[:, 2:].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(group_baseline_advantages(buf.returns, groups), want, rtol=1e-6)
    cb = GroupBaselineCallback(groups)
    cb.model = types.SimpleNamespace(rollout_buffer=buf)
    returns = buf.returns.copy()
    cb.on_rollout_end()
    np.testing.assert_allclose(buf.advantages, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(buf.returns, returns)  # the value target is unchanged
    # a row alone in its group has advantage 0
    assert (group_baseline_advantages(R, np.array([0, 1, 1, 2]))[:, [0, 3]] == 0).all()


def test_training_uses_the_group_baseline():
    """After a PPO rollout on seed groups, the advantages sum to zero over each group at
    every step (and they would not with SB3's own GAE advantages)."""
    cfg = TrainConfig(seed_group_size=2, n_steps=16, **{**TINY, "n_envs": 4})
    venv = make_train_env(cfg)
    from agents.learners.sb3.train import wrap_normalize

    model = make_model(cfg, wrap_normalize(venv, cfg))
    model.learn(64 * venv.agents_per_host, callback=GroupBaselineCallback(venv.baseline_groups))
    buf = model.rollout_buffer
    N = venv.num_envs
    adv = buf.advantages.reshape(N, -1).T  # train() flattened it env-major
    ret = buf.returns.reshape(N, -1).T
    ids = venv.baseline_groups
    for g in np.unique(ids):
        np.testing.assert_allclose(adv[:, ids == g].sum(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(adv, group_baseline_advantages(ret, ids), atol=1e-5)


# ---------------------------------------------------------------- per-VM reward
def test_per_vm_reward_rows_are_the_vms_own():
    kw = dict(layout="per-vm", step_info=True, max_episode_steps=10)
    own = BalloonSB3VecEnv(2, "default-v1", reward="per-vm", **kw)
    host = BalloonSB3VecEnv(2, "default-v1", **kw)
    V = own.core.num_vms
    for e in (own, host):
        e.seed(9)
        e.reset()
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(12):  # across an autoreset
        a = rng.uniform(-1, 1, size=(own.num_envs, 1)).astype(np.float32)
        _, r_own, d_own, infos = own.step(a)
        _, r_host, d_host, h_infos = host.step(a)
        np.testing.assert_array_equal(d_own, d_host)
        for b in range(2):
            np.testing.assert_array_equal(r_own[b * V : (b + 1) * V],
                                          infos[b * V]["vm_reward"].astype(np.float32))  # fmt: skip
            assert r_own[b * V : (b + 1) * V].mean() == pytest.approx(r_host[b * V], rel=1e-5)
        if d_own.any():  # episode statistics stay the host's return
            ended += 1
            assert infos[0]["episode"]["r"] == h_infos[0]["episode"]["r"]
    assert ended == 1
    assert (np.ptp(r_own.reshape(2, V), axis=1) > 0).any()


# ------------------------------------------------------------- train, configs
@pytest.mark.parametrize("extra", [
    dict(seed_group_size=2),
    dict(seed_group_size=2, algo="a2c"),
    dict(reward="per-vm"),
])  # fmt: skip
def test_tiny_training_runs_with_each_option(tmp_path, monkeypatch, extra):
    calls = []
    adjust = GroupBaselineCallback._on_rollout_end
    monkeypatch.setattr(GroupBaselineCallback, "_on_rollout_end",
                        lambda self: calls.append(1) or adjust(self))  # fmt: skip
    cfg = TrainConfig(runs_dir=str(tmp_path), **TINY, **extra)
    res = train(cfg)
    assert res.env_steps >= 256
    assert bool(calls) == ("seed_group_size" in extra)  # one adjustment per rollout
    saved = json.loads((cfg.run_dir / "config.json").read_text())["config"]
    for k, v in extra.items():
        assert saved[k] == v
    more = TrainConfig(runs_dir=str(tmp_path), resume=True, **{**TINY, "total_timesteps": 384},
                       **extra)  # fmt: skip
    assert train(more).env_steps >= 384


def test_configs_without_the_new_fields_are_unchanged_and_resume(tmp_path):
    cfg = TrainConfig(runs_dir=str(tmp_path), resume=True, **TINY)
    d = cfg.to_dict()
    assert "seed_group_size" not in d and "reward" not in d  # today's config.json
    run = cfg.run_dir
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": d}))
    with pytest.raises(ConfigError, match="no checkpoint"):  # past the config check
        check_run_dir(cfg)
    other = TrainConfig(runs_dir=str(tmp_path), resume=True, seed_group_size=2, **TINY)
    with pytest.raises(ConfigError, match=r"config differs in \['seed_group_size'\] \(was \[1\], now \[2\]\)"):  # noqa: E501
        check_run_dir(other)
    # a run that used an option cannot be resumed without it
    (run / "config.json").write_text(json.dumps({"config": {**d, "reward": "per-vm"}}))
    with pytest.raises(ConfigError, match=r"config differs in \['reward'\]"):
        check_run_dir(cfg)
    assert RunDir(run).read_config()["config"]["reward"] == "per-vm"


def test_help_shows_the_options(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--seed-group-size" in out and "--reward" in out


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_per_vm_observation_pays_each_vm_its_own_reward(mode):
    from agents.wrappers import PerVmObservation
    from envs.vector_env import BalloonVectorEnv

    kw = dict(max_episode_steps=[4, 6], autoreset_mode=mode)
    own = PerVmObservation(BalloonVectorEnv(2, "default-v1", **kw), reward="per-vm")
    host = PerVmObservation(BalloonVectorEnv(2, "default-v1", **kw))
    V = own.vms_per_host
    own.reset(seed=3)
    host.reset(seed=3)
    rng = np.random.default_rng(2)
    ends, spread = 0, 0.0
    for _ in range(14):  # across autoresets of both kinds
        a = rng.uniform(-1, 1, size=(own.num_envs, 1))
        _, r_own, term, trunc, _ = own.step(a)
        _, r_host, *_ = host.step(a)
        ends += int((term | trunc).sum())
        spread = max(spread, float(np.ptp(r_own.reshape(2, V), axis=1).max()))
        np.testing.assert_allclose(r_own.reshape(2, V).mean(axis=1), r_host[::V], rtol=1e-12)
        assert (r_own.reshape(2, V) == 0).all(axis=1).tolist() == (r_host[::V] == 0).tolist()
    assert ends > 0 and spread > 0  # the VMs' rewards differ
    with pytest.raises(ValueError, match="reward must be 'host' or 'per-vm'"):
        PerVmObservation(BalloonVectorEnv(1, "default-v1"), reward="vm")
