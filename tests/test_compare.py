"""reclaim compare / demo: normalization, rliable matrices, config errors, demo smoke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.compare import CompareConfig, normalized_scores, score_matrices

REPO = Path(__file__).resolve().parent.parent


def _ep(policy, scenario, seed, ret):
    return {"policy": policy, "scenario": scenario, "seed": seed, "return": ret}


def test_normalized_scores_and_floor():
    eps = [
        _ep("no-balloon", "a", 0, -10.0), _ep("oracle", "a", 0, -2.0), _ep("esx", "a", 0, -4.0),
        # degenerate: the oracle gains nothing, so the floor 0.05·|R_none| = 0.5 applies
        _ep("no-balloon", "a", 1, -10.0), _ep("oracle", "a", 1, -10.0), _ep("esx", "a", 1, -11.0),
    ]  # fmt: skip
    scored, clamped = normalized_scores(eps, 0.05)
    s = {(e["policy"], e["seed"]): e["score"] for e in scored}
    assert s[("no-balloon", 0)] == 0.0 and s[("oracle", 0)] == 1.0
    assert s[("esx", 0)] == pytest.approx(0.75)
    assert clamped == 1 and s[("esx", 1)] == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="missing no-balloon/oracle"):
        normalized_scores([_ep("esx", "b", 0, -1.0)], 0.05)


def test_score_matrices_runs_by_tasks():
    scored = []
    for sc in ("a", "b"):
        for seed in (0, 1, 2):
            scored.append({"policy": "esx", "scenario": sc, "seed": seed, "score": 0.5})
            for ts in (0, 1):
                scored.append({"policy": f"ppo/seed{ts}", "scenario": sc, "seed": seed,
                               "score": float(ts)})  # fmt: skip
    m = score_matrices(scored, ("a", "b"))
    assert m["esx"].shape == (3, 2)
    assert m["ppo"].shape == (6, 2)  # training seeds × evaluation seeds
    assert np.array_equal(m["ppo"][:3], np.zeros((3, 2)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(algos=("dqn",)), "unknown algorithm"),
        (dict(test_scenarios="nope-v0"), "unknown scenario"),
        (dict(baselines=("esx", "magic")), "unknown policy 'magic'"),
        (dict(seeds=0), "seeds must be >= 1"),
        (dict(name="../x"), "plain directory name"),
    ],
)
def test_compare_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompareConfig(**kwargs)


def test_compare_cli_flags():
    from experiments.cli import parse

    args = parse(
        [
            "compare",
            "--algos",
            "ppo,sac",
            "--seeds",
            "3",
            "--n-envs",
            "32",
            "--total-timesteps",
            "1000",
            "--name",
            "x",
        ]  # fmt: skip
    )
    assert args.algos == ("ppo", "sac") and args.seeds == 3 and args.n_envs == 32


def test_demo_quick_smoke_and_rerun_skips(tmp_path):
    res_dir, runs_dir = str(tmp_path / "res"), str(tmp_path / "runs")
    cmd = [sys.executable, "-m", "experiments.cli", "demo", "--quick",
           "--results-dir", res_dir, "--runs-dir", runs_dir]  # fmt: skip
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "| ppo |" in res.stdout and "IQM" in res.stdout
    out = tmp_path / "res" / "demo-quick"
    for f in ("table.md", "summary.csv", "poi.csv", "scores.csv", "per_scenario.csv",
              "learning_curves.csv", "episodes.csv", "config.json", "aggregate.png",
              "performance_profile.png", "per_scenario.png", "learning_curves.png",
              "timeline.png"):  # fmt: skip
        assert (out / f).exists(), f
    result = tmp_path / "runs" / "demo-quick-ppo" / "0" / "result.json"
    stamp = result.stat().st_mtime_ns
    res2 = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res2.returncode == 0, res2.stderr
    assert result.stat().st_mtime_ns == stamp  # finished training reused
    assert "training:" not in res2.stdout and "evaluation:" not in res2.stdout
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["algos"] == ["ppo"]
