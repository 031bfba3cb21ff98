"""The per-VM reward (``info["vm_reward"]``, envs.reward.step_reward): each VM's own stall
and OOM penalties, whose mean over the VMs is the step's reward."""

from __future__ import annotations

import numpy as np
import pytest

from envs.env_batch import EnvBatch, make_config
from envs.reward import step_reward
from envs.sim.counters import HOST_INDEX, VM_INDEX


def _run(scenario: str, action: float, steps: int, **overrides):
    """Steps of a 2-host batch with one constant action: (rewards, vm rewards, infos)."""
    cfg = make_config(scenario, **overrides)
    core = EnvBatch(cfg, 2)
    core.reset([3, 4])
    rng = np.random.default_rng(0)
    out_r, out_v, infos = [], [], []
    for _ in range(steps):
        a = np.clip(action + 0.2 * rng.standard_normal((2, cfg.num_vms)), -1, 1)
        out = core.step(a)
        out_r.append(out.reward)
        out_v.append(out.info["vm_reward"])
        infos.append(out.info)
        if out.done.any():
            core.autoreset(out.obs, out.done)
    return cfg, np.array(out_r), np.array(out_v), infos


@pytest.mark.parametrize(
    "scenario, action, overrides",
    [
        ("default-v0", 0.0, {}),
        ("default-v1", 0.5, {}),
        ("hungry-v2", 0.0, {}),  # closed loop: the loop stall
        ("swapless-v1", 1.0, {}),  # a full balloon: guest OOM kills
        ("default-v1", 0.0, {"decision_period_s": 5}),  # summed over a step's ticks
    ],
)
def test_vm_rewards_average_to_the_reward(scenario, action, overrides):
    cfg, r, v, infos = _run(scenario, action, 40, **overrides)
    assert v.shape == (40, 2, cfg.num_vms)
    np.testing.assert_allclose(v.mean(axis=2), r, rtol=1e-12, atol=1e-12)
    assert (np.ptp(v, axis=2) > 0).any(), "the VMs' rewards must differ somewhere"
    if scenario == "swapless-v1":
        kills = np.array([i["vm"]["guest_oom_kills"] for i in infos])  # (T, B, V)
        assert kills.sum() > 0, "the scenario must kill for the test to mean anything"
        # a kill is charged to its VM alone, V times w_guest_oom
        w = cfg.params.costs.w_guest_oom
        killed = kills > 0
        assert (v[killed] <= -cfg.num_vms * w * kills[killed] + 1e-9).all()


def test_per_vm_terms_by_hand():
    """r_i = −s_i − V·w_guest_oom·kills_i − w_host_oom·host_oom, on counters with both OOMs
    set (s_i: stall_frac, or loop_stall_frac on a closed-loop host)."""
    for scenario in ("default-v1", "hungry-v2"):
        cfg = make_config(scenario)
        core = EnvBatch(cfg, 2)
        core.reset([5, 6])
        for _ in range(20):
            core.step(np.zeros((2, cfg.num_vms)))
        vm, host = core.vm.copy(), core.host.copy()
        V = cfg.num_vms
        vm[0, :, VM_INDEX["guest_oom_kills"]] = np.arange(V)
        host[1, HOST_INDEX["host_oom"]] = 1
        prm = cfg.params
        rew = step_reward(prm, vm, host)
        c = prm.costs
        s = rew.costs.loop_stall_frac if prm.closed_loop else rew.costs.stall_frac
        kills = vm[:, :, VM_INDEX["guest_oom_kills"]]
        host_oom = host[:, HOST_INDEX["host_oom"]][:, None]
        want = -s - V * c.w_guest_oom * kills - c.w_host_oom * host_oom
        np.testing.assert_allclose(rew.vm_reward, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rew.vm_reward.mean(axis=1), rew.reward, rtol=1e-12)
        assert (rew.vm_reward[1] <= -c.w_host_oom).all()  # every VM pays the host OOM
