"""experiments.agent_v2 (issue #25's ablation runner): runs, held-out scores, reuse."""

from __future__ import annotations

import json

import pytest

from envs.files import read_csv
from experiments import agent_v2
from experiments.scoring import cost_ratio


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent-v2")
    b = agent_v2.Budget(scenarios=("default-v2",), iterations=1, episodes=1, total_timesteps=512,
                        eval_episodes=1, runs_dir=str(root / "runs"),
                        heuristics=("no-balloon", "static", "esx"))  # fmt: skip
    doc = agent_v2.run(b, ["dagger-esx", "ppo"], root / "out", log=lambda _m: None)
    return b, root, doc


def test_the_summary_has_the_issues_keys_and_scores_on_held_out_seeds(ablation):
    b, root, doc = ablation
    out = root / "out"
    assert json.loads((out / "summary.json").read_text()) == doc
    assert doc["best_variant"] in ("dagger-esx", "ppo")
    assert doc["eval_seeds"] == [agent_v2.Budget.eval_seed]
    # every run's own training and checkpoint seeds are below the held-out ones
    assert agent_v2.Budget.eval_seed > 1_000_000 + 4
    rows = {r["policy"]: r for r in read_csv(out / "per_scenario.csv")}
    best = max(float(rows[h]["return"]) for h in ("static", "esx"))
    for label in ("dagger-esx/0", "ppo/0"):
        r = rows[label]
        assert float(r["cost_ratio_vs_best"]) == pytest.approx(cost_ratio(float(r["return"]), best))
    esx_ratio = float(rows["dagger-esx/0"]["cost_ratio_vs_esx"])
    assert doc["imitate_esx_cost_ratio"] == pytest.approx(esx_ratio)
    assert doc["best_cost_ratio"] == min(doc["variants"][k]["cost_ratio_vs_best"]
                                         for k in ("dagger-esx/0", "ppo/0"))  # fmt: skip
    assert (out / "curves.png").stat().st_size > 0
    assert "| dagger-esx/0 |" in (out / "table.md").read_text()
    # PPO ran on the v2 interface the runner fixes (observation v2, no dead-band)
    cfg = json.loads((agent_v2.run_path(b, "ppo", 0) / "config.json").read_text())
    assert cfg["env_options"] == {**agent_v2.INTERFACE, "action_mode": "absolute"}


def test_a_rerun_reuses_every_run_and_episode(ablation):
    b, root, doc = ablation
    stamps = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("result.json")}
    again = agent_v2.run(b, ["dagger-esx", "ppo"], root / "out", log=lambda _m: None)
    assert again == doc
    assert {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("result.json")} == stamps


def test_bad_arguments_exit_2(capsys):
    assert agent_v2.main(["--variants", "nope"]) == 2
    assert "--variants" in capsys.readouterr().err
    assert agent_v2.main(["--scenarios", "split:nope"]) == 2
