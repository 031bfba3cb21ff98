"""The scenario registry (envs/scenarios.py) and ``reclaim scenarios``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from envs.data import load_workload_data
from envs.scenarios import (
    BITBRAINS_TEST,
    BITBRAINS_TRAIN,
    DEFAULT_SCENARIO,
    SPLITS,
    get_scenario,
    scenario_ids,
)
from envs.sim.core import Simulator
from envs.sim.invariants import check_invariants
from tests import REPO  # noqa: E402
from tests.processes import run_cli  # noqa: E402

REQUIRED = (
    "steady-v0 phase-shift-v0 bursty-v0 idle-tax-v0 clones-v0 thrash-v0 leak-v0 "
    "boot-storm-v0 file-heavy-v0 mixed-v0 trace-lirs-v0 trace-spec-v0 trace-oltp-v0 "
    "bitbrains-v0 bitbrains-test-v0 trace-recorded-v0"
).split()


def _ids_marked() -> list:
    return [
        pytest.param(s, marks=pytest.mark.data) if get_scenario(s).uses_data else s
        for s in scenario_ids()
    ]


def test_registry_contents():
    ids = scenario_ids()
    assert len(ids) >= 13 and DEFAULT_SCENARIO in ids
    assert set(REQUIRED) <= set(ids)
    for sid in ids:
        sc = get_scenario(sid)
        assert sc.id == sid and sid.endswith(("-v0", "-v1", "-v2"))
        assert sc.split in SPLITS
        assert sc.description.endswith(".") and len(sc.description) > 20
        assert 2 <= sc.num_vms <= 6
        assert all(512 <= v.guest_pages <= 4096 for v in sc.params.vms)
        assert all(v.workload.max_refs_per_tick <= 1024 for v in sc.params.vms)
        hash(sc.params)  # frozen, hashable params (no arrays inside)
    assert get_scenario("thrash-v0").overcommit_ratio == pytest.approx(2.0, abs=0.01)


def test_every_v0_scenario_has_its_v1_twin():
    """A -v1 scenario is its -v0 twin under envs.physics.with_v1_physics: same split, length
    and hosts; the v1 physics switched on (device, blind host paging, 1 MiB pages)."""
    from envs.physics import V1_PAGE_KIB, with_v1_physics

    v0 = [s for s in scenario_ids() if s.endswith("-v0")]
    assert {s[:-3] + "-v1" for s in v0} <= set(scenario_ids(version="v1"))
    for sid in v0:
        old, new = get_scenario(sid), get_scenario(sid[:-3] + "-v1")
        assert new.params == with_v1_physics(old.params) and new.params != old.params
        assert new.max_episode_steps == old.max_episode_steps
        # a held-out scenario without measured headroom moves to sanity (issue #12)
        assert new.split == old.split or (old.split, new.split) == ("test", "sanity")
        p = new.params
        assert p.page_kib == V1_PAGE_KIB and p.costs.dev_enabled and p.costs.sync_reclaim
        assert p.host_policy in ("random", "lru") and not p.free_page_reporting


def test_splits_are_disjoint_and_cover():
    by = {s: set(scenario_ids(s)) for s in SPLITS}
    assert by["train"] and by["test"]
    assert sum(len(x) for x in by.values()) == len(set().union(*by.values()))
    assert set().union(*by.values()) == set(scenario_ids())
    assert not scenario_ids("sanity", "v0")  # v0's splits never change


def test_bitbrains_vm_sets_are_disjoint():
    train = get_scenario("bitbrains-v0").bitbrains_vms
    test = get_scenario("bitbrains-test-v0").bitbrains_vms
    assert train == set(BITBRAINS_TRAIN) and test == set(BITBRAINS_TEST)
    assert not train & test and len(train) == 35 and len(test) == 15
    # No training scenario touches a test VM.
    for sid in scenario_ids("train"):
        assert not get_scenario(sid).bitbrains_vms & test


def test_unknown_id_suggests_the_closest_ids():
    with pytest.raises(ValueError, match=r"did you mean 'steady-v0'.*reclaim scenarios lists"):
        get_scenario("stedy-v0")
    with pytest.raises(ValueError, match=r"'nope-v0'; no registered id is close \(reclaim scen"):
        get_scenario("nope-v0")  # nothing close: no guess


@pytest.mark.parametrize("sid", _ids_marked())
def test_scenario_runs_with_invariants(sid, request):
    sc = get_scenario(sid)
    if sc.uses_data:
        request.getfixturevalue("shared_data")
    p = sc.params
    data = load_workload_data(p)
    sims = [Simulator(p, 2, data), Simulator(p, 2, data)]
    for s in sims:
        s.reset([0, 1])
    rng = np.random.default_rng(0)
    hi = np.array([v.guest_pages // 2 for v in p.vms])
    for _ in range(20):
        tg = rng.integers(0, hi + 1, size=(2, p.num_vms))
        res, again = (s.step(tg) for s in sims)
        for b in range(2):
            check_invariants(p, sims[0].snapshot(b), res.vm[b], res.host[b])
        np.testing.assert_array_equal(res.vm, again.vm)  # same seed, same counters
        np.testing.assert_array_equal(res.host, again.host)
    assert res.vm_field("refs").sum() > 0


def test_cli_scenarios_json():
    out = run_cli(["scenarios", "--json"], timeout=60)
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == scenario_ids()
    for r in rows:
        assert {"id", "split", "description", "num_vms", "overcommit_ratio"} <= r.keys()
        assert r["num_vms"] == get_scenario(r["id"]).num_vms
    table = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "scenarios", "--split", "test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "thrash-v0" in table and "steady-v0" not in table


def test_a_split_spec_names_one_physics_version():
    """split:NAME is the latest (v1) physics' split, split:NAME@v0 the v0 one; training,
    compare and tune resolve it the same way, and never mix two versions."""
    from agents.learners.sb3.train import TrainConfig
    from envs.scenarios import LATEST_VERSION, resolve_scenarios, split_ids

    for split in SPLITS:
        latest, v0 = split_ids(f"split:{split}"), split_ids(f"split:{split}@v0")
        assert latest or split == "sanity"
        assert all(s.endswith("-" + LATEST_VERSION) for s in latest)
        assert all(s.endswith("-v0") for s in v0) and (v0 or split == "sanity")
        assert all(get_scenario(s).split == split for s in latest + v0)
        if latest:
            assert list(resolve_scenarios(f"split:{split}")) == latest
    # the v1 twins of v0's training scenarios train in v1 too
    assert {s[:-3] + "-v1" for s in split_ids("split:train@v0")} <= set(split_ids("split:train"))
    assert TrainConfig(scenario="split:train@v0").scenarios == tuple(split_ids("split:train@v0"))
    for bad in ("split:nope", "split:train@v7"):
        with pytest.raises(ValueError):
            split_ids(bad)
    assert resolve_scenarios("default-v0, boot-storm-v0 steady-v0") == (
        "default-v0", "boot-storm-v0", "steady-v0")  # fmt: skip
    for bad, named in (("default-v0,nope-v0", "'nope-v0'"), ("split:nope", "'nope'"),
                       (" , ", "at least one scenario")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            resolve_scenarios(bad)


def test_every_builtin_v1_scenario_has_a_v2_twin_under_the_v2_physics(capsys):
    """The -v2 ids (issue #24): the same hosts as -v1 under envs.physics.with_v2_physics,
    the -v1 ids unchanged; `reclaim scenarios --version v2` lists exactly them."""
    from envs.scenarios import scenario_ids
    from experiments.cli import main

    v1, v2 = scenario_ids(version="v1"), scenario_ids(version="v2")
    assert [s[: -len("-v2")] for s in v2] == [s[: -len("-v1")] for s in v1]
    for sid in v2:
        p2, p1 = get_scenario(sid).params, get_scenario(sid[:-3] + "-v1").params
        assert p2.closed_loop and p2.content_model == "image" and not p1.closed_loop
        assert all(vm.page_metadata_bytes == 64 for vm in p2.vms)
        assert p2.costs.dev_read_lat_us > 100 > p1.costs.dev_read_lat_us
        # the same host otherwise: v1's physics of it is the registered -v1 scenario
        assert p2.host_frames == p1.host_frames and p2.num_vms == p1.num_vms
        assert get_scenario(sid).max_episode_steps == get_scenario(sid[:-3] + "-v1").max_episode_steps  # noqa: E501
    main(["scenarios", "--version", "v2"])
    listed = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]]
    assert listed == v2
