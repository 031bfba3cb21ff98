"""The single-host Gymnasium env: registration, spaces, determinism, reward, bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs import ENV_ID
from envs.balloon_env import BalloonEnv
from envs.env_batch import (
    ACTION_MODES,
    HOST_FEATURES,
    VM_FEATURES,
    observation_names,
    reset_counters,
)
from envs.reward import REWARD_TERMS
from envs.scenarios import get_scenario, scenario_ids
from envs.sim.core import FREE, KERNEL, RESIDENT
from envs.sim.counters import HOST_FIELDS, VM_EVENTS, VM_FIELDS
from tests import REPO as _REPO  # noqa: E402
from tests.envs.helpers import OOM_PRONE, assert_same

REPO = str(_REPO)


def reclaim_ids() -> list[str]:
    return sorted(k for k in gym.registry if k.startswith("reclaim/"))


def rollout(env: gym.Env, seed: int, steps: int):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs, info)]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs, r, term, trunc, info))
        if term or trunc:
            obs, info = env.reset()
            out.append((obs, info))
    return out


# ------------------------------------------------------------------ registration
def test_registered_ids_make_and_check_env():
    assert ENV_ID in reclaim_ids()
    for env_id in reclaim_ids():
        for mode in ACTION_MODES:
            # Balloon-v2's dead-band holds absolute targets: the other modes turn it off.
            band = {} if mode == "absolute" else {"hold_deadband": 0.0}
            env = gym.make(env_id, action_mode=mode, max_episode_steps=-1, **band)
            check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("mode", ACTION_MODES)
def test_check_env_every_action_mode_with_render(mode):
    for render_mode in ("ansi", "rgb_array"):
        env = gym.make(ENV_ID, action_mode=mode, render_mode=render_mode, max_episode_steps=-1)
        check_env(env.unwrapped)


@pytest.mark.parametrize("scenario", scenario_ids())
def test_check_env_every_scenario(scenario):
    for mode in ACTION_MODES:
        env = gym.make(
            ENV_ID,
            scenario=scenario,
            action_mode=mode,
            render_mode="rgb_array",
            max_episode_steps=-1,
        )
        check_env(env.unwrapped)


def test_registration_is_idempotent():
    envs.register_envs()
    envs.register_envs()
    assert reclaim_ids().count(ENV_ID) == 1
    assert reclaim_ids().count(envs.ENV_ID_V1) == 1


def test_each_env_version_defaults_to_its_scenario_version():
    """reclaim/Balloon-v1 starts on default-v1 (v1 physics), Balloon-v0 on default-v0, in
    the single and the native vector env alike; the scenario keyword still wins.
    Balloon-v2 changes the agent interface, not the physics: it starts on default-v1."""
    assert set(reclaim_ids()) == set(envs.ENV_IDS)
    for env_id, scenario in envs.ENV_IDS.items():
        assert scenario.endswith("-v1" if env_id == envs.ENV_ID_V2 else env_id[-3:])
        env = gym.make(env_id)
        assert env.unwrapped.config.scenario_id == scenario
        venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
        assert venv.unwrapped.core.config.scenario_id == scenario
    other = gym.make(envs.ENV_ID_V1, scenario="thrash-v1")
    assert other.unwrapped.config.scenario_id == "thrash-v1"
    assert other.unwrapped.config.params.page_kib == 1024


def _run(code: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_import_sim_does_not_import_gymnasium_or_torch():
    out = _run(
        """
        import sys
        import envs.sim.core, envs.sim.counters, envs.scenarios
        print("gymnasium" in sys.modules, "torch" in sys.modules)
        """
    )
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    "imports",
    [
        "import envs; import gymnasium",
        "import gymnasium; import envs",
        "import envs.sim; import gymnasium; import envs",
    ],
)
def test_make_after_either_import_order(imports):
    out = _run(
        f"""
        import sys
        {imports}
        env = gymnasium.make("reclaim/Balloon-v0", ksm_pages_per_tick=0)
        env.reset(seed=0)
        vec = gymnasium.make_vec(
            "reclaim/Balloon-v0", num_envs=2, vectorization_mode="vector_entry_point"
        )
        vec.reset(seed=0)
        print(type(env.unwrapped).__name__, type(vec).__name__, "torch" in sys.modules)
        """
    )
    assert out.split() == ["BalloonEnv", "BalloonVectorEnv", "False"]


def test_make_applies_overrides():
    env = gym.make(ENV_ID, host_policy="lru", ksm_pages_per_tick=0, w_host_oom=5.0)
    p = env.unwrapped.params
    assert (p.host_policy, p.ksm_pages_per_tick, p.costs.w_host_oom) == ("lru", 0, 5.0)
    base = get_scenario("default-v0").params
    assert p.host_frames == base.host_frames and p.costs.w_guest_oom == base.costs.w_guest_oom


# ------------------------------------------------------------------ spaces
def test_observation_layout_and_names():
    env = BalloonEnv(max_episode_steps=5)
    V = env.params.num_vms
    names = observation_names(V)
    assert len(names) == len(set(names)) == env.observation_space.shape[0]
    assert env.observation_space.shape == (len(VM_FEATURES) * V + len(HOST_FEATURES),)
    assert names[len(VM_FEATURES)] == "vm1/balloon_frac"
    assert names[-1] == "host/time_left_frac"
    obs, _ = env.reset(seed=1)
    assert obs.dtype == np.float32
    i_free = names.index("vm0/guest_free_frac")
    vm0 = env.params.vms[0]
    assert obs[i_free] == np.float32((vm0.guest_pages - vm0.kernel_pages) / vm0.guest_pages)
    assert obs[names.index("host/time_left_frac")] == 1.0
    for t in range(5):
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert obs[-1] == np.float32((5 - t - 1) / 5)


def test_reset_counters_match_simulator_state():
    env = BalloonEnv()
    env.reset(seed=3)
    snap = env.core.sim.snapshot(0)
    vm, host = reset_counters(env.params)
    V = env.params.num_vms
    free = (snap["gstate"] == FREE).sum(axis=1)
    assert (vm[:, VM_FIELDS.index("guest_free_pages")] == free).all()
    res = (snap["hstate"] == RESIDENT).sum(axis=1)
    assert (vm[:, VM_FIELDS.index("host_resident_pages")] == res).all()
    kernels = int((snap["gstate"] == KERNEL).sum())
    assert host[HOST_FIELDS.index("host_free_frames")] == env.params.host_frames - kernels
    assert vm.shape == (V, len(VM_FIELDS))


def test_action_modes_map_to_targets():
    p = get_scenario("default-v0").params
    maxb = np.array([v.max_balloon_pages for v in p.vms])
    env = BalloonEnv(action_mode="absolute")
    env.reset(seed=0)
    a = np.array([-1.0, 1.0, 0.0, 0.5], np.float32)
    _, _, _, _, info = env.step(a)
    assert info["vm"]["balloon_target"].tolist() == np.rint((a + 1) / 2 * maxb).tolist()
    rate = p.balloon_rate_pages
    assert (info["vm"]["balloon_pages"] <= rate).all()

    env = BalloonEnv(action_mode="delta")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, 1.0, -1.0, 0.25], np.float32))
    b = info["vm"]["balloon_pages"]
    want = [round(0.5 * rate), rate, 0, round(0.25 * rate)]
    assert info["vm"]["balloon_target"].tolist() == want
    _, _, _, _, info = env.step(np.array([-0.5, 0.0, 0.0, 0.0], np.float32))
    assert info["vm"]["balloon_target"][0] == b[0] - round(0.5 * rate)

    env = BalloonEnv(action_mode="discrete")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([2, 2, 1, 0]))
    assert info["vm"]["balloon_target"].tolist() == [rate, rate, 0, 0]
    b = info["vm"]["balloon_pages"]
    _, _, _, _, info = env.step(np.array([0, 1, 2, 1]))
    assert info["vm"]["balloon_target"].tolist() == [b[0] - rate, b[1], b[2] + rate, b[3]]


# ------------------------------------------------------------------ determinism
def test_same_seed_same_rollout_different_seed_differs():
    a = rollout(BalloonEnv(max_episode_steps=12), seed=5, steps=20)
    b = rollout(BalloonEnv(max_episode_steps=12), seed=5, steps=20)
    assert_same(a, b)
    c = rollout(BalloonEnv(max_episode_steps=12), seed=6, steps=20)
    with pytest.raises(AssertionError):
        assert_same(a, c)


def test_reset_without_seed_draws_from_np_random():
    env = BalloonEnv(max_episode_steps=3)
    env.reset(seed=11)
    first = env.core.episode_seed[0]
    env.reset()
    second = env.core.episode_seed[0]
    assert first == 11 and second != 11
    env2 = BalloonEnv(max_episode_steps=3)
    env2.reset(seed=11)
    env2.reset()
    assert env2.core.episode_seed[0] == second
    env3 = BalloonEnv()
    env3.reset()  # None: fresh entropy, never a fixed seed
    env4 = BalloonEnv()
    env4.reset()
    assert env3.core.episode_seed[0] != env4.core.episode_seed[0]


# ------------------------------------------------------------------ reward / info
def test_reward_terms_info_and_episode_summary():
    env = BalloonEnv(max_episode_steps=10)
    env.reset(seed=2)
    env.action_space.seed(2)
    costs = env.params.costs
    tick_us = env.params.tick_us
    rewards, totals, stall_total = [], 0, 0.0
    for t in range(10):
        _, r, term, trunc, info = env.step(env.action_space.sample())
        assert set(info["vm"]) == set(VM_FIELDS) and set(info["host"]) == set(HOST_FIELDS)
        assert set(info["reward_terms"]) == set(REWARD_TERMS)
        assert info["vm"]["refs"].shape == (env.params.num_vms,)
        assert isinstance(info["host"]["host_free_frames"], int)
        assert r == pytest.approx(sum(info["reward_terms"].values()), rel=1e-12, abs=1e-15)
        want = (
            -np.mean(info["stall_us"] / tick_us)
            - costs.w_guest_oom * info["vm"]["guest_oom_kills"].sum()
            - costs.w_host_oom * info["host"]["host_oom"]
        )
        assert r == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert info["reward_terms"]["guest_major_faults"] == pytest.approx(
            -costs.guest_major_us * info["vm"]["guest_major_faults"].mean() / tick_us
        )
        rewards.append(r)
        totals = totals + np.stack([info["vm"][e] for e in VM_EVENTS], axis=-1)
        stall_total = stall_total + info["stall_us"]
        assert term is False and trunc is (t == 9)
        assert ("episode_summary" in info) is (t == 9)
    s = info["episode_summary"]
    assert s["length"] == 10 and s["seed"] == 2 and s["host_oom"] == 0
    assert s["return"] == sum(rewards)
    for k, e in enumerate(VM_EVENTS):
        assert (s["totals"][e] == totals[..., k]).all(), e
    np.testing.assert_allclose(s["stall_us"], stall_total)
    assert totals[..., VM_EVENTS.index("refs")].sum() > 0


def test_host_oom_terminates():
    env = BalloonEnv(max_episode_steps=50, **OOM_PRONE)
    env.reset(seed=0)
    for _ in range(50):
        _, r, term, trunc, info = env.step(-np.ones(4, np.float32))
        if term or trunc:
            break
    assert term and not trunc
    assert info["host"]["host_oom"] == 1 and info["host"]["host_free_frames"] < 0
    assert info["reward_terms"]["host_oom"] == -env.params.costs.w_host_oom
    assert r < -env.params.costs.w_host_oom + 1
    assert info["episode_summary"]["host_oom"] == 1
    assert info["episode_summary"]["length"] < 50


# ------------------------------------------------------------------ render
def test_render_modes():
    env = BalloonEnv(render_mode="ansi", max_episode_steps=4)
    env.reset(seed=0)
    env.step(np.full(4, 0.5, np.float32))
    text = env.render()
    assert isinstance(text, str) and text.count("\n") == 2 + env.params.num_vms + 1
    assert "balloon" in text and "host: free" in text
    env = BalloonEnv(render_mode="rgb_array", max_episode_steps=4)
    env.reset(seed=0)
    env.step(np.full(4, 0.5, np.float32))
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert (img == 0).all(axis=2).any()  # the balloon-target marker
    assert BalloonEnv().render() is None


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "action, match",
    [
        (np.zeros(3, np.float32), "shape"),
        (np.zeros((1, 4), np.float32), "shape"),
        (np.array(["a"] * 4), "dtype"),
        (np.zeros(4, dtype=bool), "dtype"),
        (np.array([0.0, np.nan, 0.0, 0.0], np.float32), "finite"),
        (np.array([0.0, np.inf, 0.0, 0.0]), "finite"),
    ],
)
def test_bad_box_actions_raise(action, match):
    env = BalloonEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_out_of_box_actions_are_clipped():
    a = BalloonEnv()
    a.reset(seed=0)
    b = BalloonEnv()
    b.reset(seed=0)
    ra = a.step(np.array([5.0, -7.0, 1.0, 0.0], np.float32))
    rb = b.step(np.array([1.0, -1.0, 1.0, 0.0], np.float32))
    assert_same(ra, rb)


def test_bad_discrete_actions_raise():
    env = BalloonEnv(action_mode="discrete")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\{0, 1, 2\}"):
        env.step(np.array([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="integers"):
        env.step(np.array([0.0, 1.0, 2.0, 1.0]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scenario": "nope-v0"}, r"unknown scenario 'nope-v0'; .*\(reclaim scenarios lists all\)"),
        ({"action_mode": "relative"}, "action_mode must be one of"),
        ({"host_polcy": "lru"}, r"unknown option\(s\) \['host_polcy'\]; allowed: .*host_policy"),
        ({"host_policy": "fifo"}, "host_policy must be one of"),
        ({"max_episode_steps": 0}, "max_episode_steps must be an int >= 1"),
        ({"render_mode": "video"}, "render_mode must be None or one of"),
        ({"w_host_oom": -1.0}, "w_host_oom"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*render_mode='video'")
def test_bad_constructor_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BalloonEnv(**kwargs)
    if "max_episode_steps" not in kwargs:  # gymnasium.make consumes that one itself
        with pytest.raises(ValueError, match=match):
            gym.make(ENV_ID, **kwargs)


def test_bad_seed_and_step_before_reset():
    env = BalloonEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, np.float32))
    with pytest.raises(ValueError):
        env.reset(seed=-1)
