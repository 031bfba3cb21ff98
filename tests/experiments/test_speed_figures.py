"""``reclaim bench``'s issue #13 figures: their JSON layout, targets and configurations.

Not timed tests: the figures are measured on a tiny configuration and only their
presence, types and the target logic are checked.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.sim.footprint import estimate_bytes
from envs.sim.params import standard_params
from experiments import speed_figures
from experiments.bench_cmd import BENCH_PHYSICS, reference_stream
from experiments.speed_figures import TARGETS, fullsize_params, target_row

NEW_FIGURES = (
    "train_env_share",
    "default_refs_per_s",
    "fullsize_ticks_per_s",
    "fullsize_peak_rss_mb",
)


def test_target_row_compares_in_the_stated_direction():
    assert target_row("train_env_share", 0.39)["met"] is True
    assert target_row("train_env_share", 0.41)["met"] is False
    assert target_row("fullsize_ticks_per_s", 5.0)["met"] is True
    assert target_row("fullsize_ticks_per_s", 4.9)["met"] is False
    row = target_row("default_refs_per_s", 1e6, judged=2.5, vs_reference=3.0)
    assert row == {"value": 1e6, "target": ">= 2x baseline", "met": True, "vs_reference": 3.0}
    assert target_row("default_refs_per_s", 1e9, judged=1.9)["met"] is False  # judged, not value


def test_fullsize_host_is_real_size_with_v1_dynamics_and_fits_4_gib():
    p = fullsize_params()
    assert p.num_vms == 8
    assert all(v.guest_pages == 1 << 20 for v in p.vms)  # 4 GiB at 4 KiB
    assert p.page_kib == 4 and p.real_pages_per_page == 1.0
    assert all(v.workload.max_refs_per_tick == speed_figures.FULLSIZE_REFS for v in p.vms)
    # v1 dynamics: the device, blind host paging, readahead at 4 KiB pages.
    assert p.costs.dev_enabled and p.costs.sync_reclaim and p.costs.stall_cap
    assert p.host_policy == "random"
    assert p.guest_page_cluster == 3 and p.file_readahead_pages == 32
    assert p.overcommit_ratio == pytest.approx(1.5, rel=1e-3)
    assert estimate_bytes(p, 1) <= 4096 * 2**20
    # The dense case is the most references the params allow.
    dense = fullsize_params(speed_figures.FULLSIZE_DENSE_REFS)
    assert sum(v.workload.max_refs_per_tick for v in dense.vms) == 1 << 20


def test_reference_stream_skip_gives_the_later_ticks():
    params = standard_params(num_vms=2, guest_pages=2048, refs_per_tick=32, **BENCH_PHYSICS["v1"])
    whole = reference_stream(params, 3, 5, seed=4)
    tail = reference_stream(params, 3, 3, seed=4, skip=2)
    per_tick = 3 * 2 * 32  # no padding in the standard configuration
    assert whole.size == 5 * per_tick
    np.testing.assert_array_equal(tail, whole[2 * per_tick :])


def test_bench_json_has_every_figure_beside_its_target():
    pytest.importorskip("libcachesim", reason="libcachesim (dev extra) not installed")
    pytest.importorskip("stable_baselines3")
    from experiments.bench_cmd import run_bench

    sizes = dict(
        train_steps=256,
        default_envs=2,
        default_ticks=4,
        fullsize=dict(guest_pages=2048, num_vms=2, refs_per_tick=128, warmup=1, ticks=2),
        dense=False,
    )
    res = run_bench(
        num_envs=2, quick=True, progress=False, with_env=False, speed=True, speed_sizes=sizes,
        teacher=True,
    )
    assert set(res["targets"]) == set(TARGETS)
    for name, row in res["targets"].items():
        assert {"value", "target", "met"} <= set(row), name
        assert isinstance(row["met"], bool) and np.isfinite(row["value"]), name
        assert row["target"].startswith(TARGETS[name][0]), name
    for name in NEW_FIGURES:
        assert isinstance(res[name], float) and res[name] > 0, name
    assert res["targets"]["default_refs_per_s"]["value"] == res["default_refs_per_s"]
    assert 0 < res["train_env_share"] < 1
    assert res["speed"]["train"]["env_s"] < res["speed"]["train"]["wall_s"]
    # libCacheSim replays exactly the core's timed references, and reports its start-up.
    c = res["config"]
    assert (
        res["libcachesim_refs"]
        == c["ticks"] * c["num_envs"] * c["num_vms"] * c["refs_per_vm_per_tick"]
    )
    assert 0 < res["libcachesim_startup_share"] <= 1
    lcs = res["targets"]["vs_libcachesim"]
    assert lcs["value"] == res["vs_libcachesim"]
    assert "start-up" in lcs["target"]
    if lcs["libcachesim_startup_share"] >= 0.05:  # too short a trace never meets it
        assert lcs["met"] is False
    # The full-size figures come from a fresh process sized as asked.
    full = res["speed"]["fullsize"]
    assert full["num_vms"] == 2 and full["guest_pages"] == 2048 and full["page_kib"] == 4
    assert full["peak_rss_mb"] < 1024  # its own, not this (test) process's high-water mark
    # The teacher's labelling cost is timed against ESX's act along one episode.
    teach = res["targets"]["teacher_label_vs_esx"]
    assert teach["value"] == pytest.approx(res["teacher_label_s"] / res["teacher_esx_act_s"])
    assert teach["steps"] > 200 and teach["rebuilds"] >= 1
    # Existing fields stay.
    for key in ("refs_per_s", "speedup_vs_reference", "libcachesim_lru_refs_per_s", "peak_rss_mb"):
        assert key in res
