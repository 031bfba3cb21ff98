"""``reclaim ablate`` (experiments/ablate.py): scores and one real, tiny ablation."""

from __future__ import annotations

import json
import math

import pytest

from experiments import ablate
from experiments.user_errors import UserError


def test_score_is_the_cost_ratio_to_the_best_heuristic():
    base = {"a": {"no-balloon": -10.0, "esx": -2.0, "static": -4.0},
            "b": {"no-balloon": -1.0, "esx": 0.0}}  # fmt: skip
    s = ablate.score({"a": -2.0, "b": -1.0}, base)
    assert s["a"] == pytest.approx(1.0) and math.isnan(s["b"])  # a free best: no ratio
    assert ablate.score({"a": -10.0}, base)["a"] == pytest.approx(5.0)
    assert ablate.score({"a": -1.0}, base)["a"] == pytest.approx(0.5)


def test_summary_takes_geometric_means_over_scenarios_then_seeds():
    base = {"a": {"no-balloon": -10.0, "esx": -2.0}, "b": {"no-balloon": -4.0, "esx": -2.0}}
    runs = [{"variant": "base", "final_eval": {"a": -2.0, "b": -8.0}},   # ratios 1, 4
            {"variant": "base", "final_eval": {"a": -4.0, "b": -4.0}}]   # ratios 2, 2
    (row,) = ablate.summarize(runs, base)
    assert row["cost_ratio_per_seed"] == pytest.approx([2.0, 2.0])
    assert row["cost_ratio"] == pytest.approx(2.0)
    assert row["per_scenario"]["a"] == pytest.approx(2 ** 0.5)


def test_config_is_validated():
    with pytest.raises(UserError, match="variant"):
        ablate.AblateConfig(variants=("nope",))
    with pytest.raises(UserError, match="4-VM"):
        ablate.AblateConfig(scenarios="boot-wave-v1")  # six VMs
    cfg = ablate.AblateConfig()
    assert cfg.scenario_ids and all(s.endswith("-v1") for s in cfg.scenario_ids)
    from envs.scenarios import get_scenario

    assert all(get_scenario(s).split == "train" for s in cfg.scenario_ids)
    tc = cfg.train_config("recurrent", 1)
    assert tc.algo == "recurrent-ppo" and tc.seed == 1 and tc.name == "ablate-recurrent"


def test_a_tiny_ablation_end_to_end(tmp_path):
    cfg = ablate.AblateConfig(variants=("base", "raw-reward"), scenarios="steady-v1", seeds=1,
                              total_timesteps=256, eval_episodes=1, jobs=1,
                              runs_dir=str(tmp_path / "runs"),
                              results_dir=str(tmp_path / "res"))  # fmt: skip
    assert ablate.run(cfg) == 0
    doc = json.loads((tmp_path / "res" / "ablations.json").read_text())
    assert [r["variant"] for r in doc["rows"]] == ["base", "raw-reward"]
    assert doc["runs"][1]["final_eval"].keys() == {"steady-v1"}
    assert "git_revision" in doc["meta"]
    assert "| raw-reward |" in (tmp_path / "res" / "ablations.md").read_text()
    assert ablate.run(cfg) == 0  # finished runs are reused, not retrained
