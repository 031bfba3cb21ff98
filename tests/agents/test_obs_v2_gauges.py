"""Observation v2 holds every host-visible gauge a registered heuristic reads.

:data:`GAUGE_FEATURE` maps each gauge of ``info["vm"]`` / ``info["host"]`` to the
observation feature that carries it. The test fails when a heuristic of the registry
reads (``info_keys`` / ``host_info_keys``) a gauge without an entry, when an entry names
a feature observation v2 lacks, or when the feature does not track its gauge.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.policies import HEURISTIC_NAMES, REGISTRY
from envs.balloon_env import BalloonEnv
from envs.env_batch import observation_names
from envs.sim.counters import HOST_FIELDS, VM_FIELDS

# gauge -> observation v2 feature (per VM: vm{i}/feature; host: host/feature).
GAUGE_FEATURE: dict[str, dict[str, str]] = {
    "vm": {
        "balloon_pages": "balloon_frac",  # every BalloonTargetPolicy reads it (agents.base)
        "balloon_target": "balloon_target_frac",
        "guest_free_pages": "guest_free_frac",
        "guest_cache_pages": "guest_cache_frac",
        "guest_used_pages": "guest_used_frac",
        "guest_committed_pages": "committed_frac",
        "guest_swap_used": "guest_swap_used_frac",
        "host_resident_pages": "host_resident_frac",
        "host_swapped_pages": "host_swapped_frac",
        "host_shared_pages": "host_shared_frac",
        "ws_sample_touched": "ws_estimate",
        "guest_oom_kills": "guest_oom_kill",
    },
    "host": {
        "host_free_frames": "host_free_frac",
        "host_swap_used": "host_swap_used_frac",
        "shared_frames": "shared_frames_frac",
        "sharing_saved_frames": "ksm_saved_frac",
    },
}
# Read by every balloon-target policy (agents.base.ObservationView.balloon), listed or not.
ALWAYS_READ = ("balloon_pages",)


def test_every_gauge_a_heuristic_reads_is_in_observation_v2():
    names = set(observation_names(2, 2))
    assert set(GAUGE_FEATURE["vm"]) <= set(VM_FIELDS)
    assert set(GAUGE_FEATURE["host"]) <= set(HOST_FIELDS)
    for where, feats in GAUGE_FEATURE.items():
        prefix = "vm0" if where == "vm" else "host"
        for gauge, feat in feats.items():
            assert f"{prefix}/{feat}" in names, f"{gauge} -> {feat}: not in observation v2"
    read: dict[str, set[str]] = {"vm": set(ALWAYS_READ), "host": set()}
    for name in HEURISTIC_NAMES:
        policy = REGISTRY[name]
        read["vm"] |= set(getattr(policy, "info_keys", ()))
        read["host"] |= set(getattr(policy, "host_info_keys", ()))
        for where, attr in (("vm", "info_keys"), ("host", "host_info_keys")):
            missing = sorted(set(getattr(policy, attr, ())) - set(GAUGE_FEATURE[where]))
            assert not missing, f"{name} reads info[{where!r}] {missing}, not in observation v2"
    # The heuristics do read gauges beyond v1 (so this test guards something).
    assert {"guest_committed_pages", "host_resident_pages"} <= read["vm"]
    assert "sharing_saved_frames" in read["host"]
    v1 = set(observation_names(2, 1))
    beyond_v1 = [g for g in read["vm"] if f"vm0/{GAUGE_FEATURE['vm'][g]}" not in v1]
    assert beyond_v1, "every gauge read is in v1 already?"


@pytest.mark.parametrize("scenario", ["default-v1", "idle-tax-v1"])
def test_each_mapped_feature_tracks_its_gauge(scenario):
    """feature = min(gauge / scale, 1) with one positive scale per VM (or host) for every
    mapped gauge, over a run where the gauges move: the map names the right feature."""
    env = BalloonEnv(scenario, obs_version=2, max_episode_steps=60)
    V = env.config.num_vms
    names = env.observation_names
    obs, info = env.reset(seed=1)
    rows: list[tuple[np.ndarray, dict]] = []
    rng = np.random.default_rng(0)
    for _ in range(60):
        obs, _, term, trunc, info = env.step(rng.uniform(-1, 1, V).astype(np.float32))
        rows.append((obs, info))
        if term or trunc:
            break
    for where, feats in GAUGE_FEATURE.items():
        for gauge, feat in feats.items():
            cols = (
                [names.index(f"vm{i}/{feat}") for i in range(V)]
                if where == "vm"
                else [names.index(f"host/{feat}")]
            )
            g = np.array([np.atleast_1d(info[where][gauge]) for _, info in rows], np.float64)
            f = np.array([obs[cols] for obs, _ in rows], np.float64)
            assert ((g == 0) == (f == 0)).all(), f"{gauge} -> {feat}: zero pattern differs"
            ok = (f > 0) & (f < 1)
            if gauge == "guest_oom_kills" or not ok.any():
                continue  # a 0/1 indicator, or a gauge this run leaves at 0
            scale = np.where(ok, g / np.where(ok, f, 1), np.nan)
            for j in range(scale.shape[1]):
                s = scale[:, j][~np.isnan(scale[:, j])]
                if s.size:
                    np.testing.assert_allclose(s, s[0], rtol=1e-5, err_msg=f"{gauge} -> {feat}")
