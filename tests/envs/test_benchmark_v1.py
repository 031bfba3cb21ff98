"""Benchmark v1's scenario families (envs/scenarios.py, issue #12): each exists in a
train and a held-out variant and stresses what its description claims."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from envs.scenarios import (
    BENCHMARK_V1_FAMILIES,
    SPLITS,
    demand_scenario,
    get_scenario,
    scenario_ids,
    trace_scenario,
)
from envs.sim.params import TraceSpec


@pytest.fixture
def own_registry(monkeypatch):
    """Scenarios a test registers vanish after it (ids are global to the process)."""
    import envs.scenarios as scenarios

    monkeypatch.setattr(scenarios, "_REGISTRY", dict(scenarios._REGISTRY))


def _run(sid: str, policy: str, steps: int, seeds=(0,)) -> dict:
    from experiments.evaluate import run_policy

    rows = run_policy(policy, sid, list(seeds), max_episode_steps=steps)
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in
            ("policy", "scenario")}  # fmt: skip


def test_every_family_has_a_train_and_a_held_out_variant():
    for family, (train, held_out) in BENCHMARK_V1_FAMILIES.items():
        a, b = get_scenario(train), get_scenario(held_out)
        assert a.split == "train", family
        assert b.split in ("test", "sanity"), family  # sanity: measured without headroom
        assert train.endswith("-v1") and held_out.endswith("-v1")
        assert a.params != b.params and a.params.page_kib == 1024


def test_the_v1_test_and_sanity_splits_are_held_out():
    v1 = set(scenario_ids(version="v1"))
    by = {s: set(scenario_ids(s, "v1")) for s in SPLITS}
    assert set().union(*by.values()) == v1
    assert not (by["train"] & by["test"]) and not (by["train"] & by["sanity"])
    assert len(by["test"]) >= 5


def test_cache_fill_fills_free_memory_with_cache():
    """Without a balloon the streaming guests' free memory turns into cache."""
    sid = "cache-fill-v1"
    from envs.vector_env import BalloonVectorEnv

    env = BalloonVectorEnv(1, sid)
    env.reset(seed=0)
    for _ in range(200):
        _, _, _, _, info = env.step(np.full((1, 4), -1.0, dtype=np.float32))
    cache = np.asarray(info["vm"]["guest_cache_pages"])[0]
    free = np.asarray(info["vm"]["guest_free_pages"])[0]
    m = np.array([v.guest_pages for v in get_scenario(sid).params.vms])
    assert np.all(cache[:2] > 0.4 * m[:2]) and np.all(free[:2] < 0.1 * m[:2])


def test_swapless_guests_oom_kill_when_ballooned_past_their_cache():
    sc = get_scenario("swapless-v1")
    assert all(v.guest_swap_pages == 0 for v in sc.params.vms)
    assert not sc.params.deflate_on_oom
    assert _run(sc.id, "no-balloon", 96)["guest_oom_kills"] == 0
    assert _run(sc.id, "hyperv", 96)["guest_oom_kills"] > 0  # it balloons to its target


def test_tenant_takes_host_frames_at_its_arrival():
    from envs.vector_env import BalloonVectorEnv

    sc = get_scenario("tenant-v1")
    tenant = sc.params.vms[-1]
    assert tenant.max_balloon_pages == 0  # no balloon driver
    env = BalloonVectorEnv(1, sc.id)
    env.reset(seed=0)
    res = []
    for _ in range(140):
        _, _, _, _, info = env.step(np.full((1, 5), -1.0, dtype=np.float32))
        res.append(int(np.asarray(info["vm"]["host_resident_pages"])[0, -1]))
    assert res[120] <= tenant.kernel_pages + 1
    assert res[139] > 0.5 * tenant.guest_pages


def test_gc_heap_collections_touch_most_of_the_heap():
    """The full collection's 3 ticks touch most of the heap that the mutator leaves idle."""
    from envs.data import load_workload_data
    from envs.sim.workload import Workload

    p = get_scenario("gc-heap-v1").params
    wl = Workload(p, 1, load_workload_data(p))
    wl.reset(np.arange(1), [np.random.SeedSequence(0)])
    touched_mutator, touched_gc = set(), set()
    for t in range(60):
        r = wl.draw().refs[0, 0]
        (touched_gc if t >= 57 else touched_mutator).update(r[r >= 0].tolist())
    heap = p.vms[0].workload.footprint_pages
    assert len(touched_mutator) < 0.4 * heap < 0.7 * heap < len(touched_gc)


def test_demand_runs_in_real_time(shared_data):
    """One 5-minute sample is 300 ticks of 1 s: ESX's 30 s period is 30 ticks."""
    for sid in ("demand-v1", "demand-test-v1"):
        p = get_scenario(sid).params
        assert p.tick_ms == 1000
        assert all(v.workload.demand.ticks_per_sample == 300 for v in p.vms)
        assert 1.5 <= get_scenario(sid).overcommit_ratio <= 2.0
    train = get_scenario("demand-v1").bitbrains_vms
    assert not train & get_scenario("demand-test-v1").bitbrains_vms


def _bitbrains_csv(path, usage_kb):
    head = ("Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\t"
            "CPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\t"
            "Disk read throughput [KB/s];\tDisk write throughput [KB/s];\t"
            "Network received throughput [KB/s];\tNetwork transmitted throughput [KB/s]"
            )  # fmt: skip
    rows = [f"{1372629804 + 300 * i};\t2;\t5851.9;\t87.7;\t1.5;\t8218624.0;\t{u};\t0;\t0;\t0;\t0"
            for i, u in enumerate(usage_kb)]  # fmt: skip
    with gzip.open(path, "wt") as f:
        f.write("\n".join([head, *rows]) + "\n")


def test_a_scenario_from_your_own_demand_series(tmp_path, own_registry):
    """Any series in the published Bitbrains layout, by path, drives a scenario."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers reclaim/Balloon-v1)

    low, high = tmp_path / "low.csv.gz", tmp_path / "high.csv.gz"
    _bitbrains_csv(low, [100_000.0] * 8)
    _bitbrains_csv(high, [100_000.0, 8_000_000.0] * 4)
    sc = demand_scenario("user-demand-test-v1", [str(low), str(high)], num_vms=2,
                         guest_pages=512, steps=64, ticks_per_sample=4)  # fmt: skip
    assert sc.split == "train" and sc.params.page_kib == 1024
    env = gym.make("reclaim/Balloon-v1", scenario=sc.id)
    env.reset(seed=0)
    for _ in range(16):
        _, _, _, _, info = env.step(env.action_space.sample())
    assert np.asarray(info["vm"]["guest_used_pages"]).sum() > 0
    with pytest.raises(ValueError, match="already registered"):
        demand_scenario(sc.id, [str(low)])
    with pytest.raises(ValueError, match="overcommit"):
        demand_scenario("other-test-v1", [str(low)], overcommit=0.5)
    with pytest.raises(ValueError, match="-v1"):
        demand_scenario("other", [str(low)])
    missing = demand_scenario("missing-test-v1", [str(tmp_path / "nope.csv")])
    with pytest.raises(FileNotFoundError, match="nope"):
        gym.make("reclaim/Balloon-v1", scenario=missing.id)


def test_a_scenario_from_your_own_trace(tmp_path, own_registry):
    """A trace in a supported format (LIRS: one block number per line), by path."""
    from envs.vector_env import BalloonVectorEnv

    trc = tmp_path / "loop.trc"
    trc.write_text("\n".join(str(i % 700) for i in range(20_000)) + "\n")
    sc = trace_scenario("user-trace-test-v1", [TraceSpec("lirs", str(trc))] * 2,
                        guest_pages=512, steps=32)  # fmt: skip
    env = BalloonVectorEnv(1, sc.id)
    env.reset(seed=0)
    for _ in range(8):
        _, _, _, _, info = env.step(np.zeros((1, 2), dtype=np.float32))
    assert np.asarray(info["vm"]["guest_used_pages"]).sum() > 0


def test_registered_user_scenarios_do_not_leak(own_registry):
    assert not [s for s in scenario_ids() if s.startswith(("user-", "missing-"))]
