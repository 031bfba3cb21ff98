"""The v1 cost model through the env: v0 scenarios pay exactly what they paid before v1,
and a v1 configuration reports every cost in info with named reward terms."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from envs.env_batch import EnvBatch, make_config
from envs.reward import REWARD_TERMS

V0_TERMS = (
    "guest_major_faults", "guest_minor_faults", "host_swapins", "double_paging",
    "false_swap_reads", "cow_breaks", "host_minor_faults", "guest_oom_kills", "host_oom",
)  # fmt: skip
# Recorded from the code before the v1 cost model (commit 81e30f5): sha256 of every
# step's reward, stall_us, observation and v0 reward terms, and the summed return.
V0_DIGESTS = {
    "thrash-v0": ("b5a6488a1ee6fb4e", -1.1510327500000002),
    "bursty-v0": ("1480e6be06647a2e", -0.23067075000000004),
    "mixed-v0": ("77d34a65200341b7", -0.097535375),
    "file-heavy-v0": ("64eead175691c45f", -1.2208001250000002),
    "default-v0": ("c6c70ae0421aadc7", -0.8373273749999997),
}


def _digest(scenario: str, steps: int = 120, seed: int = 3, **overrides):
    cfg = make_config(scenario, **overrides)
    core = EnvBatch(cfg, 2)
    core.reset([seed, seed + 1])
    rng = np.random.default_rng(seed)
    h = hashlib.sha256()
    outs = []
    for _ in range(steps):
        out = core.step(rng.uniform(-1, 1, size=(2, cfg.num_vms)))
        h.update(out.reward.tobytes())
        h.update(out.info["stall_us"].tobytes())
        h.update(out.obs.tobytes())
        for k in V0_TERMS:
            h.update(out.info["reward_terms"][k].tobytes())
        outs.append(out)
    return h.hexdigest()[:16], float(core.ep_return.sum()), outs


@pytest.mark.parametrize("scenario", sorted(V0_DIGESTS))
def test_v0_scenarios_pay_exactly_what_they_paid_before_v1(scenario):
    digest, ret, _ = _digest(scenario)
    assert (digest, ret) == V0_DIGESTS[scenario]


def test_v1_costs_reach_info_and_the_terms_sum_to_the_reward():
    v1 = dict(
        guest_page_cluster=3,
        file_readahead_pages=32,
        dev_enabled=True,
        sync_reclaim=True,
        balloon_us_per_page=2.25,
        host_zero_us_per_page=0.3,
    )
    _, _, outs = _digest("thrash-v0", steps=40, **v1)
    _, _, outs0 = _digest("thrash-v0", steps=40)
    seen_reclaim = seen_balloon = 0.0
    for out, out0 in zip(outs, outs0, strict=True):
        info = out.info
        terms = sum(info["reward_terms"][k] for k in REWARD_TERMS)
        np.testing.assert_allclose(terms, out.reward, rtol=1e-9, atol=1e-12)
        comps = sum(info["stall_components_us"].values())
        np.testing.assert_allclose(comps, info["stall_us"], rtol=1e-12)
        assert info["reclaim_stall_us"].shape == info["balloon_op_us"].shape == (2, 4)
        assert np.all((info["device_busy_frac"] >= 0) & (info["device_busy_frac"] <= 1))
        assert np.all(info["device_read_latency_us"] >= 20.0)
        # The counters are the same dynamics as v0's (costs never feed back) ...
        for name in ("guest_swapins", "host_swapins", "balloon_inflated"):
            assert np.array_equal(info["vm"][name], out0.info["vm"][name])
        # ... and readahead makes fewer I/Os than pages.
        assert np.all(info["vm"]["guest_swapin_ios"] <= info["vm"]["guest_swapins"])
        seen_reclaim += info["reclaim_stall_us"].sum()
        seen_balloon += info["balloon_op_us"].sum()
    assert seen_reclaim > 0 and seen_balloon > 0
