"""The evaluation harness and the ``reclaim evaluate`` CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from agents.provenance import REPO_ROOT
from envs.sim.counters import VM_EVENTS
from experiments.evaluate import evaluate, mean_ci, summarize


def test_evaluate_is_paired_and_complete():
    episodes, summaries = evaluate(
        ["no-balloon", "esx"], ["steady-v0"], [3, 4], max_episode_steps=20
    )
    assert len(episodes) == 4 and len(summaries) == 2
    assert sorted({e["seed"] for e in episodes}) == [3, 4]
    for e in episodes:
        assert e["length"] == 20
        for name in VM_EVENTS:
            assert isinstance(e[name], int) and e[name] >= 0
    # Same seeds -> same reference streams: refs equal across policies.
    by = {(e["policy"], e["seed"]): e for e in episodes}
    assert by[("no-balloon", 3)]["refs"] == by[("esx", 3)]["refs"]
    esx = [s for s in summaries if s["policy"] == "esx"][0]
    assert esx["diff_vs_esx_mean"] == 0.0


def test_summary_matches_the_episodes():
    episodes, summaries = evaluate(["static"], ["steady-v0"], 3, max_episode_steps=10)
    s = summaries[0]
    rets = [e["return"] for e in episodes]
    assert s["return_mean"] == pytest.approx(np.mean(rets))
    m, ci = mean_ci(rets)
    assert s["return_ci95"] == pytest.approx(ci)
    assert s["double_paging"] == pytest.approx(np.mean([e["double_paging"] for e in episodes]))
    assert np.isnan(s["diff_vs_esx_mean"])  # esx not evaluated


def test_mean_ci_is_the_t_interval():
    m, ci = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert ci == pytest.approx(4.302652729911275 * 1.0 / np.sqrt(3))
    assert np.isnan(mean_ci([1.0])[1])


def test_paired_difference():
    eps = [
        {
            "policy": p,
            "scenario": "s",
            "seed": k,
            "return": r,
            "host_oom": 0,
            "length": 1,
            "stall_us": 0.0,
            **{n: 0 for n in VM_EVENTS},
        }
        for p, k, r in [("esx", 0, -1.0), ("esx", 1, -2.0), ("x", 0, -0.5), ("x", 1, -1.0)]
    ]
    s = {d["policy"]: d for d in summarize(eps)}
    assert s["x"]["diff_vs_esx_mean"] == pytest.approx(0.75)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid names"):
        evaluate(["nope"], ["steady-v0"], 1, max_episode_steps=2)
    with pytest.raises(ValueError, match=r"unknown scenario 'nope-v0'.*reclaim scenarios lists"):
        evaluate(["esx"], ["nope-v0"], 1, max_episode_steps=2)


def run_cli(*args, tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "experiments.cli", "evaluate", *args, "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_json_smoke(tmp_path):
    proc = run_cli(
        "--policies",
        "no-balloon,esx,oracle",
        "--scenarios",
        "steady-v0",
        "--seeds",
        "2",
        "--steps",
        "12",
        "--json",
        "--set",
        "host_policy='lru'",
        tmp_path=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [(d["policy"], d["scenario"]) for d in out] == [
        ("no-balloon", "steady-v0"),
        ("esx", "steady-v0"),
        ("oracle", "steady-v0"),
    ]
    for d in out:
        assert d["episodes"] == 2
        for key in (
            "return_mean",
            "return_ci95",
            "guest_major_faults",
            "host_swapins",
            "double_paging",
        ):
            assert key in d
    with open(tmp_path / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["seeds"] == [0, 1] and "git_revision" in cfg
    assert cfg["overrides"] == {"host_policy": "lru"}
    assert (tmp_path / "summary.md").read_text().startswith("| scenario")


def test_cli_unknown_policy(tmp_path):
    proc = run_cli("--policies", "bogus", "--seeds", "1", "--steps", "2", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "valid names" in proc.stderr and "no-balloon" in proc.stderr


def test_cli_takes_a_trained_run_directory(tmp_path):
    """A run directory of any learning method, through the loader registry; this one was
    written before runs recorded their method (so it is an SB3 run)."""
    run = REPO_ROOT / "experiments" / "results" / "headline-v1" / "models" / "ppo" / "0"
    proc = run_cli("--policies", f"{run},esx", "--scenarios", "default-v1", "--seeds", "1",
                   "--steps", "4", "--json", tmp_path=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [d["policy"] for d in out] == [str(run), "esx"]
    assert all(d["episodes"] == 1 for d in out)
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    proc = run_cli("--policies", str(empty), "--seeds", "1", "--steps", "2", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "is not a trained run" in proc.stderr and "no config.json" in proc.stderr
