"""The reward on a closed-loop host (the -v2 scenarios, docs/model.md §13.5): the stall
part is the time each VM lost, so an episode's stall is the work its VMs did not do."""

from __future__ import annotations

import numpy as np
import pytest

from envs.env_batch import EnvBatch, make_config
from envs.reward import REWARD_TERMS


@pytest.mark.parametrize("scenario", ["hungry-v2", "default-v2", "thrash-v2"])
def test_a_closed_loop_episode_pays_the_ticks_its_vms_lost(scenario):
    """Σ_t s_i(t) = T − batches issued − final credit (SEMANTICS.md §10), so the return
    without OOM penalties is −mean_i (T − P_i − c_i): a VM that waits five ticks for a
    batch pays five ticks, not the capped one of its first tick."""
    cfg = make_config(scenario)
    assert cfg.params.closed_loop
    core = EnvBatch(cfg, 2)
    core.reset([4, 5])
    rng = np.random.default_rng(0)
    T = 60
    ret = np.zeros(2)
    terms = np.zeros(2)
    capped = np.zeros(2)
    for _ in range(T):
        out = core.step(rng.uniform(-1, 1, size=(2, cfg.num_vms)))
        ret += out.reward
        terms += sum(out.info["reward_terms"][n] for n in REWARD_TERMS)
        capped -= core.stall_frac.mean(axis=1)
        assert not out.terminated.any()
    sim = core.sim
    progress = sim.workload.vm_ticks.astype(np.float64)  # (B, V) batches issued
    credit = sim.loop_credit.reshape(progress.shape)
    lost = (T - progress - credit).mean(axis=1)
    np.testing.assert_allclose(terms, ret, rtol=1e-9, atol=1e-9)
    assert (progress < T).any(), "the scenario must stall somewhere for the test to mean anything"
    np.testing.assert_allclose(ret, -lost, rtol=1e-9, atol=1e-9)
    # the capped gauge charges less than the time lost wherever a VM fell behind
    assert (ret < capped - 1e-6).any()
