"""reclaim/Balloon-v2's agent interface: observation v2, the decision period, holding.

Every new feature is checked against the info it scales; the decision period against a
one-tick env stepped k times with the same action (exact equality); holding against
the targets the simulator reports; the vector env against a SyncVectorEnv of single
envs; records with a period against their replay.
"""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.balloon_env import BalloonEnv
from envs.env_batch import (
    ALL_ACTION_MODES,
    HOST_FEATURES,
    HOST_FEATURES_V2,
    VM_FEATURES,
    VM_FEATURES_V2,
    make_config,
    observation_names,
    observation_size,
)
from envs.records import EpisodeRecord, record_episode, validate
from envs.scenarios import get_scenario
from envs.vector_env import BalloonVectorEnv
from experiments.cli import main as cli_main
from tests.envs.helpers import OOM_PRONE, assert_same, uneven_actions


def _feature(obs, names, name):
    return obs[names.index(name)]


# ------------------------------------------------------------------ observation v2
def test_v2_registration_defaults():
    env = gym.make(envs.ENV_ID_V2).unwrapped
    c = env.config
    assert (c.scenario_id, c.obs_version) == ("default-v1", 2)
    assert c.decision_period_s == envs.BALLOON_V2_DECISION_PERIOD_S
    assert c.ticks_per_step == round(envs.BALLOON_V2_DECISION_PERIOD_S * 1000 / c.params.tick_ms)
    assert (c.action_mode, c.hold_deadband) == ("absolute", envs.BALLOON_V2_HOLD_DEADBAND)
    # The old ids keep observation v1 and one tick per step.
    for env_id in (envs.ENV_ID, envs.ENV_ID_V1):
        old = gym.make(env_id).unwrapped
        assert (old.config.obs_version, old.config.ticks_per_step) == (1, 1)
        V = old.config.num_vms
        assert old.observation_space.shape == (13 * V + 4,)


def test_v2_names_shape_and_v1_prefix():
    V = 4
    names = observation_names(V, 2)
    assert len(names) == len(set(names)) == observation_size(V, 2) == 20 * V + 5
    assert names[: 13 * V + 4] == observation_names(V) == observation_names(V, 1)
    assert names[13 * V + 4] == "vm0/guest_used_frac"
    assert names[13 * V + 4 + len(VM_FEATURES_V2)] == "vm1/guest_used_frac"
    assert names[-1] == "host/ksm_saved_frac"
    assert len(VM_FEATURES) + len(VM_FEATURES_V2) == 20
    assert len(HOST_FEATURES) + len(HOST_FEATURES_V2) == 5
    with pytest.raises(ValueError, match="obs_version"):
        observation_names(V, 3)
    with pytest.raises(ValueError, match="obs_version"):
        BalloonEnv(obs_version=True)
    # The v1 prefix of a v2 observation is the v1 observation, step by step.
    v1 = BalloonEnv("default-v1", max_episode_steps=12)
    v2 = BalloonEnv("default-v1", max_episode_steps=12, obs_version=2)
    assert v2.observation_names == names
    o1, _ = v1.reset(seed=4)
    o2, _ = v2.reset(seed=4)
    np.testing.assert_array_equal(o2[: o1.size], o1)
    rng = np.random.default_rng(0)
    for _ in range(12):
        a = rng.uniform(-1, 1, V).astype(np.float32)
        o1, r1, *_ = v1.step(a)
        o2, r2, *_ = v2.step(a)
        np.testing.assert_array_equal(o2[: o1.size], o1)
        assert r1 == r2
        assert v2.observation_space.contains(o2)


def _expected_v2(env, info):
    """The v2 features from info, by the formulas of BalloonEnv's docstring."""
    prm = env.params
    M = np.array([v.guest_pages for v in prm.vms], dtype=np.float64)
    S = np.array([v.guest_swap_pages for v in prm.vms], dtype=np.float64)
    vm = info["vm"]
    want = {
        "guest_used_frac": vm["guest_used_pages"] / M,
        "committed_frac": np.minimum(vm["guest_committed_pages"] / M, 1.0),
        "guest_swap_used_frac": np.where(S > 0, vm["guest_swap_used"] / np.maximum(S, 1), 0.0),
        "guest_swap_capacity_frac": S / (M + S),
        "host_resident_frac": vm["host_resident_pages"] / M,
        "host_shared_frac": vm["host_shared_pages"] / M,
        "guest_oom_kill": np.minimum(vm["guest_oom_kills"], 1),
    }
    host = {"ksm_saved_frac": info["host"]["sharing_saved_frames"] / prm.host_frames}
    return want, host


@pytest.mark.parametrize("scenario", ["default-v1", "swapless-v1", "default-v0"])
def test_each_v2_feature_scales_its_gauge(scenario):
    env = BalloonEnv(scenario, obs_version=2, max_episode_steps=40, **OOM_PRONE)
    names = env.observation_names
    V = env.config.num_vms
    obs, info = env.reset(seed=2)
    seen = {n: 0.0 for n in VM_FEATURES_V2 + HOST_FEATURES_V2}
    rng = np.random.default_rng(3)
    for _ in range(40):
        want, host = _expected_v2(env, info)
        for f, w in want.items():
            got = np.array([_feature(obs, names, f"vm{i}/{f}") for i in range(V)])
            np.testing.assert_allclose(got, np.clip(w, 0, 1), rtol=1e-6, atol=0, err_msg=f)
            seen[f] = max(seen[f], float(got.max()))
        for f, w in host.items():
            assert _feature(obs, names, f"host/{f}") == pytest.approx(min(w, 1.0), rel=1e-6)
            seen[f] = max(seen[f], float(_feature(obs, names, f"host/{f}")))
        assert env.observation_space.contains(obs)
        obs, _, term, trunc, info = env.step(rng.uniform(-1, 0, V).astype(np.float32))
        if term or trunc:
            break
    # The gauges the heuristics read do move (the test would otherwise check only zeros).
    for f in ("guest_used_frac", "committed_frac", "host_resident_frac"):
        assert seen[f] > 0, f
    if scenario == "swapless-v1":
        assert all(v.guest_swap_pages == 0 for v in env.params.vms)
        assert seen["guest_swap_capacity_frac"] == 0.0
        assert seen["guest_swap_used_frac"] == 0.0
    else:
        assert seen["guest_swap_capacity_frac"] > 0


def test_v2_features_reach_swap_sharing_and_oom():
    """On a host that runs short, the guest swap, KSM and OOM-kill features become nonzero
    and still equal their gauges (so the scales are exercised away from zero). Guest swap
    is half the guest's memory here, so a swap scale of M instead of S would show."""
    base = get_scenario("default-v1").params
    vms = tuple(dataclasses.replace(v, guest_swap_pages=v.guest_pages // 2) for v in base.vms)
    env = BalloonEnv("default-v1", obs_version=2, max_episode_steps=200, vms=vms)
    cap = env.observation_names.index("vm0/guest_swap_capacity_frac")
    names = env.observation_names
    V = env.config.num_vms
    obs, info = env.reset(seed=0)
    seen = {n: 0.0 for n in VM_FEATURES_V2 + HOST_FEATURES_V2}
    for _ in range(200):
        obs, _, term, trunc, info = env.step(np.ones(V, np.float32))  # largest balloons
        want, host = _expected_v2(env, info)
        for f, w in want.items():
            got = np.array([_feature(obs, names, f"vm{i}/{f}") for i in range(V)])
            np.testing.assert_allclose(got, np.clip(w, 0, 1), rtol=1e-6, err_msg=f)
            seen[f] = max(seen[f], float(got.max()))
        seen["ksm_saved_frac"] = max(seen["ksm_saved_frac"], float(obs[-1]))
        assert obs[-1] == pytest.approx(host["ksm_saved_frac"], rel=1e-6)
        if term or trunc:
            break
    assert obs[cap] == np.float32(1 / 3)  # S / (M + S) with S = M / 2
    assert seen["guest_swap_used_frac"] > 0
    assert seen["ksm_saved_frac"] > 0
    assert seen["host_shared_frac"] > 0


# ------------------------------------------------------------------ decision period
def _actions(mode, V, n, seed=0):
    rng = np.random.default_rng(seed)
    if mode == "discrete":
        return [rng.integers(0, 3, V) for _ in range(n)]
    size = 2 * V if mode == "absolute-hold" else V
    return [rng.uniform(-1, 1, size).astype(np.float32) for _ in range(n)]


def _tick_steps(env, action, k):
    """Step a one-tick env k times (or to the episode's end) with ``action``: the reward
    summed, the last tick's obs / flags / info, the summed reward terms, per-VM rewards
    and event totals, and the ticks run."""
    reward, terms, totals, ticks, vm_reward = 0.0, None, None, 0, None
    for _ in range(k):
        obs, r, term, trunc, info = env.step(action)
        ticks += 1
        reward += r
        if terms is None:
            terms = dict(info["reward_terms"])
            totals = {n: info["vm"][n].copy() for n in envs.sim.counters.VM_EVENTS}
            vm_reward = info["vm_reward"].copy()
        else:
            for n in terms:
                terms[n] += info["reward_terms"][n]
            for n in totals:
                totals[n] += info["vm"][n]
            vm_reward += info["vm_reward"]
        if term or trunc:
            break
    info = dict(info, reward_terms=terms, ticks=ticks, step_totals=totals, vm_reward=vm_reward)
    return obs, reward, term, trunc, info


@pytest.mark.parametrize(
    ("mode", "deadband"),
    [("absolute", 0.0), ("delta", 0.0), ("discrete", 0.0), ("absolute-hold", 0.05),
     ("absolute", 0.1)],
)  # fmt: skip
def test_a_period_is_k_ticks_of_the_same_action(mode, deadband):
    k, limit = 3, 20  # 7 steps, the last one 2 ticks
    kw = dict(max_episode_steps=limit, action_mode=mode, hold_deadband=deadband, obs_version=2)
    slow = BalloonEnv("default-v1", **kw)
    fast = BalloonEnv("default-v1", decision_period_s=k * 1.0, **kw)
    assert fast.config.max_decisions == 7
    assert_same(fast.reset(seed=5), slow.reset(seed=5))
    steps = 0
    for a in _actions(mode, 4, 10):
        want = _tick_steps(slow, a, k)
        got = fast.step(a)
        assert_same(got, want, f"step {steps}")
        steps += 1
        if got[2] or got[3]:
            break
    assert steps == 7 and got[3] and got[4]["ticks"] == 2
    assert got[4]["episode_summary"]["length"] == limit  # ticks


def test_episode_end_inside_a_period_ends_the_step():
    """A host OOM at tick T ends the step that holds T, with the reward up to T."""
    kw = dict(max_episode_steps=60, **OOM_PRONE)
    slow = BalloonEnv("default-v0", **kw)
    slow.reset(seed=1)
    a = np.full(4, -1.0, np.float32)  # no balloon: the host runs out of memory
    rewards = []
    while True:
        _, r, term, trunc, info = slow.step(a)
        rewards.append(r)
        if term or trunc:
            break
    assert term, "OOM_PRONE should run out of memory within 60 ticks"
    T = len(rewards)
    for k in (2, 4, 7):
        if T % k == 0:
            continue  # the case of interest: the end falls inside a period
        fast = BalloonEnv("default-v0", decision_period_s=float(k), **kw)
        fast.reset(seed=1)
        n = 0
        while True:
            _, r, term, trunc, info = fast.step(a)
            n += 1
            if term or trunc:
                break
        assert (n, term, trunc) == (-(-T // k), True, False)
        assert info["ticks"] == T - (n - 1) * k < k
        want = 0.0
        for x in rewards[(n - 1) * k :]:
            want += x
        assert r == want
        assert info["episode_summary"]["length"] == T


@pytest.mark.parametrize("bad", [0, -1.0, 1.5, 0.5, float("nan"), float("inf"), "5", True])
def test_decision_period_must_be_a_positive_multiple_of_the_tick(bad):
    with pytest.raises(ValueError, match="decision_period_s"):
        BalloonEnv("default-v1", decision_period_s=bad)


def test_decision_period_with_a_short_tick():
    cfg = make_config("default-v1", decision_period_s=0.3, tick_ms=100)
    assert cfg.ticks_per_step == 3
    with pytest.raises(ValueError, match="multiple of the tick"):
        make_config("default-v1", decision_period_s=0.25, tick_ms=100)


# ------------------------------------------------------------------ holding
def _target(info):
    return info["vm"]["balloon_target"].copy()


def test_deadband_keeps_the_target_unless_it_moves_by_more_than_the_band():
    env = BalloonEnv("default-v1", hold_deadband=0.1, max_episode_steps=50)
    maxb = np.array([v.max_balloon_pages for v in env.params.vms])
    env.reset(seed=0)
    # From 0, a target within 10 % of max_balloon is held at 0; beyond it, taken.
    frac = np.array([0.05, 0.1, 0.15, 0.5])
    a = (2 * frac - 1).astype(np.float32)
    _, _, _, _, info = env.step(a)
    want0 = np.rint(frac * maxb).astype(np.int64)
    keep = np.abs(want0) <= 0.1 * maxb
    np.testing.assert_array_equal(_target(info), np.where(keep, 0, want0))
    held = _target(info)
    # Small moves (within the band) are ignored; large ones are taken.
    frac2 = np.clip(held / maxb + np.array([0.08, -0.08, 0.3, -0.3]), 0, 1)
    a2 = (2 * frac2 - 1).astype(np.float32)
    _, _, _, _, info = env.step(a2)
    want = np.rint((a2.astype(np.float64) + 1) * 0.5 * maxb).astype(np.int64)
    moved = np.abs(np.clip(want, 0, maxb) - held) > 0.1 * maxb
    assert moved.tolist() == [False, False, True, True]
    np.testing.assert_array_equal(_target(info), np.where(moved, want, held))
    # Without the band the same actions are taken as they are.
    free = BalloonEnv("default-v1", max_episode_steps=50)
    free.reset(seed=0)
    _, _, _, _, info = free.step(a)
    np.testing.assert_array_equal(_target(info), want0)


def test_deadband_needs_absolute_targets_and_a_fraction():
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="hold_deadband"):
            BalloonEnv(hold_deadband=bad)
    with pytest.raises(ValueError, match="hold_deadband"):
        BalloonEnv(action_mode="delta", hold_deadband=0.1)


def test_absolute_hold_keeps_the_current_target_when_flagged():
    env = BalloonEnv("default-v1", action_mode="absolute-hold", max_episode_steps=50)
    V = env.config.num_vms
    maxb = np.array([v.max_balloon_pages for v in env.params.vms])
    assert env.action_space.shape == (2 * V,)
    env.reset(seed=0)
    t1 = np.array([0.2, 0.4, 0.6, 0.8], np.float32)
    # Hold right after the reset: the current target is 0.
    _, _, _, _, info = env.step(np.concatenate([t1, np.ones(V, np.float32)]))
    np.testing.assert_array_equal(_target(info), np.zeros(V, np.int64))
    # No hold (flags <= 0): the targets are taken, as in absolute mode.
    _, _, _, _, info = env.step(np.concatenate([t1, np.array([0, -1, -0.5, 0], np.float32)]))
    set1 = np.rint((t1.astype(np.float64) + 1) * 0.5 * maxb).astype(np.int64)
    np.testing.assert_array_equal(_target(info), set1)
    # Hold VMs 0 and 2 while asking for other targets: only VMs 1 and 3 move.
    t2 = -t1
    _, _, _, _, info = env.step(np.concatenate([t2, np.array([1, -1, 0.01, -1], np.float32)]))
    set2 = np.rint((t2.astype(np.float64) + 1) * 0.5 * maxb).astype(np.int64)
    np.testing.assert_array_equal(_target(info), np.where([1, 0, 1, 0], set1, set2))
    # The same actions in absolute mode give the unheld targets.
    plain = BalloonEnv("default-v1", max_episode_steps=50)
    plain.reset(seed=0)
    _, _, _, _, info = plain.step(t2)
    np.testing.assert_array_equal(_target(info), set2)
    with pytest.raises(ValueError, match="shape"):
        env.step(t1)


# ------------------------------------------------------------------ checkers
@pytest.mark.parametrize("mode", ALL_ACTION_MODES)
def test_check_env_on_balloon_v2(mode):
    # The dead-band applies to absolute targets only: the other modes turn it off.
    band = {} if mode in ("absolute", "absolute-hold") else {"hold_deadband": 0.0}
    env = gym.make(envs.ENV_ID_V2, action_mode=mode, max_episode_steps=-1, **band)
    check_env(env.unwrapped, skip_render_check=True)
    kw = {**_v2_kwargs(), **band}
    sb3_check_env(BalloonEnv(**kw, action_mode=mode, max_episode_steps=12), warn=True)


def _v2_kwargs():
    return {"scenario": envs.ENV_IDS[envs.ENV_ID_V2], **envs.ENV_KWARGS[envs.ENV_ID_V2]}


# ------------------------------------------------------------------ vector env
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("overrides", [{}, OOM_PRONE])
def test_vector_env_with_a_period_equals_single_envs(mode, overrides):
    limits = [7, 9, 12] if not overrides else [60, 60, 60]
    kw = dict(decision_period_s=4.0, obs_version=2, hold_deadband=0.05, **overrides)
    native = BalloonVectorEnv(
        len(limits), "default-v0", max_episode_steps=limits, autoreset_mode=mode, **kw
    )
    sync = SyncVectorEnv(
        [lambda n=n: BalloonEnv("default-v0", max_episode_steps=n, **kw) for n in limits],
        autoreset_mode=mode,
    )
    assert_same(native.reset(seed=3), sync.reset(seed=3))
    rng = np.random.default_rng(0)
    ends = np.zeros(len(limits), dtype=int)
    for t in range(14):
        a = uneven_actions(rng, len(limits), t, bool(overrides))
        out = native.step(a)
        assert_same(out, sync.step(a), f"step {t}")
        ends += out[2] | out[3]
    assert ends.sum() >= len(limits)


# ------------------------------------------------------------------ records
@pytest.mark.parametrize(
    "kw",
    [
        {"decision_period_s": 3.0},
        {"decision_period_s": 5.0, "action_mode": "absolute-hold", "hold_deadband": 0.05},
    ],
)
def test_record_with_a_period_replays(kw, tmp_path, capsys):
    rec = record_episode("default-v1", seed=2, max_episode_steps=20, **kw)
    k = int(kw["decision_period_s"])
    assert len(rec.actions) == -(-20 // k)
    data = json.loads(rec.to_json())
    assert data["decision_period_s"] == kw["decision_period_s"]
    loaded = EpisodeRecord.load(rec.save(tmp_path / "r.json"))
    assert loaded.decision_period_s == kw["decision_period_s"]
    assert loaded.hold_deadband == kw.get("hold_deadband", 0.0)
    assert validate(loaded).ok, validate(loaded).report()
    assert cli_main(["replay", str(tmp_path / "r.json")]) == 0
    assert f"OK: {len(rec.actions)} steps" in capsys.readouterr().out
    # Replayed with another period, the record no longer matches.
    other = EpisodeRecord.from_json(rec.to_json())
    other.decision_period_s = None
    assert not validate(other).ok


def test_records_without_a_period_keep_their_format():
    rec = record_episode("default-v0", seed=1, max_steps=3)
    data = json.loads(rec.to_json())
    assert "decision_period_s" not in data and "hold_deadband" not in data
    assert (rec.decision_period_s, rec.hold_deadband) == (None, 0.0)
    assert validate(EpisodeRecord.from_json(rec.to_json())).ok
    data.pop("digest")
    data["decision_period_s"] = 0
    with pytest.raises(ValueError, match="decision_period_s"):
        EpisodeRecord.from_json(json.dumps(data))
